"""Rolling-window statistics, O(1) per bar: sum, mean, var/std, z-score, min/max,
correlation/beta of two series, VWAP.

Contract (shared with every kernel module, see ``kernels/__init__.py``): time on
axis 0; ``*_1d_nb`` take ``(n,)`` arrays, ``*_nb`` take ``(n, k)`` arrays and run
columns in parallel; results go to a caller-supplied ``out``.

Window semantics are pandas' ``x.rolling(window, min_periods=minp)``: the window
ending at ``t`` covers ``x[t - window + 1 : t + 1]``; NaNs inside it are skipped
and the value is NaN unless at least ``minp`` non-NaN values remain
(``1 <= minp <= window``; wrappers default ``minp`` to ``window``). Output ``t``
uses bars up to ``t`` only.

Numerics. Window sums are running totals of ``x - K`` around an anchor ``K``,
updated by ``new - old`` (one rounding per bar, about bottleneck's cost), and
re-summed exactly (compensated) from the window every
``resum_every(window) = max(4096, 32 * window)`` bars, with ``K`` reset to the
window mean. So rounding error is bounded, does not grow with the series length
(bottleneck and TA-Lib keep one running total for the whole series and drift)
and scales with the spread of the data, not its level. Second moments are sums
of ``(x - K)`` and ``(x - K)**2``; their anchor also moves when the mean wanders far from ``K`` (when the
cancellation in ``S2 - S1**2 / n`` would cost more than ~4 digits; at most once
per ``window`` bars). So 1e9 + noise, or a price that doubles over 10M bars, is
as exact as a two-pass computation on each window. Windows whose non-NaN values
are all identical have variance exactly 0 (as pandas).
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import ijit, jit, pjit

#: A zero typed int64, not a literal: helpers called with a literal ``0`` (or with loop counters
#: still typed as their literal start value in numba's first typing pass) compile a second
#: specialization each, ~0.1-0.4 s apiece on a cold cache.
_ZERO = np.int64(0)

#: Re-anchor second moments when S2 / (S2 - S1^2/n) exceeds this (digits lost ~ log10).
_REANCHOR_RATIO = 1e4


# --------------------------------------------------------------------------- sum / mean


@jit
def _first_valid(x):
    for t in range(x.shape[0]):
        if x[t] == x[t]:
            return x[t]
    return 0.0


@jit
def resum_every(window):
    """Bars between exact re-summations of a running window sum."""
    return max(4096, 32 * window)


@jit
def _window_sum(x, lo, hi, k):
    # compensated (TwoSum) sum of x - k and count over the non-NaN values of x[lo:hi]
    s = 0.0
    c = 0.0
    cnt = np.int64(0)
    for i in range(lo, hi):
        v = x[i]
        if v == v:
            v -= k
            tt = s + v
            z = tt - s
            c += (s - (tt - z)) + (v - z)
            s = tt
            cnt += 1
    return s + c, cnt


@jit
def _has_nan(x, lo, hi):
    # branch-free (vectorizable) scan for NaN or +-inf (v - v is NaN for both):
    # picks the all-finite fast loops per block, on data already in cache
    v = x[lo:hi]
    acc = False
    for i in range(hi - lo):
        acc |= (v[i] - v[i]) != 0.0
    return acc


@jit
def _has_inf(x, lo, hi):
    v = x[lo:hi]
    acc = False
    for i in range(hi - lo):
        acc |= np.abs(v[i]) == np.inf
    return acc


@jit
def _blocks_have_inf(x, lo, hi):
    # only blocks that are not all finite are searched for +-inf
    return _has_nan(x, lo, hi) and _has_inf(x, lo, hi)


@jit
def _inf_to_nan(x):
    clean = x.copy()
    for i in range(clean.shape[0]):
        if np.abs(clean[i]) == np.inf:
            clean[i] = np.nan
    return clean


@jit
def _sum_steps_nonan(x, window, lo, hi, s, k, out):
    # x[lo - window:hi] holds no NaN: count == window throughout, no branches.
    # Two bars per step: the running sum advances by (d0 + d1), halving the
    # loop-carried add chain that bounds this loop.
    base = window * k
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    m = hi - lo
    for i in range(0, m - 1, 2):
        d0 = xs[i] - olds[i]
        d1 = xs[i + 1] - olds[i + 1]
        o[i] = (s + d0) + base
        s += d0 + d1
        o[i + 1] = s + base
    if m % 2 == 1:
        s += xs[m - 1] - olds[m - 1]
        o[m - 1] = s + base
    return s


@jit
def _mean_steps_nonan(x, window, lo, hi, s, k, out):
    inv = 1.0 / window
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    m = hi - lo
    for i in range(0, m - 1, 2):
        d0 = xs[i] - olds[i]
        d1 = xs[i + 1] - olds[i + 1]
        o[i] = (s + d0) * inv + k
        s += d0 + d1
        o[i + 1] = s * inv + k
    if m % 2 == 1:
        s += xs[m - 1] - olds[m - 1]
        o[m - 1] = s * inv + k
    return s


@jit
def _sum_steps(x, window, minp, lo, hi, s, cnt, k, out):
    # running updates of s = sum(x - k) for t in [lo, hi), lo >= window; branchy
    # like bottleneck: the NaN branches are perfectly predicted on NaN-free data.
    # `base` = cnt * k, or NaN below minp: the output needs no per-bar check.
    # Views indexed from 0 let LLVM drop numba's negative-index wraparound checks.
    base = cnt * k if cnt >= minp else np.nan
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    for i in range(hi - lo):
        xn = xs[i]
        xo = olds[i]
        if xn == xn:
            if xo == xo:
                s += xn - xo
            else:
                s += xn - k
                cnt += 1
                base = cnt * k if cnt >= minp else np.nan
        elif xo == xo:
            s -= xo - k
            cnt -= 1
            base = cnt * k if cnt >= minp else np.nan
            if cnt == 0:
                s = 0.0
        o[i] = s + base
    return s, cnt


@jit
def _mean_steps(x, window, minp, lo, hi, s, cnt, k, out):
    # as _sum_steps, output s / cnt + k; the cached inverse is NaN below minp
    inv = 1.0 / cnt if cnt >= minp else np.nan
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    for i in range(hi - lo):
        xn = xs[i]
        xo = olds[i]
        if xn == xn:
            if xo == xo:
                s += xn - xo
            else:
                s += xn - k
                cnt += 1
                inv = 1.0 / cnt if cnt >= minp else np.nan
        elif xo == xo:
            s -= xo - k
            cnt -= 1
            inv = 1.0 / cnt if cnt >= minp else np.nan
            if cnt == 0:
                s = 0.0
        o[i] = s * inv + k
    return s, cnt


@jit
def _resum(x, lo, hi):
    # exact window sum around the window mean: returns (sum(x - k), count, k)
    s, cnt = _window_sum(x, lo, hi, 0.0)
    k = s / cnt if cnt > 0 else 0.0
    s, cnt = _window_sum(x, lo, hi, k)
    return s, cnt, k


@ijit
def _rolling_sum_core_1d_nb(x, window, minp, mean, out):
    # +-inf are missing values, as in pandas' rolling (which turns them into NaN
    # first); running sums cannot take them (inf - inf), so a pass that meets one
    # stops and reruns on a copy with NaN in their place. Finite data pays nothing:
    # the per-block scan that picks the fast loops already reads every value, in cache.
    if not _rolling_sum_impl(x, window, minp, mean, out):
        _rolling_sum_impl(_inf_to_nan(x), window, minp, mean, out)
    return out


@jit
def _rolling_sum_impl(x, window, minp, mean, out):
    # Sums are kept around an anchor k (the window mean at the last re-sum), so
    # rounding scales with the spread of the data, not its level (1e9 + noise).
    # Warm-up, then blocks of resum_every(window) bars: an exact re-sum of the
    # window at each block start, cheap running updates inside the block.
    # Returns False (unfinished) on meeting +-inf.
    n = x.shape[0]
    every = resum_every(window)
    if _blocks_have_inf(x, _ZERO, min(window, n)):
        return False
    k = _first_valid(x)
    s = 0.0
    c = 0.0
    cnt = np.int64(0)
    w0 = min(window, n)
    for t in range(w0):
        v = x[t]
        if v == v:
            v -= k
            tt = s + v
            z = tt - s
            c += (s - (tt - z)) + (v - z)
            s = tt
            cnt += 1
        if cnt >= minp:
            out[t] = (s + c) / cnt + k if mean else (s + c) + cnt * k
        else:
            out[t] = np.nan
    s += c
    lo = w0
    while lo < n:
        hi = min(n, lo + every)
        if lo > w0:
            s, cnt, k = _resum(x, lo - window, lo)
        # run the NaN-free loop first and check the block after, from cache:
        # checking first would serialise a DRAM pass before the work. A block
        # that holds a NaN or inf is then redone from its starting state.
        if mean:
            s1 = _mean_steps_nonan(x, window, lo, hi, s, k, out)
        else:
            s1 = _sum_steps_nonan(x, window, lo, hi, s, k, out)
        nonfinite = _has_nan(x, lo - window, hi)
        if nonfinite and _has_inf(x, lo - window, hi):
            return False
        if not nonfinite:
            s = s1
        elif mean:
            s, cnt = _mean_steps(x, window, minp, lo, hi, s, cnt, k, out)
        else:
            s, cnt = _sum_steps(x, window, minp, lo, hi, s, cnt, k, out)
        lo = hi
    return True


@jit
def rolling_sum_1d_nb(x, window, minp, out):
    """Rolling sum; equals ``pd.Series(x).rolling(window, min_periods=minp).sum()``."""
    return _rolling_sum_core_1d_nb(x, window, minp, False, out)


@jit
def rolling_mean_1d_nb(x, window, minp, out):
    """Rolling mean; equals ``pd.Series(x).rolling(window, min_periods=minp).mean()``."""
    return _rolling_sum_core_1d_nb(x, window, minp, True, out)


# --------------------------------------------------------------------------- var / std / zscore

#: ``mode`` values of the second-moment kernel
VAR, STD, ZSCORE = 0, 1, 2


@jit
def _window_moments(x, lo, hi, k):
    # sums of (x - k) and (x - k)**2 over the non-NaN values of x[lo:hi]
    s1 = 0.0
    s2 = 0.0
    for i in range(lo, hi):
        v = x[i]
        if v == v:
            v -= k
            s1 += v
            s2 += v * v
    return s1, s2


@jit
def _var_out(x_t, ok, s1, s2, cnt, k, run, ddof, mode):
    # variance / std / z-score from anchored sums; caller checked cnt >= minp, cnt > ddof
    m = s1 / cnt
    if run >= cnt:
        var = 0.0
    else:
        var = (s2 - s1 * m) / (cnt - ddof)
        if var < 0.0:
            var = 0.0
    if mode == VAR:
        return var
    if mode == STD:
        return np.sqrt(var)
    return ((x_t - k) - m) / np.sqrt(var) if var > 0.0 and ok else np.nan


@jit
def _var_steps(x, window, minp, ddof, mode, lo, hi, s1, s2, cnt, k, run, prev, last_anchor, out):
    # running updates for t in [lo, hi), lo >= window (views: no wraparound checks);
    # 1/cnt and 1/(cnt - ddof) are cached while the count is constant (two
    # divisions per bar would cost more than everything else)
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    inv = 1.0 / cnt if cnt > 0 else 0.0
    inv_dof = 1.0 / (cnt - ddof) if cnt >= minp and cnt > ddof else np.nan
    for i in range(hi - lo):
        xn = xs[i]
        xo = olds[i]
        okn = xn == xn
        if okn:
            # branch-free run length of identical values (a branch here costs ~30%)
            run = run * np.int64(xn == prev) + 1
            prev = xn
            a = xn - k
            if xo == xo:
                b = xo - k
                d = a - b
                s1 += d
                s2 += d * (a + b)
            else:
                s1 += a
                s2 += a * a
                cnt += 1
                inv = 1.0 / cnt
                inv_dof = 1.0 / (cnt - ddof) if cnt >= minp and cnt > ddof else np.nan
        elif xo == xo:
            b = xo - k
            s1 -= b
            s2 -= b * b
            cnt -= 1
            inv = 1.0 / cnt if cnt > 0 else 0.0
            inv_dof = 1.0 / (cnt - ddof) if cnt >= minp and cnt > ddof else np.nan
            if cnt == 0:
                s1 = 0.0
                s2 = 0.0
        # inv_dof is NaN below minp (or at most ddof values): no per-bar check
        m = s1 * inv
        num = s2 - s1 * m
        if num * _REANCHOR_RATIO < s2 and lo + i - last_anchor >= window and run < cnt:
            # the mean wandered far from the anchor: re-sum around it
            t = lo + i
            k += m
            s1, s2 = _window_moments(x, t - window + 1, t + 1, k)
            last_anchor = t
            m = s1 * inv
            num = s2 - s1 * m
        if num < 0.0 or run >= cnt:
            num = 0.0
        var = num * inv_dof
        if mode == VAR:
            o[i] = var
        elif mode == STD:
            o[i] = np.sqrt(var)
        else:
            o[i] = ((xn - k) - m) / np.sqrt(var) if var > 0.0 and okn else np.nan
    return s1, s2, cnt, k, run, prev, last_anchor


@jit
def _var_steps_nonan(x, window, ddof, mode, lo, hi, s1, s2, k, run, prev, last_anchor, out):
    # x[lo - window:hi] holds no NaN: count == window, constant inverses, no NaN branches
    xs = x[lo:hi]
    olds = x[lo - window:hi - window]
    o = out[lo:hi]
    inv = 1.0 / window
    inv_dof = 1.0 / (window - ddof) if window > ddof else np.nan
    for i in range(hi - lo):
        xn = xs[i]
        run = run * np.int64(xn == prev) + 1
        prev = xn
        a = xn - k
        b = olds[i] - k
        d = a - b
        s1 += d
        s2 += d * (a + b)
        m = s1 * inv
        num = s2 - s1 * m
        if num * _REANCHOR_RATIO < s2:
            # rare: the mean wandered far from the anchor (or a constant window)
            t = lo + i
            if t - last_anchor >= window and run < window:
                k += m
                s1, s2 = _window_moments(x, t - window + 1, t + 1, k)
                last_anchor = t
                m = s1 * inv
                num = s2 - s1 * m
        if num < 0.0 or run >= window:
            num = 0.0
        var = num * inv_dof
        if mode == VAR:
            o[i] = var
        elif mode == STD:
            o[i] = np.sqrt(var)
        else:
            o[i] = ((xn - k) - m) / np.sqrt(var) if var > 0.0 else np.nan
    return s1, s2, k, run, prev, last_anchor


@ijit
def _rolling_var_core_1d_nb(x, window, minp, ddof, mode, out):
    # +-inf are missing values: rerun on a cleaned copy (see _rolling_sum_core_1d_nb)
    if not _rolling_var_impl(x, window, minp, ddof, mode, out):
        _rolling_var_impl(_inf_to_nan(x), window, minp, ddof, mode, out)
    return out


@jit
def _rolling_var_impl(x, window, minp, ddof, mode, out):
    # Warm-up, then blocks of resum_every(window) bars, each starting with an exact
    # two-pass re-sum of the window around its mean (see the module docstring).
    # Returns False (unfinished) on meeting +-inf.
    n = x.shape[0]
    every = resum_every(window)
    if _blocks_have_inf(x, _ZERO, min(window, n)):
        return False
    k = _first_valid(x)
    s1 = 0.0
    s2 = 0.0
    cnt = np.int64(0)
    run = np.int64(0)  # length of the current run of identical non-NaN values
    prev = np.nan
    last_anchor = -window
    w0 = min(window, n)
    for t in range(w0):
        xn = x[t]
        okn = xn == xn
        if okn:
            run = run * np.int64(xn == prev) + 1
            prev = xn
            a = xn - k
            s1 += a
            s2 += a * a
            cnt += 1
        if cnt >= minp and cnt > ddof:
            out[t] = _var_out(xn, okn, s1, s2, cnt, k, run, ddof, mode)
        else:
            out[t] = np.nan
    lo = w0
    while lo < n:
        hi = min(n, lo + every)
        nonfinite = _has_nan(x, lo - window, hi)
        if nonfinite and _has_inf(x, lo - window, hi):
            return False
        if lo > w0 or w0 > 64:
            # exact re-sum of the window ending at lo - 1 around its mean
            s1, s2 = _window_moments(x, lo - window, lo, k)
            if cnt > 0:
                k += s1 / cnt
                s1, s2 = _window_moments(x, lo - window, lo, k)
            last_anchor = lo - 1
        if not nonfinite:
            s1, s2, k, run, prev, last_anchor = _var_steps_nonan(
                x, window, ddof, mode, lo, hi, s1, s2, k, run, prev, last_anchor, out)
        else:
            s1, s2, cnt, k, run, prev, last_anchor = _var_steps(
                x, window, minp, ddof, mode, lo, hi, s1, s2, cnt, k, run, prev, last_anchor, out)
        lo = hi
    return True


@jit
def rolling_moment_1d_nb(x, window, minp, ddof, mode, out):
    """Rolling variance (``mode`` :data:`VAR`), standard deviation (:data:`STD`) or z-score
    (:data:`ZSCORE`): the one compiled entry behind the three public functions (each
    entry costs ~2 s of compile on a cold cache; the mode test per bar costs nothing measurable)."""
    return _rolling_var_core_1d_nb(x, window, minp, ddof, mode, out)


@jit
def rolling_sums_1d_nb(x, window, minp, mean, out):
    """Rolling sum (``mean=False``) or mean (``True``): one compiled entry for both public functions."""
    return _rolling_sum_core_1d_nb(x, window, minp, mean, out)


@jit
def rolling_var_1d_nb(x, window, minp, ddof, out):
    """Rolling variance; equals ``pd.Series(x).rolling(window, min_periods=minp).var(ddof=ddof)``.

    NaN also where the window holds ``<= ddof`` non-NaN values.
    """
    return _rolling_var_core_1d_nb(x, window, minp, ddof, VAR, out)


@jit
def rolling_std_1d_nb(x, window, minp, ddof, out):
    """Rolling standard deviation; equals ``...rolling(window, min_periods=minp).std(ddof=ddof)``."""
    return _rolling_var_core_1d_nb(x, window, minp, ddof, STD, out)


@jit
def rolling_zscore_1d_nb(x, window, minp, ddof, out):
    """Rolling z-score ``(x[t] - mean) / std`` of the window ending at ``t`` (``t`` included).

    Equals ``(s - r.mean()) / r.std(ddof=ddof)`` with ``r = s.rolling(window, min_periods=minp)``,
    except that a zero standard deviation (constant window) or a NaN ``x[t]`` gives NaN.
    """
    return _rolling_var_core_1d_nb(x, window, minp, ddof, ZSCORE, out)


# --------------------------------------------------------------------------- min / max


@ijit
def _rolling_minmax_core_1d_nb(x, window, minp, sign, out):
    # +-inf are missing values, as in pandas' rolling: rerun on a cleaned copy
    if not _rolling_minmax_impl(x, window, minp, sign, out):
        _rolling_minmax_impl(_inf_to_nan(x), window, minp, sign, out)
    return out


@jit
def _minmax_groups2(x, w, bs, be, sign, hb, out):
    # van Herk/Gil-Werman over x[bs:be], (be - bs) a multiple of 2w, x[bs - w:be]
    # finite, 2 blocks at a time: each block's prefix/suffix minimum is a chain of
    # dependent compare-selects, so one block at a time is latency-bound; two
    # independent chains per loop (measured best of 1..8 chains) and select-form
    # minima (an `if` compiles to a data-dependent branch) run at ~0.6 ns/bar.
    # `hb[2 * i + l]` is the suffix minimum from i of the block before block l.
    # One function for all groups: views made per call would cost refcounting.
    inf = np.inf
    while bs < be:
        p = x[bs - w:bs + w]
        h0 = inf
        h1 = inf
        for i in range(w - 1, -1, -1):
            v0 = sign * p[i]
            v1 = sign * p[w + i]
            h0 = v0 if v0 < h0 else h0
            h1 = v1 if v1 < h1 else h1
            hb[2 * i] = h0
            hb[2 * i + 1] = h1
        hb[2 * w] = inf
        hb[2 * w + 1] = inf
        xs = x[bs:bs + 2 * w]
        o = out[bs:bs + 2 * w]
        g0 = inf
        g1 = inf
        for i in range(w):
            v0 = sign * xs[i]
            v1 = sign * xs[w + i]
            g0 = v0 if v0 < g0 else g0
            g1 = v1 if v1 < g1 else g1
            k = 2 * (i + 1)
            a = hb[k]
            b = hb[k + 1]
            o[i] = sign * (a if a < g0 else g0)
            o[w + i] = sign * (b if b < g1 else g1)
        bs += 2 * w


@jit
def _minmax_groups1(x, w, bs, be, sign, hb, out):
    # as _minmax_groups2 one block at a time, for long windows (w > _PAIR_MAX_WINDOW):
    # there two interleaved blocks ran slower (measured 1.4 vs 1.05 ns/bar at w=200)
    inf = np.inf
    while bs < be:
        p = x[bs - w:bs]
        h = inf
        for i in range(w - 1, -1, -1):
            v = sign * p[i]
            h = v if v < h else h
            hb[i] = h
        hb[w] = inf
        xs = x[bs:bs + w]
        o = out[bs:bs + w]
        g = inf
        for i in range(w):
            v = sign * xs[i]
            g = v if v < g else g
            a = hb[i + 1]
            o[i] = sign * (a if a < g else g)
        bs += w


#: Longest window run two blocks at a time in the rolling min/max
_PAIR_MAX_WINDOW = 64


@jit
def _minmax_groups(x, w, bs, be, sign, hb, out):
    if w <= _PAIR_MAX_WINDOW:
        _minmax_groups2(x, w, bs, be, sign, hb, out)
    else:
        _minmax_groups1(x, w, bs, be, sign, hb, out)


@jit
def _rolling_minmax_impl(x, window, minp, sign, out):
    # van Herk / Gil-Werman: cut the series into blocks of `window` bars; the window
    # ending at t spans the tail of the previous block (its suffix minimum, from a
    # backward scan into `hbuf`) and the head of t's block (the running prefix
    # minimum g). Three comparisons per bar whatever the data and the window,
    # branch-free, exact. A monotonic deque is also O(n) but branches on the data
    # (11 ns/bar here vs ~2); TA-Lib's rescan-on-expiry is O(n * window) on
    # trending data. Finite spans go 2 blocks at a time for short windows (`_minmax_groups`).
    # Max is -min(-x) via `sign`; NaN never wins a `<` comparison,
    # so NaNs are skipped as pandas does and `cnt` tracks the non-NaN count.
    n = x.shape[0]
    w = window
    inf = np.inf
    hbuf = np.empty(max(1, min(w, n)) + 1, dtype=np.float64)
    hb2 = np.empty(2 * (w + 1) if n >= 3 * w else 0, dtype=np.float64)
    cnt = np.int64(0)
    bs = np.int64(0)
    # spans of ~16k bars (whole groups, in L2) computed as if finite, then checked
    span = 2 * w * max(1, 8192 // w)
    retry = np.int64(0)
    while bs < n:
        if bs >= w and bs + 2 * w <= n:
            # finite: every window is full (cnt stays w)
            ge = bs + min(span, (n - bs) // (2 * w) * 2 * w)
            if bs >= retry:
                # compute first, check after: the check then reads the span from
                # cache, while checking first serialises a DRAM pass before the work
                # (NaN never wins a comparison, so finite spans are right either way)
                _minmax_groups(x, w, bs, ge, sign, hb2, out)
                if not _has_nan(x, bs - w, ge):
                    bs = ge
                    continue
                retry = ge  # a NaN or inf in the span: redo it group by group
            if not _has_nan(x, bs - w, bs + 2 * w):
                _minmax_groups(x, w, bs, bs + 2 * w, sign, hb2, out)
                bs += 2 * w
                continue
        be = min(bs + w, n)
        nonfinite = _has_nan(x, max(0, bs - w), be)
        if nonfinite and _has_inf(x, bs, be):
            return False
        have_h = bs >= w
        if have_h:
            acc = inf
            prev = x[bs - w:bs]
            for i in range(w - 1, -1, -1):
                v = sign * prev[i]
                if v < acc:
                    acc = v
                hbuf[i] = acc
            hbuf[w] = inf
        g = inf
        xs = x[bs:be]
        o = out[bs:be]
        if have_h and not nonfinite:
            # NaN-free: every window is full, no counting
            for i in range(be - bs):
                v = sign * xs[i]
                if v < g:
                    g = v
                h = hbuf[i + 1]
                o[i] = sign * (h if h < g else g)
        elif have_h:
            olds = x[bs - w:be - w]
            for i in range(be - bs):
                xv = xs[i]
                v = sign * xv
                if v < g:
                    g = v
                xo = olds[i]
                cnt += np.int64(xv == xv) - np.int64(xo == xo)
                h = hbuf[i + 1]
                r = h if h < g else g
                o[i] = sign * r if cnt >= minp else np.nan
        else:
            for i in range(be - bs):
                xv = xs[i]
                v = sign * xv
                if v < g:
                    g = v
                cnt += np.int64(xv == xv)
                o[i] = sign * g if cnt >= minp else np.nan
        bs = be
    return True


@jit
def rolling_min_1d_nb(x, window, minp, out):
    """Rolling minimum in O(n) (van Herk/Gil-Werman); equals ``...rolling(window, min_periods=minp).min()``."""
    return _rolling_minmax_core_1d_nb(x, window, minp, 1.0, out)


@jit
def rolling_max_1d_nb(x, window, minp, out):
    """Rolling maximum in O(n) (van Herk/Gil-Werman); equals ``...rolling(window, min_periods=minp).max()``."""
    return _rolling_minmax_core_1d_nb(x, window, minp, -1.0, out)


# --------------------------------------------------------------------------- corr / beta / cov

#: ``mode`` values of the two-series kernel
CORR, BETA, COV = 0, 1, 2


@jit
def _resum_pair(x, y, lo, hi, kx, ky):
    sx = 0.0
    sy = 0.0
    sxx = 0.0
    syy = 0.0
    sxy = 0.0
    for i in range(lo, hi):
        u = x[i]
        v = y[i]
        if u == u and v == v:
            u -= kx
            v -= ky
            sx += u
            sy += v
            sxx += u * u
            syy += v * v
            sxy += u * v
    return sx, sy, sxx, syy, sxy


@jit
def _pair_steps(x, y, xo_v, yo_v, window, minp, ddof, mode, lo, hi, st, out):
    # updates for t in [lo, hi); xo_v/yo_v hold the values leaving the window
    # (NaN during warm-up); views indexed from 0 avoid numba's wraparound checks
    sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor = st
    xs = x[lo:hi]
    ys = y[lo:hi]
    o = out[lo:hi]
    inv = 1.0 / cnt if cnt > 0 else 0.0
    for i in range(hi - lo):
        xn = xs[i]
        yn = ys[i]
        xo = xo_v[i]
        yo = yo_v[i]
        okn = xn == xn and yn == yn
        oko = xo == xo and yo == yo
        if okn:
            # branch-free run lengths of identical values (exact zero variance)
            runx = runx * np.int64(xn == prevx) + 1
            runy = runy * np.int64(yn == prevy) + 1
            prevx = xn
            prevy = yn
            ax = xn - kx
            ay = yn - ky
            if oko:
                bx = xo - kx
                by = yo - ky
                dx = ax - bx
                dy = ay - by
                sx += dx
                sy += dy
                sxx += dx * (ax + bx)
                syy += dy * (ay + by)
                sxy += ax * ay - bx * by
            else:
                sx += ax
                sy += ay
                sxx += ax * ax
                syy += ay * ay
                sxy += ax * ay
                cnt += 1
                inv = 1.0 / cnt
        elif oko:
            bx = xo - kx
            by = yo - ky
            sx -= bx
            sy -= by
            sxx -= bx * bx
            syy -= by * by
            sxy -= bx * by
            cnt -= 1
            inv = 1.0 / cnt if cnt > 0 else 0.0
            if cnt == 0:
                sx = sy = sxx = syy = sxy = 0.0
        if cnt >= minp and cnt > ddof and cnt >= 2:
            mx = sx * inv
            my = sy * inv
            nx = sxx - sx * mx
            ny = syy - sy * my
            nxy = sxy - sx * my
            if (nx * _REANCHOR_RATIO < sxx or ny * _REANCHOR_RATIO < syy) and lo + i - last_anchor >= window:
                t = lo + i
                kx += mx
                ky += my
                sx, sy, sxx, syy, sxy = _resum_pair(x, y, max(0, t - window + 1), t + 1, kx, ky)
                last_anchor = t
                mx = sx * inv
                my = sy * inv
                nx = sxx - sx * mx
                ny = syy - sy * my
                nxy = sxy - sx * my
            if runx >= cnt:
                nx = 0.0
                nxy = 0.0
            if runy >= cnt:
                ny = 0.0
                nxy = 0.0
            if mode == CORR:
                o[i] = nxy / np.sqrt(nx * ny) if nx > 0.0 and ny > 0.0 else np.nan
            elif mode == BETA:
                o[i] = nxy / nx if nx > 0.0 else np.nan
            else:
                o[i] = nxy / (cnt - ddof)
        else:
            o[i] = np.nan
    return sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor


@jit
def _pair_steps_nonan(x, y, window, ddof, mode, lo, hi, st, out):
    # x and y hold no NaN over [lo - window, hi): count == window, no NaN branches
    sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor = st
    xs = x[lo:hi]
    ys = y[lo:hi]
    xos = x[lo - window:hi - window]
    yos = y[lo - window:hi - window]
    o = out[lo:hi]
    inv = 1.0 / window
    for i in range(hi - lo):
        xn = xs[i]
        yn = ys[i]
        runx = runx * np.int64(xn == prevx) + 1
        runy = runy * np.int64(yn == prevy) + 1
        prevx = xn
        prevy = yn
        ax = xn - kx
        ay = yn - ky
        bx = xos[i] - kx
        by = yos[i] - ky
        dx = ax - bx
        dy = ay - by
        sx += dx
        sy += dy
        sxx += dx * (ax + bx)
        syy += dy * (ay + by)
        sxy += ax * ay - bx * by
        mx = sx * inv
        my = sy * inv
        nx = sxx - sx * mx
        ny = syy - sy * my
        nxy = sxy - sx * my
        if nx * _REANCHOR_RATIO < sxx or ny * _REANCHOR_RATIO < syy:
            t = lo + i
            if t - last_anchor >= window:
                kx += mx
                ky += my
                sx, sy, sxx, syy, sxy = _resum_pair(x, y, t - window + 1, t + 1, kx, ky)
                last_anchor = t
                mx = sx * inv
                my = sy * inv
                nx = sxx - sx * mx
                ny = syy - sy * my
                nxy = sxy - sx * my
        if runx >= window:
            nx = 0.0
            nxy = 0.0
        if runy >= window:
            ny = 0.0
            nxy = 0.0
        if mode == CORR:
            o[i] = nxy / np.sqrt(nx * ny) if nx > 0.0 and ny > 0.0 else np.nan
        elif mode == BETA:
            o[i] = nxy / nx if nx > 0.0 else np.nan
        else:
            o[i] = nxy / (window - ddof) if window > ddof else np.nan
    return sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor


@ijit
def _rolling_pair_core_1d_nb(x, y, window, minp, ddof, mode, out):
    # +-inf in x or y are missing values: rerun on cleaned copies (see _rolling_sum_core_1d_nb)
    if not _rolling_pair_impl(x, y, window, minp, ddof, mode, out):
        _rolling_pair_impl(_inf_to_nan(x), _inf_to_nan(y), window, minp, ddof, mode, out)
    return out


@jit
def _rolling_pair_impl(x, y, window, minp, ddof, mode, out):
    # Pairwise-complete windows: a bar counts when both x and y are non-NaN
    # (pandas aligns the NaN masks first: X = x + 0*y, Y = y + 0*x).
    # Warm-up, then blocks of resum_every(window) bars starting with an exact
    # two-pass re-sum around the window means (see the module docstring).
    # Returns False (unfinished) on meeting +-inf.
    n = x.shape[0]
    if _blocks_have_inf(x, _ZERO, min(window, n)) or _blocks_have_inf(y, _ZERO, min(window, n)):
        return False
    kx = 0.0
    ky = 0.0
    for t in range(n):
        if x[t] == x[t] and y[t] == y[t]:
            kx = x[t]
            ky = y[t]
            break
    st = (0.0, 0.0, 0.0, 0.0, 0.0, _ZERO, kx, ky, _ZERO, _ZERO, np.nan, np.nan, -window)
    w0 = min(window, n)
    nans = np.full(w0, np.nan)
    st = _pair_steps(x, y, nans, nans, window, minp, ddof, mode, _ZERO, w0, st, out)
    every = resum_every(window)
    lo = w0
    while lo < n:
        hi = min(n, lo + every)
        nonfinite = _has_nan(x, lo - window, hi) or _has_nan(y, lo - window, hi)
        if nonfinite and (_has_inf(x, lo - window, hi) or _has_inf(y, lo - window, hi)):
            return False
        sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor = st
        if lo > w0 or w0 > 64:
            sx, sy, sxx, syy, sxy = _resum_pair(x, y, lo - window, lo, kx, ky)
            if cnt > 0:
                kx += sx / cnt
                ky += sy / cnt
                sx, sy, sxx, syy, sxy = _resum_pair(x, y, lo - window, lo, kx, ky)
            last_anchor = lo - 1
        st = (sx, sy, sxx, syy, sxy, cnt, kx, ky, runx, runy, prevx, prevy, last_anchor)
        if window >= 2 and not nonfinite:
            st = _pair_steps_nonan(x, y, window, ddof, mode, lo, hi, st, out)
        else:
            st = _pair_steps(x, y, x[lo - window:hi - window], y[lo - window:hi - window], window, minp, ddof,
                             mode, lo, hi, st, out)
        lo = hi
    return True


@jit
def rolling_corr_1d_nb(x, y, window, minp, out):
    """Rolling Pearson correlation of ``x`` and ``y``; equals ``x.rolling(window, minp).corr(y)``.

    NaN where either window is constant (zero variance) or fewer than 2 pairs.
    """
    return _rolling_pair_core_1d_nb(x, y, window, minp, 1, CORR, out)


@jit
def rolling_beta_1d_nb(y, x, window, minp, out):
    """Rolling OLS slope of ``y`` on ``x``: ``cov(x, y) / var(x)`` over pairwise-complete windows.

    Equals ``y.rolling(window, minp).cov(x) / x.rolling(window, minp).var()`` when NaNs are aligned.
    """
    return _rolling_pair_core_1d_nb(x, y, window, minp, 1, BETA, out)


@jit
def rolling_cov_1d_nb(x, y, window, minp, ddof, out):
    """Rolling covariance; equals ``x.rolling(window, minp).cov(y, ddof=ddof)``."""
    return _rolling_pair_core_1d_nb(x, y, window, minp, ddof, COV, out)


# --------------------------------------------------------------------------- vwap


@jit
def rolling_vwap_1d_nb(price, volume, window, minp, out):
    """Rolling volume-weighted average price ``sum(p * v) / sum(v)`` over the window.

    A bar counts when both price and volume are non-NaN; NaN when the window's
    volume sums to 0 or fewer than ``minp`` bars count (+-inf count as missing).
    """
    if not _rolling_vwap_impl(price, volume, window, minp, out):
        _rolling_vwap_impl(_inf_to_nan(price), _inf_to_nan(volume), window, minp, out)
    return out


@jit
def _rolling_vwap_impl(price, volume, window, minp, out):
    n = price.shape[0]
    if _has_inf(price, _ZERO, n) or _has_inf(volume, _ZERO, n):
        return False
    spv = 0.0
    sv = 0.0
    cnt = 0
    nz = 0  # counted bars with non-zero volume: all-zero windows give NaN, not 0/residue
    every = resum_every(window)
    nxt = every
    for t in range(n):
        okn = price[t] == price[t] and volume[t] == volume[t]
        if t >= window:
            i = t - window
            oko = price[i] == price[i] and volume[i] == volume[i]
        else:
            i = 0
            oko = False
        cnt += np.int64(okn) - np.int64(oko)
        nz += np.int64(okn and volume[t] != 0.0) - np.int64(oko and volume[i] != 0.0)
        if t == nxt or nz == 0:
            spv = 0.0
            sv = 0.0
            if nz > 0:
                for i in range(max(0, t - window + 1), t + 1):
                    if price[i] == price[i] and volume[i] == volume[i]:
                        spv += price[i] * volume[i]
                        sv += volume[i]
            if t == nxt:
                nxt += every
        else:
            spv += (price[t] * volume[t] if okn else 0.0) - (price[i] * volume[i] if oko else 0.0)
            sv += (volume[t] if okn else 0.0) - (volume[i] if oko else 0.0)
        if cnt >= minp and nz > 0:
            out[t] = spv / sv
        else:
            out[t] = np.nan
    return True


# --------------------------------------------------------------------------- 2-D forms
# Each runs its 1-D twin over the columns of (n_bars, n_cols) arrays in parallel.
# Columns are taken as rows of the transpose: for F-ordered input (DataFrames, and
# what nbtrade.stats passes) numba then types them as contiguous 1-D arrays; C-ordered
# input works too, with strided columns (about 3x slower: stats converts it first).


@pjit
def rolling_sum_nb(x, window, minp, out):
    """Column-wise :func:`rolling_sum_1d_nb`; equals ``pd.DataFrame(x).rolling(window, minp).sum()``."""
    for j in prange(x.shape[1]):
        _rolling_sum_core_1d_nb(x.T[j], window, minp, False, out.T[j])
    return out


@pjit
def rolling_mean_nb(x, window, minp, out):
    """Column-wise :func:`rolling_mean_1d_nb`; equals ``pd.DataFrame(x).rolling(window, minp).mean()``."""
    for j in prange(x.shape[1]):
        _rolling_sum_core_1d_nb(x.T[j], window, minp, True, out.T[j])
    return out


@pjit
def rolling_moment_nb(x, window, minp, ddof, mode, out):
    """Column-wise :func:`rolling_moment_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_var_core_1d_nb(x.T[j], window, minp, ddof, mode, out.T[j])
    return out


@pjit
def rolling_sums_nb(x, window, minp, mean, out):
    """Column-wise :func:`rolling_sums_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_sum_core_1d_nb(x.T[j], window, minp, mean, out.T[j])
    return out


