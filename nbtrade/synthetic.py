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

from .timeframes import DAY_MS, ms_to_index, timeframe_ms

COLUMNS = ("open", "high", "low", "close", "volume")

# A few familiar starting prices so demo output looks plausible; others are
# drawn from the symbol's own seed.
_START_PRICES = {"BTC": 30_000.0, "ETH": 2_000.0, "BNB": 300.0, "SOL": 40.0, "XRP": 0.5,
                 "ADA": 0.35, "DOGE": 0.08, "LTC": 90.0, "DOT": 6.0, "AVAX": 15.0}

_YEAR_MS = 365 * DAY_MS


def _to_ms(ts: str | int | pd.Timestamp) -> int:
    if isinstance(ts, (int, np.integer)):
        return int(ts)
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value // 1_000_000)


def symbol_seed(symbol: str, seed: int) -> np.random.SeedSequence:
    """Independent, platform-stable random stream for one symbol."""
    return np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(symbol.encode())])


def grid(start: str | int | pd.Timestamp, end: str | int | pd.Timestamp, timeframe: str) -> np.ndarray:
    """Open times (int64 ms, UTC) of the bars in ``[start, end)``, aligned to the timeframe."""
    step = timeframe_ms(timeframe)
    lo, hi = _to_ms(start), _to_ms(end)
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
    open_gap = np.zeros(n)
    o, h, l, c = (np.empty(n) for _ in range(4))
    ohlc_from_returns_1d_nb(start_price, log_ret, wick_up, wick_dn, open_gap, o, h, l, c)

    base_volume = 1e6 / start_price * timeframe_ms(timeframe) / DAY_MS
    activity = 1.0 + 20.0 * np.abs(log_ret) / sigma * 0.1
    volume = base_volume * season * activity * rng.lognormal(0.0, 0.5, n)

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
