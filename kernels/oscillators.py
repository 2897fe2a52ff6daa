"""Oscillators, bands and range indicators with TA-Lib's conventions.

RSI, MACD, BBANDS, TRANGE, ATR, STOCH, OBV, ADX. Same contract and NaN policy
as ``moving.py``: one pass, ``out`` supplied by the caller, and a NaN in any
input restarts the indicator (NaN at that bar and through a fresh warm-up).

Zero tests are exact (``== 0``), where TA-Lib uses an absolute band
(``|v| < 1e-14``): results agree on ordinary prices, and stay right for
micro-priced assets whose gains, ranges or variances fall below that band.
"""
from __future__ import annotations

import numpy as np
from numba import prange

from ._jit import jit, pjit
from .moving import fma, is_missing

NAN = np.nan


@jit
def _max(a, b):
    # a plain select (maxsd); the builtin max() carries NaN handling that costs more
    return a if a > b else b


@jit
def _min(a, b):
    return a if a < b else b


@jit
def _true_range(h, l, prev_close):
    return _max(h - l, _max(abs(h - prev_close), abs(l - prev_close)))


@jit
def _isnan3(a, b, c):
    # one test for three values: any NaN or +-inf (missing, see moving.is_missing) makes t - t NaN.
    # One subtraction more than a NaN-only test (three per value cost ATR ~25 %); a sum that
    # overflows (prices above ~6e307) also reads as missing: a NaN out, never a wrong value
    t = a + b + c
    return t - t != 0.0


# --------------------------------------------------------------------- RSI
@jit
def rsi_1d_nb(x, timeperiod, out):
    """Relative strength index with Wilder's smoothing; TA-Lib ``RSI``.

    Average gain and loss start as plain means of the first ``timeperiod``
    changes, then ``avg = (avg * (p - 1) + change) / p``.
    ``rsi = 100 * gain / (gain + loss)`` (0 when both are 0). Warm-up ``timeperiod``.
    """
    n = x.shape[0]
    p = timeperiod
    inv = 1.0 / p
    decay = (p - 1.0) / p
    i = 0
    while i < n:
        if is_missing(x[i]):
            out[i] = NAN
            i += 1
            continue
        start = i
        out[i] = NAN
        prev = x[i]
        i += 1
        gain = 0.0
        loss = 0.0
        while i < n and i < start + p:
            v = x[i]
            if is_missing(v):
                break
            d = v - prev
            prev = v
            if d < 0:
                loss -= d
            else:
                gain += d
            out[i] = NAN
            i += 1
        if i < start + p or i >= n:
            continue
        # bar start+p completes the first average
        v = x[i]
        if is_missing(v):
            continue
        d = v - prev
        prev = v
        if d < 0:
            loss -= d
        else:
            gain += d
        gain /= p
        loss /= p
        total = gain + loss
        out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
        i += 1
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            d = v - prev
            prev = v
            gain = fma(gain, decay, _max(d, 0.0) * inv)
            loss = fma(loss, decay, _max(-d, 0.0) * inv)
            total = gain + loss
            out[i] = 100.0 * (gain / total) if total != 0.0 else 0.0
            i += 1
    return out


