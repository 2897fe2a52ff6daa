"""One-pass input checks of the engine's price and signal arrays (fused, so validation stays cheap).

The Python layer turns the codes returned here into errors naming the argument.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, pjit

#: Codes of ``check_ohlc_nb``: first problem found, scanning bars in time order.
OK, NOT_FINITE, NOT_POSITIVE, INCONSISTENT = 0, 1, 2, 3


#: Rows scanned per block by the fast pass; a block with a problem is scanned again, in order.
ROWS = 64


@jit
def _ohlc_first_nb(open_, high, low, close, start, stop):
    """The first problem of bars ``start..stop`` in time order (the slow, exact scan)."""
    m = close.shape[1]
    for i in range(start, stop):
        for j in range(m):
            o = open_[i, j]
            h = high[i, j]
            lo = low[i, j]
            c = close[i, j]
            if o != o or h != h or lo != lo or c != c:
                continue
            if not (abs(o) < np.inf and abs(h) < np.inf and abs(lo) < np.inf and abs(c) < np.inf):
                return NOT_FINITE, i, j, 0
            if o <= 0.0 or h <= 0.0 or lo <= 0.0 or c <= 0.0:
                field = 0 if o <= 0.0 else (1 if h <= 0.0 else (2 if lo <= 0.0 else 3))
                return NOT_POSITIVE, i, j, field
            if h < lo or o > h or o < lo or c > h or c < lo:
                return INCONSISTENT, i, j, 0
    return OK, -1, -1, 0


@jit
def check_ohlc_nb(open_, high, low, close, start=0, stop=-1):
    """Scan candles ``(n_bars, n_cols)`` (bars ``start..stop``, ``-1``: to the end); returns
    ``(code, i, j, field, n_missing, n_partial)``.

    A candle is missing when all four prices are NaN, partial when only some are
    (``n_partial`` of them; the caller blanks those). Checks complete candles:
    finite (``NOT_FINITE``), > 0 (``NOT_POSITIVE``, ``field`` 0..3 = open, high,
    low, close), ``low <= open, close <= high`` (``INCONSISTENT``). The counts are
    meaningful only when the code is ``OK``.

    Branch-free over blocks of ``ROWS`` bars (the compiler vectorises it: ~6x the exact scan),
    which runs only on a block with a problem to find the first one.
    """
    n, m = close.shape
    stop = n if stop < 0 else stop
    n_missing = 0
    n_partial = 0
    for b0 in range(start, stop, ROWS):
        b1 = min(b0 + ROWS, stop)
        bad = 0
        for i in range(b0, b1):
            for j in range(m):
                o = open_[i, j]
                h = high[i, j]
                lo = low[i, j]
                c = close[i, j]
                nans = np.int64(o != o) + np.int64(h != h) + np.int64(lo != lo) + np.int64(c != c)
                n_missing += np.int64(nans > 0)
                n_partial += np.int64(nans > 0) & np.int64(nans < 4)
                # NaN compares false: only complete candles can be flagged here
                bad += (np.int64(o <= 0.0) | np.int64(h <= 0.0) | np.int64(lo <= 0.0) | np.int64(c <= 0.0)
                        | np.int64(h == np.inf) | np.int64(o == np.inf) | np.int64(lo == np.inf)
                        | np.int64(c == np.inf) | np.int64(h < lo) | np.int64(o > h) | np.int64(o < lo)
                        | np.int64(c > h) | np.int64(c < lo)) & np.int64(nans == 0)
        if bad:
            code, i, j, field = _ohlc_first_nb(open_, high, low, close, b0, b1)
            if code != OK:
                return code, i, j, field, n_missing, n_partial
    return OK, -1, -1, 0, n_missing, n_partial


@jit
def _close_first_nb(close, start, stop):
    m = close.shape[1]
    for i in range(start, stop):
        for j in range(m):
            c = close[i, j]
            if c != c:
                continue
            if not c < np.inf:
                return NOT_FINITE, i, j, 3
            if c <= 0.0:
                return NOT_POSITIVE, i, j, 3
    return OK, -1, -1, 0


@jit
def check_close_nb(close, start=0, stop=-1):
    """Scan close prices only (for close-only data); same arguments and return layout as ``check_ohlc_nb``."""
    n, m = close.shape
    stop = n if stop < 0 else stop
    n_missing = 0
    for b0 in range(start, stop, ROWS):
        b1 = min(b0 + ROWS, stop)
        bad = 0
        for i in range(b0, b1):
            for j in range(m):
                c = close[i, j]
                n_missing += np.int64(c != c)
                bad += np.int64(c <= 0.0) | np.int64(c == np.inf)
        if bad:
            code, i, j, field = _close_first_nb(close, b0, b1)
            if code != OK:
                return code, i, j, field, n_missing, 0
    return OK, -1, -1, 0, n_missing, 0


@pjit
def check_blocks_nb(open_, high, low, close, close_only, out):
    """``check_ohlc_nb`` (or ``check_close_nb``) over ``out.shape[0]`` blocks of bars in parallel.

    Row ``b`` of ``out`` ``(n_blocks, 6)`` gets block ``b``'s result: the first block with a
    problem holds the first problem in time order; the counts add up over blocks. Memory
    bound: two cores scan ~1.6x faster than one.
    """
    n = close.shape[0]
    k = out.shape[0]
    for b in prange(k):
        start = b * n // k
        stop = (b + 1) * n // k
        if close_only:
            res = check_close_nb(close, start, stop)
        else:
            res = check_ohlc_nb(open_, high, low, close, start, stop)
        for f in range(6):
            out[b, f] = res[f]
    return out


@jit
def signal_stats_nb(entries, exits, short_entries, short_exits, has_short, close, counts):
    """Count the True signals of each array into ``counts[4]`` in one pass (short arrays only
    when ``has_short``) and find signals on missing bars (NaN close).

    Returns ``(n_bad, k, i, j)``: how many signals sit on missing bars and the first one
    (array ``k`` = 0..3, bar ``i``, column ``j``), or ``(0, -1, -1, -1)``.
    """
    n, m = close.shape
    n_bad = 0
    first_k = -1
    first_i = -1
    first_j = -1
    c0 = 0
    c1 = 0
    c2 = 0
    c3 = 0
    for i in range(n):
        for j in range(m):
            a = entries[i, j]
            b = exits[i, j]
            e = False
            f = False
            if has_short:
                e = short_entries[i, j]
                f = short_exits[i, j]
            c0 += a
            c1 += b
            c2 += e
            c3 += f
            if a or b or e or f:
                if close[i, j] != close[i, j]:
                    if n_bad == 0:
                        first_k = 0 if a else (1 if b else (2 if e else 3))
                        first_i = i
                        first_j = j
                    n_bad += 1
    counts[0] = c0
    counts[1] = c1
    counts[2] = c2
    counts[3] = c3
    return n_bad, first_k, first_i, first_j


@jit
def first_below_nb(high, low):
    """First position ``i`` of two aligned 1-D arrays where ``high[i] < low[i]``, or ``-1``.

    Pairs with a NaN or +-inf never count (a missing bar is not an inconsistent one).
    Used by indicators that take both high and low (ATR, ADX, STOCH, TRANGE) to
    catch swapped arguments: one memory-bound pass, no temporary arrays.
    """
    for i in range(high.shape[0]):
        h = high[i]
        lo = low[i]
        if h < lo and (h - h) + (lo - lo) == 0.0:
            return i
    return -1
