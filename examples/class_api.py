"""backtesting.py-style class API: a Strategy with init/next, in Python and compiled, then a small grid search.

``init`` declares indicators once (vectorised); ``next`` decides. A plain ``def next(self)`` runs
bar by bar at Python speed (fine to prototype); the same logic as a ``@staticmethod`` ``@njit``
``next(ctx, i)`` runs at engine speed. Both go through the same engine and give the same result.
"""
import time

from numba import njit

import nbtrade
from nbtrade import indicators as ind
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.strategy import Backtest, Strategy, crossover

from _common import QUICK


class SmaCross(Strategy):
    fast = 10
    slow = 50

    def init(self):
        self.sma1 = self.I(ind.sma, self.data.close, self.fast)
        self.sma2 = self.I(ind.sma, self.data.close, self.slow)

    def next(self):                                   # Python: one call per bar and symbol
        if crossover(self.sma1, self.sma2):
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()


class SmaCrossNb(SmaCross):                           # same init and parameters, compiled next
    @staticmethod
    @njit
    def next(ctx, i):
        sma1, sma2, params = ctx.user                 # indicators in declaration order, then params
        if i == 0:
            return
        for c in range(ctx.close.shape[1]):
            if sma1[i - 1, c] < sma2[i - 1, c] and sma1[i, c] > sma2[i, c]:
                enter_long_nb(ctx, i, c)
            elif sma2[i - 1, c] < sma1[i - 1, c] and sma2[i, c] > sma1[i, c]:
                exit_long_nb(ctx, i, c)


data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01" if QUICK else "2025-01-01", "1h",
                      seed=7)
n_steps = len(data["BTC/USDT"]) * len(data)
for strategy in (SmaCross, SmaCrossNb):
    bt = Backtest(data, strategy, cash=10_000, commission=0.001, size=0.5)
    bt.run()                                          # first run compiles (compiled mode) or loads the cache
    t = time.perf_counter()
    res = bt.run(fast=12)
    dt = time.perf_counter() - t
    print(f"{strategy.__name__:11s} final equity {res.equity.iloc[-1]:10.2f}  {len(res.trades):3d} trades  "
          f"run {dt * 1e3:6.1f} ms ({n_steps:,} bar-symbols; fixed costs dominate small runs)")

best, table = Backtest(data, SmaCrossNb, commission=0.001, size=0.5).optimize(
    fast=[5, 10, 20], slow=[30, 50, 100], maximize="Sharpe Ratio", constraint=lambda p: p.fast < p.slow)
print(table[["fast", "slow", "Sharpe Ratio", "Total Return [%]", "# Trades"]].to_string())
print("best:", best.params)
print(best.stats().to_string())
