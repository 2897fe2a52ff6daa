"""Event-callback backtest: a user ``@njit`` function ``on_bar(ctx, i)`` decides, bar by bar.

The loop is the signals engine's (same fills, stops, sizing, records), with the
signals written on the fly: after bar ``i``'s intrabar phase (stops, marks at the
close) the engine calls ``on_bar(ctx, i)``, which reads the state and sets signals
for bar ``i`` through the helpers below. They act exactly like precomputed signals
at bar ``i``: filled at bar ``i + 1``'s open (``NEXT_OPEN``) or at bar ``i``'s close
(``CLOSE``); when that bar has no candle for the column, the order waits for the
column's next candle (state ``S_WAIT``; resting entry types: exits only; rejected
``NO_DATA`` if none comes before the last bar). ``ctx`` is a :data:`BarContext`:

``open, high, low, close``
    ``(n_bars, n_cols)`` prices; read rows ``<= i`` only (rows after ``i`` are the
    future: the engine cannot stop you from peeking, tests should).
``position``
    ``(n_cols,)`` signed positions in base units, live.
``cash``
    cash balance(s): ``cash[0]``, or one per cash group (``cash_sharing``).
``entries, exits, short_entries, short_exits``
    ``(n_bars, n_cols)`` bool signals being written (use the helpers, which also flag
    the bar in ``touched`` so the engine skips bars without signals).
``user``
    the tuple of arrays passed as ``user=`` (indicators, parameters...).
``exit_size``
    ``(n_cols,)`` fraction of the position the column's pending exit signal closes: 1 unless
    ``reduce_long_nb``/``reduce_short_nb`` set it (back to 1 once the signal is acted on).

The same strategy runs in plain Python with ``NUMBA_DISABLE_JIT=1`` for debugging.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ._jit import ijit, jit_uncached
from .engine import (C_DELAYED, S_ENTRY_IDX, S_GROUP, S_MARK, S_PEND_DIR, S_POS, S_WAIT, check_pending_nb,
                     check_stops_nb, close_books_nb, has_stops_nb, process_signal_nb, track_bar_nb, tracking_nb)
from .records import FillMode, Intrabar, OrderType

BarContext = namedtuple("BarContext", ["open", "high", "low", "close", "position", "cash", "entries", "exits",
                                       "short_entries", "short_exits", "user", "touched", "exit_size"])


@ijit
def enter_long_nb(ctx, i, c):
    """Signal a long entry (or a reversal from short) for column ``c`` at bar ``i``."""
    ctx.entries[i, c] = True
    ctx.touched[i] = True


@ijit
def exit_long_nb(ctx, i, c):
    """Signal the exit of column ``c``'s long position (cancels a resting long entry)."""
    ctx.exits[i, c] = True
    ctx.touched[i] = True


@ijit
def reduce_long_nb(ctx, i, c, fraction):
    """Signal the exit of ``fraction`` (0 < fraction <= 1) of column ``c``'s long position: a
    partial close, with the rules of ``backtest(exit_size=...)`` (lot rounding, filters).

    The fraction holds for the column's signals of bar ``i`` (an ``exit_long_nb`` on the same
    bar does not make it a full exit). The exit helpers do not write ``ctx.exit_size``: a
    write there, in every strategy, made numba reference-count the context on every bar.
    """
    if not (fraction > 0.0 and fraction <= 1.0):
        raise ValueError("reduce_long_nb: fraction must be in (0, 1]")
    ctx.exits[i, c] = True
    ctx.exit_size[c] = fraction
    ctx.touched[i] = True


@ijit
def enter_short_nb(ctx, i, c):
    """Signal a short entry (or a reversal from long) for column ``c`` at bar ``i``."""
    ctx.short_entries[i, c] = True
    ctx.touched[i] = True


@ijit
def exit_short_nb(ctx, i, c):
    """Signal the exit of column ``c``'s short position (cancels a resting short entry)."""
    ctx.short_exits[i, c] = True
    ctx.touched[i] = True


@ijit
def reduce_short_nb(ctx, i, c, fraction):
    """Signal the exit of ``fraction`` (0 < fraction <= 1) of column ``c``'s short position."""
    if not (fraction > 0.0 and fraction <= 1.0):
        raise ValueError("reduce_short_nb: fraction must be in (0, 1]")
    ctx.short_exits[i, c] = True
    ctx.exit_size[c] = fraction
    ctx.touched[i] = True


