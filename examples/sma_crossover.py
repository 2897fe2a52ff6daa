"""SMA(10/50) crossover on one symbol: signals at the close, fills at the next open, 10 bp fees."""
import nbtrade
from nbtrade import indicators as ind

from _common import QUICK

df = nbtrade.market("BTC/USDT", "2024-01-01", "2024-02-01" if QUICK else "2024-07-01", "1h", seed=7)
fast, slow = ind.sma(df["close"], 10), ind.sma(df["close"], 50)
above = fast > slow
entries = above & ~above.shift(1, fill_value=False) & slow.notna()   # cross up, known at the bar's close
exits = ~above & above.shift(1, fill_value=False)                     # cross down

result = nbtrade.backtest(df, entries, exits, fees=0.001, slippage=0.0005)   # fill="next_open" by default
print(result.stats().to_string())
print(result.trades.head().to_string())
