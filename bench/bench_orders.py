"""Per-order stops in a compiled class-API ``next`` (issue 15): the same SMA(10/50) crossover, long-only,
5 symbols sharing cash, each entry with a stop-loss 3 % and a take-profit 6 % from the signal bar's close.

``n`` counts bar-steps (bars x symbols). Implementations:

* ``nbtrade``: ``Backtest(data, PerOrder, per_order=True)``; ``next`` gives each entry its levels with
  ``order_nb(ctx, i, c, nan, 0.97 * close, 1.06 * close, nan)``;
* ``run_level``: the same ``next`` without ``order_nb``, ``Backtest(..., sl_stop=0.03, tp_stop=0.06)``
  (levels from the entry's fill price rather than the signal close: the trades differ slightly, the work
  is the same, so outputs are not compared);
* ``per_order_unused``: ``per_order=True`` with the plain ``next`` (what enabling per-order fields costs
  before a strategy writes one);
* ``no_stops``: the crossover alone (what any stop costs).

Target (issue 15): ``nbtrade`` >= 0.8x ``run_level``. Not met. Measured (``--quick``, 100,000 bar-steps,
shared 2-core VM, medians of 7-9 interleaved runs): run_level 4.5 ms, per_order_unused 6.9 ms (0.65x),
nbtrade 15.6 ms (0.29x; the harness: 6.2 vs 22.4 M bar-steps/s, 0.28x). Two costs, neither the size of
the helpers: (1) ``per_order=True`` turns on the indicator-stop phase and allocates four bars x symbols
arrays (``nbtrade/engine/callback.py run_callback``), whether or not ``next`` uses them; (2) reading
``ctx.orders`` in ``next`` at all: writing the levels directly (``ctx.orders.sl_price[i, c] = ...``, no
helper) was no faster than ``order_nb``, a non-inlined writer taking the two arrays 16 ms, the same ``next``
compiled with ``_nrt=False`` 11.9 ms (so reference counting of the ``ctx.orders`` arrays is part of it).
Both fixes are in the engine's files (a per-order option without the indicator stop; ``ctx.orders`` fields
handed to ``next`` as borrowed arrays). Run directly::

    python bench/bench_orders.py --quick        # 100,000 bar-steps
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from nbtrade import indicators as ind
from nbtrade.bench import Case
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb, order_nb
from nbtrade.strategy import Backtest, Strategy

from nbtrade.benchsuite.bench_strategy import N_SYMBOLS, make_data

FEE = 0.001


@njit(cache=True)
def _cross_nb(ctx, i, sma1, sma2):
    if i == 0:
        return
    for c in range(ctx.close.shape[1]):
        if sma1[i - 1, c] < sma2[i - 1, c] and sma1[i, c] > sma2[i, c]:
            if ctx.position[c] == 0.0:
                enter_long_nb(ctx, i, c)
        elif sma2[i - 1, c] < sma1[i - 1, c] and sma2[i, c] > sma1[i, c]:
            exit_long_nb(ctx, i, c)


@njit(cache=True)
def _cross_orders_nb(ctx, i, sma1, sma2):
    """:func:`_cross_nb` with each entry's own levels (``ctx.orders`` must exist: a separate function, as
    numba types the helpers of every branch)."""
    if i == 0:
        return
    for c in range(ctx.close.shape[1]):
        if sma1[i - 1, c] < sma2[i - 1, c] and sma1[i, c] > sma2[i, c]:
            if ctx.position[c] == 0.0:
                enter_long_nb(ctx, i, c)
                px = ctx.close[i, c]
                order_nb(ctx, i, c, np.nan, 0.97 * px, 1.06 * px, np.nan)
        elif sma2[i - 1, c] < sma1[i - 1, c] and sma2[i, c] > sma1[i, c]:
            exit_long_nb(ctx, i, c)


class RunLevel(Strategy):
    fast = 10
    slow = 50

    def init(self):
        self.sma1 = self.I(ind.sma, self.data.close, self.fast)
        self.sma2 = self.I(ind.sma, self.data.close, self.slow)

    @staticmethod
    @njit(cache=True)
    def next(ctx, i):
        _cross_nb(ctx, i, ctx.user.sma1, ctx.user.sma2)


class PerOrder(RunLevel):
    @staticmethod
    @njit(cache=True)
    def next(ctx, i):
        _cross_orders_nb(ctx, i, ctx.user.sma1, ctx.user.sma2)


def _setup(n: int):
    data = make_data(max(n // N_SYMBOLS, 100))
    kw = dict(fees=FEE, size=1.0 / N_SYMBOLS, on_gap="skip")
    per = Backtest(data, PerOrder, per_order=True, **kw)
    run = Backtest(data, RunLevel, sl_stop=0.03, tp_stop=0.06, **kw)
    bare = Backtest(data, RunLevel, **kw)
    unused = Backtest(data, RunLevel, per_order=True, **kw)
    return {
        "nbtrade": lambda: per.run().equity.to_numpy(),
        "run_level": lambda: run.run().equity.to_numpy(),
        "per_order_unused": lambda: unused.run().equity.to_numpy(),
        "no_stops": lambda: bare.run().equity.to_numpy(),
    }


CASES = [
    Case("class_api_per_order_stops_5sym", _setup, unit="bar-step",
         target=">= 0.8x run_level (the same strategy with run-level sl_stop/tp_stop)"),
]


def main(argv=None) -> int:
    from nbtrade.bench import script_main

    script_main(CASES, "nbtrade bench orders", __doc__.split("\n")[0], argv, default_n=500_000, quick_n=100_000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