@pjit
def rolling_var_nb(x, window, minp, ddof, out):
    """Column-wise :func:`rolling_var_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_var_core_1d_nb(x.T[j], window, minp, ddof, VAR, out.T[j])
    return out


@pjit
def rolling_std_nb(x, window, minp, ddof, out):
    """Column-wise :func:`rolling_std_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_var_core_1d_nb(x.T[j], window, minp, ddof, STD, out.T[j])
    return out


@pjit
def rolling_zscore_nb(x, window, minp, ddof, out):
    """Column-wise :func:`rolling_zscore_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_var_core_1d_nb(x.T[j], window, minp, ddof, ZSCORE, out.T[j])
    return out


@pjit
def rolling_min_nb(x, window, minp, out):
    """Column-wise :func:`rolling_min_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_minmax_core_1d_nb(x.T[j], window, minp, 1.0, out.T[j])
    return out


@pjit
def rolling_max_nb(x, window, minp, out):
    """Column-wise :func:`rolling_max_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_minmax_core_1d_nb(x.T[j], window, minp, -1.0, out.T[j])
    return out


@pjit
def rolling_corr_nb(x, y, window, minp, out):
    """Column-wise :func:`rolling_corr_1d_nb` (column j of x with column j of y)."""
    for j in prange(x.shape[1]):
        _rolling_pair_core_1d_nb(x.T[j], y.T[j], window, minp, 1, CORR, out.T[j])
    return out


@pjit
def rolling_beta_nb(y, x, window, minp, out):
    """Column-wise :func:`rolling_beta_1d_nb` (column j of y on column j of x)."""
    for j in prange(x.shape[1]):
        _rolling_pair_core_1d_nb(x.T[j], y.T[j], window, minp, 1, BETA, out.T[j])
    return out


@pjit
def rolling_cov_nb(x, y, window, minp, ddof, out):
    """Column-wise :func:`rolling_cov_1d_nb`."""
    for j in prange(x.shape[1]):
        _rolling_pair_core_1d_nb(x.T[j], y.T[j], window, minp, ddof, COV, out.T[j])
    return out


@pjit
def rolling_vwap_nb(price, volume, window, minp, out):
    """Column-wise :func:`rolling_vwap_1d_nb`."""
    for j in prange(price.shape[1]):
        rolling_vwap_1d_nb(price.T[j], volume.T[j], window, minp, out.T[j])
    return out
