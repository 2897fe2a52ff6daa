"""Moving averages with TA-Lib's conventions: SMA, EMA, WMA, DEMA, TEMA, KAMA.

Contract (see ``kernels/__init__.py``): time on axis 0; ``*_1d_nb`` take
``(n,)`` float64 arrays, ``*_nb`` take ``(n, n_cols)`` arrays and run the
columns in parallel (``prange``), each a plain walk of its ``_1d`` twin; results
go into a caller-supplied ``out``. Any layout works, but a column walk wants
Fortran order (what DataFrames give): on a row-major array every value is on
its own cache line, so the Python layer copies such input to Fortran order
first (measured 5-10x faster than walking it strided).

NaN policy, shared by every kernel here and in ``oscillators.py``: a missing
input (NaN, and +-inf alike: see :func:`is_missing`) *restarts* the indicator. The output is NaN at the NaN bar and through a fresh
warm-up after it, exactly as if the series began right after the NaN. Leading
NaNs are therefore skipped like TA-Lib does, and an inner NaN never poisons the
rest of the series. For windowed indicators this is the same as "NaN while the
NaN is inside the window".

Every kernel is one pass over the data; recursive cascades (DEMA, TEMA) keep
their intermediate EMAs in registers instead of arrays.
"""
from __future__ import annotations

import numpy as np
from numba import prange, types
from numba.extending import intrinsic

from ._jit import jit, pjit

NAN = np.nan


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (IEEE fused multiply-add, ``llvm.fma``).

    Correctly rounded by definition, so results do not depend on the CPU; one
    hardware instruction where FMA exists (x86-64 since 2013), a libm call
    elsewhere. Recursions written ``fma(prev, decay, new * k)``
    carry a 4-cycle dependency chain instead of TA-Lib's sub-mul-add.
    """
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@jit
def is_missing(v):
    """True for NaN and +-inf: the values every indicator treats as missing (``v - v`` is NaN for both).

    One policy for all non-finite input, the one pandas' rolling and :mod:`.rolling`
    follow: an inf bar restarts the indicator like a NaN bar. Treating inf as a
    price would poison every later value of a recursion (an EMA stays inf forever)
    while a NaN only restarts it. One subtraction and one compare, as cheap as ``is_missing(v)``.
    """
    return v - v != 0.0


@jit
def copy_1d_nb(x, out):
    """``out[:] = x``, missing values (+-inf) as NaN: the period-1 case of WMA and KAMA (TA-Lib returns the input)."""
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = NAN if is_missing(v) else v
    return out


# --------------------------------------------------------------------- SMA
@jit
def sma_1d_nb(x, timeperiod, out):
    """Simple moving average: ``mean(x[t-timeperiod+1 : t+1])``; TA-Lib ``SMA``.

    Warm-up ``timeperiod - 1`` NaNs (after the first valid bar). Equals
    ``pd.Series(x).rolling(timeperiod).mean()`` on NaN-free input.
    """
    n = x.shape[0]
    p = timeperiod
    inv = 1.0 / p
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        total = 0.0
        while i < n and i < start + p - 1:
            v = x[i]
            if is_missing(v):
                break
            total += v
            out[i] = NAN
            i += 1
        if i < start + p - 1:
            continue
        # first full window, then add the new bar and drop the oldest in one step
        if i < n:
            v = x[i]
            if is_missing(v):
                continue
            total += v
            out[i] = total * inv
            i += 1
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            total += v - x[i - p]
            out[i] = total * inv
            i += 1
    return out


@pjit
def sma_nb(x, timeperiod, out):
    """2-D :func:`sma_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        sma_1d_nb(x[:, j], timeperiod, out[:, j])
    return out


# --------------------------------------------------------------------- EMA
@jit
def ema_1d_nb(x, timeperiod, seed_first, out):
    """Exponential moving average, ``k = 2 / (timeperiod + 1)``; TA-Lib ``EMA``.

    ``e_t = e_{t-1} + k * (x_t - e_{t-1})``. With ``seed_first=False`` (TA-Lib)
    the first value is the SMA of the first ``timeperiod`` bars (warm-up
    ``timeperiod - 1``); with ``seed_first=True`` it is the first bar (warm-up 0),
    which equals pandas ``ewm(span=timeperiod, adjust=False).mean()``.
    """
    n = x.shape[0]
    p = timeperiod
    k = 2.0 / (p + 1)
    c = 1.0 - k
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        if seed_first:
            m = x[i]
            out[i] = m
            i += 1
        else:
            total = 0.0
            while i < n and i < start + p:
                v = x[i]
                if is_missing(v):
                    break
                total += v
                out[i] = NAN
                i += 1
            if i < start + p:
                continue
            m = total / p
            out[i - 1] = m
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            m = fma(m, c, v * k)
            out[i] = m
            i += 1
    return out


@pjit
def ema_nb(x, timeperiod, seed_first, out):
    """2-D :func:`ema_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        ema_1d_nb(x[:, j], timeperiod, seed_first, out[:, j])
    return out


