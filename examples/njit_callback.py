"""An @njit event-callback strategy: RSI entries with a volatility-scaled exit, decided bar by bar.

``on_bar(ctx, i)`` is compiled together with the engine; it reads prices up to bar i, the live
position and cash, and your own arrays (``ctx.user``), and sets signals for bar i, which fill at
bar i + 1's open like any other signal. Run with NUMBA_DISABLE_JIT=1 to step through it in a debugger.
"""
import numpy as np
import pandas as pd
from numba import njit

import nbtrade
from nbtrade import indicators as ind
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb

from _common import QUICK


@njit
def on_bar(ctx, i):
    rsi, vol = ctx.user
    for c in range(ctx.close.shape[1]):
        if np.isnan(rsi[i, c]) or np.isnan(vol[i, c]):
            continue
        if ctx.position[c] == 0.0 and rsi[i, c] < 30.0:
            enter_long_nb(ctx, i, c)
        elif ctx.position[c] > 0.0 and (rsi[i, c] > 60.0 or vol[i, c] > 0.03):
            exit_long_nb(ctx, i, c)


data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01" if QUICK else "2024-07-01", "1h",
                      seed=4)
close = pd.DataFrame({s: f["close"] for s, f in data.items()})
rsi = np.ascontiguousarray(ind.rsi(close, 14).to_numpy())
vol = np.ascontiguousarray(ind.rolling_std(np.log(close).diff(), 24).to_numpy())
result = nbtrade.backtest_callback(data, on_bar, user=(rsi, vol), size=0.5, fees=0.001, sl_stop=0.04)
print(result.stats().to_string())
print(result.trades.groupby("exit_reason").size().to_string())
