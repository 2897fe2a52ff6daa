"""Slow, obviously correct pure-Python references for nbtrade.stats / kernels.rolling.

Each recomputes every window from scratch with exact-ish summation (math.fsum),
pandas' NaN rules: NaNs (and +-inf, which pandas' rolling turns into NaN) in the
window are skipped, NaN below ``minp`` values.
"""
from __future__ import annotations

import math

import numpy as np

NAN = float("nan")


def _windows(x, window):
    for t in range(len(x)):
        vals = [float(v) for v in x[max(0, t - window + 1): t + 1]]
        yield t, [v for v in vals if math.isfinite(v)]


def _var(vals, ddof):
    m = math.fsum(vals) / len(vals)
    return math.fsum((v - m) ** 2 for v in vals) / (len(vals) - ddof)


def rolling(x, window, minp, stat, ddof=1):
    out = np.full(len(x), NAN)
    for t, vals in _windows(x, window):
        if len(vals) < minp:
            continue
        if stat == "sum":
            out[t] = math.fsum(vals)
        elif stat == "mean":
            out[t] = math.fsum(vals) / len(vals)
        elif stat == "min":
            out[t] = min(vals)
        elif stat == "max":
            out[t] = max(vals)
        elif stat in ("var", "std", "zscore"):
            if len(vals) <= ddof:
                continue
            var = 0.0 if len(set(vals)) == 1 else _var(vals, ddof)
            if stat == "var":
                out[t] = var
            elif stat == "std":
                out[t] = math.sqrt(var)
            elif var > 0 and math.isfinite(x[t]):
                out[t] = (x[t] - math.fsum(vals) / len(vals)) / math.sqrt(var)
    return out


def _pairs(x, y, window):
    for t in range(len(x)):
        lo = max(0, t - window + 1)
        yield t, [(float(a), float(b)) for a, b in zip(x[lo:t + 1], y[lo:t + 1])
                  if math.isfinite(a) and math.isfinite(b)]


def rolling_pair(x, y, window, minp, stat, ddof=1):
    """stat: corr, beta (of y on x), cov."""
    out = np.full(len(x), NAN)
    for t, pairs in _pairs(x, y, window):
        n = len(pairs)
        if n < max(minp, 2) or n <= ddof:
            continue
        xs = [p[0] for p in pairs]
        ys = [p[1] for p in pairs]
        mx = math.fsum(xs) / n
        my = math.fsum(ys) / n
        sxx = 0.0 if len(set(xs)) == 1 else math.fsum((a - mx) ** 2 for a in xs)
        syy = 0.0 if len(set(ys)) == 1 else math.fsum((b - my) ** 2 for b in ys)
        sxy = math.fsum((a - mx) * (b - my) for a, b in pairs)
        if stat == "corr":
            if sxx > 0 and syy > 0:
                out[t] = sxy / math.sqrt(sxx * syy)
        elif stat == "beta":
            if sxx > 0:
                out[t] = sxy / sxx
        else:
            out[t] = (0.0 if sxx == 0 or syy == 0 else sxy) / (n - ddof)
    return out


def rolling_vwap(price, volume, window, minp):
    out = np.full(len(price), NAN)
    for t, pairs in _pairs(price, volume, window):
        if len(pairs) < minp:
            continue
        v = math.fsum(b for _, b in pairs)
        if v != 0:
            out[t] = math.fsum(a * b for a, b in pairs) / v
    return out


def ret(x, n, log):
    out = np.full(len(x), NAN)
    for t in range(n, len(x)):
        a, b = float(x[t]), float(x[t - n])
        if math.isnan(a) or math.isnan(b) or b == 0:
            continue
        r = a / b
        out[t] = (math.log(r) if r > 0 else (-math.inf if r == 0 else NAN)) if log else r - 1.0
    return out


def ema(x, span, seed="sma"):
    """TA-Lib's EMA (seed 'sma') or pandas ewm(adjust=False) (seed 'first') with
    nbtrade's NaN policy: NaN bars give NaN and are skipped."""
    k = 2.0 / (span + 1)
    out = np.full(len(x), NAN)
    seen = []
    e = NAN
    for t, v in enumerate(x):
        v = float(v)
        if math.isnan(v):
            continue
        seen.append(v)
        if seed == "first":
            e = v if len(seen) == 1 else (v - e) * k + e
            out[t] = e
        elif len(seen) == span:
            e = sum(seen) / span
            out[t] = e
        elif len(seen) > span:
            e = (v - e) * k + e
            out[t] = e
    return out


def sma(x, window):
    return rolling(x, window, window, "mean") if len(x) else np.array([])
