"""File I/O: chunked compressed CSV import/export, memory-mapped ``.npy``, dtype optimiser.

CSV files hold one candle per row. Accepted layouts:

* a header naming a time column (``time``, ``timestamp``, ``timestamp_ms``,
  ``date``, ``datetime``, ``open time``, ...) and ``open, high, low, close,
  volume``, in any case and order (``Date,Open,High,Low,Close,Adj Close,Volume``;
  ``Open time,Open,...,Ignore``); other columns are ignored and listed in
  :attr:`ImportResult.ignored_columns`;
* no header: ``time,open,high,low,close,volume`` (6 fields) or Binance's
  12-field kline layout (:data:`KLINE_FIELDS`); any other count is ambiguous
  and refused.

Times are integers since the epoch, their unit (s, ms, us or ns) recognised by
magnitude and the same for the whole file (mixed units are refused), or ISO
8601 strings (an offset is respected, naive means UTC). Times at or before the
epoch are refused, as are rows with more fields than the header or first row.

Compression follows the extension: ``.csv``, ``.csv.gz`` (gzip), ``.csv.bz2``
(bz2), ``.csv.lz4`` (lz4 frame). Files are parsed ``chunk_rows`` rows at a time,
so memory stays bounded whatever the file size; imports stream into a
:class:`~nbtrade.data.store.Store` inside one transaction, so a bad row
anywhere (malformed, wrong columns, unsorted or duplicate times, invalid
candle) raises ``ValueError`` and leaves the store exactly as it was.
Exports check every row against the same rules (a file its own import would
refuse is not written) and write to a temporary file renamed into place.
"""
from __future__ import annotations

import bz2
import gzip
import os
import re
import zipfile
import zlib
import time as _time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .._files import atomic_path
from ..timeframes import to_epoch_ms
from . import integrity
from .layout import FUNDING_COLUMNS, MARK_COLUMNS, VALUE_COLUMNS, check_timeframe
from .memory import MemoryMonitor

COMPRESSIONS = {".csv": None, ".csv.gz": "gzip", ".csv.bz2": "bz2", ".csv.lz4": "lz4"}
_NAME_RE = re.compile(r"^(?P<exchange>[a-z0-9\-]+)_(?P<base>[A-Za-z0-9]+)_(?P<quote>[A-Za-z0-9]+)_(?P<tf>\w+?)"
                      r"\.csv(\.gz|\.bz2|\.lz4)?$")


@dataclass
class ImportResult:
    """One file's import: rows read, what the store did with them, time and memory."""

    path: str
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    replaced: int = 0
    chunks: int = 0
    seconds: float = 0.0
    peak_rss_growth_mb: float = 0.0
    error: str | None = None
    #: Columns of the file that are not the time or OHLCV (read, then dropped).
    ignored_columns: list[str] = field(default_factory=list)
    #: The store written to (for :meth:`to_market`).
    store: Any = field(default=None, repr=False, compare=False)

    def to_market(self, start: Any = None, end: Any = None) -> Any:
        """The imported series read back from the store as a one-symbol :class:`nbtrade.Market`
        (all its stored candles in ``[start, end)``, not only this file's)."""
        if self.error is not None:
            raise ValueError(f"{self.path}: the import failed ({self.error}), so there is nothing to read back")
        if self.store is None:
            raise ValueError(f"{self.path}: this result does not know its store; use "
                             f"Store(...).read_market({self.exchange!r}, [{self.symbol!r}], {self.timeframe!r})")
        return self.store.read_market(self.exchange, [self.symbol], self.timeframe, start, end)


@dataclass
class ExportResult:
    path: str
    rows: int = 0
    bytes: int = 0
    seconds: float = 0.0


def compression_of(path: str | os.PathLike) -> str | None:
    """``None``, ``"gzip"``, ``"bz2"`` or ``"lz4"`` from the file name; ValueError otherwise."""
    name = os.path.basename(os.fspath(path)).lower()
    for ext in sorted(COMPRESSIONS, key=len, reverse=True):
        if name.endswith(ext):
            return COMPRESSIONS[ext]
    raise ValueError(f"path {os.fspath(path)!r}: unknown compression; expected one of "
                     f"{', '.join(COMPRESSIONS)}")


