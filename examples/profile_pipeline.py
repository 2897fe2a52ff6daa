"""Profile a small pipeline with the performance monitor, and cache a slow step on disk."""
import tempfile
import time

import nbtrade
from nbtrade.monitor import Monitor

from _common import QUICK

mon = Monitor()
cache = nbtrade.Cache(tempfile.mkdtemp(prefix="nbtrade-cache-"), maxsize=16)


@nbtrade.cached(cache=cache)
def features_for(symbols, end):
    data = nbtrade.market(symbols, "2024-01-01", end, "1h", seed=2)
    return nbtrade.compute_features(data, [("ema", 12), ("ema", 26), ("rsi", 14), ("vol", 24)])


symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
end = "2024-02-01" if QUICK else "2024-12-01"
for attempt in range(2):
    with mon.stage("features (cached)"):
        X = features_for(symbols, end)
with mon.stage("market"):
    data = nbtrade.market(symbols, "2024-01-01", end, "1h", seed=2)
with mon.stage("backtest"):
    from nbtrade.strategies import ema_cross

    result = nbtrade.backtest(data, **ema_cross(data), size=1 / 3, fees=0.001)
print(cache.stats())
from rich.console import Console

Console().print(mon.table())
