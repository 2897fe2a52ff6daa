"""parquet and feather import/export (pandas' readers through pyarrow, an optional extra).

``pip install -e ".[parquet]"`` installs pyarrow; it is imported only when one of
these functions runs. Column rules are the CSV ones (:mod:`nbtrade.data.io`):
a time column (any of :data:`nbtrade.data.io.TIME_NAMES`, or a DatetimeIndex)
and ``open, high, low, close, volume`` in any case; other columns are ignored
and listed. Stored datetime columns keep their unit (s, ms, us, ns) and zone;
integer times are epoch times of one unit by magnitude. Exports write ``time``
(``datetime64[ms, UTC]``) and OHLCV, checked like CSV exports, atomically.

>>> import_table("btc.parquet", store, "binance", "BTC/USDT", "1m")   # doctest: +SKIP
>>> export_table(store.iter_blocks("binance", "BTC/USDT", "1m"), "btc.feather")  # doctest: +SKIP
"""
from __future__ import annotations

import os
import time as _time
from typing import Any

import numpy as np
import pandas as pd

from .._files import atomic_path
from . import integrity, io
from .layout import VALUE_COLUMNS, check_timeframe

#: File extensions and their pandas reader / writer names.
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".feather": "feather", ".arrow": "feather"}


def format_of(path: str | os.PathLike) -> str:
    """``"parquet"`` or ``"feather"`` from the extension; ValueError otherwise."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in FORMATS:
        raise ValueError(f"path {os.fspath(path)!r}: unknown table format; expected one of {', '.join(FORMATS)}")
    return FORMATS[ext]


def _pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError("parquet and feather files need pyarrow: pip install 'nbtrade[parquet]' "
                          "(or pip install pyarrow)") from None


def read_table(path: str | os.PathLike, timeframe: str | None = None,
               ignored_out: list | None = None) -> dict[str, np.ndarray]:
    """Validated candle arrays (``time`` int64 ms + OHLCV float64) of a parquet or feather file."""
    path = os.fspath(path)
    kind = format_of(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path {path!r} does not exist")
    _pyarrow()
    try:
        df = pd.read_parquet(path) if kind == "parquet" else pd.read_feather(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises its own error family for damaged files
        raise ValueError(f"path {path!r}: not a readable {kind} file: {exc}") from None
    if isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index(names=df.index.name or "time")
    layout = io._layout([str(c) for c in df.columns], None, path)
    if ignored_out is not None:
        ignored_out.extend(layout.ignored)
    a = _arrays(df, layout, path)
    problems = integrity.candle_problems(a, check_timeframe(timeframe) if timeframe else 0)
    if problems:
        raise ValueError(f"path {path!r}: " + "; ".join(problems))
    return a


def _arrays(df: pd.DataFrame, layout: io.CsvLayout, path: str) -> dict[str, np.ndarray]:
    df = df.rename(columns=str)
    raw = df[layout.time]
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        idx = pd.DatetimeIndex(raw)
        if idx.isna().any():
            raise ValueError(f"path {path!r}: missing time at row {int(np.flatnonzero(idx.isna())[0])}")
        if idx.tz is None:
            idx = idx.tz_localize("UTC")
        from ..timeframes import index_to_ms

        t = index_to_ms(idx)
        problems = io._epoch_problems(t)
        if problems:
            raise ValueError(f"path {path!r}: {problems[0]}")
        out = {"time": np.ascontiguousarray(t, dtype=np.int64)}
        for c in VALUE_COLUMNS:
            col = pd.to_numeric(df[layout.values[c]], errors="coerce")
            out[c] = np.ascontiguousarray(col.to_numpy(np.float64, na_value=np.nan))
        return out
    return io._chunk_to_arrays(df, layout, io._TimeUnit(path), path, 0)


def import_table(path: str | os.PathLike, store: Any = None, exchange: str | None = None,
                 symbol: str | None = None, timeframe: str | None = None, *,
                 on_conflict: str | None = None) -> io.ImportResult:
    """Import a parquet or feather file into ``store`` (one transaction); see :func:`read_table`."""
    from .store import Store

    path = os.fspath(path)
    if exchange is None or symbol is None or timeframe is None:
        raise ValueError(f"path {path!r}: pass exchange, symbol and timeframe (--exchange/--symbol/--timeframe) "
                         "for parquet and feather files")
    if not isinstance(store, Store):
        store = Store(store)
    res = io.ImportResult(path, exchange, symbol, timeframe, store=store)
    t0 = _time.perf_counter()
    a = read_table(path, timeframe, res.ignored_columns)
    r = store.append(exchange, symbol, timeframe, a, on_conflict=on_conflict)
    res.rows, res.added, res.duplicates, res.replaced, res.chunks = a["time"].shape[0], r.added, r.duplicates, \
        r.replaced, 1
    res.seconds = _time.perf_counter() - t0
    return res


def export_table(data: Any, path: str | os.PathLike, *, chunk_rows: int = 1_000_000,
                 columns: Any = None) -> io.ExportResult:
    """Write candles (a DataFrame, arrays, or ``Store.iter_blocks``) as parquet or feather, atomically.

    Columns: ``time`` (``datetime64[ms, UTC]``), then the value columns the data carries
    (``open, high, low, close, volume``; mark-price candles without volume; funding
    ``rate, mark_price``), or ``columns``; rows its own import would refuse raise ``ValueError``
    and nothing is written.
    """
    path = os.fspath(path)
    kind = format_of(path)
    _pyarrow()
    t0 = _time.perf_counter()
    data, names = io._with_columns(data, columns)
    blocks = list(io._checked_blocks(io._blocks(data, int(chunk_rows), names), path, names))
    cols = {c: np.concatenate([b[c] for b in blocks]) if blocks else
            np.empty(0, np.int64 if c == "time" else np.float64) for c in ("time",) + names}
    frame = pd.DataFrame({"time": pd.to_datetime(cols["time"], unit="ms", utc=True).as_unit("ms"),
                          **{c: cols[c] for c in names}})
    res = io.ExportResult(path, rows=len(frame))
    with atomic_path(path) as tmp:
        if kind == "parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_feather(tmp)
    res.bytes = os.path.getsize(path)
    res.seconds = _time.perf_counter() - t0
    return res


__all__ = ["read_table", "import_table", "export_table", "format_of", "FORMATS"]
