"""Kernels behind ``nbtrade.synthetic``: GARCH(1,1) returns and OHLC construction."""
from __future__ import annotations

import numpy as np

from ._jit import jit


@jit
def garch_returns_1d_nb(z, jumps, omega, alpha, beta, var0, out):
    """Log returns of a GARCH(1,1) walk: ``r_t = sigma_t * z_t + jumps_t``.

    ``var_t = omega + alpha * r_{t-1}**2 + beta * var_{t-1}``, starting at ``var0``.
    Jumps enter the variance recursion, so volatility clusters after them.
    """
    var = var0
    prev = 0.0
    for t in range(z.shape[0]):
        if t > 0:
            var = omega + alpha * prev * prev + beta * var
        r = np.sqrt(var) * z[t] + jumps[t]
        out[t] = r
        prev = r
    return out


@jit
def ohlc_from_returns_1d_nb(start_price, log_ret, wick_up, wick_dn, open_gap, out_open, out_high, out_low, out_close):
    """Build consistent OHLC bars from close-to-close log returns and non-negative wick sizes.

    close_t = close_{t-1} * exp(r_t); open_t = close_{t-1} * exp(open_gap_t);
    high = max(open, close) * exp(wick_up); low = min(open, close) * exp(-wick_dn).
    """
    close = start_price
    for t in range(log_ret.shape[0]):
        o = close * np.exp(open_gap[t])
        c = close * np.exp(log_ret[t])
        hi = o if o > c else c
        lo = o if o < c else c
        out_open[t] = o
        out_close[t] = c
        out_high[t] = hi * np.exp(wick_up[t])
        out_low[t] = lo * np.exp(-wick_dn[t])
        close = c