def _open(path: str, mode: str, comp: str | None | bool = False):
    if comp is False:
        comp = compression_of(path)
    if comp is None:
        return open(path, mode)
    if comp == "gzip":
        return gzip.open(path, mode, compresslevel=6) if "w" in mode else gzip.open(path, mode)
    if comp == "bz2":
        return bz2.open(path, mode)
    import lz4.frame

    return lz4.frame.open(path, mode)


def parse_name(path: str | os.PathLike) -> dict[str, str]:
    """``exchange, symbol, timeframe`` from a name like ``binance_BTC_USDT_1m.csv.gz``."""
    m = _NAME_RE.match(os.path.basename(os.fspath(path)))
    if not m:
        raise ValueError(f"path {os.fspath(path)!r}: cannot infer exchange/symbol/timeframe from the name "
                         "(expected exchange_BASE_QUOTE_timeframe.csv[.gz|.bz2|.lz4]); pass them explicitly")
    return {"exchange": m["exchange"], "symbol": f"{m['base']}/{m['quote']}", "timeframe": m["tf"]}


# --- reading -------------------------------------------------------------------
#: Accepted names of the open-time column (compared lowercase, spaces and dashes as ``_``).
TIME_NAMES = ("timestamp_ms", "time", "timestamp", "datetime", "date", "open_time", "opentime", "date_time",
              "ts", "time_ms", "unix")
#: Magnitude bounds of integer epoch times: below 1e11 seconds, 1e14 ms, 1e17 us, else ns
#: (1e11 s is the year 5138; 1e11 ms is 1973: every real candle falls clearly in one band).
_UNIT_BOUNDS = np.array([10**11, 10**14, 10**17], dtype=np.int64)
_UNIT_NAMES = ("seconds", "milliseconds", "microseconds", "nanoseconds")
#: Binance public kline files (data.binance.vision): no header, these 12 fields.
KLINE_FIELDS = ("open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
                "taker_buy_base", "taker_buy_quote", "ignore")


def _norm(name: Any) -> str:
    return re.sub(r"[\s_\-]+", "_", str(name).strip().lower())


@dataclass
class CsvLayout:
    """How a CSV file's fields map to candles (found from its first two lines)."""

    header: bool
    names: list[str]            # every field, as named in the file (or KLINE_FIELDS / positions)
    time: str                   # the field holding the open time
    values: dict[str, str]      # open..volume -> field name
    ignored: list[str]          # fields read and dropped (listed in ImportResult.ignored_columns)


def _is_number(text: Any) -> bool:
    try:
        float(str(text))
    except ValueError:
        return False
    return True


def _layout(first: list[str], second: list[str] | None, path: str) -> CsvLayout:
    """Layout from the first line (a header, or the first data row) and the second line."""
    if first and all(_is_number(c) for c in first):
        n = len(first)
        if n == len(KLINE_FIELDS):
            names = list(KLINE_FIELDS)
        elif n == 6:
            names = ["time", *VALUE_COLUMNS]
        else:
            raise ValueError(f"path {path!r}: no header and {n} fields per row: cannot tell which field is the "
                             f"volume (headerless files must be time,open,high,low,close,volume or Binance's "
                             f"12-field kline layout); add a header row naming the columns")
        return CsvLayout(False, names, names[0], dict(zip(VALUE_COLUMNS, names[1:6])), names[6:])
    names = [c.strip() for c in first]
    norm = [_norm(c) for c in names]
    times = [names[i] for i, c in enumerate(norm) if c in TIME_NAMES]
    values = {v: names[norm.index(v)] for v in VALUE_COLUMNS if v in norm}
    missing = [v for v in VALUE_COLUMNS if v not in values]
    if len(times) != 1 or missing:
        what = (f"no time column (one of {', '.join(TIME_NAMES)})" if not times else
                f"several time columns {times}" if len(times) > 1 else f"missing {missing}")
        raise ValueError(f"path {path!r}: wrong columns {names}: {what}; expected a time column and "
                         f"{', '.join(VALUE_COLUMNS)} (names in any case; other columns are ignored)")
    dup = sorted({c for c in norm if norm.count(c) > 1 and (c in VALUE_COLUMNS or c in TIME_NAMES)})
    if dup:
        raise ValueError(f"path {path!r}: columns {dup} appear more than once in the header")
    if second is not None and len(second) > len(names):
        raise ValueError(f"path {path!r}: data row 1 has {len(second)} fields but the header names {len(names)} "
                         f"columns; fix the header or the rows")
    used = {times[0], *values.values()}
    return CsvLayout(True, names, times[0], values, [c for c in names if c not in used])


