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

import numpy as np

from ._jit import jit
from .callback import (enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb, order_nb, reduce_long_nb,
                       reduce_short_nb, trail_stop_nb)


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


@jit
def python_next_stops_nb(ctx, i):
    """``on_bar`` of class-API strategies with a Python ``next`` (per-order fields on): the bridge of
    :func:`python_next_nb` with ``ctx.user`` ending in ``fields`` ``(4, n_cols)``: the ``size``, ``sl``,
    ``tp`` of the entry flagged for each column (handed to ``order_nb``) and an indicator stop level
    (``Position.set_stop``: handed to ``trail_stop_nb``, which ratchets it in the position's favour and
    makes it the first level of an entry flagged on the bar); NaN: unset; all reset after the bar.
    Per-order limit/stop levels need no bridge: Python writes them into the run's ``order_price``."""
    pos, cash, flags, first, callback, portions, fields = ctx.user
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
        if flags[0, c] or flags[2, c]:
            order_nb(ctx, i, c, fields[0, c], fields[1, c], fields[2, c], np.nan)
        if fields[3, c] == fields[3, c]:
            trail_stop_nb(ctx, i, c, fields[3, c])
        for k in range(4):
            flags[k, c] = False
            fields[k, c] = np.nan
        portions[c] = 1.0
