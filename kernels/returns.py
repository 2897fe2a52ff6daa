"""Simple and log returns over ``n`` bars.

``out[t] = x[t] / x[t - n] - 1`` (simple) or ``log(x[t] / x[t - n])`` (log); the
first ``n`` values are NaN; a NaN or +-inf (missing, as in every indicator) on
either side gives NaN; a zero base price gives NaN (a return from a zero price is undefined; pandas would give inf).
Output ``t`` uses bars ``t - n`` and ``t`` only.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, pjit


@jit
def ret_1d_nb(x, n, log, out):
    """n-period simple (``log=False``) or log returns; equals ``s.pct_change(n, fill_method=None)``
    or ``np.log(s / s.shift(n))`` except that a zero base gives NaN."""
    m = x.shape[0]
    for t in range(min(n, m)):
        out[t] = np.nan
    if m <= n:
        return out
    cur = x[n:]
    base = x[:m - n]
    o = out[n:]
    if log:
        for i in range(m - n):
            b = base[i]
            r = np.log(cur[i] / b)
            o[i] = r if (b != 0.0 and (b - b) + (cur[i] - cur[i]) == 0.0) else np.nan
    else:
        for i in range(m - n):
            b = base[i]
            r = cur[i] / b - 1.0
            o[i] = r if (b != 0.0 and (b - b) + (cur[i] - cur[i]) == 0.0) else np.nan
    return out


@pjit
def ret_nb(x, n, log, out):
    """Column-wise :func:`ret_1d_nb` over ``(n_bars, n_cols)``."""
    for j in prange(x.shape[1]):
        ret_1d_nb(x.T[j], n, log, out.T[j])
    return out