def _first_lines(fh) -> tuple[list[str], list[str] | None]:
    """The first two lines of a binary CSV stream, split into fields."""
    import csv
    import io as _io

    text = _io.TextIOWrapper(fh, encoding="utf-8", newline="")
    rows = []
    for row in csv.reader(text):
        if row:
            rows.append(row)
        if len(rows) == 2:
            break
    if not rows:
        raise pd.errors.EmptyDataError("no lines")
    return rows[0], rows[1] if len(rows) > 1 else None


class _TimeUnit:
    """The epoch unit of a file's integer times, decided by magnitude and kept for the whole file."""

    def __init__(self, path: str):
        self.path = path
        self.unit: int | None = None
        self.row: int = 0
        self.value: int = 0

    def to_ms(self, t: np.ndarray, row0: int) -> np.ndarray:
        if not t.size:
            return t.astype(np.int64)
        bad = _epoch_problems(t)
        if bad:
            raise ValueError(f"path {self.path!r} (data rows from {row0 + 1}): {bad[0]}")
        units = np.searchsorted(_UNIT_BOUNDS, t, side="right")
        first = int(units[0])
        if self.unit is None:
            self.unit, self.row, self.value = first, row0 + 1, int(t[0])
        other = np.flatnonzero(units != self.unit)
        if other.size:
            i = int(other[0])
            raise ValueError(f"path {self.path!r}: mixed timestamp units: data row {self.row} holds {self.value} "
                             f"({_UNIT_NAMES[self.unit]}), data row {row0 + i + 1} holds {int(t[i])} "
                             f"({_UNIT_NAMES[int(units[i])]}); one file must use one unit")
        if self.unit == 0:
            return t * 1000
        return t // (1000 ** (self.unit - 1))


def _chunk_to_arrays(df: pd.DataFrame, layout: CsvLayout, unit: _TimeUnit, path: str, row0: int
                     ) -> dict[str, np.ndarray]:
    raw = df[layout.time]
    if pd.api.types.is_float_dtype(raw.dtype):  # integers with holes or written as floats
        x = raw.to_numpy()
        bad = np.flatnonzero(~np.isfinite(x) | (x != np.round(x)))
        if bad.size:
            raise ValueError(f"path {path!r}: missing or fractional time at data row {row0 + int(bad[0]) + 1}")
        raw = raw.astype(np.int64)
    if pd.api.types.is_integer_dtype(raw.dtype):
        t = unit.to_ms(raw.to_numpy(np.int64), row0)
    else:
        try:
            stamps = pd.to_datetime(raw.astype("string"), utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError) as exc:
            raise ValueError(f"path {path!r}: bad time value near data row {row0 + 1}: {exc} (expected integer "
                             f"epoch times or ISO 8601 dates)") from None
        if stamps.isna().any():
            bad = int(np.flatnonzero(stamps.isna().to_numpy())[0])
            raise ValueError(f"path {path!r}: missing time at data row {row0 + bad + 1}")
        t = to_epoch_ms(stamps, "time")
        problems = _epoch_problems(t)
        if problems:
            raise ValueError(f"path {path!r} (data rows from {row0 + 1}): {problems[0]}")
    out = {"time": np.ascontiguousarray(t, dtype=np.int64)}
    for c in VALUE_COLUMNS:
        col = df[layout.values[c]]
        if not pd.api.types.is_numeric_dtype(col.dtype):
            num = pd.to_numeric(col, errors="coerce")
            bad = np.flatnonzero(num.isna().to_numpy() & col.notna().to_numpy())
            if bad.size:
                raise ValueError(f"path {path!r}: malformed value {col.iloc[bad[0]]!r} in column {c!r} "
                                 f"at data row {row0 + int(bad[0]) + 1}")
            col = num
        out[c] = np.ascontiguousarray(col.to_numpy(np.float64, na_value=np.nan))
    if not layout.header:  # a headerless row must be complete (Binance rows have all 12 fields)
        short = df[layout.names[-1]].isna().to_numpy()  # a short row leaves its last fields empty
        if short.any():
            i = int(np.flatnonzero(short)[0])
            raise ValueError(f"path {path!r}: data row {row0 + i + 1} has missing fields "
                             f"(expected {len(layout.names)})")
    return out


