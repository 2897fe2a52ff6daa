"""Deterministic synthetic crypto markets: the embedded default data of nbtrade.

Prices follow a geometric random walk whose volatility clusters (GARCH(1,1)),
with occasional jumps, fat-tailed shocks and an intraday seasonality of volume
(and, more mildly, of volatility). Bars are keyed by open time on the
timeframe grid, UTC. The same arguments always give identical bytes.
"""
from __future__ import annotations

import zlib
from typing import Iterable

import numpy as np
import pandas as pd

from .timeframes import DAY_MS, ms_to_index, timeframe_ms, to_epoch_ms

COLUMNS = ("open", "high", "low", "close", "volume")

# A few familiar starting prices so demo output looks plausible; others are
# drawn from the symbol's own seed.
_START_PRICES = {"BTC": 30_000.0, "ETH": 2_000.0, "BNB": 300.0, "SOL": 40.0, "XRP": 0.5,
                 "ADA": 0.35, "DOGE": 0.08, "LTC": 90.0, "DOT": 6.0, "AVAX": 15.0}

_YEAR_MS = 365 * DAY_MS


#: Old private name of the time conversion, still used by ``data/mock.py`` and ``bench/``.
_to_ms = to_epoch_ms


def symbol_seed(symbol: str, seed: int) -> np.random.SeedSequence:
    """Independent, platform-stable random stream for one symbol."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(symbol.encode())])


def grid(start: str | int | pd.Timestamp, end: str | int | pd.Timestamp, timeframe: str) -> np.ndarray:
    """Open times (int64 ms, UTC) of the bars in ``[start, end)``, aligned to the timeframe."""
    step = timeframe_ms(timeframe)
    lo, hi = to_epoch_ms(start, "start"), to_epoch_ms(end, "end")
    if hi < lo:
        raise ValueError(f"end ({end}) is before start ({start})")
    first = -(-lo // step) * step
    return np.arange(first, hi, step, dtype=np.int64)


def candles(symbol: str, start: str | int | pd.Timestamp, end: str | int | pd.Timestamp,
            timeframe: str = "1m", seed: int = 0, gaps: float = 0.0,
            annual_vol: float | None = None) -> dict[str, np.ndarray]:
    """Raw arrays for one symbol: ``time`` (int64 ms) and float64 OHLCV columns.

    Parameters
    ----------
    gaps : float
        Expected share of bars missing, removed in runs (maintenance outages).
        0 (default) gives a complete grid.
    annual_vol : float, optional
        Long-run annualised volatility (fraction); drawn per symbol when omitted.
    """
    from .kernels.synthetic import garch_returns_1d_nb, ohlc_from_returns_1d_nb

    if not 0.0 <= gaps < 1.0:
        raise ValueError(f"gaps must be in [0, 1), got {gaps}")
    times = grid(start, end, timeframe)
    n = times.shape[0]
    rng = np.random.default_rng(symbol_seed(symbol, seed))
    base = symbol.split("/")[0].upper()
    start_price = _START_PRICES.get(base, float(np.exp(rng.uniform(np.log(0.05), np.log(500.0)))))
    vol = float(annual_vol) if annual_vol is not None else float(rng.uniform(0.5, 1.0))
    bar_var = vol * vol * timeframe_ms(timeframe) / _YEAR_MS
    alpha, beta = 0.06, 0.92
    omega = bar_var * (1.0 - alpha - beta)

    # Student-t(5) shocks scaled to unit variance: fat tails as in real crypto returns.
    z = rng.standard_t(5, size=n) * np.sqrt(3.0 / 5.0)
    hour = (times // 3_600_000) % 24
    season = 1.0 + 0.35 * np.cos(2.0 * np.pi * (hour - 15) / 24.0)  # busiest around 15:00 UTC
    if timeframe_ms(timeframe) < DAY_MS:
        z *= np.sqrt(season / season.mean())
    jump_mask = rng.random(n) < min(1.0, 2.0 * timeframe_ms(timeframe) / DAY_MS / 30.0)  # ~2 per month
    jumps = np.where(jump_mask, rng.normal(0.0, 8.0 * np.sqrt(bar_var), n), 0.0)
    jumps -= 0.5 * bar_var  # zero drift in price, not in log price
    log_ret = np.empty(n)
    garch_returns_1d_nb(z, jumps, omega, alpha, beta, bar_var, log_ret)

    sigma = np.sqrt(bar_var)
    wick_up = np.abs(rng.normal(0.0, 0.6 * sigma, n))
    wick_dn = np.abs(rng.normal(0.0, 0.6 * sigma, n))

    base_volume = 1e6 / start_price * timeframe_ms(timeframe) / DAY_MS
    activity = 1.0 + 20.0 * np.abs(log_ret) / sigma * 0.1
    volume = base_volume * season * activity * rng.lognormal(0.0, 0.5, n)
    # real candles open a hair away from the previous close (trades between the two prints):
    # fill="close" and fill="next_open" then differ as they do on real data. Drawn last so
    # closes and volumes are the same as without gaps.
    open_gap = np.concatenate(([0.0], rng.normal(0.0, 0.1 * sigma, max(n - 1, 0))))[:n]
    o, h, l, c = (np.empty(n) for _ in range(4))
    ohlc_from_returns_1d_nb(start_price, log_ret, wick_up, wick_dn, open_gap, o, h, l, c)

    out = {"time": times, "open": o, "high": h, "low": l, "close": c, "volume": volume}
    if gaps > 0.0 and n:
        keep = _gap_mask(rng, n, gaps)
        out = {k: v[keep] for k, v in out.items()}
    return out


def _gap_mask(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """Boolean mask dropping about ``share`` of bars in runs of 1 to 300 bars."""
    keep = np.ones(n, dtype=bool)
    mean_run = 60.0
    n_runs = max(1, int(round(share * n / mean_run)))
    starts = rng.integers(1, max(2, n - 1), n_runs)
    lengths = rng.integers(1, 2 * int(mean_run), n_runs)
    for s, ln in zip(starts, lengths):
        keep[s:s + ln] = False
    keep[0] = True
    return keep


def market(symbols: str | Iterable[str], start: str | int | pd.Timestamp = "2024-01-01",
           end: str | int | pd.Timestamp = "2024-01-08", timeframe: str = "1m", seed: int = 0,
           gaps: float = 0.0) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Deterministic OHLCV candles for one symbol (DataFrame) or several (dict of DataFrames).

    Each frame has a UTC ``DatetimeIndex`` named ``time`` of candle open times on
    the timeframe grid in ``[start, end)``, and float64 columns
    ``open, high, low, close, volume`` with ``low <= open, close <= high`` and
    ``volume >= 0``. Symbols are independent and reproducible on their own: the
    candles of ``"BTC/USDT"`` do not depend on which other symbols are asked for.

    >>> df = market("BTC/USDT", "2024-01-01", "2024-01-02", "1h", seed=1)
    >>> df.shape
    (24, 5)
    """
    single = isinstance(symbols, str)
    names = [symbols] if single else list(symbols)
    if not names:
        raise ValueError("symbols must name at least one symbol")
    frames = {}
    for name in names:
        raw = candles(name, start, end, timeframe, seed=seed, gaps=gaps)
        index = ms_to_index(raw.pop("time"))
        frames[name] = pd.DataFrame(raw, index=index, columns=list(COLUMNS))
    return frames[names[0]] if single else frames