# --------------------------------------------------------------------- WMA
@jit
def wma_1d_nb(x, timeperiod, out):
    """Linearly weighted moving average (weights 1..timeperiod, newest heaviest); TA-Lib ``WMA``.

    O(1) per bar: keeps the weighted sum and the plain window sum. Warm-up
    ``timeperiod - 1``.
    """
    n = x.shape[0]
    p = timeperiod
    if p == 1:
        return copy_1d_nb(x, out)
    inv = 2.0 / (p * (p + 1.0))
    resum = 16 * p
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        wsum = 0.0
        psum = 0.0
        while i < n and i < start + p - 1:
            v = x[i]
            if is_missing(v):
                break
            psum += v
            wsum += v * (i - start + 1)
            out[i] = NAN
            i += 1
        if i < start + p - 1:
            continue
        # wsum_t = wsum_{t-1} + p*x_t - psum_{t-1}; psum_t = psum_{t-1} + x_t - x_{t-p}
        if i < n:
            v = x[i]
            if is_missing(v):
                continue
            psum += v
            wsum += v * p
            out[i] = wsum * inv
            i += 1
        # wsum integrates psum's rounding error (drift grows like n**1.5), so both
        # are recomputed exactly after every block of `resum` bars
        while i < n:
            stop = min(n, i + resum)
            while i < stop:
                v = x[i]
                if is_missing(v):
                    break
                wsum += v * p - psum
                psum += v - x[i - p]
                out[i] = wsum * inv
                i += 1
            if i < stop or i >= n:
                break
            wsum = 0.0
            psum = 0.0
            for j in range(p):
                xj = x[i - p + j]
                psum += xj
                wsum += xj * (j + 1)
    return out


@pjit
def wma_nb(x, timeperiod, out):
    """2-D :func:`wma_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        wma_1d_nb(x[:, j], timeperiod, out[:, j])
    return out


# ------------------------------------------------------------- DEMA / TEMA
@jit
def _ema_cascade_1d_nb(x, timeperiod, order, out):
    """EMA of EMA (of EMA), each stage seeded with the SMA of its first
    ``timeperiod`` inputs as TA-Lib's DEMA/TEMA; writes DEMA (order 2) or TEMA (3).
    """
    n = x.shape[0]
    p = timeperiod
    k = 2.0 / (p + 1)
    c = 1.0 - k
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        e1 = 0.0
        e2 = 0.0
        e3 = 0.0
        ready = False
        # warm-up: stage s becomes valid s*(p-1) bars after the start
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            r = i - start
            if r < p:
                s1 += v
                if r == p - 1:
                    e1 = s1 / p
            else:
                e1 = (v - e1) * k + e1
            if r >= p - 1:
                r2 = r - (p - 1)
                if r2 < p:
                    s2 += e1
                    if r2 == p - 1:
                        e2 = s2 / p
                else:
                    e2 = (e1 - e2) * k + e2
                if order == 2:
                    ready = r2 >= p - 1
                elif r2 >= p - 1:
                    r3 = r2 - (p - 1)
                    if r3 < p:
                        s3 += e2
                        if r3 == p - 1:
                            e3 = s3 / p
                    else:
                        e3 = (e2 - e3) * k + e3
                    ready = r3 >= p - 1
            i += 1
            if ready:
                if order == 2:
                    out[i - 1] = 2.0 * e1 - e2
                else:
                    out[i - 1] = e3 + (3.0 * e1 - 3.0 * e2)
                break
            out[i - 1] = NAN
        if not ready:
            continue
        if order == 2:
            while i < n:
                v = x[i]
                if is_missing(v):
                    break
                e1 = fma(e1, c, v * k)
                e2 = fma(e2, c, e1 * k)
                out[i] = 2.0 * e1 - e2
                i += 1
        else:
            while i < n:
                v = x[i]
                if is_missing(v):
                    break
                e1 = fma(e1, c, v * k)
                e2 = fma(e2, c, e1 * k)
                e3 = fma(e3, c, e2 * k)
                out[i] = e3 + (3.0 * e1 - 3.0 * e2)
                i += 1
    return out


@jit
def dema_1d_nb(x, timeperiod, out):
    """Double EMA ``2*EMA(x) - EMA(EMA(x))``; TA-Lib ``DEMA``. Warm-up ``2*(timeperiod-1)``."""
    return _ema_cascade_1d_nb(x, timeperiod, 2, out)


@jit
def tema_1d_nb(x, timeperiod, out):
    """Triple EMA ``3*e1 - 3*e2 + e3``; TA-Lib ``TEMA``. Warm-up ``3*(timeperiod-1)``."""
    return _ema_cascade_1d_nb(x, timeperiod, 3, out)


@pjit
def dema_nb(x, timeperiod, out):
    """2-D :func:`dema_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        _ema_cascade_1d_nb(x[:, j], timeperiod, 2, out[:, j])
    return out


@pjit
def tema_nb(x, timeperiod, out):
    """2-D :func:`tema_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        _ema_cascade_1d_nb(x[:, j], timeperiod, 3, out[:, j])
    return out


