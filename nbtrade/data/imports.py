"""One entry point for every file kind a user may hold: ``nbtrade data import PATHS...``.

* ``.zip`` files and CSVs named like Binance's bulk files (``BTCUSDT-1m-2024-01.csv``),
  folders and glob patterns of them: :func:`nbtrade.data.bulk.import_bulk` (one transaction);
* ``.parquet`` / ``.feather``: :func:`nbtrade.data.formats.import_table`;
* other ``.csv[.gz|.bz2|.lz4]``: :func:`nbtrade.data.io.import_csv` (names like
  ``binance_BTC_USDT_1m.csv.gz`` give exchange, symbol and timeframe).

Every path is checked (exists, kind known, symbol and timeframe known) before
anything is imported; a failure raises with the file named.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import bulk, formats, io


@dataclass
class ImportRow:
    """One line of ``nbtrade data import``'s table."""

    source: str
    exchange: str
    symbol: str
    timeframe: str
    files: int = 1
    rows: int = 0
    added: int = 0
    duplicates: int = 0
    replaced: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    #: The store written to (for :meth:`to_market`).
    store: Any = field(default=None, repr=False, compare=False)

    def to_market(self, start: Any = None, end: Any = None) -> Any:
        """This series read back from the store as a one-symbol :class:`nbtrade.Market`."""
        if self.store is None:
            raise ValueError(f"{self.source}: this row does not know its store; use Store(...).read_market"
                             f"({self.exchange!r}, [{self.symbol!r}], {self.timeframe!r})")
        return self.store.read_market(self.exchange, [self.symbol], self.timeframe, start, end)


def kind_of(path: str) -> str:
    """``"bulk"``, ``"table"`` or ``"csv"`` for one file."""
    name = os.path.basename(path)
    if name.endswith(".zip") or bulk._NAME_RE.match(name):
        return "bulk"
    if os.path.splitext(name)[1].lower() in formats.FORMATS:
        return "table"
    io.compression_of(path)  # raises for an unknown extension
    return "csv"


def import_paths(paths: Sequence[str], store: Any = None, *, exchange: str | None = None,
                 symbol: str | None = None, timeframe: str | None = None) -> list[ImportRow]:
    """Import files, folders and globs of any supported kind; returns one row per series or file."""
    from .store import Store

    if not isinstance(store, Store):
        store = Store(store)
    files = bulk.expand(paths) if any(os.path.isdir(os.path.expanduser(str(p))) or any(ch in str(p) for ch in "*?[")
                                      for p in paths) else [os.fspath(p) for p in paths]
    for f in files:
        if not os.path.isfile(f):
            raise FileNotFoundError(f"path {f!r} does not exist")
    kinds = {f: kind_of(f) for f in files}
    bulk_files = [f for f in files if kinds[f] == "bulk"]
    for f in bulk_files:  # names parse (or flags given) before anything is written
        bulk.parse_bulk_name(f, symbol, timeframe, exchange or "binance")
    for f in files:
        if kinds[f] == "csv" and (exchange is None or symbol is None or timeframe is None):
            io.parse_name(f)
        if kinds[f] == "table" and (symbol is None or timeframe is None):
            raise ValueError(f"path {f!r}: pass --symbol and --timeframe for parquet and feather files")
    rows: list[ImportRow] = []
    if bulk_files:
        res = bulk.import_bulk(bulk_files, store, exchange or "binance", symbol=symbol, timeframe=timeframe)
        for s in res.series:
            rows.append(ImportRow(f"{s.files} bulk file(s)", res.exchange, s.symbol, s.timeframe, s.files, s.rows,
                                  s.added, s.duplicates, s.replaced, res.ignored_columns, store))
    for f in files:
        if kinds[f] == "table":
            r = formats.import_table(f, store, exchange or "binance", symbol, timeframe)
        elif kinds[f] == "csv":
            r = io.import_csv(f, store, exchange, symbol, timeframe)
        else:
            continue
        rows.append(ImportRow(f, r.exchange, r.symbol, r.timeframe, 1, r.rows, r.added, r.duplicates,
                              r.replaced, r.ignored_columns, store))
    return rows


def export_path(store: Any, exchange: str, symbol: str, timeframe: str, path: str, start: Any = None,
                end: Any = None) -> io.ExportResult:
    """Export one stored series to CSV (compressed by extension), parquet or feather."""
    from .store import Store

    if not isinstance(store, Store):
        store = Store(store)
    if os.path.splitext(path)[1].lower() in formats.FORMATS:
        formats.format_of(path)
        from .layout import value_columns

        return formats.export_table(store.iter_blocks(exchange, symbol, timeframe, start, end), path,
                                    columns=value_columns(timeframe))
    return io.export_series(store, exchange, symbol, timeframe, path, start, end)


__all__ = ["import_paths", "export_path", "kind_of", "ImportRow"]
