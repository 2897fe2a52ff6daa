"""Binance public bulk kline files: ``SYMBOL-INTERVAL-YYYY-MM(-DD).csv``, usually zipped.

Binance publishes klines as monthly and daily files (``BTCUSDT-1m-2024-01.zip``,
``BTCUSDT-1m-2024-01-15.zip``), each a CSV of the 12-field kline layout
(:data:`nbtrade.data.io.KLINE_FIELDS`); spot files have no header, futures files
may have one; open times are in ms, or (spot, since 2025) in us. Symbol and
timeframe come from the file name (``BTCUSDT`` -> ``BTC/USDT`` by the one symbol
rule of :mod:`nbtrade.data.symbols`); a name that does not parse asks for
``symbol=`` and ``timeframe=``.

:func:`import_bulk` imports files, folders and globs: files are parsed in
parallel threads (pandas' tokenizer and zlib release the GIL), then every
series is appended in time order inside one store transaction per exchange:
all files land, or none.

>>> import_bulk("~/Downloads/binance/*.zip", store)          # doctest: +SKIP
"""
from __future__ import annotations

import glob
import os
import re
import time as _time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from . import io
from .layout import check_timeframe
from .symbols import SymbolError, unified_symbol

_NAME_RE = re.compile(r"^(?P<id>[A-Z0-9]+)-(?P<tf>\d+[smhdwM])-(?P<period>\d{4}-\d{2}(?:-\d{2})?)"
                      r"\.(?P<ext>csv|zip)$")


@dataclass
class BulkFile:
    """One bulk file: where it is and what its name says."""

    path: str
    symbol: str
    timeframe: str
    period: str = ""


@dataclass
class BulkSeries:
    """What an import did to one series."""

    symbol: str
    timeframe: str
    files: int = 0
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    replaced: int = 0
    first: int | None = None
    last: int | None = None


@dataclass
class BulkResult:
    """:func:`import_bulk`'s report: per series, files read, rows/s."""

    exchange: str
    series: list[BulkSeries] = field(default_factory=list)
    files: int = 0
    rows: int = 0
    seconds: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)

    #: The store written to (for :meth:`to_market`).
    store: Any = field(default=None, repr=False, compare=False)

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else float("nan")

    def to_market(self, timeframe: str | None = None, start: Any = None, end: Any = None) -> Any:
        """The imported symbols read back from the store as one :class:`nbtrade.Market` (all their
        stored candles in ``[start, end)``); ``timeframe`` picks one when the import held several."""
        tfs = sorted({s.timeframe for s in self.series})
        if timeframe is None:
            if len(tfs) != 1:
                raise ValueError(f"the import holds timeframes {tfs}: pass timeframe= to pick one")
            timeframe = tfs[0]
        symbols = [s.symbol for s in self.series if s.timeframe == timeframe and s.rows]
        if not symbols:
            raise ValueError(f"the import added no candles of timeframe {timeframe!r} (it holds {tfs})")
        if self.store is None:
            raise ValueError(f"this result does not know its store; use Store(...).read_market"
                             f"({self.exchange!r}, {symbols!r}, {timeframe!r})")
        return self.store.read_market(self.exchange, symbols, timeframe, start, end)


def split_symbol(symbol_id: str, exchange: str = "binance") -> str:
    """Unified symbol of an exchange id by the one symbol rule (:func:`~nbtrade.data.symbols.unified_symbol`):
    ``BTCUSDT`` -> ``BTC/USDT`` on ``binance``, ``BTC/USDT:USDT`` on ``binance_futures``.

    Raises ``ValueError`` when no known quote asset ends the id, or more than one could.
    """
    try:
        return unified_symbol(symbol_id, exchange, strict=True)
    except SymbolError as exc:
        raise SymbolError(f"cannot tell base and quote asset of {symbol_id!r} ({exc}); "
                          "pass symbol= (--symbol) explicitly", exc.candidates) from None


