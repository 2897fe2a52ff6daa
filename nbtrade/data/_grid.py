"""Candle open-time grids of exchange timeframes, including calendar months and Monday weeks.

Binance opens ``1w`` candles on Mondays 00:00 UTC (epoch day 4) and ``1M``
candles on the first day of each month; every other timeframe is a multiple of
its length since the epoch. All times are int64 UTC milliseconds.
"""
from __future__ import annotations

import numpy as np

from ..timeframes import DAY_MS, TIMEFRAMES, timeframe_ms

WEEK_OFFSET_MS = 4 * DAY_MS  # 1970-01-05 was a Monday


def _check(timeframe: str) -> None:
    if timeframe not in TIMEFRAMES and timeframe != "1s":
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}")


def _offset(timeframe: str) -> int:
    return WEEK_OFFSET_MS if timeframe == "1w" else 0


def floor_open(t: int, timeframe: str) -> int:
    """Open time of the candle containing ``t``."""
    _check(timeframe)
    if timeframe == "1M":
        month = np.datetime64(int(t), "ms").astype("datetime64[M]")
        return int(month.astype("datetime64[ms]").astype(np.int64))
    step, off = timeframe_ms(timeframe), _offset(timeframe)
    return (int(t) - off) // step * step + off


def ceil_open(t: int, timeframe: str) -> int:
    """First open time ``>= t``."""
    f = floor_open(t, timeframe)
    return f if f == int(t) else next_open(f, timeframe)


def next_open(t: int, timeframe: str) -> int:
    """Open time of the candle after the one opening at ``t`` (``t`` on the grid)."""
    if timeframe == "1M":
        month = np.datetime64(int(t), "ms").astype("datetime64[M]") + 1
        return int(month.astype("datetime64[ms]").astype(np.int64))
    return int(t) + timeframe_ms(timeframe)


def on_grid(times: np.ndarray, timeframe: str) -> np.ndarray:
    """Boolean mask: which open times lie on the timeframe's grid."""
    _check(timeframe)
    times = np.asarray(times, dtype=np.int64)
    if timeframe == "1M":
        months = times.astype("datetime64[ms]").astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
        return months == times
    return (times - _offset(timeframe)) % timeframe_ms(timeframe) == 0


def opens_between(start: int, end: int, timeframe: str) -> np.ndarray:
    """Open times in ``[start, end)`` on the grid."""
    first = ceil_open(start, timeframe)
    if first >= end:
        return np.empty(0, dtype=np.int64)
    if timeframe == "1M":
        m0 = np.datetime64(first, "ms").astype("datetime64[M]")
        m1 = np.datetime64(int(end) - 1, "ms").astype("datetime64[M]") + 1
        return np.arange(m0, m1).astype("datetime64[ms]").astype(np.int64)
    return np.arange(first, int(end), timeframe_ms(timeframe), dtype=np.int64)


def count_between(start: int, end: int, timeframe: str) -> int:
    """Number of grid points in ``[start, end)``."""
    if timeframe == "1M":
        return int(opens_between(start, end, timeframe).shape[0])
    first = ceil_open(start, timeframe)
    return max(0, -(-(int(end) - first) // timeframe_ms(timeframe)))