@pjit
def rsi_nb(x, timeperiod, out):
    """2-D :func:`rsi_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        rsi_1d_nb(x[:, j], timeperiod, out[:, j])
    return out


# --------------------------------------------------------------------- MACD
@jit
def macd_1d_nb(x, fastperiod, slowperiod, signalperiod, out_macd, out_signal, out_hist):
    """MACD line, signal and histogram; TA-Lib ``MACD`` (requires fast <= slow).

    ``macd = EMA_fast - EMA_slow``, ``signal = EMA_signal(macd)``, ``hist = macd - signal``.
    As TA-Lib, the slow EMA is seeded with the SMA of bars ``0..slow-1`` and the fast
    EMA with the SMA of bars ``slow-fast..slow-1`` (both seeds end on the same bar);
    the signal is seeded with the SMA of the first ``signalperiod`` MACD values.
    All three outputs start at ``slow + signal - 2``.
    """
    n = x.shape[0]
    pf = fastperiod
    ps = slowperiod
    pg = signalperiod
    kf = 2.0 / (pf + 1)
    ks = 2.0 / (ps + 1)
    kg = 2.0 / (pg + 1)
    lookback = ps + pg - 2
    i = 0
    while i < n:
        if is_missing(x[i]):
            out_macd[i] = NAN
            out_signal[i] = NAN
            out_hist[i] = NAN
            i += 1
            continue
        start = i
        ss = 0.0
        sf = 0.0
        sg = 0.0
        es = 0.0
        ef = 0.0
        eg = 0.0
        ready = False
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            r = i - start
            if r < ps:
                ss += v
                if r >= ps - pf:
                    sf += v
                if r == ps - 1:
                    es = ss / ps
                    ef = sf / pf
            else:
                es = (v - es) * ks + es
                ef = (v - ef) * kf + ef
            if r >= ps - 1:
                m = ef - es
                rg = r - (ps - 1)
                if rg < pg:
                    sg += m
                    if rg == pg - 1:
                        eg = sg / pg
                else:
                    eg = (m - eg) * kg + eg
                ready = r >= lookback
            i += 1
            if ready:
                out_macd[i - 1] = m
                out_signal[i - 1] = eg
                out_hist[i - 1] = m - eg
                break
            out_macd[i - 1] = NAN
            out_signal[i - 1] = NAN
            out_hist[i - 1] = NAN
        if not ready:
            continue
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            es = fma(es, 1.0 - ks, v * ks)
            ef = fma(ef, 1.0 - kf, v * kf)
            m = ef - es
            eg = fma(eg, 1.0 - kg, m * kg)
            out_macd[i] = m
            out_signal[i] = eg
            out_hist[i] = m - eg
            i += 1
    return out_macd, out_signal, out_hist


@pjit
def macd_nb(x, fastperiod, slowperiod, signalperiod, out_macd, out_signal, out_hist):
    """2-D :func:`macd_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        macd_1d_nb(x[:, j], fastperiod, slowperiod, signalperiod, out_macd[:, j], out_signal[:, j], out_hist[:, j])
    return out_macd, out_signal, out_hist


# ------------------------------------------------------------------- BBANDS
@jit
def _shifted_sums(x, lo, hi, shift):
    """``sum(x - shift)`` and ``sum((x - shift)**2)`` over ``x[lo:hi]``."""
    s1 = 0.0
    s2 = 0.0
    for j in range(lo, hi):
        d = x[j] - shift
        s1 += d
        s2 += d * d
    return s1, s2


@jit
def bbands_1d_nb(x, timeperiod, nbdevup, nbdevdn, out_upper, out_middle, out_lower):
    """Bollinger bands on the SMA; TA-Lib ``BBANDS`` with ``matype=0``.

    ``middle = SMA``, ``upper/lower = middle +/- nbdev * std`` with the population
    standard deviation (ddof 0) of the same window. Warm-up ``timeperiod - 1``.
    On NaN-free input: ``m = s.rolling(p).mean(); m +/- nbdev * s.rolling(p).std(ddof=0)``.

    O(1) per bar without the cancellation of ``E[x^2] - mean^2`` at large prices:
    running sums are kept of ``x - K`` for a shift ``K`` reset to the window mean
    every ``timeperiod`` bars (and the sums recomputed exactly then), so rounding
    never accumulates over more than two windows and the squares stay of the size
    of the variance. A window of identical values gives exactly 0.
    """
    n = x.shape[0]
    p = timeperiod
    inv = 1.0 / p
    i = 0
    while i < n:
        if is_missing(x[i]):
            out_upper[i] = NAN
            out_middle[i] = NAN
            out_lower[i] = NAN
            i += 1
            continue
        start = i
        shift = x[i]
        s1 = 0.0
        s2 = 0.0
        last_move = start  # latest bar that differs from its predecessor
        while i < n and i < start + p - 1:
            v = x[i]
            if is_missing(v):
                break
            d = v - shift
            s1 += d
            s2 += d * d
            if i > start and v != x[i - 1]:
                last_move = i
            out_upper[i] = NAN
            out_middle[i] = NAN
            out_lower[i] = NAN
            i += 1
        if i < start + p - 1:
            continue
        since_rebase = 0
        while i < n:
            v = x[i]
            if is_missing(v):
                break
            d = v - shift
            if i - p >= start:
                o = x[i - p] - shift
                s1 += d - o
                s2 += d * d - o * o
            else:
                s1 += d
                s2 += d * d
            if i > start and v != x[i - 1]:
                last_move = i
            m1 = s1 * inv
            if last_move <= i - p + 1:
                mean = v
                std = 0.0
            else:
                mean = shift + m1
                var = s2 * inv - m1 * m1
                std = np.sqrt(var) if var > 0.0 else 0.0
            out_middle[i] = mean
            out_upper[i] = mean + std * nbdevup
            out_lower[i] = mean - std * nbdevdn
            since_rebase += 1
            if since_rebase == p:
                since_rebase = 0
                shift = mean
                s1, s2 = _shifted_sums(x, i - p + 1, i + 1, shift)
            i += 1
    return out_upper, out_middle, out_lower


@pjit
def bbands_nb(x, timeperiod, nbdevup, nbdevdn, out_upper, out_middle, out_lower):
    """2-D :func:`bbands_1d_nb`, columns in parallel."""
    for j in prange(x.shape[1]):
        bbands_1d_nb(x[:, j], timeperiod, nbdevup, nbdevdn, out_upper[:, j], out_middle[:, j], out_lower[:, j])
    return out_upper, out_middle, out_lower


# ------------------------------------------------------------------- TRANGE
@jit
def trange_1d_nb(high, low, close, out):
    """True range ``max(h - l, |h - c_prev|, |l - c_prev|)``; TA-Lib ``TRANGE``. Warm-up 1.

    Equals ``pd.concat([h - l, (h - c.shift()).abs(), (l - c.shift()).abs()], axis=1).max(axis=1)``
    from the second bar on.
    """
    n = close.shape[0]
    if n > 0:
        out[0] = NAN
    if n < 2:
        return out
    # branch-free so it vectorises: adding ``v - v`` (0, or NaN for a NaN v) of the
    # inputs of this bar and the previous one gives NaN exactly at a NaN bar and the
    # bar after it, as a restart does. The previous bar's sum is carried, not
    # recomputed; views from 0 drop numba's negative-index checks.
    hs = high[1:]
    ls = low[1:]
    cs = close[1:]
    pcs = close[:n - 1]
    o = out[1:]
    zp = (high[0] - high[0]) + (low[0] - low[0]) + (close[0] - close[0])
    for i in range(n - 1):
        h = hs[i]
        lo = ls[i]
        c = cs[i]
        z = (h - h) + (lo - lo) + (c - c)
        o[i] = _true_range(h, lo, pcs[i]) + (z + zp)
        zp = z
    return out


@pjit
def trange_nb(high, low, close, out):
    """2-D :func:`trange_1d_nb`, columns in parallel."""
    for j in prange(close.shape[1]):
        trange_1d_nb(high[:, j], low[:, j], close[:, j], out[:, j])
    return out


# ---------------------------------------------------------------------- ATR
@jit
def atr_1d_nb(high, low, close, timeperiod, out):
    """Average true range with Wilder's smoothing; TA-Lib ``ATR``.

    Seeded with the mean of the first ``timeperiod`` true ranges (bars 1..p),
    then ``atr = (atr * (p - 1) + tr) / p``. Warm-up ``timeperiod``
    (``timeperiod=1`` gives TRANGE).
    """
    n = close.shape[0]
    p = timeperiod
    if p == 1:
        return trange_1d_nb(high, low, close, out)
    inv = 1.0 / p
    decay = (p - 1.0) / p
    i = 0
    while i < n:
        out[i] = NAN
        if _isnan3(high[i], low[i], close[i]):
            i += 1
            continue
        start = i
        i += 1
        total = 0.0
        while i < n and i < start + p:
            h = high[i]
            lo = low[i]
            c = close[i]
            if _isnan3(h, lo, c):
                break
            total += _true_range(h, lo, close[i - 1])
            out[i] = NAN
            i += 1
        if i < start + p or i >= n:
            continue
        h = high[i]
        lo = low[i]
        c = close[i]
        if _isnan3(h, lo, c):
            continue
        total += _true_range(h, lo, close[i - 1])
        atr = total / p
        out[i] = atr
        i = _atr_run(high, low, close, i + 1, atr, c, decay, inv, out)
    return out


@jit
def _atr_run(high, low, close, start, atr, prev_c, decay, inv, out):
    # Wilder steps from bar `start` until a NaN bar (returned) or the end. Views
    # indexed from 0 by a range() let LLVM drop numba's negative-index checks (one
    # compare-and-select per load otherwise).
    hs = high[start:]
    ls = low[start:]
    cs = close[start:]
    o = out[start:]
    m = hs.shape[0]
    # two bars a step: atr2 = d^2 * atr0 + (d * u1 + u2) leaves one fma per two
    # bars on the loop-carried chain, whose latency bounds the one-bar loop
    decay2 = decay * decay
    for k in range(m // 2):
        j = 2 * k
        h = hs[j]
        lo = ls[j]
        c = cs[j]
        h1 = hs[j + 1]
        lo1 = ls[j + 1]
        c1 = cs[j + 1]
        if _isnan3(h, lo, c) or _isnan3(h1, lo1, c1):
            return _atr_run1(high, low, close, start + j, atr, prev_c, decay, inv, out)
        u0 = _true_range(h, lo, prev_c) * inv
        u1 = _true_range(h1, lo1, c) * inv
        o[j] = fma(atr, decay, u0)
        atr = fma(atr, decay2, fma(u0, decay, u1))
        o[j + 1] = atr
        prev_c = c1
    j = m - m % 2
    return _atr_run1(high, low, close, start + j, atr, prev_c, decay, inv, out)


@jit
def _atr_run1(high, low, close, start, atr, prev_c, decay, inv, out):
    # one bar a step (the tail, and a pair with a NaN bar)
    hs = high[start:]
    ls = low[start:]
    cs = close[start:]
    o = out[start:]
    for j in range(hs.shape[0]):
        h = hs[j]
        lo = ls[j]
        c = cs[j]
        if _isnan3(h, lo, c):
            return start + j
        atr = fma(atr, decay, _true_range(h, lo, prev_c) * inv)
        prev_c = c
        o[j] = atr
    return start + hs.shape[0]


@pjit
def atr_nb(high, low, close, timeperiod, out):
    """2-D :func:`atr_1d_nb`, columns in parallel."""
    for j in prange(close.shape[1]):
        atr_1d_nb(high[:, j], low[:, j], close[:, j], timeperiod, out[:, j])
    return out


# -------------------------------------------------------------------- STOCH
#: Longest fast-k window scanned in full each bar; longer ones track their extremes.
_SCAN_MAX = 24

@jit
def _tracked_extremes(high, low, w0, i, hh, ll, hh_idx, ll_idx):
    """Highest high and lowest low of bars ``w0..i`` for long windows: update the
    tracked extremes, rescanning only when one has left the window."""
    h = high[i]
    lo = low[i]
    if hh_idx < w0:
        hh_idx = w0
        hh = high[w0]
        for t in range(w0 + 1, i + 1):
            if high[t] >= hh:
                hh = high[t]
                hh_idx = t
    elif h >= hh:
        hh = h
        hh_idx = i
    if ll_idx < w0:
        ll_idx = w0
        ll = low[w0]
        for t in range(w0 + 1, i + 1):
            if low[t] <= ll:
                ll = low[t]
                ll_idx = t
    elif lo <= ll:
        ll = lo
        ll_idx = i
    return hh, ll, hh_idx, ll_idx


@jit
def _fastk(c, hh, ll):
    rng = hh - ll
    return 100.0 * (c - ll) / rng if rng != 0.0 else 0.0


@jit
def stoch_1d_nb(high, low, close, fastk_period, slowk_period, slowd_period, out_slowk, out_slowd):
    """Slow stochastic; TA-Lib ``STOCH`` with SMA smoothing (``matype=0``).

    ``fastk = 100 * (c - LL) / (HH - LL)`` over ``fastk_period`` bars (0 when
    ``HH == LL``), ``slowk = SMA(fastk, slowk_period)``, ``slowd = SMA(slowk, slowd_period)``,
    i.e. ``fastk = 100 * (c - l.rolling(k).min()) / (h.rolling(k).max() - l.rolling(k).min())``
    then two ``rolling().mean()``. Warm-up ``fastk_period + slowk_period + slowd_period - 3``
    for both outputs.
    """
    n = close.shape[0]
    pk = fastk_period
    ps = slowk_period
    pd = slowd_period
    scan = pk <= _SCAN_MAX
    kbuf = np.empty(ps)  # the last ps fast-k values, a ring
    sbuf = np.empty(pd)  # the last pd slow-k values
    inv_k = 1.0 / ps
    inv_d = 1.0 / pd
    i = np.int64(0)  # int64 zeros, not literals: _tracked_extremes would compile twice (numba's first typing pass)
    while i < n:
        out_slowk[i] = NAN
        out_slowd[i] = NAN
        if _isnan3(high[i], low[i], close[i]):
            i += 1
            continue
        start = i
        hh_idx = np.int64(-1)
        ll_idx = np.int64(-1)
        hh = 0.0
        ll = 0.0
        ksum = 0.0
        ssum = 0.0
        kslot = 0
        sslot = 0
        ready = False
        # warm-up: fill the fast-k ring, then the slow-k ring, up to the first output
        while i < n:
            c = close[i]
            if _isnan3(high[i], low[i], c):
                break
            r = i - start
            w0 = max(i - pk + 1, start)
            if scan:
                hh = high[i]
                ll = low[i]
                t = w0
                while t < i:
                    if high[t] > hh:
                        hh = high[t]
                    if low[t] < ll:
                        ll = low[t]
                    t += 1
            else:
                hh, ll, hh_idx, ll_idx = _tracked_extremes(high, low, w0, i, hh, ll, hh_idx, ll_idx)
            out_slowk[i] = NAN
            out_slowd[i] = NAN
            i += 1
            rk = r - (pk - 1)  # index of this fast-k value
            if rk < 0:
                continue
            fk = _fastk(c, hh, ll)
            if rk >= ps:
                ksum += fk - kbuf[kslot]
            else:
                ksum += fk
            kbuf[kslot] = fk
            kslot += 1
            if kslot == ps:
                kslot = 0
            if rk < ps - 1:
                continue
            sk = ksum * inv_k
            ssum += sk  # the slow-k ring is not full before the first output
            sbuf[sslot] = sk
            sslot += 1
            if sslot == pd:
                sslot = 0
            if rk - (ps - 1) == pd - 1:
                out_slowk[i - 1] = sk
                out_slowd[i - 1] = ssum * inv_d
                ready = True
                break
        if not ready:
            continue
        # steady state: both rings full, their oldest entries at kslot / sslot
        while i < n:
            c = close[i]
            if _isnan3(high[i], low[i], c):
                break
            if scan:
                # short windows: rescanning (branch-free selects) beats tracking
                hh = high[i]
                ll = low[i]
                t = i - pk + 1
                while t < i:
                    if high[t] > hh:
                        hh = high[t]
                    if low[t] < ll:
                        ll = low[t]
                    t += 1
            else:
                hh, ll, hh_idx, ll_idx = _tracked_extremes(high, low, i - pk + 1, i, hh, ll, hh_idx, ll_idx)
            fk = _fastk(c, hh, ll)
            ksum += fk - kbuf[kslot]
            kbuf[kslot] = fk
            kslot += 1
            if kslot == ps:
                kslot = 0
            sk = ksum * inv_k
            ssum += sk - sbuf[sslot]
            sbuf[sslot] = sk
            sslot += 1
            if sslot == pd:
                sslot = 0
            out_slowk[i] = sk
            out_slowd[i] = ssum * inv_d
            i += 1
    return out_slowk, out_slowd


@pjit
def stoch_nb(high, low, close, fastk_period, slowk_period, slowd_period, out_slowk, out_slowd):
    """2-D :func:`stoch_1d_nb`, columns in parallel."""
    for j in prange(close.shape[1]):
        stoch_1d_nb(high[:, j], low[:, j], close[:, j], fastk_period, slowk_period, slowd_period,
                    out_slowk[:, j], out_slowd[:, j])
    return out_slowk, out_slowd


# ---------------------------------------------------------------------- OBV
@jit
def obv_1d_nb(close, volume, out):
    """On-balance volume; TA-Lib ``OBV``: starts at the first bar's volume, then
    adds the volume on up closes and subtracts it on down closes. Warm-up 0.
    Equals ``(np.sign(c.diff()).fillna(0) * v).cumsum() + v[0]``.
    """
    n = close.shape[0]
    i = 0
    while i < n:
        c = close[i]
        v = volume[i]
        if is_missing(c) or is_missing(v):
            out[i] = NAN
            i += 1
            continue
        obv = v
        prev = c
        out[i] = obv
        i += 1
        while i < n:
            c = close[i]
            v = volume[i]
            if is_missing(c) or is_missing(v):
                break
            # branch-free: up and down closes are a coin flip for the branch predictor
            obv += v * ((c > prev) * 1.0 - (c < prev) * 1.0)
            prev = c
            out[i] = obv
            i += 1
    return out


@pjit
def obv_nb(close, volume, out):
    """2-D :func:`obv_1d_nb`, columns in parallel."""
    for j in prange(close.shape[1]):
        obv_1d_nb(close[:, j], volume[:, j], out[:, j])
    return out


# ---------------------------------------------------------------------- ADX
@jit
def adx_1d_nb(high, low, close, timeperiod, out):
    """Average directional index with Wilder's smoothing; TA-Lib ``ADX``.

    ``+DM/-DM`` and ``TR`` are summed over the first ``p - 1`` changes, then
    Wilder-smoothed (``s = s - s/p + new``); ``DI = 100 * DM / TR``,
    ``DX = 100 * |+DI - -DI| / (+DI + -DI)``; the first ADX is the mean of the
    first ``p`` DX values, then ``adx = (adx * (p - 1) + dx) / p``. A bar whose
    TR or DI sum is 0 leaves the ADX unchanged. Warm-up ``2 * timeperiod - 1``.
    """
    n = close.shape[0]
    p = timeperiod
    pm1 = p - 1.0
    inv = 1.0 / p
    decay = (p - 1.0) / p
    i = 0
    while i < n:
        out[i] = NAN
        if _isnan3(high[i], low[i], close[i]):
            i += 1
            continue
        start = i
        prev_h = high[i]
        prev_l = low[i]
        prev_c = close[i]
        i += 1
        pdm = 0.0
        mdm = 0.0
        tr = 0.0
        sum_dx = 0.0
        adx = 0.0
        ready = False
        while i < n:
            h = high[i]
            lo = low[i]
            c = close[i]
            if _isnan3(h, lo, c):
                break
            r = i - start
            diff_p = h - prev_h
            diff_m = prev_l - lo
            if r >= p:
                mdm -= mdm / p
                pdm -= pdm / p
            if diff_m > 0 and diff_p < diff_m:
                mdm += diff_m
            elif diff_p > 0 and diff_p > diff_m:
                pdm += diff_p
            t = _true_range(h, lo, prev_c)
            if r >= p:
                tr = tr - tr / p + t
            else:
                tr += t
            prev_h = h
            prev_l = lo
            prev_c = c
            if r >= p and tr != 0.0:
                mdi = 100.0 * (mdm / tr)
                pdi = 100.0 * (pdm / tr)
                s = mdi + pdi
                if s != 0.0:
                    dx = 100.0 * (abs(mdi - pdi) / s)
                    if r < 2 * p:
                        sum_dx += dx
                    else:
                        adx = (adx * pm1 + dx) / p
            if r == 2 * p - 1:
                adx = sum_dx / p
            i += 1
            if r >= 2 * p - 1:
                out[i - 1] = adx
                ready = True
                break
            out[i - 1] = NAN
        if not ready:
            continue
        # Wilder's smoothing as fma(s, 1 - 1/p, new); DX from the smoothed DMs
        # directly (the 100/TR factors of the DIs cancel)
        while i < n:
            h = high[i]
            lo = low[i]
            c = close[i]
            if _isnan3(h, lo, c):
                break
            diff_p = h - prev_h
            diff_m = prev_l - lo
            dm_m = diff_m if (diff_m > 0) & (diff_p < diff_m) else 0.0
            dm_p = diff_p if (diff_p > 0) & (diff_p > diff_m) else 0.0
            mdm = fma(mdm, decay, dm_m)
            pdm = fma(pdm, decay, dm_p)
            tr = fma(tr, decay, _true_range(h, lo, prev_c))
            prev_h = h
            prev_l = lo
            prev_c = c
            dm_sum = mdm + pdm
            if tr != 0.0 and dm_sum != 0.0:
                adx = fma(adx, decay, (100.0 * inv) * (abs(mdm - pdm) / dm_sum))
            out[i] = adx
            i += 1
    return out


@pjit
def adx_nb(high, low, close, timeperiod, out):
    """2-D :func:`adx_1d_nb`, columns in parallel."""
    for j in prange(close.shape[1]):
        adx_1d_nb(high[:, j], low[:, j], close[:, j], timeperiod, out[:, j])
    return out