def parse_bulk_name(path: str | os.PathLike, symbol: str | None = None, timeframe: str | None = None,
                    exchange: str = "binance") -> BulkFile:
    """Symbol and timeframe of a bulk file from its name, unless given.

    Raises ``ValueError`` naming the file when the name does not parse and they are not given.
    """
    path = os.fspath(path)
    m = _NAME_RE.match(os.path.basename(path))
    if m is None and (symbol is None or timeframe is None):
        raise ValueError(f"file {path!r}: name is not SYMBOL-INTERVAL-YYYY-MM[-DD].zip|csv (Binance's bulk "
                         "naming); pass symbol= and timeframe= (--symbol/--timeframe)")
    sym = symbol if symbol is not None else split_symbol(m["id"], exchange)
    tf = timeframe if timeframe is not None else m["tf"]
    check_timeframe(tf)
    return BulkFile(path, sym, tf, m["period"] if m else "")


def expand(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str]:
    """Files named by paths, folders (their ``.zip``/``.csv`` files) and glob patterns, sorted."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[str] = []
    for p in paths:
        p = os.path.expanduser(os.fspath(p))
        if os.path.isdir(p):
            found = [f for f in glob.glob(os.path.join(glob.escape(p), "*")) if f.endswith((".zip", ".csv"))]
            if not found:
                raise ValueError(f"folder {p!r} holds no .zip or .csv files")
            out += found
        elif glob.has_magic(p):
            found = glob.glob(p)
            if not found:
                raise ValueError(f"pattern {p!r} matches no file")
            out += found
        elif os.path.isfile(p):
            out.append(p)
        else:
            raise FileNotFoundError(f"path {p!r} does not exist")
    return sorted(dict.fromkeys(out))


def _opener(path: str):
    """``opener()`` returning a fresh binary stream of the CSV inside ``path`` (zip or plain)."""
    if not path.endswith(".zip"):
        return lambda: open(path, "rb")
    try:  # a damaged member is caught while it is read: zipfile checks its CRC at the end
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ValueError(f"file {path!r} is not a valid zip archive (truncated or corrupt download?): {exc}") \
            from None
    csvs = [n for n in names if n.endswith(".csv")]
    if len(csvs) != 1:
        raise ValueError(f"file {path!r} holds {len(csvs)} .csv members {csvs[:5]}; expected exactly one")
    member = csvs[0]

    def open_member():
        zf = zipfile.ZipFile(path)
        fh = zf.open(member)
        fh_close = fh.close

        def close() -> None:  # closing the member closes the archive too
            fh_close()
            zf.close()
        fh.close = close  # type: ignore[method-assign]
        return fh
    return open_member


def read_bulk_file(path: str | os.PathLike, timeframe: str | None = None,
                   layout_out: list | None = None) -> dict[str, np.ndarray]:
    """Validated candle arrays of one bulk file (zip or csv)."""
    path = os.fspath(path)
    parts = list(io.iter_csv_stream(_opener(path), path, 1 << 21, timeframe, layout_out=layout_out))
    if not parts:
        return {c: np.empty(0, np.int64 if c == "time" else np.float64) for c in ("time",) + io.VALUE_COLUMNS}
    return {c: np.concatenate([p[c] for p in parts]) for c in parts[0]}


def import_bulk(paths: Any, store: Any = None, exchange: str = "binance", *, symbol: str | None = None,
                timeframe: str | None = None, threads: int | None = None,
                on_conflict: str | None = None) -> BulkResult:
    """Import Binance bulk kline files (zip or csv; files, folders, globs) in one transaction.

    Parameters
    ----------
    paths : path, glob pattern, folder, or a list of them
    store : Store, root folder or None (the default root)
    exchange : store exchange name of the candles (default ``"binance"``)
    symbol, timeframe : override what the file names say (needed when a name does not parse)
    threads : parser threads (default: CPU count, at most 8)

    Every file is parsed and validated before anything is written; then each
    series is appended in time order inside one transaction, so a bad file
    (malformed zip, bad row, mixed time units, unparsable name) raises
    ``ValueError`` naming it and the store is unchanged.
    """
    from .store import Store

    t0 = _time.perf_counter()
    files = [parse_bulk_name(p, symbol, timeframe, exchange) for p in expand(paths)]
    if not isinstance(store, Store):
        store = Store(store)
    n_threads = threads if threads is not None else min(8, os.cpu_count() or 1)
    if n_threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads!r}")
    order = sorted(range(len(files)), key=lambda i: (files[i].symbol, files[i].timeframe, files[i].period,
                                                     files[i].path))
    files = [files[i] for i in order]
    layouts: list[list] = [[] for _ in files]
    with ThreadPoolExecutor(max_workers=max(1, min(n_threads, len(files)))) as pool:
        arrays = list(pool.map(lambda k: read_bulk_file(files[k].path, files[k].timeframe, layouts[k]),
                               range(len(files))))
    result = BulkResult(exchange, files=len(files), store=store)
    ignored = {c for lay in layouts for layout in lay for c in layout.ignored}
    result.ignored_columns = [c for c in io.KLINE_FIELDS if c in ignored] + sorted(ignored - set(io.KLINE_FIELDS))
    by_series: dict[tuple[str, str], BulkSeries] = {}
    with store.transaction(exchange) as tx:
        for f, a in zip(files, arrays):
            s = by_series.setdefault((f.symbol, f.timeframe), BulkSeries(f.symbol, f.timeframe))
            s.files += 1
            n = a["time"].shape[0]
            if not n:
                continue
            r = tx.append(f.symbol, f.timeframe, a, on_conflict=on_conflict)
            s.rows += n
            s.added += r.added
            s.duplicates += r.duplicates
            s.replaced += r.replaced
            s.first = int(a["time"][0]) if s.first is None else min(s.first, int(a["time"][0]))
            s.last = int(a["time"][-1]) if s.last is None else max(s.last, int(a["time"][-1]))
    result.series = list(by_series.values())
    result.rows = sum(s.rows for s in result.series)
    result.seconds = _time.perf_counter() - t0
    return result


def write_bulk_file(path: str | os.PathLike, a: dict[str, np.ndarray], timeframe: str, *, time_unit: str = "ms",
                    header: bool = False) -> str:
    """Write candle arrays in Binance's bulk layout (12 fields; zipped when ``path`` ends in ``.zip``).

    The fields Binance adds (close time, quote volume, trades, taker volumes)
    are derived from the candles; ``time_unit`` ``"us"`` writes open and close
    times as Binance spot files do since 2025. For tests, benchmarks and for
    handing data to tools that read this layout.
    """
    path = os.fspath(path)
    scale = {"ms": 1, "us": 1000}[time_unit]
    t = np.asarray(a["time"], dtype=np.int64)
    close_t = (t + check_timeframe(timeframe)) * scale - 1
    quote = a["volume"] * a["close"]
    def text_of(x: np.ndarray) -> list[str]:  # shortest round-trip form: exact on re-import
        return list(map(repr, np.asarray(x, dtype=np.float64).tolist()))

    cols = [list(map(str, (t * scale).tolist())), *(text_of(a[c]) for c in io.VALUE_COLUMNS),
            list(map(str, close_t.tolist())), text_of(quote), list(map(str, (np.arange(t.size) % 997 + 1).tolist())),
            text_of(a["volume"] / 2), text_of(quote / 2), ["0"] * t.size]
    lines = [",".join(io.KLINE_FIELDS)] if header else []
    body = "\n".join(",".join(row) for row in zip(*cols))
    text = "\n".join(lines + ([body] if t.size else [])) + "\n"
    from .._files import atomic_path

    with atomic_path(path) as tmp:
        if path.endswith(".zip"):
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr(os.path.basename(path)[:-4] + ".csv", text)
        else:
            with open(tmp, "w") as fh:
                fh.write(text)
    return path


__all__ = ["import_bulk", "write_bulk_file", "read_bulk_file", "parse_bulk_name", "split_symbol", "expand", "BulkResult",
           "BulkSeries", "BulkFile"]
