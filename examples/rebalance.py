"""Multi-asset target weights: inverse-volatility portfolio rebalanced daily (every 24 hourly bars)."""
import numpy as np
import pandas as pd

import nbtrade
from nbtrade import stats

from _common import QUICK

symbols = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT"]
data = nbtrade.market(symbols, "2024-01-01", "2024-02-15" if QUICK else "2024-07-01", "1h", seed=5)
close = pd.DataFrame({s: f["close"] for s, f in data.items()})
vol = stats.rolling_std(np.log(close).diff(), 24 * 7)        # causal: bars up to t
inv = 1.0 / vol
weights = inv.div(inv.sum(axis=1), axis=0) * 0.95           # 95 % invested, NaN during warm-up
result = nbtrade.backtest_weights(data, weights, rebalance_every=24, fees=0.001, slippage=0.0005)
print(result.stats().to_string())
print(result.positions.tail(3).to_string())