# --------------------------------------------------------------------- KAMA
@jit
def _kama_step(kama, v, change, path, flat, const_diff, const_max):
    # er = |change| / path, 1 for a flat window; TA-Lib's "path <= change -> 1" is
    # the same as clipping at 1 (|change| <= path up to rounding)
    if flat:
        er = 1.0
    else:
        r = abs(change) / path
        er = 1.0 if r > 1.0 else r
    sc = er * const_diff + const_max
    sc *= sc
    return fma(kama, 1.0 - sc, v * sc)


@jit
def kama_1d_nb(x, timeperiod, out):
    """Kaufman adaptive moving average; TA-Lib ``KAMA`` (fast 2, slow 30).

    ``er = |x_t - x_{t-p}| / sum(|x_i - x_{i-1}|, p)`` (1 when the path length is 0
    or not larger than the net change), ``sc = (er*(2/3 - 2/31) + 2/31)**2``,
    ``kama_t = kama_{t-1} + sc * (x_t - kama_{t-1})``, seeded with ``x_{p-1}``.
    Warm-up ``timeperiod``. A flat window counts as path 0 exactly (tracking the
    last non-zero step guards the running sum against rounding residue).
    """
    n = x.shape[0]
    p = timeperiod
    if p == 1:
        return copy_1d_nb(x, out)
    const_max = 2.0 / (30.0 + 1.0)
    const_diff = 2.0 / (2.0 + 1.0) - const_max
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        out[i] = NAN
        i += 1
        path = 0.0
        last_move = start - p  # bar of the latest non-zero change
        while i < n and i < start + p:
            v = x[i]
            if is_missing(v):
                break
            d = abs(v - x[i - 1])
            path += d
            if d != 0.0:
                last_move = i
            out[i] = NAN
            i += 1
        if i < start + p or i >= n:
            continue
        kama = x[i - 1]
        prev = kama
        # first output bar: the path of the first window is complete, only add
        v = x[i]
        if is_missing(v):
            continue
        d = abs(v - prev)
        path += d
        if d != 0.0:
            last_move = i
        old = x[i - p]  # x[t-p] of this bar is x[t-p-1] of the next
        kama = _kama_step(kama, v, v - old, path, last_move <= i - p, const_diff, const_max)
        out[i] = kama
        prev = v
        i += 1
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            d = abs(v - prev)
            new_old = x[i - p]
            path += d - abs(new_old - old)
            old = new_old
            if d != 0.0:
                last_move = i
            # a flat window must give er = 1 whatever rounding residue the running
            # path keeps (the residue is harmless once the window moves again)
            kama = _kama_step(kama, v, v - old, path, last_move <= i - p, const_diff, const_max)
            out[i] = kama
            prev = v
            i += 1
    return out


@pjit
def kama_nb(x, timeperiod, out):
    """2-D :func:`kama_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        kama_1d_nb(x[:, j], timeperiod, out[:, j])
    return out