def iter_csv(path: str | os.PathLike, chunk_rows: int = 1_000_000, timeframe: str | None = None,
             ignore_extra: bool = False, monitor: MemoryMonitor | None = None,
             layout_out: list | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Validated candle arrays of at most ``chunk_rows`` rows each, in file order.

    Raises ``ValueError`` (naming the file and the row) on a malformed row (more
    fields than the header or the first row), wrong columns, an ambiguous
    headerless layout, times unsorted or duplicated (also across chunks), at or
    before the epoch, in mixed units, off the timeframe grid, or any invalid
    candle. Columns besides the time and OHLCV are ignored (``ignore_extra`` is
    kept for compatibility: they always are); ``layout_out`` (a list) receives
    the file's :class:`CsvLayout`.
    """
    path = os.fspath(path)
    compression_of(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path {path!r} does not exist")
    return iter_csv_stream(lambda: _open(path, "rb"), path, chunk_rows, timeframe, monitor, layout_out)


def iter_csv_stream(opener: Any, name: str, chunk_rows: int = 1_000_000, timeframe: str | None = None,
                    monitor: MemoryMonitor | None = None, layout_out: list | None = None
                    ) -> Iterator[dict[str, np.ndarray]]:
    """:func:`iter_csv` on any binary stream: ``opener()`` returns a fresh one each call (it is
    read twice: the first two lines decide the layout); ``name`` names it in errors."""
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    tf_ms = check_timeframe(timeframe) if timeframe is not None else 0
    path = name
    try:
        with opener() as fh:
            first, second = _first_lines(fh)
    except (pd.errors.EmptyDataError, UnicodeDecodeError, OSError, EOFError, RuntimeError, zlib.error,
            zipfile.BadZipFile) as exc:
        raise ValueError(f"path {path!r}: not a readable CSV file: {exc}") from None
    layout = _layout(first, second, path)
    if layout_out is not None:
        layout_out.append(layout)
    return _iter_chunks(opener, layout, path, int(chunk_rows), tf_ms, monitor)


def _iter_chunks(opener: Any, layout: CsvLayout, path: str, chunk_rows: int, tf_ms: int,
                 monitor: MemoryMonitor | None) -> Iterator[dict[str, np.ndarray]]:
    # Every field is parsed (no usecols): with usecols pandas silently drops surplus
    # fields of malformed rows; without, its tokenizer refuses them.
    if layout.header:
        options: dict[str, Any] = {"header": 0}
    else:  # value columns typed up front: no inference pass (times stay inferred: ns exceed float64)
        options = {"header": None, "names": layout.names,
                   "dtype": {layout.values[c]: np.float64 for c in VALUE_COLUMNS}}
    unit = _TimeUnit(path)
    prev_last: int | None = None
    row0 = 0
    with opener() as fh:
        try:
            reader = pd.read_csv(fh, chunksize=chunk_rows, index_col=False, skipinitialspace=True, **options)
            for df in reader:
                if layout.header:
                    df.columns = [str(c).strip() for c in df.columns]
                a = _chunk_to_arrays(df, layout, unit, path, row0)
                problems = integrity.candle_problems(a, tf_ms)
                if problems:
                    raise ValueError(f"path {path!r} (data rows from {row0 + 1}): " + "; ".join(problems))
                if prev_last is not None and a["time"].size and a["time"][0] <= prev_last:
                    raise ValueError(f"path {path!r}: time not sorted or duplicated at data row {row0 + 1}")
                if a["time"].size:
                    prev_last = int(a["time"][-1])
                row0 += a["time"].shape[0]
                if monitor is not None:
                    monitor.sample()
                yield a
        except pd.errors.ParserError as exc:
            raise ValueError(f"path {path!r}: malformed CSV (a row with more fields than the first): {exc}") from None
        except ValueError as exc:
            if str(exc).startswith("path "):
                raise
            # pandas' own conversion errors (a typed column holding text) do not name the file
            raise ValueError(f"path {path!r}: malformed value in data rows from {row0 + 1}: {exc}") from None
        except (UnicodeDecodeError, EOFError, OSError, RuntimeError, zlib.error, zipfile.BadZipFile) as exc:
            # RuntimeError: lz4.frame's report of a corrupt frame; BadZipFile: a zip member's bad CRC
            raise ValueError(f"path {path!r}: unreadable, corrupt or truncated file: {exc}") from None


def read_csv(path: str | os.PathLike, timeframe: str | None = None, chunk_rows: int = 1_000_000,
             ignore_extra: bool = False) -> pd.DataFrame:
    """Whole validated CSV as a DataFrame with a UTC DatetimeIndex (see :func:`iter_csv`)."""
    from ..timeframes import ms_to_index

    parts = list(iter_csv(path, chunk_rows, timeframe, ignore_extra))
    cols = {c: np.concatenate([p[c] for p in parts]) if parts else np.empty(0, np.int64 if c == "time" else float)
            for c in ("time",) + VALUE_COLUMNS}
    return pd.DataFrame({c: cols[c] for c in VALUE_COLUMNS}, index=ms_to_index(cols["time"]))


def import_csv(path: str | os.PathLike, store: Any = None, exchange: str | None = None, symbol: str | None = None,
               timeframe: str | None = None, *, chunk_rows: int = 1_000_000, on_conflict: str | None = None,
               ignore_extra: bool = False, memory_limit_mb: float | None = None) -> ImportResult:
    """Stream a (compressed) CSV into ``store`` in one atomic transaction.

    Parameters
    ----------
    store : Store, path or None
        Target store (a root folder is accepted; None means the default root).
    exchange, symbol, timeframe : str, optional
        Inferred from names like ``binance_BTC_USDT_1m.csv.gz`` when omitted.
    chunk_rows : int
        Rows parsed per chunk; memory stays at a few chunks whatever the file size.
    memory_limit_mb : float, optional
        Abort (and roll back) if RSS grows by more than this.

    Returns an :class:`ImportResult` (rows, added, duplicates, replaced, seconds, peak RSS growth).
    """
    from .store import Store

    path = os.fspath(path)
    compression_of(path)
    if exchange is None or symbol is None or timeframe is None:
        guess = parse_name(path)
        exchange = exchange or guess["exchange"]
        symbol = symbol or guess["symbol"]
        timeframe = timeframe or guess["timeframe"]
    check_timeframe(timeframe)
    if not isinstance(store, Store):
        store = Store(store)
    res = ImportResult(path, exchange, symbol, timeframe, store=store)
    t0 = _time.perf_counter()
    with MemoryMonitor(limit_mb=memory_limit_mb) as mem:
        layout: list[CsvLayout] = []
        chunks = iter_csv(path, chunk_rows, timeframe, ignore_extra, monitor=mem, layout_out=layout)
        res.ignored_columns = list(layout[0].ignored)
        part = next(chunks, None)  # parse (and fail) before taking the write lock
        with store.transaction(exchange) as tx:
            while part is not None:
                r = tx.append(symbol, timeframe, part, on_conflict=on_conflict)
                res.rows += part["time"].shape[0]
                res.added += r.added
                res.duplicates += r.duplicates
                res.replaced += r.replaced
                res.chunks += 1
                mem.sample()
                part = next(chunks, None)
    res.seconds = _time.perf_counter() - t0
    res.peak_rss_growth_mb = mem.peak_growth_mb
    return res


def import_many(paths: Iterable[str | os.PathLike], store: Any = None, *, threads: int = 4,
                raise_errors: bool = False, **kwargs: Any) -> list[ImportResult]:
    """Import many CSV files concurrently (a thread each, ``threads`` at a time).

    Each file is its own transaction: a bad file is reported in its result's
    ``error`` (or raised with ``raise_errors``) and changes nothing, the others
    still import. Files of one exchange serialise on that exchange's write lock;
    parsing overlaps.
    """
    from .store import Store

    if not isinstance(store, Store):
        store = Store(store)
    paths = [os.fspath(p) for p in paths]
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")

    def one(p: str) -> ImportResult:
        try:
            return import_csv(p, store, **kwargs)
        except (ValueError, TypeError, OSError) as exc:
            if raise_errors:
                raise
            return ImportResult(p, error=str(exc))

    with ThreadPoolExecutor(max_workers=min(threads, max(1, len(paths)))) as pool:
        return list(pool.map(one, paths))


# --- writing -------------------------------------------------------------------
def _columns_of(keys: Iterable[str]) -> tuple[str, ...]:
    """The value columns a series' arrays carry: OHLCV candles, OHLC mark-price candles (no volume),
    or funding rows (``rate, mark_price``)."""
    keys = set(keys)
    if "rate" in keys:
        return FUNDING_COLUMNS
    if "volume" not in keys and set(MARK_COLUMNS) <= keys:
        return MARK_COLUMNS
    return VALUE_COLUMNS


def _with_columns(data: Any, columns: Sequence[str] | None) -> tuple[Any, tuple[str, ...]]:
    """``data`` (re-chained when a first block was peeked) and its value columns (given, or inferred)."""
    if columns is not None:
        return data, tuple(columns)
    if isinstance(data, pd.DataFrame):
        return data, _columns_of(c for c in data.columns if c != "time")
    if isinstance(data, Mapping):
        return data, _columns_of(data)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        it = iter(data)
        first = next(it, None)
        if first is None:
            return [], VALUE_COLUMNS
        import itertools

        keys = first.columns if isinstance(first, pd.DataFrame) else first
        return itertools.chain([first], it), _columns_of(k for k in keys if k != "time")
    return data, VALUE_COLUMNS


def _blocks(data: Any, chunk_rows: int, columns: tuple[str, ...] = VALUE_COLUMNS
            ) -> Iterator[Mapping[str, np.ndarray]]:
    if isinstance(data, (pd.DataFrame, Mapping)):
        a = integrity.to_arrays(data, value_columns=columns)
        n = a["time"].shape[0]
        for lo in range(0, n, chunk_rows):
            yield {c: v[lo:lo + chunk_rows] for c, v in a.items()}
        return
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        for block in data:
            yield integrity.to_arrays(block, value_columns=columns)
        return
    raise TypeError(f"data must be a DataFrame, a dict of arrays or an iterable of them "
                    f"(e.g. Store.iter_blocks(...)), got {type(data).__name__}")


def _problems(block: Mapping[str, np.ndarray], columns: tuple[str, ...]) -> list[str]:
    """Rule violations of one block: candles (OHLCV), mark candles (OHLC: the candle rules without
    volume) or funding rows (sorted unique times, finite rate, mark price > 0 where given)."""
    if columns == VALUE_COLUMNS:
        return integrity.candle_problems(block, 0)
    if columns == MARK_COLUMNS:
        return integrity.candle_problems({**block, "volume": np.zeros(block["time"].shape)}, 0)
    t, problems = block["time"], []
    for mask, what in ((np.r_[False, np.diff(t) <= 0], "funding time not sorted or duplicated"),
                       (~np.isfinite(block["rate"]), "funding rate not a finite number"),
                       (np.isinf(block["mark_price"]) | (block["mark_price"] <= 0), "funding mark_price <= 0")):
        bad = np.flatnonzero(mask)
        if bad.size:
            problems.append(f"{what} at row " + ", ".join(f"{i} ({integrity._iso(t[i])})" for i in bad[:5]))
    return problems


def _checked_blocks(blocks: Iterable[Mapping[str, np.ndarray]], path: str,
                    columns: tuple[str, ...] = VALUE_COLUMNS) -> Iterator[Mapping[str, np.ndarray]]:
    """Non-empty blocks, each checked against the rules :func:`iter_csv` applies on import.

    An export that its own import would refuse (unsorted, NaN, non-positive,
    high < low, times at or before the epoch) raises ``ValueError`` instead; the
    caller's temporary file is then removed and ``path`` is untouched. Mark candles are
    checked as candles without volume, funding rows by their own rules (:func:`_problems`).
    """
    prev: int | None = None
    row0 = 0
    for block in blocks:
        n = block["time"].shape[0]
        if not n:
            continue
        with np.errstate(invalid="ignore"):
            problems = _problems(block, columns) + _epoch_problems(block["time"])
        if prev is not None and block["time"][0] <= prev:
            problems.append(f"time not sorted or duplicated at row 0 ({integrity._iso(block['time'][0])})")
        if problems:
            raise ValueError(f"data: not exported to {path!r}, the file would not import back (rows from {row0}): "
                             + "; ".join(problems) + "; nothing written")
        prev = int(block["time"][-1])
        row0 += n
        yield block


def _epoch_problems(t: np.ndarray, limit: int = 5) -> list[str]:
    """Open times at or before the epoch: a zero, negative or missing time, not a 1970 candle."""
    bad = np.flatnonzero(t <= 0)
    if not bad.size:
        return []
    rows = ", ".join(f"{i} ({int(t[i])})" for i in bad[:limit])
    return [f"time at or before 1970-01-01 (zero or negative epoch time) at row {rows}"
            + (f" and {bad.size - limit} more" if bad.size > limit else "")]


def _format_rows(block: Mapping[str, np.ndarray], time_format: str,
                 columns: tuple[str, ...] = VALUE_COLUMNS) -> str:
    """CSV lines; floats as ``repr`` (shortest round-trip form), twice as fast as ``to_csv``."""
    if time_format == "ms":
        times = block["time"].tolist()
    else:
        times = (np.datetime_as_string(block["time"].astype("datetime64[ms]")).astype(object) + "Z").tolist()
    cols = [np.asarray(block[c], dtype=np.float64).tolist() for c in columns]
    return "".join(f"{t}," + ",".join(map(repr, row)) + "\n" for t, *row in zip(times, *cols))


def export_csv(data: Any, path: str | os.PathLike, *, time_format: str = "ms",
               chunk_rows: int = 1_000_000, columns: Sequence[str] | None = None) -> ExportResult:
    """Write candles to a CSV (compressed by extension), chunk by chunk, atomically.

    Parameters
    ----------
    data : DataFrame, dict of arrays, or an iterable of arrays dicts
        ``Store.iter_blocks(exchange, symbol, timeframe, start, end)`` streams a
        stored series without loading it whole.
    time_format : {"ms", "iso"}
        ``timestamp_ms`` integer column, or ``time`` as ISO 8601 UTC
        (``2024-01-01T00:00:00.000Z``).
    columns : value columns, optional
        Default: what ``data`` carries. Candles ``open, high, low, close, volume``; mark-price
        candles ``open, high, low, close`` (no volume: none is invented); funding rows
        ``rate, mark_price`` (``nan`` where the exchange gives no mark price).

    Floats are written in their shortest round-trip form, so import(export(x)) == x.
    """
    path = os.fspath(path)
    comp = compression_of(path)
    if time_format not in ("ms", "iso"):
        raise ValueError(f"time_format must be 'ms' or 'iso', got {time_format!r}")
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    data, cols = _with_columns(data, columns)
    res = ExportResult(path)
    t0 = _time.perf_counter()
    tname = "timestamp_ms" if time_format == "ms" else "time"
    with atomic_path(path) as tmp:
        with _open(str(tmp), "wb", comp) as fh:
            fh.write((",".join((tname,) + cols) + "\n").encode())
            for block in _checked_blocks(_blocks(data, int(chunk_rows), cols), path, cols):
                fh.write(_format_rows(block, time_format, cols).encode())
                res.rows += block["time"].shape[0]
    res.bytes = os.path.getsize(path)
    res.seconds = _time.perf_counter() - t0
    return res


def export_series(store: Any, exchange: str, symbol: str, timeframe: str, path: str | os.PathLike,
                  start: Any = None, end: Any = None, *, time_format: str = "ms",
                  chunk_rows: int = 1_000_000) -> ExportResult:
    """``nbtrade data export``: one stored series (optionally a time range) to a CSV file."""
    from .store import Store

    if not isinstance(store, Store):
        store = Store(store)
    compression_of(path)
    from .layout import value_columns

    blocks = store.iter_blocks(exchange, symbol, timeframe, start, end, rows=chunk_rows)
    return export_csv(blocks, path, time_format=time_format, chunk_rows=chunk_rows,
                      columns=value_columns(timeframe))


# --- numpy files ---------------------------------------------------------------
def save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` as ``.npy`` atomically (temporary file, then rename)."""
    path = Path(path)
    if path.suffix != ".npy":
        raise ValueError(f"path must end in .npy, got {str(path)!r}")
    arr = np.asarray(array)
    if arr.dtype.hasobject:
        raise TypeError("array must not hold Python objects (they cannot be memory-mapped)")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr, allow_pickle=False)
    return path