# --------------------------------------------------------------------------- planted signal

#: Observable drivers of the planted drift, as computed by :func:`planted_features`.
PLANTED_FEATURES = ("ret_z1", "ret_z6", "vol_ratio", "clv")

_EWM_ALPHA = 0.06  # EWMA variance weight of the planted volatility estimate


def _planted_drift(r: np.ndarray, wick_up: np.ndarray, wick_dn: np.ndarray, log_vol_ratio: np.ndarray,
                   var0: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Add the planted drift to log returns ``r`` in place, sequentially (the drift reacts to itself).

    Drift of bar t+1 = scale * sigma_t * g_t, with g a nonlinear function of the
    observable state after bar t's close (see :func:`planted_market`).
    Returns (r, g).
    """
    import math

    n = r.shape[0]
    g = np.zeros(n)
    rl, wu, wd, lv = r.tolist(), wick_up.tolist(), wick_dn.tolist(), log_vol_ratio.tolist()
    var = var0
    window = [0.0] * 6
    drift = 0.0
    sqrt6 = math.sqrt(6.0)
    for t in range(n):
        rt = rl[t] + drift
        rl[t] = rt
        var = (1.0 - _EWM_ALPHA) * var + _EWM_ALPHA * rt * rt
        s = math.sqrt(var)
        window[t % 6] = rt
        z1 = rt / s
        z6 = sum(window) / (s * sqrt6)
        c = math.exp(rt)
        hi = max(1.0, c) * math.exp(wu[t])
        lo = min(1.0, c) * math.exp(-wd[t])
        clv = 2.0 * (c - lo) / (hi - lo) - 1.0 if hi > lo else 0.0
        gt = (math.tanh(1.5 * z1) * math.tanh(2.0 * lv[t])
              - (0.6 * math.tanh(z6) if abs(z6) > 1.0 else 0.0)
              + 0.5 * clv * abs(clv))
        g[t] = gt
        drift = scale * s * gt
    r[:] = rl
    return r, g


def planted_market(symbols: str | Iterable[str], start: str | int | pd.Timestamp = "2024-01-01",
                   end: str | int | pd.Timestamp = "2025-01-01", timeframe: str = "1h", seed: int = 0,
                   strength: float = 1.0, return_info: bool = False) -> object:
    """Synthetic candles carrying a weak, known, nonlinear predictable component.

    The noise is exactly :func:`market`'s (same seed, same symbols); on top of it,
    the log return of bar t+1 gets a drift ``0.5 * strength * sigma_t * g_t``
    where sigma_t is an EWMA (alpha 0.06) volatility of past returns and

    ``g_t = tanh(1.5 z1) * tanh(2 vr) - 0.6 tanh(z6) [|z6| > 1] + 0.5 clv |clv|``

    with, all observable at bar t's close: ``z1`` the last return over sigma_t
    (momentum on high volume, reversal on low volume), ``vr`` the log volume over
    its 24-bar mean, ``z6`` the 6-bar return in sigma units (reversal after large
    moves) and ``clv`` the close location in the bar's range, in [-1, 1].
    At ``strength=1`` a 100-tree depth-8 random forest on :func:`planted_features`
    reaches about 0.6 out-of-sample accuracy on the next bar's direction.
    ``strength=0`` gives :func:`market`'s candles exactly (pure noise).

    Parameters
    ----------
    strength : float
        Size of the planted drift (>= 0).
    return_info : bool
        Also return ``{"features": PLANTED_FEATURES, "g": {symbol: Series}}``,
        ``g`` being the true signal (aligned: g at t drives the return of t+1).

    Returns
    -------
    DataFrame for one symbol, dict of DataFrames for several, (and info).
    """
    from .kernels.synthetic import ohlc_from_returns_1d_nb

    if not np.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite number >= 0, got {strength!r}")
    single = isinstance(symbols, str)
    names = [symbols] if single else list(symbols)
    base = market(names, start, end, timeframe, seed=seed)
    frames, signal = {}, {}
    for name in names:
        df = base[name]
        if strength == 0.0 or len(df) == 0:
            frames[name] = df
            signal[name] = pd.Series(np.zeros(len(df)), index=df.index, name="g")
            continue
        o, h, l, c = (df[k].to_numpy() for k in ("open", "high", "low", "close"))
        r = np.log(c / o)
        wick_up = np.log(h / np.maximum(o, c))
        wick_dn = np.log(np.minimum(o, c) / l)
        logv = np.log(df["volume"].to_numpy())
        lvr = logv - pd.Series(logv).rolling(24, min_periods=1).mean().to_numpy()
        var0 = float(np.var(r))
        r, g = _planted_drift(r.copy(), wick_up, wick_dn, lvr, var0, 0.5 * float(strength))
        n = r.shape[0]
        oo, hh, ll, cc = (np.empty(n) for _ in range(4))
        ohlc_from_returns_1d_nb(float(o[0]), r, wick_up, wick_dn, np.zeros(n), oo, hh, ll, cc)
        frames[name] = pd.DataFrame({"open": oo, "high": hh, "low": ll, "close": cc,
                                     "volume": df["volume"].to_numpy()}, index=df.index, columns=list(COLUMNS))
        signal[name] = pd.Series(g, index=df.index, name="g")
    out = frames[names[0]] if single else frames
    if return_info:
        return out, {"features": PLANTED_FEATURES, "g": signal[names[0]] if single else signal}
    return out


def planted_features(df: pd.DataFrame, extra: int = 0, seed: int = 0) -> pd.DataFrame:
    """Causal features of one OHLCV frame: the planted drivers, optional decoys.

    Columns :data:`PLANTED_FEATURES` (value at t uses bars up to t), then
    ``extra`` more: lagged copies, returns over other horizons, rolling
    volatilities, range and volume statistics, which carry little or no
    extra signal (to pad a realistic feature set, e.g. 30 columns). Warm-up
    rows (about 48) hold NaN.
    """
    if extra < 0:
        raise ValueError(f"extra must be >= 0, got {extra}")
    o, h, l, c, v = (df[k] for k in COLUMNS)
    r = np.log(c / o)
    sigma = np.sqrt((r * r).ewm(alpha=_EWM_ALPHA, adjust=False).mean())
    logv = np.log(v)
    rng_ = (h - l).where(h > l)
    feats = {
        "ret_z1": r / sigma,
        "ret_z6": r.rolling(6).sum() / (sigma * np.sqrt(6.0)),
        "vol_ratio": logv - logv.rolling(24, min_periods=1).mean(),
        "clv": (2.0 * (c - l) / rng_ - 1.0).fillna(0.0),
    }
    pool: list[tuple[str, pd.Series]] = []
    for lag in (1, 2, 3):
        pool += [(f"ret_z1_lag{lag}", feats["ret_z1"].shift(lag)), (f"vol_ratio_lag{lag}", feats["vol_ratio"].shift(lag)),
                 (f"clv_lag{lag}", feats["clv"].shift(lag))]
    for w in (3, 12, 24, 48):
        pool += [(f"ret_z{w}", r.rolling(w).sum() / (sigma * np.sqrt(w))), (f"vol{w}", r.rolling(w).std() / sigma)]
    for w in (12, 48):
        pool += [(f"range{w}", (np.log(h / l)).rolling(w).mean() / sigma),
                 (f"volume_z{w}", (logv - logv.rolling(w).mean()) / logv.rolling(w).std())]
    pool += [("sigma_ratio", sigma / sigma.rolling(48).mean()), ("upper_wick", np.log(h / np.maximum(o, c)) / sigma),
             ("lower_wick", np.log(np.minimum(o, c) / l) / sigma)]
    rng = np.random.default_rng(seed)
    k = 0
    while len(pool) < extra:  # pure-noise decoys beyond the derived pool
        pool.append((f"noise{k}", pd.Series(rng.standard_normal(len(df)), index=df.index)))
        k += 1
    for name, s in pool[:extra]:
        feats[name] = s
    out = pd.DataFrame(feats, index=df.index)
    out.iloc[:48] = np.nan
    return out.astype(np.float64)