@jit_uncached
def simulate_callback_nb(on_bar, user, open_, high, low, close, volume, entries, exits, short_entries, short_exits,
                         params, size_type, leverage, fill_mode, intrabar, order_type, order_price, tif,
                         touched, exit_frac, wait_frac, handed, start, st, acct, counts, orders, trades, cash_out,
                         equity_out):
    """Run bars ``start..`` until the end or until the record buffers might overflow.

    State (``st``, ``acct``, ``counts``, the fractions) lives in caller arrays so a run can
    resume with larger buffers. Exit fractions, ones ``(n_cols,)``: ``exit_frac`` is
    ``ctx.exit_size`` (each column's latest exit signal), ``wait_frac`` its copy for a signal
    that waits for a candle; ``handed`` ``(1, n_cols)`` is what the order handler reads.
    Returns the next bar to run (``n_bars`` when done).
    """
    n, m = close.shape
    use_range, use_volume = tracking_nb(params)
    track = use_range or use_volume
    optimistic = intrabar == Intrabar.OPTIMISTIC
    at_open = fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    prices = open_ if at_open else close
    ctx = BarContext(open_, high, low, close, st[S_POS], acct, entries, exits, short_entries, short_exits, user,
                     touched, exit_frac)
    n_wait = 0  # columns whose signals wait for their next candle (state survives a resumed run)
    for c in range(m):
        if st[S_WAIT, c] > 0.0:
            n_wait += 1
    for i in range(start, n):
        # worst case of one bar: 3 orders and 2 trades per column (+ the end-of-data records)
        if counts[0] + 4 * m > orders.shape[0] or counts[1] + 3 * m > trades.shape[0]:
            return i
        s = i - lag
        for phase in range(3):
            if phase == 1:
                for c in range(m):
                    cl = close[i, c]
                    if cl == cl:
                        ci = int(st[S_GROUP, c])
                        if st[S_PEND_DIR, c] != 0.0:
                            check_pending_nb(open_, high, low, i, c, st, acct, ci, counts, orders, trades, params,
                                             size_type, leverage, order_type, tif)
                        elif (st[S_POS, c] != 0.0 and has_stops_nb(params, c, False)
                              and (at_open or st[S_ENTRY_IDX, c] < i)):
                            check_stops_nb(open_, high, low, i, c, st, acct, ci, counts, orders, trades, params,
                                           optimistic)
                        st[S_MARK, c] = cl
                        if track:
                            track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
                on_bar(ctx, i)
                continue
            if (phase == 0) != at_open or s < 0 or not (touched[s] or n_wait > 0):
                continue
            for c in range(m):
                # an order due on a bar with no candle waits for the column's next candle; signals set
                # meanwhile (on bars with no candle) are ignored. Resting entry types: exits only wait.
                d = s
                if st[S_WAIT, c] > 0.0:
                    d = int(st[S_WAIT, c]) - 1
                elif not touched[s] or not (entries[s, c] or exits[s, c] or short_entries[s, c]
                                            or short_exits[s, c]):
                    continue
                if (prices[i, c] != prices[i, c] and i < n - 1
                        and (order_type == OrderType.MARKET or not (entries[d, c] or short_entries[d, c]))):
                    if st[S_WAIT, c] == 0.0:
                        st[S_WAIT, c] = d + 1.0
                        wait_frac[c] = exit_frac[c]  # later signals must not change it
                        exit_frac[c] = 1.0
                        n_wait += 1
                        counts[C_DELAYED] += 1  # delayed signals
                    continue
                if st[S_WAIT, c] > 0.0:
                    st[S_WAIT, c] = 0.0
                    n_wait -= 1
                    handed[0, c] = wait_frac[c]
                else:
                    handed[0, c] = exit_frac[c]
                    exit_frac[c] = 1.0  # consumed: the next exit closes all unless reduced again
                process_signal_nb(open_, close, at_open, i, c, entries, exits, short_entries, short_exits, True,
                                  st, acct, int(st[S_GROUP, c]), counts, orders, trades,
                                  params, size_type, leverage, order_type, order_price[d, c], np.nan, d,
                                  np.nan, np.nan, True, handed)
        acc = 0.0
        for c in range(m):
            acc += st[S_POS, c] * st[S_MARK, c]
        cash = 0.0
        for k in range(acct.shape[0]):
            cash += acct[k]
        cash_out[i] = cash
        equity_out[i] = cash + acc
    close_books_nb(close, st, counts, orders, trades, order_type)
    return n


_ = OrderType  # re-exported for strategies: ``OrderType.LIMIT``
