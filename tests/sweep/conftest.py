import numpy as np
import pytest

import nbtrade


@pytest.fixture(scope="package")
def small_market():
    """4 symbols x 1,440 5-minute bars (5 days), prepared once."""
    syms = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    return nbtrade.prepare(nbtrade.market(syms, "2024-01-01", "2024-01-06", "5m", seed=3))


def cross(market, fast, slow):
    """SMA crossover as state signals (long while fast > slow)."""
    f, s = nbtrade.sweep.sma(market, fast), nbtrade.sweep.sma(market, slow)
    return f > s, f < s


def cross_ls(market, fast, slow):
    """Long/short SMA crossover."""
    f, s = nbtrade.sweep.ema(market, fast), nbtrade.sweep.sma(market, slow)
    up, down = f > s, f < s
    return up, down, down, up


def _nb_cross_next():
    from numba import njit

    from nbtrade.kernels.callback import enter_long_nb, exit_long_nb

    @njit
    def next_(ctx, i):
        f, s, params = ctx.user
        if i < 1:
            return
        for c in range(ctx.close.shape[1]):
            if f[i - 1, c] < s[i - 1, c] and f[i, c] > s[i, c]:
                enter_long_nb(ctx, i, c)
            elif s[i - 1, c] < f[i - 1, c] and s[i, c] > f[i, c]:
                exit_long_nb(ctx, i, c)

    return next_


class NbCross(nbtrade.Strategy):
    """Class API, compiled next: long on a cross up of two SMAs, flat on a cross down."""
    fast = 5
    slow = 20

    def init(self):
        from nbtrade import indicators as ind

        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I(ind.sma, self.data.close, self.slow)

    next = staticmethod(_nb_cross_next())


class PyCross(NbCross):
    """The same decisions in a Python next."""

    def next(self):
        from nbtrade.engine.classapi import crossover

        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f) and self.position:
            self.position.close()
