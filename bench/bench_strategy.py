"""Class API benchmark: one SMA(10/50) crossover, long-only, 0.1 % fee, 5 symbols sharing cash.

``n`` counts bar-steps (bars x symbols): ``n // 5`` bars of 5 symbols. Implementations:

* ``nbtrade``: ``Backtest(data, SmaCrossNb).run()``, a Strategy whose ``next`` is a
  ``@staticmethod @njit next(ctx, i)`` (compiled mode, through ``backtest_callback``);
* ``callback``: the same logic as a bare ``backtest_callback`` ``on_bar`` (indicators
  computed outside): what the class layer costs;
* ``signals``: ``nbtrade.backtest`` with precomputed crossover signals;
* ``python_next``: the Strategy with a plain ``def next(self)`` (backtesting.py style,
  called per bar and symbol from the compiled engine): Python speed.

``optimize_goog_quickstart_grid``: ``Backtest(GOOG, SmaCross).optimize(n1=range(5, 30, 5), n2=range(10, 70, 5),
constraint=n1 < n2)`` (50 runs, compiled ``next``) against backtesting.py's ``optimize`` of its Quick Start
strategy on the same data, when backtesting.py is installed (a bench-only baseline).

Equity must agree to 1e-9. Run directly::

    python bench/bench_strategy.py --quick        # 100,000 bar-steps
    python bench/bench_strategy.py                # 500,000 = 100,000 bars x 5 symbols
"""
from __future__ import annotations

import os
import sys

import numpy as np
from numba import njit

from nbtrade import indicators as ind
from nbtrade.bench import Case
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.engine.classapi import Backtest, Strategy, crossover

N_SYMBOLS = 5
FEE = 0.001


class SmaCross(Strategy):
    fast = 10
    slow = 50

    def init(self):
        self.sma1 = self.I(ind.sma, self.data.close, self.fast)
        self.sma2 = self.I(ind.sma, self.data.close, self.slow)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()


@njit(cache=True)
def _cross_nb(ctx, i, sma1, sma2):
    if i == 0:
        return
    for c in range(ctx.close.shape[1]):
        if sma1[i - 1, c] < sma2[i - 1, c] and sma1[i, c] > sma2[i, c]:
            enter_long_nb(ctx, i, c)
        elif sma2[i - 1, c] < sma1[i - 1, c] and sma2[i, c] > sma1[i, c]:
            exit_long_nb(ctx, i, c)


class SmaCrossNb(SmaCross):
    @staticmethod
    @njit(cache=True)
    def next(ctx, i):
        _cross_nb(ctx, i, ctx.user.sma1, ctx.user.sma2)


@njit(cache=True)
def on_bar(ctx, i):
    _cross_nb(ctx, i, ctx.user[0], ctx.user[1])


