"""Timeframe strings (exchange style, e.g. ``"1m"``, ``"4h"``, ``"1d"``) and their lengths."""
from __future__ import annotations

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

#: Timeframes of fixed length, in milliseconds. ``1M`` (calendar month) is not fixed.
TIMEFRAME_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS, "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS, "12h": 12 * HOUR_MS,
    "1d": DAY_MS, "3d": 3 * DAY_MS, "1w": 7 * DAY_MS,
}

#: Every timeframe the fetcher understands (Binance's list, minus 1s).
TIMEFRAMES: tuple[str, ...] = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
                               "1d", "3d", "1w", "1M")


def timeframe_ms(timeframe: str) -> int:
    """Length of a fixed timeframe in milliseconds; ``ValueError`` for unknown or calendar ones."""
    try:
        return TIMEFRAME_MS[timeframe]
    except KeyError:
        if timeframe == "1M":
            raise ValueError("timeframe '1M' is a calendar month and has no fixed length") from None
        raise ValueError(f"unknown timeframe {timeframe!r}; expected one of {', '.join(TIMEFRAMES)}") from None


def bars_per_year(timeframe: str, days_per_year: float = 365.0) -> float:
    """Bars in a year of a 24/7 market (crypto: 365 days)."""
    return days_per_year * DAY_MS / timeframe_ms(timeframe)


def ms_to_index(ms, name: str = "time"):
    """UTC ``DatetimeIndex`` (nanosecond unit) from int64 epoch milliseconds."""
    import numpy as np
    import pandas as pd

    ms = np.asarray(ms, dtype=np.int64)
    return pd.DatetimeIndex(ms.astype("datetime64[ms]").astype("datetime64[ns]"), name=name).tz_localize("UTC")


def index_to_ms(index):
    """int64 epoch milliseconds from a DatetimeIndex (naive means UTC) of any unit."""
    import numpy as np
    import pandas as pd

    index = pd.DatetimeIndex(index)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.values.astype("datetime64[ms]").astype(np.int64)
