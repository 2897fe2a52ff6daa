"""HDF5 candle store: crash-safe appends, merges, fast time-range reads, integrity checks.

>>> store = Store("/tmp/candles")                                # doctest: +SKIP
>>> store.append("binance", "BTC/USDT", "1m", frame)             # doctest: +SKIP
>>> store.read("binance", "BTC/USDT", "1m", "2024-01-02", "2024-01-03")  # doctest: +SKIP

Layout (one file per exchange, a group per symbol/timeframe, one compressed
chunked dataset per column) is described in :mod:`nbtrade.data.layout`; crash
safety and concurrency (rollback journal + flock lock file) in
:mod:`nbtrade.data.journal`.

Append semantics
----------------
* Candles after the stored last one are appended; full chunks are never
  rewritten (HDF5 recompresses only the partial last chunk).
* Candles overlapping the stored range are merged: rows identical to stored
  ones are dropped; new open times (gap fills, older history) are inserted by
  rewriting from the first affected chunk to the end, never before it.
* Conflicting values for a stored open time follow ``on_conflict``:
  ``"replace"`` (default: the newer download wins, as exchanges do correct
  candles and re-fetching is how a user repairs data), ``"keep"`` (stored rows
  win) or ``"raise"`` (``ValueError``, nothing written). Counts are returned.
* Invalid input (wrong columns, unsorted or duplicate times, off-grid times,
  NaN, non-positive prices, negative volume, high < low, open/close outside
  [low, high]) raises ``ValueError`` and writes nothing.
* Each call is one atomic transaction; ``Store.transaction`` groups several.

Reads
-----
Range reads go through h5py's low-level API and keep the exchange file open
between calls (one read-only handle per file and Store); it is reused only
while the lock file's write generation, bumped by every writer as it takes the
exclusive lock, and the file's identity, size and mtime are unchanged. Every
chunk carries a fletcher32 checksum that HDF5 verifies as it reads: a damaged
chunk raises :class:`ChecksumError`, never wrong candles. ``Store.close()``
releases the handles.
"""
from __future__ import annotations

import errno
import glob
import os
import struct
import threading
import time as _time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import hdf5plugin  # noqa: F401  (registers the Blosc/LZ4 filters for reading)
import numpy as np
from h5py import h5a, h5d, h5f, h5g, h5p, h5s, h5z

from .._files import atomic_path, remove_stale
from . import integrity
from .journal import JournaledFile, journal_path, locked
from ..timeframes import to_epoch_ms
from .symbols import unified_symbol
from .layout import (BATCHES_NAME, CHUNK_ROWS, DTYPES, FILE_SUFFIX, FUNDING, INDEX_NAME, SCHEMA_VERSION, mark_timeframe,
                     check_exchange, check_symbol, check_timeframe, compression, default_root, group_path,
                     is_mark, value_columns)

FORMAT = "nbtrade-ohlcv"
LIBVER = ("v110", "v112")
CONFLICT_POLICIES = ("replace", "keep", "raise")
#: Series per file whose open datasets a Store keeps between range reads (each holds
#: HDF5's chunk cache of the chunks last read: a few hundred KiB).
KEPT_SERIES = 32
#: Largest append batch one checksum record covers (big imports get several).
BATCH_MAX_ROWS = 1 << 20
_BATCH_DT = np.dtype([("row0", "<i8"), ("rows", "<i8"), ("first", "<i8"), ("last", "<i8"),
                      ("crc", "<i8"), ("written_ms", "<i8")])


