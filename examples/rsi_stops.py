"""RSI mean reversion with a 3 % stop-loss and a 6 % take-profit on three symbols sharing one account.

Stops trigger from the bar after entry; a gap through a stop fills at the open; when one bar
touches both, the stop-loss is assumed first (pessimistic). Slippage applies to stops too.
"""
import nbtrade
from nbtrade.strategies import rsi_reversion

from _common import QUICK

data = nbtrade.market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01",
                      "2024-02-01" if QUICK else "2024-06-01", "1h", seed=3)
signals = rsi_reversion(data, timeperiod=14, lower=30, upper=70)
result = nbtrade.backtest(data, **signals, size=1 / 3, sl_stop=0.03, tp_stop=0.06, fees=0.001, slippage=0.0005)
trades = result.trades
print(result.stats().to_string())
print(trades.groupby(["symbol", "exit_reason"]).size().to_string())
