"""Candle validation (before anything is written) and integrity checks (``verify``).

Rules for OHLCV candles keyed by open time (int64 UTC ms):
``time`` strictly increasing (sorted, no duplicates) and on the timeframe grid;
no NaN or infinity; prices > 0; ``volume >= 0``;
``low <= min(open, close)`` and ``high >= max(open, close)`` (hence ``high >= low``).
"""
from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

from .layout import FUNDING_COLUMNS, MARK_COLUMNS, VALUE_COLUMNS


def _iso(ms: int) -> str:
    return str(np.datetime64(int(ms), "ms")) + "Z"


def to_arrays(data: Any, name: str = "data", value_columns: tuple[str, ...] = VALUE_COLUMNS
              ) -> dict[str, np.ndarray]:
    """``{'time': int64 ms, 'open'..'volume': float64}`` from a DataFrame or a dict of arrays.

    A DataFrame is keyed by a DatetimeIndex (naive means UTC) or has a ``time``
    column (int ms or datetimes); it must have exactly the columns
    ``open, high, low, close, volume`` besides. A dict needs exactly
    ``time, open, high, low, close, volume``.
    """
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(data, pd.DataFrame):
        frame = data
        if "time" in frame.columns:
            raw_time = frame["time"]
            values = frame.drop(columns="time")
        elif isinstance(frame.index, pd.DatetimeIndex):
            raw_time = frame.index
            values = frame
        else:
            raise ValueError(f"{name}: a DataFrame needs a DatetimeIndex or a 'time' column, "
                             f"got index of type {type(frame.index).__name__}")
        _check_columns(list(values.columns), value_columns, name)
        if isinstance(raw_time, pd.DatetimeIndex) or getattr(raw_time, "dtype", None) is not None and \
                pd.api.types.is_datetime64_any_dtype(raw_time):
            from ..timeframes import index_to_ms

            time = index_to_ms(pd.DatetimeIndex(raw_time))
        else:
            time = np.asarray(raw_time)
        cols = {c: values[c].to_numpy() for c in value_columns}
    elif isinstance(data, Mapping):
        _check_columns(list(data.keys()), ("time",) + value_columns, name)
        time = np.asarray(data["time"])
        cols = {c: np.asarray(data[c]) for c in value_columns}
    else:
        raise TypeError(f"{name} must be a DataFrame or a dict of arrays, got {type(data).__name__}")

    if time.dtype.kind not in "iu":
        if time.dtype.kind == "M":
            time = time.astype("datetime64[ms]").astype(np.int64)
        else:
            raise TypeError(f"{name}: 'time' must be int64 epoch ms or datetimes, got dtype {time.dtype}")
    out = {"time": np.ascontiguousarray(time, dtype=np.int64)}
    n = out["time"].shape[0]
    if out["time"].ndim != 1:
        raise ValueError(f"{name}: 'time' must be 1-D, got shape {out['time'].shape}")
    for c in value_columns:
        arr = cols[c]
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name}: column {c!r} must be numeric, got dtype {arr.dtype}")
        if arr.shape != (n,):
            raise ValueError(f"{name}: column {c!r} has shape {arr.shape}, 'time' has ({n},)")
        out[c] = np.ascontiguousarray(arr, dtype=np.float64)
    return out


def _check_columns(got: list, expected: tuple[str, ...], name: str) -> None:
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        raise ValueError(f"{name}: wrong columns ({'; '.join(parts)}); expected {list(expected)}")


def candle_problems(a: Mapping[str, np.ndarray], tf_ms: int, limit: int = 5) -> list[str]:
    """Human-readable rule violations of candle arrays (empty list when clean)."""
    t = a["time"]
    problems: list[str] = []

    def report(mask: np.ndarray, what: str, offset: int = 0) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            rows = ", ".join(f"{i + offset} ({_iso(t[i + offset])})" for i in bad[:limit])
            more = f" and {bad.size - limit} more" if bad.size > limit else ""
            problems.append(f"{what} at row {rows}{more}")

    if t.size > 1:
        d = np.diff(t)
        report(d < 0, "time not sorted", 1)
        report(d == 0, "duplicate time", 1)
    if tf_ms:
        report(t % tf_ms != 0, f"time not on the {tf_ms} ms grid")
    o, h, lo, c, v = (a[k] for k in VALUE_COLUMNS)
    finite = np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)
    report(~finite, "NaN or infinite value")
    with np.errstate(invalid="ignore"):
        report(finite & ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)), "non-positive price")
        report(finite & (v < 0), "negative volume")
        report(finite & (h < lo), "high < low")
        report(finite & (h >= lo) & ((h < np.maximum(o, c)) | (lo > np.minimum(o, c))),
               "open/close outside [low, high]")
    return problems