def make_data(n_bars: int, n_symbols: int = N_SYMBOLS, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-walk OHLC arrays ``(n_bars, n_symbols)``."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, (n_bars, n_symbols)), axis=0))
    open_ = np.empty_like(close)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    wick = np.abs(rng.normal(0.0, 0.001, close.shape))
    high = np.maximum(open_, close) * (1.0 + wick)
    low = np.minimum(open_, close) * (1.0 - wick)
    return {"open": open_, "high": high, "low": low, "close": close}


def _signals(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sma1, sma2 = ind.sma(close, 10), ind.sma(close, 50)
    pad = np.zeros((1, close.shape[1]), dtype=bool)
    up = np.vstack([pad, (sma1[1:] > sma2[1:]) & (sma1[:-1] < sma2[:-1])])
    down = np.vstack([pad, (sma2[1:] > sma1[1:]) & (sma2[:-1] < sma1[:-1])])
    return up, down


def _setup(n: int):
    from nbtrade.engine import backtest, backtest_callback

    data = make_data(max(n // N_SYMBOLS, 100))
    kw = dict(fees=FEE, size=1.0 / N_SYMBOLS)
    compiled, python = Backtest(data, SmaCrossNb, **kw), Backtest(data, SmaCross, **kw)
    close = data["close"]
    # every implementation computes its indicators inside the timed call
    return {
        "nbtrade": lambda: compiled.run().equity.to_numpy(),
        "callback": lambda: backtest_callback(data, on_bar, user=(ind.sma(close, 10), ind.sma(close, 50)),
                                              **kw).equity.to_numpy(),
        "signals": lambda: backtest(data, *_signals(close), **kw).equity.to_numpy(),
        "python_next": lambda: python.run().equity.to_numpy(),
    }


class SmaCrossGoog(Strategy):
    """backtesting.py's Quick Start strategy (``n1``/``n2`` SMA cross) with a compiled ``next``."""

    n1 = 10
    n2 = 20

    def init(self):
        self.sma1 = self.I(ind.sma, self.data.close, self.n1)
        self.sma2 = self.I(ind.sma, self.data.close, self.n2)

    @staticmethod
    @njit(cache=True)
    def next(ctx, i):
        _cross_nb(ctx, i, ctx.user.sma1, ctx.user.sma2)


#: backtesting.py's Quick Start grid: 50 combinations once the constraint is applied.
GRID = dict(n1=range(5, 30, 5), n2=range(10, 70, 5), constraint=lambda p: p.n1 < p.n2)


try:  # backtesting.py, a bench-only baseline; its strategy lives at module level (its process pool pickles it)
    os.environ.setdefault("TQDM_DISABLE", "1")  # its progress bars
    import backtesting as _bt
    from backtesting.lib import crossover as _bt_crossover
    from backtesting.test import SMA as _BT_SMA
except ImportError:
    _bt = None

if _bt is not None:
    class BtSmaCross(_bt.Strategy):
        """backtesting.py's Quick Start strategy."""

        n1 = 10
        n2 = 20

        def init(self):
            self.sma1 = self.I(_BT_SMA, self.data.Close, self.n1)
            self.sma2 = self.I(_BT_SMA, self.data.Close, self.n2)

        def next(self):
            if _bt_crossover(self.sma1, self.sma2):
                self.buy()
            elif _bt_crossover(self.sma2, self.sma1):
                self.position.close()


def _setup_optimize(n: int):
    """``Backtest(GOOG, SmaCross).optimize(grid)`` against backtesting.py's own (bench-only baseline,
    with its default process pool), both on backtesting.py's GOOG daily candles. ``n`` is ignored."""
    import warnings

    try:
        import backtesting
        from backtesting.test import GOOG
    except ImportError:  # no baseline: time nbtrade alone on synthetic daily candles of the same length
        import nbtrade

        goog = nbtrade.market("GOOG", "2004-08-19", "2010-06-28", "1d", seed=1).rename(columns=str.title)
        ours = Backtest(goog, SmaCrossGoog, cash=10_000, commission=0.002, on_gap="skip")
        return {"nbtrade": lambda: ours.optimize(**GRID)[1]}

    ours = Backtest(GOOG, SmaCrossGoog, cash=10_000, commission=0.002, on_gap="skip")
    theirs = backtesting.Backtest(GOOG, BtSmaCross, cash=10_000, commission=0.002)

    def run_theirs():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return theirs.optimize(**GRID)

    return {"nbtrade": lambda: ours.optimize(**GRID)[1], "backtesting.py": run_theirs}


def _check(ref, other):
    np.testing.assert_allclose(other, ref, rtol=1e-9)


CASES = [
    Case("class_api_sma_cross_5sym", _setup, unit="bar-step", check=_check,
         target="compiled next >= 0.9x callback; python next: honest Python speed"),
    Case("optimize_goog_quickstart_grid", _setup_optimize, unit="run", units=lambda n: 50,
         target=">= 5x backtesting.py's optimize"),
]


def main(argv=None) -> int:
    from nbtrade.bench import script_main

    script_main(CASES, "nbtrade bench strategy", __doc__.split("\n")[0], argv, default_n=500_000,
                quick_n=100_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