def load_npy(path: str | os.PathLike, mmap: bool = True) -> np.ndarray:
    """Array from a ``.npy`` file, memory-mapped read-only by default.

    A memory-mapped array costs no RAM up front: pages load as they are touched,
    so slices of arrays larger than memory are cheap.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"path {path!r} does not exist")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"path {path!r} is not a valid .npy file: {exc}") from None


def export_npy(store: Any, exchange: str, symbol: str, timeframe: str, folder: str | os.PathLike,
               start: Any = None, end: Any = None, *, chunk_rows: int = 1_000_000) -> dict[str, Path]:
    """Write one stored series as raw ``<folder>/<column>.npy`` files, streamed block by block.

    Nothing is held in memory beyond one block; read them back memory-mapped with
    :func:`load_npy_columns`. Returns ``{column: path}``.
    """
    from numpy.lib.format import open_memmap

    from .layout import value_columns
    from .store import Store

    if not isinstance(store, Store):
        store = Store(store)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    n = store.count(exchange, symbol, timeframe, start, end)
    cols = ("time",) + value_columns(timeframe)
    paths = {c: folder / f"{c}.npy" for c in cols}
    with ExitStack() as stack:  # an error before the end replaces no column
        tmp = {c: stack.enter_context(atomic_path(paths[c])) for c in cols}
        outs = None
        at = 0
        for block in store.iter_blocks(exchange, symbol, timeframe, start, end, rows=chunk_rows):
            if outs is None:
                outs = {c: open_memmap(tmp[c], mode="w+", dtype=block[c].dtype, shape=(n,)) for c in cols}
            m = block["time"].shape[0]
            for c in cols:
                outs[c][at:at + m] = block[c]
            at += m
        if outs is None:
            outs = {c: open_memmap(tmp[c], mode="w+", dtype=np.int64 if c == "time" else np.float64, shape=(0,))
                    for c in cols}
        for arr in outs.values():
            arr.flush()
        del outs
    return paths


def load_npy_columns(folder: str | os.PathLike, mmap: bool = True) -> dict[str, np.ndarray]:
    """``{column: array}`` from the ``.npy`` files of a folder (memory-mapped by default)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.npy"))
    if not files:
        raise ValueError(f"folder {str(folder)!r} holds no .npy files")
    return {f.stem: load_npy(f, mmap) for f in files}


