"""The compiled ``on_bar`` of class-API strategies whose ``next`` is plain Python.

The engine calls :func:`python_next_nb` at each bar; it mirrors the live positions
and cash into arrays the Python side reads, calls the Python ``next`` driver through
a ctypes function pointer (numba first-class function ``int64(int64)``, the GIL is
taken for the call), then turns the flags Python set into the engine's signals.
``ctx.user`` is ``(position (m,), cash (k,), flags (4, m) bool, first (1,) int64,
callback, portions (m,))``; flags rows: long entry, long exit, short entry, short exit;
``portions``: the fraction an exit flag closes (``Position.close(portion)``).
The callback returns 0 (no signal), 1 (some flags set) or -1 (it raised: the run
goes on without calling it again, the caller re-raises).
"""
from __future__ import annotations

from ._jit import jit
from .callback import (enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb, reduce_long_nb,
                       reduce_short_nb)


@jit
def python_next_nb(ctx, i):
    """``on_bar`` for :func:`nbtrade.backtest_callback`: one Python call per bar from ``first[0]``."""
    pos, cash, flags, first, callback, portions = ctx.user
    if i < first[0]:
        return
    m = pos.shape[0]
    for c in range(m):
        pos[c] = ctx.position[c]
    for k in range(cash.shape[0]):
        cash[k] = ctx.cash[k]
    r = callback(i)
    if r < 0:
        first[0] = ctx.close.shape[0]
        return
    if r == 0:
        return
    for c in range(m):
        if flags[0, c]:
            enter_long_nb(ctx, i, c)
        if flags[1, c]:
            if portions[c] < 1.0:
                reduce_long_nb(ctx, i, c, portions[c])
            else:
                exit_long_nb(ctx, i, c)
        if flags[2, c]:
            enter_short_nb(ctx, i, c)
        if flags[3, c]:
            if portions[c] < 1.0:
                reduce_short_nb(ctx, i, c, portions[c])
            else:
                exit_short_nb(ctx, i, c)
        for k in range(4):
            flags[k, c] = False
        portions[c] = 1.0