class NotFound(KeyError):
    """No data stored for the exchange / symbol / timeframe asked for."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


@dataclass
class AppendResult:
    """What one append did: rows ``added`` (new open times), ``replaced`` (conflicts won by
    new data), ``duplicates`` (identical rows dropped), ``kept`` (conflicts won by stored
    data) and the first row index rewritten (``rewrite_from``; None for a pure append)."""

    added: int = 0
    replaced: int = 0
    duplicates: int = 0
    kept: int = 0
    rewrite_from: int | None = None
    rows: int = 0


@dataclass
class SeriesReport:
    exchange: str
    symbol: str
    timeframe: str
    rows: int = 0
    problems: list[str] = field(default_factory=list)
    gaps: list[tuple[int, int, int]] = field(default_factory=list)
    batches: int = 0
    #: Every chunk carries a fletcher32 checksum that reads verify (series written
    #: before have none until their next write or ``verify(upgrade=True)``).
    checksums: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    """Result of :meth:`Store.verify`: ``ok`` is False when any file or series has a problem.

    Gaps (missing bars on the grid) are listed, not counted as problems:
    exchanges do have outages.
    """

    series: list[SeriesReport] = field(default_factory=list)
    file_problems: dict[str, list[str]] = field(default_factory=dict)
    recovered: list[str] = field(default_factory=list)
    #: ``"exchange symbol timeframe"`` of series given per-chunk checksums by ``upgrade=True``.
    upgraded: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.file_problems and all(s.ok for s in self.series)

    def summary(self) -> list[str]:
        """Human-readable lines (what ``nbtrade data verify`` prints)."""
        lines = [f"recovered an interrupted write (rolled back): {p}" for p in self.recovered]
        for path, problems in self.file_problems.items():
            lines += [f"{path}: {msg}" for msg in problems]
        for s in self.series:
            missing = sum(g[2] for g in s.gaps)
            head = (f"{s.exchange} {s.symbol} {s.timeframe}: {s.rows:,} rows, {s.batches} batches, "
                    f"{len(s.gaps)} gaps ({missing:,} bars missing)")
            lines.append(head + (" OK" if s.ok else " FAILED"))
            lines += [f"  {msg}" for msg in s.problems]
            if not s.checksums:
                lines.append("  no per-chunk checksums yet (written before them): they come with the next "
                             "write, or now with `nbtrade data verify --upgrade`")
        lines += [f"added per-chunk checksums: {name}" for name in self.upgraded]
        lines.append("OK" if self.ok else "FAILED")
        return lines


def to_ms(ts: Any, name: str) -> int | None:
    """Epoch ms (UTC) of one optional bound: None stays None, the rest goes through
    :func:`nbtrade.timeframes.to_epoch_ms` (int ms, ISO string, datetime, Timestamp, datetime64)."""
    if ts is None:
        return None
    if np.ndim(ts):
        raise ValueError(f"{name} must be a time (epoch ms, ISO string, Timestamp), got {type(ts).__name__} "
                         f"of {np.size(ts)} values")
    return to_epoch_ms(ts, name)


def _now_ms() -> int:
    return int(_time.time() * 1000)


class _ReadOnlyFile:
    """Read-only file object for h5py's ``fileobj`` driver that never raises into HDF5.

    An exception raised inside a driver callback stays set while HDF5 goes on (see
    :mod:`nbtrade.data.journal`); a failed read returns no bytes instead, which
    HDF5 reports as a damaged chunk or header (a ``ChecksumError`` or an open error).
    """

    def __init__(self, path: str):
        self._raw = open(path, "rb", buffering=0)
        self._fd = self._raw.fileno()
        self._pos = 0  # own position + pread: threads sharing a kept handle never race on the fd's offset
        self.name = path
        self.error: OSError | None = None

    def __repr__(self) -> str:  # h5py names the file by it (in errors: the path)
        return self.name

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = pos
        elif whence == 1:
            self._pos += pos
        else:
            self._pos = os.fstat(self._fd).st_size + pos
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf) -> int:
        try:
            n = os.preadv(self._fd, [buf], self._pos)
        except OSError as exc:
            self.error = exc
            return 0
        self._pos += n
        return n

    def read(self, size: int = -1) -> bytes:
        try:
            if size is None or size < 0:
                size = max(0, os.fstat(self._fd).st_size - self._pos)
            data = os.pread(self._fd, size, self._pos)
        except OSError as exc:
            self.error = exc
            return b""
        self._pos += len(data)
        return data

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._raw.close()


def _close_quietly(f: h5py.File) -> BaseException | None:
    """Close an HDF5 file; return (never raise) what went wrong.

    A failed close must not leave the ``h5py.File`` alive in a traceback: the
    exception is turned into text here and the object released by the caller.
    """
    try:
        f.close()
    except BaseException as exc:  # noqa: BLE001 - reported by the caller as one OSError
        return OSError(getattr(exc, "errno", None) or 0, f"closing the HDF5 file failed: {exc}")
    return None


def _write_error(path: str, exc: BaseException) -> OSError:
    """One clear error for a write that failed and was rolled back (disk full, I/O error)."""
    code = getattr(exc, "errno", None) or 0
    reason = getattr(exc, "strerror", None) or str(exc)
    hint = " (free some space and retry)" if code == errno.ENOSPC else ""
    return OSError(code, f"{reason} while writing {path}; the write was rolled back and the store "
                         f"is unchanged{hint}")


def _open_error(path: str, exc: Exception) -> ValueError:
    return ValueError(f"{path} is not a readable HDF5 store file (not HDF5, truncated or corrupted): {exc}")


class Store:
    """Candles of many exchanges, symbols and timeframes in HDF5 files under ``root``.

    Parameters
    ----------
    root : path, optional
        Folder holding ``<exchange>.h5`` files; default :func:`nbtrade.data.layout.default_root`
        (``$NBTRADE_HOME/data``). Created on first write.
    dtype : {"float64", "float32"}
        Storage type of OHLCV columns for new series (existing series keep theirs).
    codec : {"blosc-lz4", "blosc2-lz4", "bitshuffle-lz4", "gzip"}
        Compression of new series.
    chunk_rows : int
        Rows per HDF5 chunk for new series.
    on_conflict : {"replace", "keep", "raise"}
        Default policy when an append carries different values for a stored open time.
    durable : bool
        Also survive power loss (fsync journal and file); a killed process is
        survived either way.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, dtype: str = "float64",
                 codec: str = "blosc-lz4", chunk_rows: int = CHUNK_ROWS, on_conflict: str = "replace",
                 durable: bool = False):
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
        if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 256:
            raise ValueError(f"chunk_rows must be an int >= 256, got {chunk_rows!r}")
        if on_conflict not in CONFLICT_POLICIES:
            raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, got {on_conflict!r}")
        compression(codec)
        self.root = Path(root).expanduser() if root is not None else default_root()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"root {str(self.root)!r} exists and is not a folder")
        self.dtype = dtype
        self.codec = codec
        self.chunk_rows = int(chunk_rows)
        self.on_conflict = on_conflict
        self.durable = durable
        self._init_handles()

    def _init_handles(self) -> None:
        # Read handles kept open between range reads: {path: (file identity, FileID, {group: index})}.
        # Reused only while the lock file's write generation and the file's identity are unchanged.
        self._handles: dict[str, tuple[tuple, Any, dict]] = {}
        self._handles_lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_handles", None)
        state.pop("_handles_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_handles()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    def path(self, exchange: str) -> Path:
        """File holding ``exchange``'s candles."""
        return self.root / (check_exchange(exchange) + FILE_SUFFIX)

    def exchanges(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name[:-len(FILE_SUFFIX)] for p in self.root.glob("*" + FILE_SUFFIX))

    # --- opening ------------------------------------------------------------
    @contextmanager
    def _reading(self, exchange: str, missing_ok: bool = False, low_level: bool = False
                 ) -> Iterator[Any]:
        """The exchange file open for reading under the shared lock: an ``h5py.File``, or with
        ``low_level`` a ``(h5py.File, index cache)`` pair kept between range reads (see ``_read_handle``)."""
        path = str(self.path(exchange))
        if not os.path.exists(path):
            if missing_ok:
                yield None
                return
            raise NotFound(f"no store file for exchange {exchange!r} at {path}")
        with locked(path, exclusive=False, durable=self.durable) as lock:
            if low_level:
                fid, cache = self._read_handle(path, lock.generation)
                try:
                    yield cache["_keep"][1], cache
                finally:
                    if lock.generation is None:  # not kept: close now
                        cache["_keep"][1].close()
                        cache["_keep"][0].close()
                return
            try:  # low-level open with a shared access list: half the cost of h5py.File(path)
                fid = h5f.open(os.fsencode(path), h5f.ACC_RDONLY, fapl=_read_fapl())
            except OSError as exc:
                raise _open_error(path, exc) from None
            f = h5py.File(fid)
            try:
                _check_format(fid, path)
                yield f
            finally:
                f.close()

    def _read_handle(self, path: str, generation: int | None) -> tuple[Any, dict]:
        """``(FileID, index cache)`` of ``path`` for range reads; the caller holds the shared lock.

        The handle of an earlier read is reused when nothing can have changed the
        file since: the lock file's write generation (bumped by every writer as
        it takes the exclusive lock) and the file's device, inode, size and mtime
        are the same. That saves the open, the format check, the close and the
        chunk-index reads (a third of a 1-day read). Otherwise a fresh handle.
        """
        st = os.stat(path)
        key = (generation, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if generation is not None:
            with self._handles_lock:
                entry = self._handles.get(path)
            if entry is not None and entry[0] == key:
                return entry[1], entry[2]
        # Through h5py's fileobj driver: HDF5 then does not take this handle for the file that
        # other sec2 opens in this process name (h5py.File(path), with any locking flags), so
        # keeping it open never makes theirs fail with "file locking flag values don't match".
        raw = _ReadOnlyFile(path)
        try:
            f = h5py.File(raw, "r")
        except OSError as exc:
            raw.close()
            raise _open_error(path, exc) from None
        fid = f.id
        _check_format(fid, path)
        cache: dict = {"_keep": (raw, f)}
        if generation is not None:
            with self._handles_lock:  # the old handle closes when its last reader drops it
                self._handles[path] = (key, fid, cache)
        return fid, cache

    def close(self) -> None:
        """Release the read handles kept between range reads (also done when the Store is collected)."""
        with self._handles_lock:
            self._handles.clear()

    @contextmanager
    def transaction(self, exchange: str) -> Iterator["Writer"]:
        """Atomic write session: every append inside commits together or not at all.

        Holds the exchange file's exclusive lock until the block ends; readers wait.

        >>> with store.transaction("binance") as tx:                  # doctest: +SKIP
        ...     tx.append("BTC/USDT", "1m", part1)
        ...     tx.append("BTC/USDT", "1m", part2)
        """
        path = str(self.path(exchange))
        self.root.mkdir(parents=True, exist_ok=True)
        with locked(path, exclusive=True, durable=self.durable):
            for stale in glob.glob(glob.escape(path) + ".tmp-*"):  # a creator killed before its rename
                os.remove(stale)  # (temporary names of earlier versions)
            remove_stale(path)
            created = not os.path.exists(path)
            if created:
                try:
                    self._create_file(path, exchange)
                except OSError as exc:  # e.g. a full disk: no file is left behind
                    raise _write_error(path, exc) from None
            try:
                jf = JournaledFile(path, durable=self.durable)
            except OSError as exc:
                if created:
                    os.remove(path)
                raise _write_error(path, exc) from None
            try:
                f = h5py.File(jf, "r+", libver=LIBVER)
            except OSError as exc:
                jf.rollback()
                raise _open_error(path, exc) from None
            error: BaseException | None = None
            writer = Writer(self, f, exchange, jf)
            try:
                _check_format(f.id, path)
                yield writer
            except BaseException as exc:
                error = exc
            failure = _close_quietly(f)
            writer.file = None  # type: ignore[assignment]  # nothing may keep the file alive
            del f, writer
            if error is None and jf.error is None and failure is None:
                jf.commit()
                return
            jf.rollback()
            if created:  # leave no empty file behind a failed first write
                os.remove(path)
            if error is not None and (jf.error is None or not isinstance(error, OSError)):
                raise error
            raise _write_error(path, jf.error or failure) from None

    def _create_file(self, path: str, exchange: str) -> None:
        with atomic_path(path, durable=self.durable) as tmp:
            with h5py.File(tmp, "w", libver=LIBVER, fs_strategy="fsm", fs_persist=True, locking=False) as f:
                f.attrs.update({"format": FORMAT, "schema_version": SCHEMA_VERSION, "exchange": exchange,
                                "created_ms": _now_ms()})

    # --- writing --------------------------------------------------------------
    def append(self, exchange: str, symbol: str, timeframe: str, data: Any, *,
               on_conflict: str | None = None) -> AppendResult:
        """Store candles (DataFrame with UTC DatetimeIndex, or dict of ``time`` + OHLCV arrays).

        ``timeframe="funding"`` stores funding-rate history instead: ``time``,
        ``rate``, ``mark_price`` (what the fetcher's funding sink sends); ``timeframe="mark_1h"``
        (:func:`~nbtrade.data.layout.mark_timeframe`) mark-price candles ``time, open, high, low,
        close``. Funding times out of order or duplicated, and mark prices <= 0, are refused
        with an error naming the field.

        One atomic transaction; see the module docstring for merge rules.
        Returns an :class:`AppendResult`.
        """
        arrays = _prepare(symbol, timeframe, data)
        with self.transaction(exchange) as tx:
            return tx._append_prepared(symbol, timeframe, arrays, on_conflict)

    def delete(self, exchange: str, symbol: str, timeframe: str) -> None:
        """Remove one series (its space is reused by later writes)."""
        gpath = group_path(symbol, timeframe)
        with self.transaction(exchange) as tx:
            if gpath not in tx.file:
                raise NotFound(f"no {symbol} {timeframe} in {exchange}")
            del tx.file[gpath]
            parent = gpath.split("/")[0]
            if len(tx.file[parent]) == 0:
                del tx.file[parent]

    def page_journal(self, exchange: str, symbol: str, timeframe: str) -> Any:
        """On-disk journal of an unfinished newest-first fetch (Bybit, OKX) of one series:
        ``<root>/<exchange>.pending/<symbol>/<timeframe>/`` (:mod:`nbtrade.data.pending`). The fetcher
        writes each page there as it arrives and commits the pages in time order, so a killed or
        interrupted fetch resumes without losing or refetching a page."""
        from .pending import FilePageJournal, journal_dir

        return FilePageJournal(journal_dir(self.root, check_exchange(exchange),
                                           unified_symbol(symbol, exchange, strict=False), timeframe))

    # --- reading --------------------------------------------------------------
    def last_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """Open time (epoch ms) of the last stored candle, or None when nothing is stored."""
        gpath = group_path(unified_symbol(symbol, exchange, strict=False), timeframe)
        with self._reading(exchange, missing_ok=True) as f:
            if f is None or gpath not in f:
                return None
            grp = f[gpath]
            return int(grp.attrs["last"]) if int(grp.attrs["rows"]) else None

    def first_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        """Open time (epoch ms) of the first stored candle, or None when nothing is stored."""
        gpath = group_path(unified_symbol(symbol, exchange, strict=False), timeframe)
        with self._reading(exchange, missing_ok=True) as f:
            if f is None or gpath not in f:
                return None
            grp = f[gpath]
            return int(grp.attrs["first"]) if int(grp.attrs["rows"]) else None

    def read(self, exchange: str, symbol: str, timeframe: str, start: Any = None, end: Any = None,
             columns: Sequence[str] | None = None, as_arrays: bool = False):
        """Candles with open time in ``[start, end)``.

        Parameters
        ----------
        start, end : epoch ms, ISO string, Timestamp, optional
            Bounds on the open time (naive means UTC); ``end`` is exclusive.
        columns : subset of ``open, high, low, close, volume``, optional
            Columns to read (all by default); others are not touched on disk.
        as_arrays : bool
            Return ``{'time': int64 ms, column: array}`` instead of a DataFrame
            with a UTC DatetimeIndex named ``time``.

        Only the chunks overlapping the range are read: the row range comes from a
        binary search on the per-chunk first times, then on one or two time chunks.
        """
        with self._reading(exchange, low_level=True) as (f, cache):
            return _read_frame(f, exchange, symbol, timeframe, start, end, columns, as_arrays, cache)

    def read_many(self, exchange: str, symbols: Sequence[str], timeframe: str, start: Any = None,
                  end: Any = None, columns: Sequence[str] | None = None, as_arrays: bool = False,
                  as_market: bool = False) -> Any:
        """``{symbol: candles}`` for several symbols of one exchange, with one file open.

        With ``as_market`` the result is one :class:`nbtrade.Market` instead (see :meth:`read_market`).
        """
        if as_market:
            return self.read_market(exchange, symbols, timeframe, start, end, columns)
        if isinstance(symbols, str):
            symbols = [symbols]
        with self.reader(exchange) as r:
            return {s: r.read(s, timeframe, start, end, columns, as_arrays) for s in symbols}

    def read_market(self, exchange: str, symbols: Sequence[str] | str, timeframe: str, start: Any = None,
                    end: Any = None, columns: Sequence[str] | None = None, *, funding: bool | None = None,
                    mark: bool | None = None) -> Any:
        """Candles of several symbols with open time in ``[start, end)`` as one :class:`nbtrade.Market`.

        The arrays go from HDF5 straight into preallocated ``(n_bars, n_symbols)`` float64
        arrays on the union of the symbols' open times: NaN where a symbol has no candle
        (nothing is forward-filled), no DataFrame per symbol. Symbols keep the names given;
        ``meta["exchange"]`` is ``exchange``. ``columns`` as in :meth:`read` (close required).

        Perpetuals: the funding-rate history (``"funding"``) and mark-price candles
        (``"mark_<timeframe>"``) stored beside the candles become the panel fields
        ``funding_rate``/``funding_time`` and ``mark_open``/``mark_high``/``mark_low``/``mark_close``
        (see :func:`nbtrade.data.panels.market_from_series` for the representation). ``funding``
        and ``mark``: None (default) adds them when any symbol has them stored, True requires them
        for every symbol (``KeyError`` naming the missing ones), False leaves them out. Nothing is
        invented where they are missing: the fields are NaN there.

        Raises ``KeyError`` for a series that is not stored and ``ValueError`` naming the
        symbols without a candle in the range.

        >>> m = store.read_market("binance", ["BTC/USDT", "ETH/USDT"], "1h", "2024-01-01")  # doctest: +SKIP
        >>> m.close                                     # bars x symbols DataFrame
        """
        from .panels import market_from_series

        if isinstance(symbols, str):
            symbols = [symbols]
        symbols = list(symbols)
        if len(set(symbols)) != len(symbols):
            dup = next(s for s in symbols if symbols.count(s) > 1)
            raise ValueError(f"symbols names {dup!r} twice")
        cols = _check_read_columns(columns, timeframe)
        for name, flag in (("funding", funding), ("mark", mark)):
            if flag not in (None, True, False):
                raise ValueError(f"{name} must be None (when stored), True (required) or False, got {flag!r}")
        extra: dict[str, dict] = {}
        with self._reading(exchange, low_level=True) as (f, cache):
            parts = {s: _read_frame(f, exchange, s, timeframe, start, end, cols, True, cache) for s in symbols}
            for name, key, flag in (("funding", FUNDING, funding), ("mark", mark_timeframe(timeframe), mark)):
                if flag is False:
                    continue
                got, missing = {}, []
                for s in symbols:
                    try:
                        got[s] = _read_frame(f, exchange, s, key, start, end, None, True, cache)
                    except NotFound:
                        missing.append(s)
                if flag and missing:
                    raise NotFound(f"{name}={flag}: no {key} series stored for {', '.join(missing)} on {exchange}; "
                                   f"fetch them first (nbtrade fetch ... --{name})")
                if got:
                    extra[name] = got
        span = "" if start is None and end is None else f" [{start}, {end})"
        return market_from_series(parts, exchange=exchange, columns=cols, what=f"store {exchange} {timeframe}{span}",
                                  funding=extra.get("funding"), mark=extra.get("mark"), timeframe=timeframe)

    @contextmanager
    def reader(self, exchange: str) -> Iterator["Reader"]:
        """Keep one exchange file open for many reads (saves the open per read).

        Holds the shared lock for the whole block, so writers wait until it ends
        (do not append to the same exchange inside the block: it would wait forever).

        >>> with store.reader("binance") as r:                    # doctest: +SKIP
        ...     for day in days:
        ...         frame = r.read("BTC/USDT", "1m", day, day + 86_400_000)
        """
        with self._reading(exchange) as f:
            yield Reader(f, exchange)

    def iter_blocks(self, exchange: str, symbol: str, timeframe: str, start: Any = None, end: Any = None,
                    rows: int = 1_000_000, columns: Sequence[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Arrays dicts of at most ``rows`` candles each, in time order (for exports).

        Holds the shared lock while iterating, so the series does not change underneath
        (do not append to the same exchange while iterating).
        """
        cols = _check_read_columns(columns, timeframe)
        lo, hi = to_ms(start, "start"), to_ms(end, "end")
        with self._reading(exchange) as f:
            grp = _series(f, exchange, symbol, timeframe)
            i0, i1 = _row_range(grp, lo, hi)[:2]
            for a in range(i0, i1, max(1, int(rows))):
                b = min(i1, a + int(rows))
                yield {c: _read_rows(grp[c], a, b) for c in ("time",) + cols}

    def count(self, exchange: str, symbol: str, timeframe: str, start: Any = None, end: Any = None) -> int:
        """Rows with open time in ``[start, end)`` (reads the chunk index and at most two time chunks)."""
        lo, hi = to_ms(start, "start"), to_ms(end, "end")
        with self._reading(exchange) as f:
            i0, i1 = _row_range(_series(f, exchange, symbol, timeframe), lo, hi)[:2]
        return i1 - i0

    def times(self, exchange: str, symbol: str, timeframe: str, start: Any = None, end: Any = None) -> np.ndarray:
        """Open times (int64 epoch ms) of the candles in ``[start, end)``; only the time column is read
        (for planning reads in time chunks: ``read_many``/``read_market`` with ``start``/``end``
        then read only those rows)."""
        lo, hi = to_ms(start, "start"), to_ms(end, "end")
        with self._reading(exchange) as f:
            grp = _series(f, exchange, symbol, timeframe)
            i0, i1 = _row_range(grp, lo, hi)[:2]
            return _read_rows(grp["time"], i0, i1).astype(np.int64, copy=False)

    def ls(self, exchange: str | None = None) -> list[dict[str, Any]]:
        """One dict per stored series: exchange, symbol, timeframe, rows, first, last (epoch ms).

        A file that cannot be read gets one entry with its ``error`` (and None
        elsewhere) instead of stopping the listing; ``error`` is None otherwise.
        """
        out = []
        for ex in ([exchange] if exchange else self.exchanges()):
            try:
                with self._reading(ex, missing_ok=True) as f:
                    if f is None:
                        continue
                    for grp in _iter_series(f):
                        a = grp.attrs
                        out.append({"exchange": ex, "symbol": str(a["symbol"]), "timeframe": str(a["timeframe"]),
                                    "rows": int(a["rows"]), "first": _opt(a["first"], a["rows"]),
                                    "last": _opt(a["last"], a["rows"]), "error": None})
            except (ValueError, OSError, KeyError) as exc:
                out.append({"exchange": ex, "symbol": None, "timeframe": None, "rows": None, "first": None,
                            "last": None, "error": str(exc)})
        return sorted(out, key=lambda d: (d["exchange"], d["symbol"] or "", d["timeframe"] or ""))

    def info(self, exchange: str, symbol: str, timeframe: str) -> dict[str, Any]:
        """Metadata of one series: attributes, sizes, compression ratio, batches, gap count."""
        with self._reading(exchange) as f:
            grp = _series(f, exchange, symbol, timeframe)
            a = dict(grp.attrs)
            rows = int(a["rows"])
            cols = _group_columns(grp)
            stored = sum(grp[c].id.get_storage_size() for c in cols)
            raw = sum(rows * grp[c].dtype.itemsize for c in cols)
            times = _read_rows(grp["time"], 0, rows)
            tf_ms = int(a["timeframe_ms"])
            funding = str(a["timeframe"]) == FUNDING
            gaps = [] if funding else integrity.find_gaps(times, tf_ms)
            batches = grp[BATCHES_NAME].shape[0]
        kind = series_kind(str(a["timeframe"]))
        if funding:  # events, not bars: no grid, so no gaps; the spacing says the funding interval
            spacing = np.diff(times)
            grid = {"funding_interval": (f"{np.median(spacing) / 3_600_000:g}h (median spacing; "
                                         f"{np.min(spacing) / 3_600_000:g}h..{np.max(spacing) / 3_600_000:g}h)")
                    if spacing.size else "-"}
        else:
            grid = {"gaps": len(gaps), "missing_bars": int(sum(g[2] for g in gaps))}
        return {
            "exchange": exchange, "symbol": str(a["symbol"]), "timeframe": str(a["timeframe"]),
            "kind": kind, "columns": ", ".join(cols[1:] if cols and cols[0] == "time" else cols),
            "rows": rows, "first": _opt(a["first"], rows), "last": _opt(a["last"], rows),
            "first_iso": integrity._iso(a["first"]) if rows else None,
            "last_iso": integrity._iso(a["last"]) if rows else None,
            "dtype": str(a["dtype"]), "codec": str(a["codec"]), "chunk_rows": int(a["chunk_rows"]),
            "schema_version": int(a["schema_version"]), "batches": int(batches), **grid,
            "stored_bytes": int(stored), "raw_bytes": int(raw),
            "ratio": stored / raw if raw else float("nan"),
            "created_ms": int(a["created_ms"]), "updated_ms": int(a["updated_ms"]),
            "path": str(self.path(exchange)),
        }

    def verify(self, exchange: str | None = None, symbol: str | None = None,
               timeframe: str | None = None, block_rows: int = 1 << 20, upgrade: bool = False) -> VerifyReport:
        """Check every (or the selected) series: see :func:`_verify_series`. Never raises on bad files.

        With ``upgrade``, series that verify but were written before per-chunk
        checksums are rewritten with them (one transaction per exchange file).
        """
        report = self._verify(exchange, symbol, timeframe, block_rows)
        if not upgrade:
            return report
        todo: dict[str, list[SeriesReport]] = {}
        for s in report.series:
            if s.ok and not s.checksums:
                todo.setdefault(s.exchange, []).append(s)
        for ex, series in todo.items():
            try:
                with self.transaction(ex) as tx:
                    for s in series:
                        _upgrade_series(tx.file[group_path(s.symbol, s.timeframe)])
            except (OSError, ValueError) as exc:
                report.file_problems.setdefault(str(self.path(ex)), []).append(f"upgrade failed: {exc}")
                continue
            for s in series:
                s.checksums = True
                report.upgraded.append(f"{ex} {s.symbol} {s.timeframe}")
        return report

    def _verify(self, exchange: str | None, symbol: str | None, timeframe: str | None,
                block_rows: int) -> VerifyReport:
        report = VerifyReport()
        for ex in ([exchange] if exchange else self.exchanges()):
            path = str(self.path(ex))
            if not os.path.exists(path):
                report.file_problems[path] = ["file does not exist"]
                continue
            had_journal = os.path.exists(journal_path(path))
            try:
                with self._reading(ex) as f:
                    if had_journal:
                        report.recovered.append(path)
                    for grp in _iter_series(f):
                        a = grp.attrs
                        if symbol is not None and str(a.get("symbol")) != symbol:
                            continue
                        if timeframe is not None and str(a.get("timeframe")) != timeframe:
                            continue
                        try:
                            report.series.append(_verify_series(ex, grp, block_rows))
                        except (OSError, ValueError, KeyError) as exc:  # a chunk failing its checksum
                            bad = SeriesReport(ex, str(a.get("symbol", grp.name)), str(a.get("timeframe", "?")))
                            bad.problems.append(f"damaged data (a chunk fails its checksum or does not "
                                                f"decompress): {exc}")
                            report.series.append(bad)
            except (ValueError, OSError, KeyError) as exc:
                report.file_problems[path] = [str(exc)]
        return report


class Reader:
    """Read access inside :meth:`Store.reader`: ``read`` and ``last_time`` as on :class:`Store`."""

    def __init__(self, file: h5py.File, exchange: str):
        self.file = file
        self.exchange = exchange

    def read(self, symbol: str, timeframe: str, start: Any = None, end: Any = None,
             columns: Sequence[str] | None = None, as_arrays: bool = False):
        return _read_frame(self.file, self.exchange, symbol, timeframe, start, end, columns, as_arrays)

    def last_time(self, symbol: str, timeframe: str) -> int | None:
        grp = _series(self.file, self.exchange, symbol, timeframe)
        return int(grp.attrs["last"]) if int(grp.attrs["rows"]) else None


class Writer:
    """Write access inside :meth:`Store.transaction`."""

    def __init__(self, store: Store, file: h5py.File, exchange: str, journal: JournaledFile | None = None):
        self.store = store
        self.file = file
        self.exchange = exchange
        self._journal = journal

    def append(self, symbol: str, timeframe: str, data: Any, *, on_conflict: str | None = None) -> AppendResult:
        """As :meth:`Store.append`, inside the transaction."""
        return self._append_prepared(symbol, timeframe, _prepare(symbol, timeframe, data), on_conflict)

    def _check_io(self) -> None:
        """Stop the transaction at the first failed write (e.g. disk full) instead of at commit."""
        if self._journal is not None and self._journal.error is not None:
            raise self._journal.error

    def last_time(self, symbol: str, timeframe: str) -> int | None:
        gpath = group_path(symbol, timeframe)
        if gpath not in self.file or not int(self.file[gpath].attrs["rows"]):
            return None
        return int(self.file[gpath].attrs["last"])

    def _append_prepared(self, symbol: str, timeframe: str, a: dict[str, np.ndarray],
                         on_conflict: str | None) -> AppendResult:
        policy = self.store.on_conflict if on_conflict is None else on_conflict
        if policy not in CONFLICT_POLICIES:
            raise ValueError(f"on_conflict must be one of {CONFLICT_POLICIES}, got {policy!r}")
        symbol = unified_symbol(symbol, self.exchange, strict=False)  # one symbol rule (data/symbols.py)
        gpath = group_path(symbol, timeframe)
        grp = self.file.get(gpath)
        if grp is None:
            grp = self._create_series(gpath, symbol, timeframe)
        elif str(grp.attrs["symbol"]) != symbol:
            raise ValueError(f"symbol {symbol!r} maps to group {gpath!r} already used by "
                             f"{str(grp.attrs['symbol'])!r}")
        elif "checksums" not in grp.attrs:  # written before per-chunk checksums: add them now
            _upgrade_series(grp)
        n_new = a["time"].shape[0]
        rows = int(grp.attrs["rows"])
        if n_new == 0:
            return AppendResult(rows=rows)
        a = _cast(a, np.dtype(str(grp.attrs["dtype"])), symbol)
        if rows == 0 or a["time"][0] > int(grp.attrs["last"]):
            _append_tail(grp, a, rows)
            result = AppendResult(added=n_new, rows=rows + n_new)
        else:
            result = _merge(grp, a, rows, policy)
        self._check_io()
        return result

    def _create_series(self, gpath: str, symbol: str, timeframe: str) -> h5py.Group:
        st = self.store
        codec, comp = compression(st.codec)
        grp = self.file.create_group(gpath)
        chunk = st.chunk_rows
        dtype = "float64" if timeframe == FUNDING else st.dtype  # rates are small: keep full precision
        for c in ("time",) + value_columns(timeframe):
            dt = np.int64 if c == "time" else np.dtype(dtype)
            grp.create_dataset(c, shape=(0,), maxshape=(None,), dtype=dt, chunks=(chunk,), fletcher32=True,
                               **comp)
        grp.create_dataset(INDEX_NAME, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,),
                           fletcher32=True)
        grp.create_dataset(BATCHES_NAME, shape=(0,), maxshape=(None,), dtype=_BATCH_DT, chunks=(1024,),
                           fletcher32=True)
        now = _now_ms()
        grp.attrs.update({
            "exchange": self.exchange, "symbol": symbol, "timeframe": timeframe,
            "timeframe_ms": check_timeframe(timeframe), "rows": 0, "first": 0, "last": 0,
            "dtype": dtype, "chunk_rows": chunk, "codec": codec, "schema_version": SCHEMA_VERSION,
            "created_ms": now, "updated_ms": now, "checksums": "fletcher32",
        })
        return grp


# --- helpers: preparation ------------------------------------------------------
def series_kind(timeframe: str) -> str:
    """What a series holds, for listings: ``candles``, ``mark-price candles`` or ``funding rates``."""
    if timeframe == FUNDING:
        return "funding rates"
    return "mark-price candles" if is_mark(timeframe) else "candles"


def _prepare(symbol: str, timeframe: str, data: Any) -> dict[str, np.ndarray]:
    check_symbol(symbol)
    tf_ms = check_timeframe(timeframe)
    if isinstance(data, Mapping) and "time" in data:  # unsigned times past int64 would wrap negative
        raw = np.asarray(data["time"])
        if raw.dtype.kind == "u" and raw.size and int(raw.max()) > np.iinfo(np.int64).max:
            i = int(np.argmax(raw > np.iinfo(np.int64).max))
            raise ValueError(f"data: 'time' holds {int(raw[i])} at row {i}, beyond int64 epoch milliseconds; "
                             "nothing written")
    a = integrity.to_arrays(data, value_columns=value_columns(timeframe))
    integrity.validate(a, tf_ms, timeframe=timeframe)
    return a


def _cast(a: dict[str, np.ndarray], dtype: np.dtype, symbol: str) -> dict[str, np.ndarray]:
    """Value columns in the series' storage dtype; refuses values that dtype cannot hold.

    Validation ran on float64. A narrower dtype would store 1e300 as inf and
    1e-50 as 0.0, values the validation refuses; rounding is monotone, so the
    OHLC order rules hold after the cast and only overflow and underflow remain.
    """
    out = {}
    for c, v in a.items():
        if c == "time" or v.dtype == dtype:
            out[c] = v
            continue
        with np.errstate(over="ignore", under="ignore"):
            w = v.astype(dtype)
        bad = np.flatnonzero((np.isinf(w) & np.isfinite(v)) | ((w == 0) & (v != 0)))
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"data: {symbol} column {c!r} holds {v[i]!r} at {integrity._iso(a['time'][i])} "
                             f"({bad.size} such rows), which {dtype} cannot store (it would become {w[i]!r}); "
                             f"nothing written. Use Store(dtype='float64') for this series")
        out[c] = w
    return out


def _read_frame(f: h5py.File, exchange: str, symbol: str, timeframe: str, start: Any, end: Any,
                columns: Sequence[str] | None, as_arrays: bool, cache: dict | None = None):
    cols = _check_read_columns(columns, timeframe)
    lo, hi = to_ms(start, "start"), to_ms(end, "end")
    if lo is not None and hi is not None and hi < lo:
        raise ValueError(f"end ({end}) is before start ({start})")
    if cache is None:
        series_cache, gid = None, _series_id(f, exchange, symbol, timeframe)
    else:  # an unchanged file: the group and its datasets found before are still the ones
        series_cache = cache.get((symbol, timeframe))
        if series_cache is None:
            kept = [k for k in cache if isinstance(k, tuple)]
            if len(kept) >= KEPT_SERIES:  # open datasets hold HDF5 chunk caches: bound them
                del cache[kept[0]]
            series_cache = cache[(symbol, timeframe)] = {}
        gid = series_cache.get("gid")
        if gid is None:
            gid = series_cache["gid"] = _series_id(f, exchange, symbol, timeframe)
    out = _read_range(gid, lo, hi, cols, stacked=not as_arrays, cache=series_cache)
    if as_arrays:
        return out
    import pandas as pd

    from ..timeframes import ms_to_index

    # values.T is (n, k) Fortran-ordered: pandas keeps it as its block without a copy
    return pd.DataFrame(out["values"].T, index=ms_to_index(out["time"]), columns=list(cols), copy=False)


def _check_read_columns(columns: Sequence[str] | None, timeframe: str) -> tuple[str, ...]:
    allowed = value_columns(timeframe)
    if columns is None:
        return allowed
    if isinstance(columns, str):
        columns = [columns]
    bad = [c for c in columns if c not in allowed]
    if bad:
        raise ValueError(f"columns must be a subset of {list(allowed)}, got unknown {bad}")
    return tuple(columns)


def _group_columns(grp: h5py.Group) -> tuple[str, ...]:
    return ("time",) + value_columns(str(grp.attrs["timeframe"]))


def _read_fapl() -> h5p.PropFAID:
    """File access list of read sessions (HDF5 file locking off: the flock lock file rules)."""
    global _READ_FAPL
    if _READ_FAPL is None:
        fapl = h5p.create(h5p.FILE_ACCESS)
        fapl.set_file_locking(False, True)
        _READ_FAPL = fapl
    return _READ_FAPL


_READ_FAPL: h5p.PropFAID | None = None


def _int_attr(oid: Any, name: bytes) -> int | None:
    """An integer attribute through the low-level API (a tenth of ``obj.attrs[name]``); None if absent."""
    if not h5a.exists(oid, name):
        return None
    out = np.zeros((), dtype=np.int64)
    h5a.open(oid, name).read(out)
    return int(out)


def _check_format(fid: h5f.FileID, path: str) -> None:
    version = _int_attr(fid, b"schema_version")  # one attribute read on the hot path
    if version is None or version < 1:  # every store file has both attributes (written together)
        raise ValueError(f"{path} is an HDF5 file but not an nbtrade candle store")
    if version > SCHEMA_VERSION:
        raise ValueError(f"{path} has schema version {version}; this nbtrade reads up to {SCHEMA_VERSION}")


def _series(f: h5py.File, exchange: str, symbol: str, timeframe: str) -> h5py.Group:
    unified = unified_symbol(symbol, exchange, strict=False)  # one symbol rule (data/symbols.py)
    grp = f.get(group_path(unified, timeframe))
    grp = grp if grp is not None else f.get(group_path(symbol, timeframe))  # stored before the rule
    if grp is None:
        raise NotFound(f"no {symbol} {timeframe} candles stored for {exchange}")
    return grp


def _series_id(f: h5py.File, exchange: str, symbol: str, timeframe: str) -> h5g.GroupID:
    """Low-level id of a series group (the read fast path): found as :func:`_series` finds it."""
    return _series(f, exchange, symbol, timeframe).id


def _iter_series(f: h5py.File) -> Iterator[h5py.Group]:
    for sym in f.values():
        if isinstance(sym, h5py.Group):
            for grp in sym.values():
                if isinstance(grp, h5py.Group) and "symbol" in grp.attrs:
                    yield grp


def _opt(value: Any, rows: Any) -> int | None:
    return int(value) if int(rows) else None


# --- helpers: rows -------------------------------------------------------------
# Range reads go through h5py's low-level API: one hyperslab read per column. The
# high-level Dataset/Group wrappers cost ~30 us per access, which was most of a
# 1-day read (measured 2.2x the memory-mapped npy baseline before, see bench_data).
def _read_rows(ds: h5py.Dataset | h5d.DatasetID, lo: int, hi: int, out: np.ndarray | None = None) -> np.ndarray:
    """Rows ``[lo, hi)`` of a 1-D dataset (an ``h5py.Dataset`` or its low-level id)."""
    dsid = ds.id if isinstance(ds, h5py.Dataset) else ds
    n = max(0, hi - lo)
    if out is None:
        out = np.empty(n, dtype=dsid.dtype)
    if n:
        fspace = dsid.get_space()
        fspace.select_hyperslab((lo,), (n,))
        dsid.read(h5s.create_simple((n,)), fspace, out)
    return out


def _search(grp: h5py.Group, t: int, rows: int) -> int:
    """First row whose time is >= ``t`` (reads the chunk index and one time chunk)."""
    return _row_range(grp, t, None)[0]


def _row_range(grp: h5py.Group | h5g.GroupID, start: int | None, end: int | None, cache: dict | None = None
               ) -> tuple[int, int, np.ndarray | None, int]:
    """Rows ``[i0, i1)`` with time in ``[start, end)``, plus the time rows read on the way
    (``times`` holding rows from ``lo``) so callers need not read them again.

    One read of the chunk index, then one read of the time chunks holding both
    bounds (usually one or two chunks). Lengths come from the dataset itself
    (kept equal to the ``rows`` attribute by the journaled transactions).
    """
    gid = grp.id if isinstance(grp, h5py.Group) else grp
    tds = _dataset(gid, "time", cache)
    rows = tds.shape[0]
    if rows == 0:
        return 0, 0, None, 0
    if start is None and end is None:
        return 0, rows, None, 0
    if cache is not None and "index" in cache:  # an unchanged file (see Store._read_handle)
        chunk, index = cache["index"]
    else:
        chunk = tds.get_create_plist().get_chunk()[0]
        ids = h5d.open(gid, INDEX_NAME.encode())
        index = _read_rows(ids, 0, ids.shape[0])
        if cache is not None:
            cache["index"] = (chunk, index)
    bounds = [t for t in (start, end) if t is not None]
    cs = np.searchsorted(index, bounds, side="right") - 1
    lo = max(0, int(cs.min())) * chunk
    hi = min(rows, (max(0, int(cs.max())) + 1) * chunk)
    times = _read_rows(tds, lo, hi)
    found = lo + np.searchsorted(times, bounds, side="left")
    i0 = 0 if start is None else int(found[0])
    i1 = rows if end is None else int(found[-1])
    return i0, max(i0, i1), times, lo


def _dataset(gid: h5g.GroupID, name: str, cache: dict | None) -> h5d.DatasetID:
    """A column's dataset id, kept in ``cache`` (a series' entry of an unchanged file) when given."""
    if cache is None:
        return h5d.open(gid, name.encode())
    ds = cache.get(name)
    if ds is None:
        ds = cache[name] = h5d.open(gid, name.encode())
    return ds


def _read_range(gid: h5g.GroupID, start: int | None, end: int | None,
                cols: Sequence[str], stacked: bool = False, cache: dict | None = None) -> dict[str, np.ndarray]:
    """Arrays of rows in ``[start, end)``. With ``stacked`` the value columns are rows
    of one ``(len(cols), n)`` array under key ``"values"`` (a DataFrame wraps it without copying).

    Raises :class:`ChecksumError` when a chunk read fails its checksum or does not decompress.
    """
    try:
        i0, i1, times, lo = _row_range(gid, start, end, cache)
        out = {}
        if times is not None and lo <= i0 and i1 <= lo + times.shape[0]:
            out["time"] = times[i0 - lo:i1 - lo].copy()
        else:
            out["time"] = _read_rows(_dataset(gid, "time", cache), i0, i1)
        dss = [_dataset(gid, c, cache) for c in cols]
        if not stacked:
            for c, ds in zip(cols, dss):
                out[c] = _read_rows(ds, i0, i1)
            return out
        values = np.empty((len(cols), i1 - i0), dtype=np.result_type(*[ds.dtype for ds in dss]))
        for j, ds in enumerate(dss):
            if ds.dtype == values.dtype:
                _read_rows(ds, i0, i1, values[j])
            else:
                values[j] = _read_rows(ds, i0, i1)
        out["values"] = values
        return out
    except OSError as exc:
        raise _damaged(h5py.Group(gid), exc) from None


class ChecksumError(ValueError):
    """A stored chunk failed its checksum or did not decompress: the file is damaged on disk."""


def _damaged(grp: h5py.Group, exc: BaseException) -> ChecksumError:
    a = grp.attrs
    return ChecksumError(f"{grp.file.filename}: {a.get('symbol', grp.name)} {a.get('timeframe', '')}: a chunk failed "
                         f"its checksum or does not decompress ({exc}); the file is damaged on disk. "
                         "`nbtrade data verify` lists every damaged series; restore the file from a backup, or "
                         "delete the series and fetch it again")


def _has_checksums(ds: h5py.Dataset) -> bool:
    plist = ds.id.get_create_plist()
    return any(plist.get_filter(i)[0] == h5z.FILTER_FLETCHER32 for i in range(plist.get_nfilters()))


def _upgrade_series(grp: h5py.Group) -> bool:
    """Rewrite a series written before per-chunk checksums with them (fletcher32 on every
    dataset). Inside a transaction, so a crash leaves the old series. True if it changed."""
    names = _group_columns(grp) + (INDEX_NAME, BATCHES_NAME)
    todo = [n for n in names if not _has_checksums(grp[n])]
    if not todo:
        return False
    comp = compression(str(grp.attrs["codec"]))[1]
    for name in todo:
        old = grp[name]
        kw = dict(comp) if name in _group_columns(grp) else {}
        new = grp.create_dataset(name + "~new", shape=old.shape, maxshape=(None,), dtype=old.dtype,
                                 chunks=old.chunks, fletcher32=True, **kw)
        step = max(1, 1 << 20)
        for lo in range(0, old.shape[0], step):
            hi = min(old.shape[0], lo + step)
            new.write_direct(_read_rows(old, lo, hi), dest_sel=np.s_[lo:hi])
        del grp[name]
        grp.move(name + "~new", name)
    grp.attrs["checksums"] = "fletcher32"
    return True


def _batch_crc(a: Mapping[str, np.ndarray], lo: int = 0, hi: int | None = None) -> int:
    """crc32 of the per-column crc32s (``time`` first, then value columns in order)."""
    per_column = [zlib.crc32(np.ascontiguousarray(v[lo:hi]).data) for v in a.values()]
    return zlib.crc32(struct.pack(f"<{len(per_column)}I", *per_column))


def _write_rows(grp: h5py.Group, a: Mapping[str, np.ndarray], at: int, offset: int = 0) -> int:
    """Write ``a[c][offset:]`` at row ``at`` of every column; returns the new length.

    Every chunk goes through HDF5's filter pipeline, so each carries its
    fletcher32 checksum. (A raw, uncompressed last chunk written with
    ``write_direct_chunk`` halved the CPU of an append, but a chunk written that
    way has no checksum, and HDF5 2.0 reads it back wrongly within the same open
    file when only some filters are skipped.)
    """
    n = a["time"].shape[0] - offset
    end = at + n
    for c in a:
        ds = grp[c]
        if ds.shape[0] != end:
            ds.resize((end,))
        if n:
            ds.write_direct(np.ascontiguousarray(a[c][offset:], dtype=ds.dtype), dest_sel=np.s_[at:end])
    return end


def _update_index(grp: h5py.Group, times: np.ndarray, times_row0: int, from_row: int, rows: int) -> None:
    """Refresh the per-chunk first times for chunks starting at or after ``from_row``."""
    chunk = int(grp.attrs["chunk_rows"])
    c0 = -(-from_row // chunk)
    c1 = -(-rows // chunk)
    idx = grp[INDEX_NAME]
    if idx.shape[0] != c1:
        idx.resize((c1,))
    if c1 > c0:
        rows_at = np.arange(c0, c1, dtype=np.int64) * chunk - times_row0
        idx[c0:c1] = times[rows_at]


def _add_batch(grp: h5py.Group, row0: int, a: Mapping[str, np.ndarray], offset: int = 0) -> None:
    """Checksum records for rows ``a[offset:]`` stored from ``row0``, one per
    ``BATCH_MAX_ROWS`` rows at most, so a later merge re-checksums little."""
    t = a["time"]
    n = t.shape[0]
    now = _now_ms()
    recs = []
    for lo in range(offset, n, BATCH_MAX_ROWS):
        hi = min(n, lo + BATCH_MAX_ROWS)
        recs.append((row0 + lo - offset, hi - lo, t[lo], t[hi - 1], _batch_crc(a, lo, hi), now))
    if recs:
        b = grp[BATCHES_NAME]
        m = b.shape[0]
        b.resize((m + len(recs),))
        b[m:] = np.array(recs, dtype=_BATCH_DT)


def _append_tail(grp: h5py.Group, a: Mapping[str, np.ndarray], rows: int) -> None:
    new_rows = _write_rows(grp, a, rows)
    _update_index(grp, a["time"], rows, rows, new_rows)
    _add_batch(grp, rows, a)
    attrs = {"rows": new_rows, "last": int(a["time"][-1]), "updated_ms": _now_ms()}
    if rows == 0:
        attrs["first"] = int(a["time"][0])
    grp.attrs.update(attrs)


def _merge(grp: h5py.Group, a: dict[str, np.ndarray], rows: int, policy: str) -> AppendResult:
    chunk = int(grp.attrs["chunk_rows"])
    last = int(grp.attrs["last"])
    k = _search(grp, int(a["time"][0]), rows)
    r0 = (k // chunk) * chunk
    cols = tuple(a)  # "time" then the value columns, as _prepare built them
    s = {c: _read_rows(grp[c], r0, rows) for c in cols}
    st, nt = s["time"], a["time"]
    pos = np.searchsorted(st, nt)
    common = np.zeros(nt.shape[0], dtype=bool)
    inside = pos < st.shape[0]
    common[inside] = st[pos[inside]] == nt[inside]
    same = common.copy()
    for c in cols[1:]:
        x, y = s[c][pos[common]], a[c][common]
        same[common] &= (x == y) | (np.isnan(x) & np.isnan(y))  # NaN: an unknown mark price
    conflict = common & ~same
    n_conflict = int(conflict.sum())
    result = AppendResult(duplicates=int(same.sum()))
    if n_conflict and policy == "raise":
        bad = nt[conflict][:5]
        raise ValueError("data: conflicts with stored candles at " + ", ".join(integrity._iso(t) for t in bad)
                         + f" ({n_conflict} rows); nothing written (on_conflict='raise')")
    if policy == "keep":
        result.kept, replace = n_conflict, np.zeros_like(conflict)
    else:
        result.replaced, replace = n_conflict, conflict
    fresh = ~common
    result.added = int(fresh.sum())
    if not result.added and not result.replaced:
        result.rows = rows
        return result
    if not replace.any() and (nt[fresh] > last).all():
        tail = {c: a[c][fresh] for c in cols}
        _append_tail(grp, tail, rows)
        result.rows = rows + result.added
        return result

    # Rewrite from the chunk holding the first changed row. Replaced rows before
    # the first inserted one keep their position, so the minimum is exact.
    first_changed = int(pos[replace].min()) if replace.any() else st.shape[0]
    for c in cols[1:]:
        s[c][pos[replace]] = a[c][replace]
    if fresh.any():
        order = np.argsort(np.concatenate([st, nt[fresh]]), kind="stable")
        merged = {c: np.concatenate([s[c], a[c][fresh]])[order] for c in cols}
        first_changed = min(first_changed, int(np.flatnonzero(order >= st.shape[0])[0]))
    else:
        merged = s
    rc = r0 + (first_changed // chunk) * chunk
    offset = rc - r0
    new_rows = _write_rows(grp, merged, rc, offset)
    _update_index(grp, merged["time"], r0, rc, new_rows)
    _truncate_batches(grp, rc, cols)
    _add_batch(grp, rc, merged, offset)
    grp.attrs.update({"rows": new_rows, "first": min(int(grp.attrs["first"]), int(nt[0])),
                      "last": max(last, int(nt[-1])), "updated_ms": _now_ms()})
    result.rewrite_from = rc
    result.rows = new_rows
    return result


def _truncate_batches(grp: h5py.Group, rc: int, cols: tuple[str, ...]) -> None:
    """Drop batch records at or after row ``rc``; cut the one spanning it and re-checksum it."""
    b = grp[BATCHES_NAME]
    recs = b[()]
    keep = recs[recs["row0"] < rc]
    if keep.shape[0] and keep["row0"][-1] + keep["rows"][-1] > rc:
        row0 = int(keep["row0"][-1])
        part = {c: _read_rows(grp[c], row0, rc) for c in cols}
        keep["rows"][-1] = rc - row0
        keep["last"][-1] = part["time"][-1]
        keep["crc"][-1] = _batch_crc(part)
    b.resize((keep.shape[0],))
    if keep.shape[0]:
        b[:] = keep


# --- verification --------------------------------------------------------------
def _verify_series(exchange: str, grp: h5py.Group, block_rows: int) -> SeriesReport:
    """Lengths, dtypes, sortedness, uniqueness, grid, OHLC rules, chunk index, batch checksums."""
    a = grp.attrs
    rep = SeriesReport(exchange, str(a.get("symbol", grp.name)), str(a.get("timeframe", "?")))
    p = rep.problems
    try:
        rows = int(a["rows"])
        tf_ms = int(a["timeframe_ms"])
        chunk = int(a["chunk_rows"])
    except KeyError as exc:
        p.append(f"missing attribute {exc}")
        return rep
    rep.rows = rows
    rep.checksums = "checksums" in a
    tf = str(a.get("timeframe", "?"))
    cols = ("time",) + value_columns(tf)
    check_rows = integrity.problems_for(tf)
    for c in cols:
        if c not in grp:
            p.append(f"missing dataset {c!r}")
        elif grp[c].shape != (rows,):
            p.append(f"dataset {c!r} has {grp[c].shape[0]} rows, attribute 'rows' says {rows}")
    if p:
        return rep
    if grp["time"].dtype != np.int64:
        p.append(f"time dtype is {grp['time'].dtype}, expected int64")
    batches = grp[BATCHES_NAME][()]
    rep.batches = int(batches.shape[0])
    expected_row0 = np.concatenate([[0], np.cumsum(batches["rows"])[:-1]]) if batches.shape[0] else np.zeros(0)
    if batches.shape[0] and (not np.array_equal(batches["row0"], expected_row0)
                             or int(batches["rows"].sum()) != rows):
        p.append("append batches do not cover the rows exactly once")
        batches = batches[:0]
    elif not batches.shape[0] and rows:
        p.append("no append batch records")
    index = grp[INDEX_NAME][()]
    if index.shape[0] != -(-rows // chunk):
        p.append(f"chunk index has {index.shape[0]} entries, expected {-(-rows // chunk)}")
        index = None

    prev_t: int | None = None
    for bi, rec in enumerate(batches if batches.shape[0] else [None]):
        lo, hi = (0, rows) if rec is None else (int(rec["row0"]), int(rec["row0"] + rec["rows"]))
        crcs = [0] * len(cols)
        for blo in range(lo, hi, block_rows):
            bhi = min(hi, blo + block_rows)
            blk = {c: _read_rows(grp[c], blo, bhi) for c in cols}
            for j, c in enumerate(cols):
                crcs[j] = zlib.crc32(blk[c].data, crcs[j])
            vals = {c: blk[c].astype(np.float64, copy=False) for c in cols[1:]}
            vals["time"] = blk["time"]
            for msg in check_rows(vals, tf_ms):
                p.append(f"rows {blo}..{bhi}: {msg}")
            t = blk["time"]
            if prev_t is not None and t.size and t[0] <= prev_t:
                p.append(f"time not increasing at row {blo}")
            if prev_t is not None and t.size:
                rep.gaps.extend(integrity.find_gaps(np.array([prev_t, t[0]]), tf_ms))
            rep.gaps.extend(integrity.find_gaps(t, tf_ms))
            if index is not None and t.size:
                starts = np.arange(-(-blo // chunk) * chunk, bhi, chunk)
                if not np.array_equal(index[starts // chunk], t[starts - blo]):
                    p.append(f"chunk index disagrees with time in rows {blo}..{bhi}")
            if t.size:
                if blo == 0 and int(a["first"]) != t[0]:
                    p.append(f"attribute first={int(a['first'])} but first time is {t[0]}")
                if bhi == rows and int(a["last"]) != t[-1]:
                    p.append(f"attribute last={int(a['last'])} but last time is {t[-1]}")
                prev_t = int(t[-1])
        if rec is not None:
            crc = zlib.crc32(struct.pack(f"<{len(crcs)}I", *crcs))
            if crc != int(rec["crc"]):
                p.append(f"checksum mismatch in append batch {bi} (rows {lo}..{hi})")
    return rep


def ls(root: str | os.PathLike | None = None, exchange: str | None = None) -> list[dict[str, Any]]:
    """``nbtrade data ls``: every stored series under ``root``."""
    return Store(root).ls(exchange)


def info(exchange: str, symbol: str, timeframe: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """``nbtrade data info``: metadata of one series."""
    return Store(root).info(exchange, symbol, timeframe)


def verify(root: str | os.PathLike | None = None, exchange: str | None = None, symbol: str | None = None,
           timeframe: str | None = None, upgrade: bool = False) -> VerifyReport:
    """``nbtrade data verify``: integrity report of the store (``report.ok``); ``upgrade`` adds
    per-chunk checksums to series written before them."""
    return Store(root).verify(exchange, symbol, timeframe, upgrade=upgrade)


__all__ = ["Store", "Reader", "Writer", "AppendResult", "VerifyReport", "SeriesReport", "NotFound", "ChecksumError",
           "ls", "info", "verify", "to_ms"]