def funding_problems(a: Mapping[str, np.ndarray], tf_ms: int = 0, limit: int = 5) -> list[str]:
    """Rule violations of funding-rate arrays: funding ``time`` strictly increasing (no funding
    timestamp out of order or twice), finite ``rate``, ``mark_price`` positive or NaN (unknown)."""
    t = a["time"]
    problems: list[str] = []
    if t.size > 1:
        d = np.diff(t)
        for mask, what in ((d < 0, "funding 'time' out of order (timestamps must increase)"),
                           (d == 0, "funding 'time' duplicated (one rate per funding timestamp)")):
            bad = np.flatnonzero(mask)[:limit] + 1
            if bad.size:
                problems.append(f"{what} at row " + ", ".join(f"{i} ({_iso(t[i])})" for i in bad))
    rate, mark = a[FUNDING_COLUMNS[0]], a[FUNDING_COLUMNS[1]]
    for mask, what in ((~np.isfinite(rate), "funding 'rate' NaN or infinite"),
                       (np.isinf(mark) | (mark <= 0), "funding 'mark_price' <= 0 or infinite (NaN marks unknown)")):
        bad = np.flatnonzero(mask)[:limit]
        if bad.size:
            problems.append(f"{what} at row " + ", ".join(f"{i} ({_iso(t[i])})" for i in bad))
    return problems


def mark_problems(a: Mapping[str, np.ndarray], tf_ms: int = 0, limit: int = 5) -> list[str]:
    """Rule violations of mark-price candles (``time, open, high, low, close``): time strictly
    increasing and on the grid, every mark price finite and > 0, ``low <= open, close <= high``.
    Each problem names the column (``mark_low`` ...)."""
    t = a["time"]
    problems: list[str] = []

    def report(mask: np.ndarray, what: str, offset: int = 0) -> None:
        bad = np.flatnonzero(mask)
        if bad.size:
            rows = ", ".join(f"{i + offset} ({_iso(t[i + offset])})" for i in bad[:limit])
            problems.append(f"{what} at row {rows}" + (f" and {bad.size - limit} more" if bad.size > limit else ""))

    if t.size > 1:
        d = np.diff(t)
        report(d < 0, "mark 'time' out of order", 1)
        report(d == 0, "mark 'time' duplicated", 1)
    if tf_ms:
        report(t % tf_ms != 0, f"mark 'time' not on the {tf_ms} ms grid")
    for c in MARK_COLUMNS:
        v = a[c]
        report(~np.isfinite(v), f"'mark_{c}' NaN or infinite")
        with np.errstate(invalid="ignore"):
            report(np.isfinite(v) & (v <= 0), f"'mark_{c}' <= 0 (mark prices must be > 0)")
    o, h, lo, c = (a[k] for k in MARK_COLUMNS)
    with np.errstate(invalid="ignore"):
        report((h < np.maximum(o, c)) | (lo > np.minimum(o, c)), "mark candle outside [mark_low, mark_high]")
    return problems


def problems_for(timeframe: str):
    """The rule checker of a series kind: candles, funding rates or mark-price candles."""
    from .layout import FUNDING, is_mark

    if timeframe == FUNDING:
        return funding_problems
    return mark_problems if is_mark(timeframe) else candle_problems


def validate(a: Mapping[str, np.ndarray], tf_ms: int, name: str = "data", timeframe: str = "") -> None:
    """Raise ``ValueError`` listing every rule ``a`` breaks."""
    problems = problems_for(timeframe)(a, tf_ms)
    if problems:
        raise ValueError(f"{name}: invalid rows, nothing written: " + "; ".join(problems))


def find_gaps(time: np.ndarray, tf_ms: int) -> list[tuple[int, int, int]]:
    """Missing runs as ``(first missing open time, next present open time, bars missing)``."""
    if not tf_ms or time.size < 2:
        return []
    d = np.diff(time)
    idx = np.flatnonzero(d > tf_ms)
    return [(int(time[i] + tf_ms), int(time[i + 1]), int(d[i] // tf_ms - 1)) for i in idx]
