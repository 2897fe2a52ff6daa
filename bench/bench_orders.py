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
* ``per_order_arrays``: ``nbtrade``'s strategy with ``ctx.orders.sl_price`` / ``tp_price`` / ``live`` read
  once at the top of ``next`` and written as arrays in the loop (no ``OrderFields`` tuple inside it);
* ``no_stops``: the crossover alone (what any stop costs).

Target (issue 15): ``nbtrade`` >= 0.8x ``run_level``. Measured (``python bench/bench_orders.py --quick
--repeat 9``, 100,000 bar-steps, shared 2-core VM): three runs at load 1.1-1.4 gave 0.80x, 0.76x, 0.89x
(median 0.80x; nbtrade 11.7-12.8 M bar-steps/s, run_level 14.3-15.7); at load 4-5 0.66-0.97x. Borderline
at the target, noisy on this machine. Before the fixes below: 0.29x (0.15x at load 5). ``perf`` showed
35 % of the time in ``NRT_incref`` / ``NRT_decref``:

1. reference counting in the user's function: numba increfs every array of ``ctx`` (~20) on entry and
   decrefs them on exit unless its pruning removes the pairs, and it failed as soon as a variable held
   ``ctx.orders`` in the loop (``order_nb`` inlined: LLVM merged the decrefs of the entry and exit
   branches into one of a phi pointer, which numba cannot pair): ~50 atomic operations per call, in
   ``next`` and again in its helper. Fixes (``kernels/callback.py``): ``order_nb`` compiles to an
   intrinsic that writes ``ctx.orders`` without numba variables (the helper's loop keeps no reference
   counting), and the engine hands ``on_bar`` NULL-meminfo views (``borrowed``), so the calls that
   remain (``next`` calling a helper LLVM does not inline) return at once;
2. ``per_order=True`` turned the indicator-stop phase and absolute-stop checks on for every bar: now
   they start with the first order that sets a level (``ctx.orders.live``, set by ``order_nb`` /
   ``trail_stop_nb``); ``per_order_unused`` costs about ``no_stops`` plus the context's larger size;
3. ``order_nb``'s raise sites (one was enough) made ``_cross_orders_nb`` too large for LLVM to inline
   into ``next``, which then kept an incref/decref of each of ctx's ~23 arrays around the call: the
   intrinsic raises nothing, it leaves an error code in ``ctx.orders.live[2]`` that the engine raises
   on when the callback returns (same messages). The generated ``next`` now has no NRT call at all.

4. the per-order arrays (``size``, ``stop_price``, ``sl_price``, ``tp_price``: 4 MB each at the default
   500,000 bar-steps) were NaN-filled per run (~4 ms) and, with the mixed-type arrays, ~28 MB of separate
   blocks that glibc hands back from its heap page-faulted or cleared each run (7,300 page faults a run
   against run_level's 1,950): now one ``np.zeros`` block in which 0 reads as unset (``order_nb`` /
   ``trail_stop_nb`` refuse levels <= 0), the mixed types' levels ``np.empty`` (1,550-1,700 faults a run;
   default size, ``--repeat 7``, three runs each alternated with the code before, load 1.9-2.7: ``nbtrade``
   33.0 ms median (32.6-37.0) vs ``run_level`` 29.9, 0.91x (0.76-0.93x), from 38.3 ms and 0.77x;
   ``per_order_unused`` 15.9 ms from 22.0, ``per_order_arrays`` 30.4 from 39.2).

What is left is the per-order work itself (reading the levels at each entry, the wider context).
``trail_stop_nb`` and ``entry_level_nb`` are still inlined numba functions (a ``next`` calling them in
its loop may pay the reference counting of 1.).

Run directly::

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


@njit(cache=True)
def _cross_arrays_nb(ctx, i, sma1, sma2, sl_price, tp_price, live):
    """:func:`_cross_orders_nb` writing the levels into ``ctx.orders.sl_price`` / ``tp_price`` handed in as
    arrays (read once at the top of ``next``): no ``OrderFields`` tuple inside the loop."""
    if i == 0:
        return
    for c in range(ctx.close.shape[1]):
        if sma1[i - 1, c] < sma2[i - 1, c] and sma1[i, c] > sma2[i, c]:
            if ctx.position[c] == 0.0:
                enter_long_nb(ctx, i, c)
                px = ctx.close[i, c]
                sl_price[i, c] = 0.97 * px
                tp_price[i, c] = 1.06 * px
                live[0] = 1  # what order_nb sets: the engine checks per-order stops from now on
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


class PerOrderArrays(RunLevel):
    @staticmethod
    @njit(cache=True)
    def next(ctx, i):
        lv = ctx.orders
        _cross_arrays_nb(ctx, i, ctx.user.sma1, ctx.user.sma2, lv.sl_price, lv.tp_price, lv.live)


def _setup(n: int):
    data = make_data(max(n // N_SYMBOLS, 100))
    kw = dict(fees=FEE, size=1.0 / N_SYMBOLS, on_gap="skip")
    per = Backtest(data, PerOrder, per_order=True, **kw)
    run = Backtest(data, RunLevel, sl_stop=0.03, tp_stop=0.06, **kw)
    bare = Backtest(data, RunLevel, **kw)
    unused = Backtest(data, RunLevel, per_order=True, **kw)
    arrays = Backtest(data, PerOrderArrays, per_order=True, **kw)
    return {
        "nbtrade": lambda: per.run().equity.to_numpy(),
        "run_level": lambda: run.run().equity.to_numpy(),
        "per_order_unused": lambda: unused.run().equity.to_numpy(),
        "per_order_arrays": lambda: arrays.run().equity.to_numpy(),
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
