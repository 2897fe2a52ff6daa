"""Timeframe strings (exchange style, e.g. ``"1m"``, ``"4h"``, ``"1d"``) and their lengths."""
from __future__ import annotations

from typing import Any

from ._names import public_dir

__all__ = ["MINUTE_MS", "HOUR_MS", "DAY_MS", "TIMEFRAME_MS", "TIMEFRAMES", "timeframe_ms", "bars_per_year",
           "to_epoch_ms", "ms_to_index", "index_to_ms"]

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


def ms_to_index(ms: Any, name: str = "time") -> Any:
    """UTC ``DatetimeIndex`` (nanosecond unit) from int64 epoch milliseconds."""
    import numpy as np
    import pandas as pd

    ms = np.asarray(ms, dtype=np.int64)
    return pd.DatetimeIndex(ms.astype("datetime64[ms]").astype("datetime64[ns]"), name=name).tz_localize("UTC")


def index_to_ms(index: Any) -> Any:
    """int64 epoch milliseconds from a DatetimeIndex (naive means UTC) of any unit: :func:`to_epoch_ms`."""
    import pandas as pd

    return to_epoch_ms(pd.DatetimeIndex(index), "index")


_INT64_MAX = 2 ** 63 - 1


def to_epoch_ms(value: Any, name: str = "time") -> Any:
    """int64 UTC epoch milliseconds from any way of writing a time: THE conversion of nbtrade.

    Parameters
    ----------
    value : a time or many times
        Scalars: an int (already epoch ms), a whole float, an ISO string, a
        ``datetime``/``date``, a ``pd.Timestamp`` or an ``np.datetime64``.
        Arrays: a ``DatetimeIndex``, a datetime ``Series``, a ``datetime64`` array
        or an integer array (epoch ms). Any resolution (s, ms, us, ns) and any
        time zone; naive times mean UTC.
    name : the argument's name, for error messages.

    Returns
    -------
    int for a scalar, an int64 ``ndarray`` for many times. Sub-millisecond
    parts are floored (towards the past), so a bar's time never moves later.

    Raises
    ------
    TypeError for a bool or a value that is not a time; ValueError for NaT,
    unparsable strings, fractional floats and ints outside int64.

    >>> to_epoch_ms("1970-01-01 00:00:01")
    1000
    >>> to_epoch_ms(pd.DatetimeIndex(["2024-01-01 09:00"], tz="Asia/Tokyo").as_unit("s"))
    array([1704067200000])
    """
    import datetime as dt

    import numpy as np
    import pandas as pd

    if value is None:
        raise ValueError(f"{name} is missing: give a time (epoch ms, ISO string, Timestamp)")
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a time, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if not -_INT64_MAX - 1 <= int(value) <= _INT64_MAX:
            raise ValueError(f"{name}={value} is outside int64 epoch milliseconds")
        return int(value)
    if isinstance(value, (float, np.floating)):  # pandas would read a float as nanoseconds
        if not (np.isfinite(value) and float(value).is_integer() and abs(value) <= 2.0 ** 63):
            raise ValueError(f"{name} as a number must be whole epoch milliseconds, got {value!r}")
        return int(value)
    if isinstance(value, (str, dt.date, np.datetime64, pd.Timestamp)):
        try:
            stamp = pd.Timestamp(value)
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"{name} must be a time (epoch ms, ISO string, Timestamp), got {value!r}") from exc
        if stamp is pd.NaT:
            raise ValueError(f"{name} is NaT: give a real time")
        if stamp.tzinfo is not None:
            stamp = stamp.tz_convert("UTC").tz_localize(None)
        return int(stamp.to_datetime64().astype("datetime64[ms]").astype(np.int64))
    if isinstance(value, pd.Series):
        value = value.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(value.dtype, pd.DatetimeTZDtype) \
            else value
        arr = value.to_numpy()
    elif isinstance(value, pd.DatetimeIndex):
        arr = (value.tz_convert(None) if value.tz is not None else value).to_numpy()  # UTC, the index's unit
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must be a time or times, got {type(value).__name__}") from exc
    if arr.dtype.kind == "M":
        nat = np.isnat(arr)
        if nat.any():
            raise ValueError(f"{name} holds NaT at position {int(np.argmax(nat))}: drop or fill it first")
        return arr.astype("datetime64[ms]").astype(np.int64)
    if arr.dtype.kind in "iu" and arr.dtype != np.uint64:
        return arr.astype(np.int64)
    if arr.dtype.kind in "OUS" and arr.size:
        try:
            times = pd.DatetimeIndex(pd.to_datetime(arr.ravel(), utc=True, format="ISO8601"))
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"{name} must hold times (ISO strings, Timestamps), got {arr.ravel()[0]!r}") from exc
        return to_epoch_ms(times, name).reshape(arr.shape)
    raise TypeError(f"{name} must be a time or times (epoch ms, ISO strings, Timestamps, DatetimeIndex), "
                    f"got {type(value).__name__} of dtype {arr.dtype}")


__dir__ = public_dir(__all__)
