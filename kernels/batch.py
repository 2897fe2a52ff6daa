"""Several EMAs / SMAs of one series in a single pass: output ``(n_bars, n_spans)``.

The series is walked in time chunks of ``CHUNK`` bars; inside a chunk every span
is advanced, so the input is read from memory once and a chunk of the output
(C order: the k values of a bar are contiguous) stays in cache while it is
written. EMA spans are advanced eight at a time in scalar registers: one EMA
step is a chain of three dependent flops, so eight independent chains keep the
FPU busy in the time one TA-Lib EMA spends waiting on its single chain.
Callers pass distinct spans (the wrapper deduplicates, as vectorbt's
``ma_cache_nb``), each computed once.

EMA (TA-Lib's formula and order of operations): ``k = 2 / (span + 1)``,
``e = (x - e) * k + e`` (FMA-contracted like the TA-Lib wheel: bit-identical). ``seed_first=False`` (TA-Lib, ``seed="sma"``): the first
value is the mean of the first ``span`` values, at index ``first + span - 1``
where ``first`` is the first non-NaN bar (leading NaNs skipped as TA-Lib).
``seed_first=True`` (pandas ``ewm(span, adjust=False)``): ``e = x[first]``.
NaN policy: a NaN input bar gives a NaN output and leaves the state untouched
(the bar is skipped); the EMA resumes at the next valid bar, it is not poisoned.

SMA: mean of the last ``window`` bars, NaN unless all are non-NaN; equals
TA-Lib's SMA on NaN-free data (within rounding: sums are re-summed exactly
every ``resum_every(window)`` bars instead of drifting) and
``rolling(window).mean()`` everywhere.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, jit_fma, pjit

from .rolling import _blocks_have_inf, _has_nan, _inf_to_nan, _mean_steps, _resum, resum_every

#: Bars per time chunk (k outputs per bar stay in L1/L2 while written).
CHUNK = 2048
#: EMA spans advanced together in registers.
GROUP = 8


@jit_fma
def _ema_warmup(x, periods, alphas, seed_first, out, state):
    """Straightforward per-span pass until every span has its seed.

    Returns the first bar after the warm-up; ``state`` holds each span's EMA there
    (NaN if not seeded yet, which happens only when the data run out).
    """
    n = x.shape[0]
    k = periods.shape[0]
    need = 1
    if not seed_first:
        for j in range(k):
            need = max(need, periods[j])
    # end of warm-up: the bar holding the `need`-th valid value
    end = n
    seen = 0
    for t in range(n):
        if x[t] - x[t] == 0.0:
            seen += 1
            if seen == need:
                end = t + 1
                break
    for j in range(k):
        p = periods[j]
        a = alphas[j]
        cnt = 0
        total = 0.0
        e = np.nan
        for t in range(end):
            v = x[t]
            if v - v != 0.0:  # NaN or +-inf: skipped
                out[t, j] = np.nan
                continue
            cnt += 1
            if seed_first:
                e = v if cnt == 1 else (v - e) * a + e
                out[t, j] = e
            elif cnt < p:
                total += v
                out[t, j] = np.nan
            elif cnt == p:
                total += v
                e = total / p
                out[t, j] = e
            else:
                e = (v - e) * a + e
                out[t, j] = e
        state[j] = e
    return end


@jit_fma
def _ema_group(x, lo, hi, alphas, cols, state, out):
    # eight EMA chains in registers; padded groups repeat their last column
    a0, a1, a2, a3 = alphas[cols[0]], alphas[cols[1]], alphas[cols[2]], alphas[cols[3]]
    a4, a5, a6, a7 = alphas[cols[4]], alphas[cols[5]], alphas[cols[6]], alphas[cols[7]]
    e0, e1, e2, e3 = state[cols[0]], state[cols[1]], state[cols[2]], state[cols[3]]
    e4, e5, e6, e7 = state[cols[4]], state[cols[5]], state[cols[6]], state[cols[7]]
    c0, c1, c2, c3, c4, c5, c6, c7 = cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
    xs = x[lo:hi]
    o = out[lo:hi]
    if not _has_nan(x, lo, hi):
        # NaN-free chunk: no per-bar branch (it costs ~0.8 ns/bar)
        for i in range(hi - lo):
            v = xs[i]
            e0 = (v - e0) * a0 + e0
            e1 = (v - e1) * a1 + e1
            e2 = (v - e2) * a2 + e2
            e3 = (v - e3) * a3 + e3
            e4 = (v - e4) * a4 + e4
            e5 = (v - e5) * a5 + e5
            e6 = (v - e6) * a6 + e6
            e7 = (v - e7) * a7 + e7
            o[i, c0] = e0
            o[i, c1] = e1
            o[i, c2] = e2
            o[i, c3] = e3
            o[i, c4] = e4
            o[i, c5] = e5
            o[i, c6] = e6
            o[i, c7] = e7
        state[c0], state[c1], state[c2], state[c3] = e0, e1, e2, e3
        state[c4], state[c5], state[c6], state[c7] = e4, e5, e6, e7
        return
    for i in range(hi - lo):
        v = xs[i]
        if v - v == 0.0:  # finite (NaN and +-inf bars are skipped)
            e0 = (v - e0) * a0 + e0
            e1 = (v - e1) * a1 + e1
            e2 = (v - e2) * a2 + e2
            e3 = (v - e3) * a3 + e3
            e4 = (v - e4) * a4 + e4
            e5 = (v - e5) * a5 + e5
            e6 = (v - e6) * a6 + e6
            e7 = (v - e7) * a7 + e7
            o[i, c0] = e0
            o[i, c1] = e1
            o[i, c2] = e2
            o[i, c3] = e3
            o[i, c4] = e4
            o[i, c5] = e5
            o[i, c6] = e6
            o[i, c7] = e7
        else:
            o[i, c0] = np.nan
            o[i, c1] = np.nan
            o[i, c2] = np.nan
            o[i, c3] = np.nan
            o[i, c4] = np.nan
            o[i, c5] = np.nan
            o[i, c6] = np.nan
            o[i, c7] = np.nan
    state[c0], state[c1], state[c2], state[c3] = e0, e1, e2, e3
    state[c4], state[c5], state[c6], state[c7] = e4, e5, e6, e7


@jit_fma
def _ema_group4(x, lo, hi, alphas, cols, state, out):
    c0, c1, c2, c3 = cols[0], cols[1], cols[2], cols[3]
    a0, a1, a2, a3 = alphas[c0], alphas[c1], alphas[c2], alphas[c3]
    e0, e1, e2, e3 = state[c0], state[c1], state[c2], state[c3]
    xs = x[lo:hi]
    o = out[lo:hi]
    if not _has_nan(x, lo, hi):
        for i in range(hi - lo):
            v = xs[i]
            e0 = (v - e0) * a0 + e0
            e1 = (v - e1) * a1 + e1
            e2 = (v - e2) * a2 + e2
            e3 = (v - e3) * a3 + e3
            o[i, c0] = e0
            o[i, c1] = e1
            o[i, c2] = e2
            o[i, c3] = e3
        state[c0], state[c1], state[c2], state[c3] = e0, e1, e2, e3
        return
    for i in range(hi - lo):
        v = xs[i]
        if v - v == 0.0:  # finite (NaN and +-inf bars are skipped)
            e0 = (v - e0) * a0 + e0
            e1 = (v - e1) * a1 + e1
            e2 = (v - e2) * a2 + e2
            e3 = (v - e3) * a3 + e3
            o[i, c0] = e0
            o[i, c1] = e1
            o[i, c2] = e2
            o[i, c3] = e3
        else:
            o[i, c0] = np.nan
            o[i, c1] = np.nan
            o[i, c2] = np.nan
            o[i, c3] = np.nan
    state[c0], state[c1], state[c2], state[c3] = e0, e1, e2, e3


@jit_fma
def _ema_one(x, lo, hi, alphas, c0, state, out):
    a0 = alphas[c0]
    e0 = state[c0]
    xs = x[lo:hi]
    o = out[lo:hi, c0]
    if not _has_nan(x, lo, hi):
        for i in range(hi - lo):
            e0 = (xs[i] - e0) * a0 + e0
            o[i] = e0
        state[c0] = e0
        return
    for i in range(hi - lo):
        v = xs[i]
        if v - v == 0.0:  # finite (NaN and +-inf bars are skipped)
            e0 = (v - e0) * a0 + e0
            o[i] = e0
        else:
            o[i] = np.nan
    state[c0] = e0


@jit
def ema_many_1d_nb(x, periods, seed_first, out):
    """EMAs of ``x`` for several distinct spans ``periods`` (int64) into ``out`` of shape ``(n, k)``.

    Column ``j`` equals ``talib.EMA(x, periods[j])`` (``seed_first=False``) or
    ``pd.Series(x).ewm(span=periods[j], adjust=False).mean()`` (``seed_first=True``)
    on NaN-free input. Value ``t`` uses bars up to ``t``.
    """
    n = x.shape[0]
    k = periods.shape[0]
    if n == 0 or k == 0:
        return out
    alphas = np.empty(k, dtype=np.float64)
    for j in range(k):
        alphas[j] = 2.0 / (periods[j] + 1)
    state = np.empty(k, dtype=np.float64)
    start = _ema_warmup(x, periods, alphas, seed_first, out, state)
    cols = np.empty(GROUP, dtype=np.int64)
    lo = start
    while lo < n:
        hi = min(n, lo + CHUNK)
        j = np.int64(0)  # not a literal 0: _ema_one would compile twice (numba's first typing pass)
        while j < k:
            left = k - j
            if left == 1:
                _ema_one(x, lo, hi, alphas, j, state, out)
                j += 1
            elif left <= 4:
                for q in range(4):
                    cols[q] = min(j + q, k - 1)
                _ema_group4(x, lo, hi, alphas, cols, state, out)
                j += 4
            else:
                for q in range(GROUP):
                    cols[q] = min(j + q, k - 1)
                _ema_group(x, lo, hi, alphas, cols, state, out)
                j += GROUP
        lo = hi
    return out


@jit
def _sma_group(x, lo, hi, windows, cols, sums, anchors, out):
    # NaN-free chunk, every window full: eight running sums advanced per bar, the
    # k outputs of a bar written side by side; padded groups repeat their last column
    c0, c1, c2, c3, c4, c5, c6, c7 = cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], cols[7]
    w0, w1, w2, w3 = windows[c0], windows[c1], windows[c2], windows[c3]
    w4, w5, w6, w7 = windows[c4], windows[c5], windows[c6], windows[c7]
    s0, s1, s2, s3 = sums[c0], sums[c1], sums[c2], sums[c3]
    s4, s5, s6, s7 = sums[c4], sums[c5], sums[c6], sums[c7]
    k0, k1, k2, k3 = anchors[c0], anchors[c1], anchors[c2], anchors[c3]
    k4, k5, k6, k7 = anchors[c4], anchors[c5], anchors[c6], anchors[c7]
    i0, i1, i2, i3, i4, i5, i6, i7 = 1.0 / w0, 1.0 / w1, 1.0 / w2, 1.0 / w3, 1.0 / w4, 1.0 / w5, 1.0 / w6, 1.0 / w7
    xs = x[lo:hi]
    x0, x1, x2, x3 = x[lo - w0:hi - w0], x[lo - w1:hi - w1], x[lo - w2:hi - w2], x[lo - w3:hi - w3]
    x4, x5, x6, x7 = x[lo - w4:hi - w4], x[lo - w5:hi - w5], x[lo - w6:hi - w6], x[lo - w7:hi - w7]
    o = out[lo:hi]
    for i in range(hi - lo):
        v = xs[i]
        s0 += v - x0[i]
        s1 += v - x1[i]
        s2 += v - x2[i]
        s3 += v - x3[i]
        s4 += v - x4[i]
        s5 += v - x5[i]
        s6 += v - x6[i]
        s7 += v - x7[i]
        o[i, c0] = s0 * i0 + k0
        o[i, c1] = s1 * i1 + k1
        o[i, c2] = s2 * i2 + k2
        o[i, c3] = s3 * i3 + k3
        o[i, c4] = s4 * i4 + k4
        o[i, c5] = s5 * i5 + k5
        o[i, c6] = s6 * i6 + k6
        o[i, c7] = s7 * i7 + k7
    sums[c0], sums[c1], sums[c2], sums[c3] = s0, s1, s2, s3
    sums[c4], sums[c5], sums[c6], sums[c7] = s4, s5, s6, s7


@jit
def sma_many_1d_nb(x, windows, out):
    """Simple moving averages of ``x`` for several distinct ``windows`` (int64) into ``out`` ``(n, k)``.

    Column ``j`` equals ``talib.SMA(x, windows[j])`` and
    ``pd.Series(x).rolling(windows[j]).mean()`` (NaN unless the whole window is
    non-NaN). Value ``t`` uses bars up to ``t``. Running sums around an anchor,
    re-summed exactly every ``resum_every(window)`` bars (as ``rolling_mean``).
    """
    # +-inf bars are missing values here (every window holding one is NaN, as pandas)
    if not _sma_many_impl(x, windows, out):
        _sma_many_impl(_inf_to_nan(x), windows, out)
    return out


@jit
def _sma_many_impl(x, windows, out):
    n = x.shape[0]
    k = windows.shape[0]
    if k == 0:
        return True
    sums = np.zeros(k, dtype=np.float64)
    anchors = np.zeros(k, dtype=np.float64)
    cnts = np.zeros(k, dtype=np.int64)
    last = np.zeros(k, dtype=np.int64)
    wmax = np.int64(0)
    for j in range(k):
        wmax = max(wmax, windows[j])
    cols = np.empty(GROUP, dtype=np.int64)
    lo = np.int64(0)
    while lo < n:
        hi = min(n, lo + CHUNK)
        if _blocks_have_inf(x, max(0, lo - wmax), hi):
            return False
        if lo > wmax and not _has_nan(x, lo - wmax, hi):
            # fast path: all windows full and NaN-free over the chunk (counts == windows)
            for j in range(k):
                w = windows[j]
                if lo - last[j] >= resum_every(w):
                    sums[j], cnts[j], anchors[j] = _resum(x, lo - w, lo)
                    last[j] = lo
            for g in range(0, k, GROUP):
                for q in range(GROUP):
                    cols[q] = min(g + q, k - 1)
                _sma_group(x, lo, hi, windows, cols, sums, anchors, out)
            lo = hi
            continue
        for j in range(k):
            w = windows[j]
            col = out.T[j]
            s = sums[j]
            cnt = cnts[j]
            t = lo
            # warm-up bars of this window: add only
            while t < hi and t < w:
                if x[t] == x[t]:
                    s += x[t]
                    cnt += 1
                col[t] = s / w if cnt == w else np.nan
                t += 1
            if t < hi:
                if t == w or t - last[j] >= resum_every(w):
                    s, cnt, anchors[j] = _resum(x, t - w, t)
                    last[j] = t
                s, cnt = _mean_steps(x, w, w, t, hi, s, cnt, anchors[j], col)
            sums[j] = s
            cnts[j] = cnt
        lo = hi
    return True


@pjit
def ema_many_nb(x, periods, seed_first, out):
    """:func:`ema_many_1d_nb` for each column of ``x`` ``(n, m)``; ``out`` is ``(n, m, k)``."""
    for c in prange(x.shape[1]):
        ema_many_1d_nb(x.T[c], periods, seed_first, out[:, c, :])
    return out


@pjit
def sma_many_nb(x, windows, out):
    """:func:`sma_many_1d_nb` for each column of ``x`` ``(n, m)``; ``out`` is ``(n, m, k)``."""
    for c in prange(x.shape[1]):
        sma_many_1d_nb(x.T[c], windows, out[:, c, :])
    return out
