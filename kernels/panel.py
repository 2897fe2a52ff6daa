"""Building the market panel: columns stacked per symbol into the engine's bars x symbols layout.

Checks reuse ``checks.check_close_nb`` on each block just written, while it is still in cache.
"""
from __future__ import annotations

from numba import prange

from ._jit import pjit
from .checks import check_close_nb


@pjit
def transpose_check_nb(src, out, check_close, res):
    """``out[i, j] = src[j, i]``: ``(n_symbols, n_bars)`` columns into a C-contiguous ``(n_bars, n_symbols)``
    array, in ``res.shape[0]`` blocks of bars in parallel; with ``check_close`` each block is then
    scanned by ``check_close_nb`` and row ``b`` of ``res`` ``(n_blocks, 6)`` gets its result (the
    first block with a problem holds the first problem in time order; counts add up over blocks).

    Reads walk the symbols' rows side by side and writes stay contiguous: measured ~1.2x faster than
    numpy's transposing copy followed by a separate parallel check (20 x 200k, shared 2-core VM).
    """
    m, n = src.shape
    k = res.shape[0]
    for b in prange(k):
        start = b * n // k
        stop = (b + 1) * n // k
        for i in range(start, stop):
            for j in range(m):
                out[i, j] = src[j, i]
        if check_close:
            r = check_close_nb(out, start, stop)
            for f in range(6):
                res[b, f] = r[f]
    return res
