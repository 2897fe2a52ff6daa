"""Slow, obviously correct pure-Python references for the indicator kernels.

Each indicator is written per clean segment straight from its definition
(windows recomputed from scratch, recursions spelled out), and
:func:`segmented` applies the NaN policy: a NaN in any input restarts the
indicator, as if the series began after it.
"""
from __future__ import annotations

import math

NAN = float("nan")


def _isnan(v: float) -> bool:
    return v != v


def segmented(fn, *series, n_out=1):
    """Run ``fn(*clean_segments) -> list (or tuple of lists)`` on each NaN-free run."""
    n = len(series[0])
    outs = [[NAN] * n for _ in range(n_out)]
    i = 0
    while i < n:
        if any(_isnan(s[i]) for s in series):
            i += 1
            continue
        j = i
        while j < n and not any(_isnan(s[j]) for s in series):
            j += 1
        res = fn(*[list(map(float, s[i:j])) for s in series])
        if n_out == 1:
            res = (res,)
        for o, r in zip(outs, res):
            o[i:j] = r
        i = j
    return outs[0] if n_out == 1 else tuple(outs)


# ------------------------------------------------------------------ per-segment definitions
def _sma(x, p):
    return [NAN if t < p - 1 else sum(x[t - p + 1:t + 1]) / p for t in range(len(x))]


def _ema(x, p, seed="sma"):
    k = 2.0 / (p + 1)
    out = [NAN] * len(x)
    if seed == "first":
        if x:
            m = x[0]
            out[0] = m
            for t in range(1, len(x)):
                m = m + k * (x[t] - m)
                out[t] = m
        return out
    if len(x) < p:
        return out
    m = sum(x[:p]) / p
    out[p - 1] = m
    for t in range(p, len(x)):
        m = m + k * (x[t] - m)
        out[t] = m
    return out


def _valid_tail(values):
    """Values after the leading NaNs, and how many NaNs were skipped."""
    lead = 0
    while lead < len(values) and _isnan(values[lead]):
        lead += 1
    return values[lead:], lead


def _ema_of(values, p):
    tail, lead = _valid_tail(values)
    return [NAN] * lead + _ema(tail, p)


def _wma(x, p):
    w = list(range(1, p + 1))
    return [NAN if t < p - 1 else sum(wi * xi for wi, xi in zip(w, x[t - p + 1:t + 1])) / sum(w)
            for t in range(len(x))]


def _dema(x, p):
    e1 = _ema(x, p)
    e2 = _ema_of(e1, p)
    return [2 * a - b for a, b in zip(e1, e2)]


def _tema(x, p):
    e1 = _ema(x, p)
    e2 = _ema_of(e1, p)
    e3 = _ema_of(e2, p)
    return [3 * a - 3 * b + c for a, b, c in zip(e1, e2, e3)]


def _kama(x, p):
    if p == 1:
        return list(x)
    out = [NAN] * len(x)
    if len(x) <= p:
        return out
    fast, slow = 2.0 / 3.0, 2.0 / 31.0
    m = x[p - 1]
    for t in range(p, len(x)):
        change = x[t] - x[t - p]
        path = sum(abs(x[i] - x[i - 1]) for i in range(t - p + 1, t + 1))
        er = 1.0 if path == 0 or path <= change else abs(change / path)
        sc = (er * (fast - slow) + slow) ** 2
        m = m + sc * (x[t] - m)
        out[t] = m
    return out


def _rsi(x, p):
    out = [NAN] * len(x)
    if len(x) <= p:
        return out
    d = [x[t] - x[t - 1] for t in range(1, len(x))]
    g = sum(max(v, 0.0) for v in d[:p]) / p
    lo = sum(max(-v, 0.0) for v in d[:p]) / p

    def val(g, lo):
        return 0.0 if g + lo == 0 else 100.0 * g / (g + lo)

    out[p] = val(g, lo)
    for t in range(p + 1, len(x)):
        v = d[t - 1]
        g = (g * (p - 1) + max(v, 0.0)) / p
        lo = (lo * (p - 1) + max(-v, 0.0)) / p
        out[t] = val(g, lo)
    return out


def _macd(x, fast, slow, signal):
    n = len(x)
    nan3 = ([NAN] * n, [NAN] * n, [NAN] * n)
    if n < slow:
        return nan3
    ks, kf = 2.0 / (slow + 1), 2.0 / (fast + 1)
    es = sum(x[:slow]) / slow
    ef = sum(x[slow - fast:slow]) / fast
    line = [NAN] * n
    line[slow - 1] = ef - es
    for t in range(slow, n):
        es = es + ks * (x[t] - es)
        ef = ef + kf * (x[t] - ef)
        line[t] = ef - es
    sig = _ema_of(line, signal)
    first = slow + signal - 2
    m = [v if t >= first else NAN for t, v in enumerate(line)]
    s = [v if t >= first else NAN for t, v in enumerate(sig)]
    return m, s, [a - b for a, b in zip(m, s)]