# --- dtype optimiser -----------------------------------------------------------
def optimize_dtypes(df: pd.DataFrame, *, lossy: bool = False, rtol: float = 1e-6,
                    categorical_ratio: float = 0.5) -> tuple[pd.DataFrame, int]:
    """Smaller dtypes for a DataFrame; returns ``(new frame, bytes saved)``.

    * floats -> float32 when every value survives the round trip exactly
      (or, with ``lossy=True``, within relative tolerance ``rtol``);
    * integers -> the smallest signed/unsigned type holding their range;
    * strings / objects -> ``category`` when distinct values are at most
      ``categorical_ratio`` of the rows.

    The input frame is not modified. Bytes are counted with ``memory_usage(deep=True)``.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not 0.0 <= categorical_ratio <= 1.0:
        raise ValueError(f"categorical_ratio must be in [0, 1], got {categorical_ratio!r}")
    before = int(df.memory_usage(deep=True).sum())
    out = df.copy()
    for name in out.columns:
        col = out[name]
        dt = col.dtype
        if pd.api.types.is_float_dtype(dt) and dt.itemsize > 4:
            x = col.to_numpy()
            with np.errstate(over="ignore", invalid="ignore"):
                y = x.astype(np.float32)
                back = y.astype(x.dtype)
            same_nan = np.isnan(x) == np.isnan(back)
            if lossy:
                finite = np.isfinite(x)
                ok = same_nan.all() and np.allclose(back[finite], x[finite], rtol=rtol, atol=0.0) and \
                    np.array_equal(np.isinf(x), np.isinf(back))
            else:
                ok = same_nan.all() and np.array_equal(back[~np.isnan(x)], x[~np.isnan(x)])
            if ok:
                out[name] = y
        elif pd.api.types.is_integer_dtype(dt) and not isinstance(dt, pd.CategoricalDtype) and len(col):
            lo, hi = int(col.min()), int(col.max())
            kinds = ("uint8", "uint16", "uint32", "uint64") if lo >= 0 else ("int8", "int16", "int32", "int64")
            for kind in kinds:
                info = np.iinfo(kind)
                if info.min <= lo and hi <= info.max:
                    if np.dtype(kind).itemsize < dt.itemsize:
                        out[name] = col.astype(kind)
                    break
        elif (dt == object or pd.api.types.is_string_dtype(dt)) and len(col):
            if col.nunique(dropna=False) <= categorical_ratio * len(col):
                out[name] = col.astype("category")
    after = int(out.memory_usage(deep=True).sum())
    return out, before - after


__all__ = ["import_csv", "import_many", "iter_csv", "read_csv", "export_csv", "export_series", "save_npy",
           "load_npy", "export_npy", "load_npy_columns", "optimize_dtypes", "parse_name", "compression_of", "ImportResult", "ExportResult"]