def _bbands(x, p, up, dn):
    mid = _sma(x, p)
    upper, lower = [NAN] * len(x), [NAN] * len(x)
    for t in range(p - 1, len(x)):
        w = x[t - p + 1:t + 1]
        mu = sum(w) / p
        sd = math.sqrt(sum((v - mu) ** 2 for v in w) / p)
        upper[t] = mid[t] + up * sd
        lower[t] = mid[t] - dn * sd
    return upper, mid, lower


def _tr(h, lo, c):
    return [NAN] + [max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1])) for t in range(1, len(c))]


def _atr(h, lo, c, p):
    tr = _tr(h, lo, c)
    if p == 1:
        return tr
    out = [NAN] * len(c)
    if len(c) <= p:
        return out
    a = sum(tr[1:p + 1]) / p
    out[p] = a
    for t in range(p + 1, len(c)):
        a = (a * (p - 1) + tr[t]) / p
        out[t] = a
    return out


def _stoch(h, lo, c, pk, ps, pd):
    n = len(c)
    fk = [NAN] * n
    for t in range(pk - 1, n):
        hh = max(h[t - pk + 1:t + 1])
        ll = min(lo[t - pk + 1:t + 1])
        fk[t] = 0.0 if hh == ll else 100.0 * (c[t] - ll) / (hh - ll)
    sk = [NAN] * n
    for t in range(pk + ps - 2, n):
        sk[t] = sum(fk[t - ps + 1:t + 1]) / ps
    sd = [NAN] * n
    first = pk + ps + pd - 3
    for t in range(first, n):
        sd[t] = sum(sk[t - pd + 1:t + 1]) / pd
    return [v if t >= first else NAN for t, v in enumerate(sk)], sd


def _obv(c, v):
    out = [NAN] * len(c)
    total = 0.0
    for t in range(len(c)):
        if t == 0:
            total = v[0]
        elif c[t] > c[t - 1]:
            total += v[t]
        elif c[t] < c[t - 1]:
            total -= v[t]
        out[t] = total
    return out


def _adx(h, lo, c, p):
    n = len(c)
    out = [NAN] * n
    if n < 2 * p:
        return out
    pdm = mdm = tr = 0.0
    dxs = []
    adx = NAN
    for t in range(1, n):
        up, down = h[t] - h[t - 1], lo[t - 1] - lo[t]
        plus = up if up > 0 and up > down else 0.0
        minus = down if down > 0 and down > up else 0.0
        r = max(h[t] - lo[t], abs(h[t] - c[t - 1]), abs(lo[t] - c[t - 1]))
        if t < p:  # plain sums over the first p-1 changes
            pdm, mdm, tr = pdm + plus, mdm + minus, tr + r
            continue
        pdm, mdm, tr = pdm - pdm / p + plus, mdm - mdm / p + minus, tr - tr / p + r
        dx = None
        if tr != 0:
            pdi, mdi = 100 * pdm / tr, 100 * mdm / tr
            if pdi + mdi != 0:
                dx = 100 * abs(pdi - mdi) / (pdi + mdi)
        if t < 2 * p:
            dxs.append(0.0 if dx is None else dx)
            if t == 2 * p - 1:
                adx = sum(dxs) / p
                out[t] = adx
            continue
        if dx is not None:
            adx = (adx * (p - 1) + dx) / p
        out[t] = adx
    return out


# ------------------------------------------------------------------ public references
def sma(x, timeperiod):
    return segmented(lambda s: _sma(s, timeperiod), x)


def ema(x, timeperiod, seed="sma"):
    return segmented(lambda s: _ema(s, timeperiod, seed), x)


def wma(x, timeperiod):
    return segmented(lambda s: _wma(s, timeperiod), x)


def dema(x, timeperiod):
    return segmented(lambda s: _dema(s, timeperiod), x)


def tema(x, timeperiod):
    return segmented(lambda s: _tema(s, timeperiod), x)


def kama(x, timeperiod):
    return segmented(lambda s: _kama(s, timeperiod), x)


def rsi(x, timeperiod):
    return segmented(lambda s: _rsi(s, timeperiod), x)


def macd(x, fastperiod, slowperiod, signalperiod):
    return segmented(lambda s: _macd(s, fastperiod, slowperiod, signalperiod), x, n_out=3)


def bbands(x, timeperiod, nbdevup, nbdevdn):
    return segmented(lambda s: _bbands(s, timeperiod, nbdevup, nbdevdn), x, n_out=3)


def trange(h, lo, c):
    return segmented(_tr, h, lo, c)


def atr(h, lo, c, timeperiod):
    return segmented(lambda a, b, d: _atr(a, b, d, timeperiod), h, lo, c)


def stoch(h, lo, c, fastk_period, slowk_period, slowd_period):
    return segmented(lambda a, b, d: _stoch(a, b, d, fastk_period, slowk_period, slowd_period), h, lo, c, n_out=2)


def obv(c, v):
    return segmented(_obv, c, v)


def adx(h, lo, c, timeperiod):
    return segmented(lambda a, b, d: _adx(a, b, d, timeperiod), h, lo, c)
