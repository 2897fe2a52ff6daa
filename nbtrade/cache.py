"""Result cache: memory LRU + signed, lz4-compressed disk level, and a ``@cached`` decorator.

Two levels. The memory level keeps live objects in an LRU bounded by entry count
(``maxsize``) and by bytes (``maxbytes``). The disk level (optional) keeps one
file per entry under a directory, bounded by ``disk_maxsize`` / ``disk_maxbytes``
(LRU by last access). Both honour a time to live (``ttl`` seconds).

Retention rule: an entry lives until (a) its TTL passes, or (b) it is the least
recently used entry of a level that is over its count or byte budget; memory and
disk evict independently, so a model pushed out of memory is still reloaded from
disk after a restart.

Keys are deterministic digests (:func:`fingerprint`) of content, never of an
``id``, a ``repr`` or a class alone: numpy arrays and pandas objects by bytes,
shape, dtype, index and columns (times as instants: the same index in s, ms, us
or ns resolution gives one key); dict/kwargs order does not matter; functions by
qualified name, source, defaults and the values their closure captured; other
objects by what pickle would store of them (``__reduce_ex__``: state held in C,
such as a ``random.Random``'s or a fitted model's, included). An argument whose
content cannot be read (a lock, an open file) raises ``TypeError`` naming it.

Disk safety: values are pickled, so the disk level is for trusted local data.
Every file carries an HMAC-SHA256 over its header and payload (and the key it
was stored under), computed with a random per-cache key kept beside the cache
in ``.hmac-key`` (mode 0600). A file whose signature does not verify is
refused, deleted and reported as a miss (so the caller recomputes); it is never
unpickled. Writes are atomic (temporary file + ``os.replace``).

Default root: ``$NBTRADE_HOME/cache``; ``NBTRADE_HOME`` defaults to
``$XDG_DATA_HOME/nbtrade`` or ``~/.local/share/nbtrade``.

>>> c = Cache(maxsize=2)
>>> c.set("a", 1); c.get("a")
1
>>> c.get("b", default="miss")
'miss'
"""
from __future__ import annotations

import atexit
import dataclasses
import enum
import functools
import hashlib
import hmac
import inspect
import json
import os
import pickle
import random
import secrets
import struct
import sys
import threading
import time
import warnings
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable

from ._files import atomic_write

__all__ = ["Cache", "cached", "fingerprint", "make_key", "default_root", "nbtrade_home", "disk_summary",
           "print_summary", "clear_disk", "CODE_VERSION"]

#: Bumped when the on-disk format or key derivation changes: older entries then miss.
CODE_VERSION = "1"

_MAGIC = b"NBC1"
_HEADER = struct.Struct("<4s32sI")  # magic, hmac digest, meta length
_SUFFIX = ".nbc"
_KEY_FILE = ".hmac-key"
_STATS_FILE = "stats.json"
_MISSING = object()


# --------------------------------------------------------------------------- paths

def nbtrade_home() -> Path:
    """``$NBTRADE_HOME``, else ``$XDG_DATA_HOME/nbtrade``, else ``~/.local/share/nbtrade``."""
    from .config import home

    return home()


def default_root() -> Path:
    """Directory holding every nbtrade disk cache: ``$NBTRADE_HOME/cache``."""
    return nbtrade_home() / "cache"


# --------------------------------------------------------------------------- keys

def _feed(h: "hashlib._Hash", obj: Any, depth: int = 0) -> None:
    """Feed a type-tagged, deterministic encoding of ``obj`` into the hasher."""
    if depth > 50:
        raise TypeError("fingerprint: cannot key a structure nested more than 50 levels deep (does it contain "
                        "itself?); pass its content in a flatter form or leave it out with @cached(ignore=[...])")
    d = depth + 1
    if obj is None or obj is Ellipsis:
        h.update(b"N" + repr(obj).encode())
    elif isinstance(obj, bool):
        h.update(b"b1" if obj else b"b0")
    elif isinstance(obj, enum.Enum):
        h.update(b"E" + type(obj).__qualname__.encode() + b":" + str(obj.name).encode())
    elif isinstance(obj, int):
        h.update(b"i" + str(obj).encode() + b";")
    elif isinstance(obj, float):
        h.update(b"f" + repr(obj).encode() + b";")
    elif isinstance(obj, complex):
        h.update(b"c" + repr(obj).encode() + b";")
    elif isinstance(obj, str):
        b = obj.encode("utf-8", "surrogatepass")
        h.update(b"s" + str(len(b)).encode() + b":" + b)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        b = bytes(obj)
        h.update(b"B" + str(len(b)).encode() + b":" + b)
    elif isinstance(obj, (tuple, list)):
        h.update((b"T" if isinstance(obj, tuple) else b"L") + str(len(obj)).encode() + b"[")
        for item in obj:
            _feed(h, item, d)
        h.update(b"]")
    elif isinstance(obj, dict):
        items = sorted((fingerprint(k), v) for k, v in obj.items())
        h.update(b"D" + str(len(items)).encode() + b"{")
        for kf, v in items:
            h.update(kf.encode())
            _feed(h, v, d)
        h.update(b"}")
    elif isinstance(obj, (set, frozenset)):
        fps = sorted(fingerprint(x) for x in obj)
        h.update(b"S" + str(len(fps)).encode() + b"{" + "".join(fps).encode() + b"}")
    elif isinstance(obj, Path):
        h.update(b"P" + str(obj).encode())
    elif _is_numpy(obj):
        _feed_numpy(h, obj, d)
    elif _is_pandas(obj):
        _feed_pandas(h, obj, d)
    elif hasattr(obj, "__nbtrade_fingerprint__"):
        h.update(b"U" + _qualname(type(obj)).encode())
        _feed(h, obj.__nbtrade_fingerprint__(), d)
    elif isinstance(obj, functools.partial):
        h.update(b"p")
        _feed(h, (obj.func, obj.args, obj.keywords), d)
    elif inspect.ismethod(obj):  # a bound method: its function and the instance it is bound to
        h.update(b"M")
        _feed(h, (obj.__func__, obj.__self__), d)
    elif inspect.isfunction(obj):
        _feed_function(h, obj, d)
    elif inspect.isbuiltin(obj) or inspect.isclass(obj):
        h.update(b"F" + _qualname(obj).encode() + _code_digest(obj).encode())
        owner = getattr(obj, "__self__", None)  # a C method bound to an instance (Random(1).random)
        if owner is not None and not inspect.ismodule(owner) and not inspect.isclass(obj):
            _feed(h, owner, d)
    elif isinstance(obj, random.Random):  # its state lives in C, not in vars()
        h.update(b"r" + _qualname(type(obj)).encode())
        _feed(h, obj.getstate(), d)
    elif dataclasses.is_dataclass(obj):
        h.update(b"d" + _qualname(type(obj)).encode())
        _feed(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}, d)
    else:
        _feed_reduced(h, obj, d)


def _unkeyable(obj: Any, why: Any) -> TypeError:
    return TypeError(f"fingerprint: cannot key an object of type {_qualname(type(obj))}: its content cannot be "
                     f"read ({why}). Pass plain values (numbers, strings, arrays, DataFrames, dataclasses), give "
                     f"its class a __nbtrade_fingerprint__() method returning its content, or leave the argument "
                     f"out of the key with @cached(ignore=[...])")


def _feed_reduced(h: Any, obj: Any, d: int) -> None:
    """Any other object by content, through the pickle protocol (``__reduce_ex__``).

    ``vars(obj)`` alone keyed objects whose state lives in C or in slots by their
    class (two ``pd.Period``s, two ``random.Random`` seeds, two fitted
    estimators with equal parameters collided). The reduction is what pickle
    would store: the constructor, its arguments and the state, fed recursively.
    """
    if inspect.ismodule(obj):
        raise _unkeyable(obj, "a module")
    try:
        red = obj.__reduce_ex__(4)
    except Exception as exc:  # noqa: BLE001 - locks, sockets, generators, open files ...
        raise _unkeyable(obj, exc) from None
    if isinstance(red, str):  # a module-level singleton, pickled by name
        h.update(b"G" + _qualname(type(obj)).encode() + b":" + red.encode())
        return
    func, args, *rest = tuple(red) + (None,) * (6 - len(red))
    h.update(b"O" + _qualname(type(obj)).encode() + b"|" + _qualname(func).encode())
    state, items, dict_items = rest[0], rest[1], rest[2]
    _feed(h, (args, state, list(items) if items is not None else None,
              dict(dict_items) if dict_items is not None else None), d)


_ACTIVE = threading.local()  # functions being fed on this thread (a recursive closure holds itself)


def _feed_function(h: Any, fn: Any, d: int) -> None:
    """A Python function by name, source, defaults and the values its closure captured
    (``make(2)`` and ``make(3)`` differ although they share name and code)."""
    h.update(b"F" + _qualname(fn).encode() + _code_digest(fn).encode())
    active = _ACTIVE.__dict__.setdefault("ids", set())
    if id(fn) in active:
        h.update(b"@cycle")
        return
    active.add(id(fn))
    try:
        cells = []
        for cell in fn.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell (a name assigned later)
                cells.append(Ellipsis)
        _feed(h, (fn.__defaults__, fn.__kwdefaults__, tuple(cells)), d)
    finally:
        active.discard(id(fn))


def _is_numpy(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, (np.ndarray, np.generic, np.dtype))


def _is_pandas(obj: Any) -> bool:
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(obj, (pd.DataFrame, pd.Series, pd.Index, pd.Timestamp, pd.Timedelta,
                                               pd.Period, pd.Categorical))


def _feed_numpy(h: Any, obj: Any, d: int) -> None:
    import numpy as np

    if isinstance(obj, np.dtype):
        h.update(b"y" + _dtype_text(obj).encode() + repr(obj.descr if obj.kind not in "mM" else "").encode())
        return
    arr = np.asarray(obj)
    if arr.dtype.kind in "mM":  # same instants in any resolution (s, ms, us, ns) give one key
        arr = arr.astype("datetime64[ns]" if arr.dtype.kind == "M" else "timedelta64[ns]")
    h.update(b"A" + arr.dtype.str.encode() + b"|" + repr(arr.shape).encode() + b"|")
    if arr.dtype.hasobject:
        _feed(h, arr.ravel().tolist(), d)
    else:
        h.update(np.ascontiguousarray(arr).view(np.uint8).reshape(-1).data if arr.size else b"")


def _dtype_text(dtype: Any) -> str:
    """A dtype's name without its time resolution: ``datetime64[us, UTC]`` -> ``datetime64[UTC]``."""
    import re

    return re.sub(r"\[(s|ms|us|ns)(, )?", "[", str(dtype)).replace("[]", "")


def _ns(values: Any) -> Any:
    """int64 nanoseconds of datetime-like values in any resolution (the unit's own ints if out of range)."""
    try:
        return values.as_unit("ns").asi8
    except (ValueError, OverflowError):  # beyond the ns range (years < 1677 or > 2262)
        return values.asi8


def _feed_pandas(h: Any, obj: Any, d: int) -> None:
    import pandas as pd

    if isinstance(obj, (pd.Timestamp, pd.Timedelta)):
        tz = str(obj.tz) if isinstance(obj, pd.Timestamp) else ""
        h.update(b"t" + type(obj).__name__.encode() + str(obj.value).encode() + b"|" + tz.encode())  # .value: ns
    elif isinstance(obj, pd.Period):
        h.update(b"o" + obj.freqstr.encode() + b":" + str(obj.ordinal).encode())
    elif isinstance(obj, pd.Categorical):
        h.update(b"C" + (b"o" if obj.ordered else b"u"))
        _feed(h, (obj.categories, obj.codes), d)
    elif isinstance(obj, pd.Index):
        h.update(b"I" + type(obj).__name__.encode() + _dtype_text(obj.dtype).encode())
        _feed(h, obj.name if not isinstance(obj, pd.MultiIndex) else list(obj.names), d)
        if isinstance(obj, pd.MultiIndex):
            _feed(h, [obj.get_level_values(i) for i in range(obj.nlevels)], d)
        elif isinstance(obj, (pd.DatetimeIndex, pd.TimedeltaIndex)):
            h.update(str(getattr(obj, "tz", "")).encode())
            _feed(h, _ns(obj), d)
        elif isinstance(obj, pd.CategoricalIndex):
            _feed(h, obj.array, d)
        else:
            _feed(h, obj.to_numpy(), d)
    elif isinstance(obj, pd.Series):
        h.update(b"R" + _dtype_text(obj.dtype).encode())
        _feed(h, obj.name, d)
        _feed(h, obj.index, d)
        _feed(h, _column_values(obj), d)
    else:  # DataFrame
        h.update(b"Q" + repr(obj.shape).encode())
        _feed(h, obj.columns, d)
        _feed(h, obj.index, d)
        for i in range(obj.shape[1]):
            col = obj.iloc[:, i]
            h.update(_dtype_text(col.dtype).encode())
            _feed(h, _column_values(col), d)


def _column_values(s: Any) -> Any:
    """What keys a Series' values: ns for datetimes (any resolution), the Categorical itself
    (categories, order and codes), else the numpy values."""
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.array
    if isinstance(s.dtype, pd.DatetimeTZDtype) or str(s.dtype).startswith(("datetime64", "timedelta64")):
        return _ns(pd.Index(s.array)) if hasattr(s.array, "asi8") else s.to_numpy()
    return s.to_numpy()


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


def _code_digest(fn: Any) -> str:
    """Digest of a function's source (or bytecode when the source is unavailable)."""
    target = inspect.unwrap(fn) if callable(fn) else fn
    try:
        src = inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        src = code.co_code + repr(code.co_consts).encode() if code is not None else b""
    return hashlib.blake2b(src, digest_size=8).hexdigest()


def fingerprint(obj: Any) -> str:
    """Deterministic hex digest (blake2b, 128 bits) of ``obj``'s content.

    Stable across runs and processes: arrays by dtype, shape and bytes; pandas
    objects by index, columns, dtypes and values; dicts order-insensitively;
    estimators by class and parameters; functions by qualified name and source.
    """
    h = hashlib.blake2b(digest_size=16)
    _feed(h, obj)
    return h.hexdigest()


def make_key(*parts: Any, **named: Any) -> str:
    """Cache key (hex, 256 bits) of positional ``parts`` and order-insensitive ``named`` parts."""
    h = hashlib.blake2b(digest_size=32)
    _feed(h, (CODE_VERSION, parts, named))
    return h.hexdigest()


# --------------------------------------------------------------------------- sizes

def _sizeof(value: Any) -> int:
    """Approximate memory footprint in bytes (arrays and frames exactly, others by pickle size)."""
    np = sys.modules.get("numpy")
    pd = sys.modules.get("pandas")
    if np is not None and isinstance(value, np.ndarray) and not value.dtype.hasobject:
        return int(value.nbytes)
    if pd is not None and isinstance(value, pd.DataFrame):
        return int(value.memory_usage(deep=True, index=True).sum())
    if pd is not None and isinstance(value, pd.Series):
        return int(value.memory_usage(deep=True, index=True))
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:
        return sys.getsizeof(value)


# --------------------------------------------------------------------------- cache

@dataclasses.dataclass
class _Entry:
    value: Any
    nbytes: int
    expires: float  # wall-clock epoch seconds; inf = never
    cost: float     # seconds it took to compute (for "time saved")


@dataclasses.dataclass
class CacheStats:
    """Counters of one :class:`Cache` since it was created (or last ``reset_stats``)."""

    hits: int = 0
    memory_hits: int = 0
    disk_hits: int = 0
    misses: int = 0
    sets: int = 0
    evictions: int = 0
    expired: int = 0
    corrupt: int = 0
    time_saved: float = 0.0
    entries: int = 0
    bytes: int = 0
    disk_entries: int = 0
    disk_bytes: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["hit_rate"] = self.hit_rate
        return out


_COUNTERS = ("hits", "memory_hits", "disk_hits", "misses", "sets", "evictions", "expired", "corrupt",
             "time_saved")


class Cache:
    """Two-level LRU cache with TTL; thread-safe.

    Parameters
    ----------
    path : str or Path, optional
        Directory of the disk level; ``None`` (default) keeps entries in memory only.
        ``True`` means ``default_root() / name``.
    maxsize : int, optional
        Most entries kept in memory (``None``: unbounded). ``0`` disables the memory level.
    maxbytes : int, optional
        Most bytes (approximate in-memory size) kept in memory.
    ttl : float, optional
        Seconds an entry stays valid (both levels); ``None``: forever.
    disk_maxsize, disk_maxbytes : int, optional
        Budgets of the disk level (files, compressed bytes). Default: unbounded
        entries, 2 GiB.
    name : str
        Label used in reports and for ``path=True``.

    Values returned by ``get`` are the cached objects themselves (not copies) when
    they come from memory: do not mutate them.
    """

    def __init__(self, path: str | os.PathLike | bool | None = None, maxsize: int | None = 128,
                 maxbytes: int | None = None, ttl: float | None = None, *,
                 disk_maxsize: int | None = None, disk_maxbytes: int | None = 2 << 30,
                 name: str = "default", compression_level: int = 0) -> None:
        for arg, val in (("maxsize", maxsize), ("maxbytes", maxbytes), ("disk_maxsize", disk_maxsize),
                         ("disk_maxbytes", disk_maxbytes)):
            if val is not None and (not isinstance(val, (int,)) or isinstance(val, bool) or val < 0):
                raise ValueError(f"{arg} must be a non-negative int or None, got {val!r}")
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
        self.name = name
        self.maxsize = maxsize
        self.maxbytes = maxbytes
        self.ttl = float(ttl) if ttl is not None else None
        self.disk_maxsize = disk_maxsize
        self.disk_maxbytes = disk_maxbytes
        self.compression_level = compression_level
        if path is True:
            path = default_root() / name
        self.path: Path | None = Path(path).expanduser() if path not in (None, False) else None
        self._lock = threading.RLock()
        self._mem: OrderedDict[str, _Entry] = OrderedDict()
        self._mem_bytes = 0
        self._disk: dict[str, tuple[int, float]] | None = None  # key -> (file bytes, last access)
        self._hkey: bytes | None = None
        self._stats = CacheStats()
        self._flushed = {k: 0 for k in _COUNTERS}
        self._inflight: dict[str, threading.Lock] = {}
        if self.path is not None:
            self.path.mkdir(mode=0o700, parents=True, exist_ok=True)  # private: entries are pickles
            _LIVE.add(self)

    # ---------------------------------------------------------------- public API
    def get(self, key: str, default: Any = None) -> Any:
        """Cached value for ``key``, or ``default`` (a miss) when absent, expired or corrupt."""
        value = self._lookup(key)
        return default if value is _MISSING else value

    def set(self, key: str, value: Any, *, ttl: float | None = None, cost: float = 0.0) -> None:
        """Store ``value`` under ``key``. ``cost``: seconds it took to compute (for ``time_saved``)."""
        self._check_key(key)
        ttl = self.ttl if ttl is None else float(ttl)
        expires = time.time() + ttl if ttl else float("inf")
        blob = None
        if self.path is not None:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            try:
                self._write_disk(key, blob, expires, cost)
            except OSError as exc:  # full or read-only disk: keep working from memory
                warnings.warn(f"nbtrade cache {self.name!r}: could not write {self.path}: {exc}", stacklevel=2)
        nbytes = len(blob) if blob is not None else _sizeof(value)
        with self._lock:
            self._stats.sets += 1
            self._put_mem(key, _Entry(value, nbytes, expires, cost))

    def contains(self, key: str) -> bool:
        """True when ``key`` is present and unexpired (does not count as a hit or miss)."""
        self._check_key(key)
        now = time.time()
        with self._lock:
            e = self._mem.get(key)
            if e is not None and e.expires > now:
                return True
            if self.path is None:
                return False
            self._load_index()
            if key not in self._disk:
                return False
        meta = self._read_meta(key)
        return meta is not None and meta.get("expires", float("inf")) > now

    __contains__ = contains

    def delete(self, key: str) -> bool:
        """Remove ``key`` from both levels; True when something was removed."""
        self._check_key(key)
        with self._lock:
            found = self._drop_mem(key)
            if self.path is not None:
                self._load_index()
                found = self._drop_disk(key) or found
        return found

    def clear(self, disk: bool = True) -> None:
        """Remove every entry (memory, and disk unless ``disk=False``); keeps the HMAC key."""
        with self._lock:
            self._mem.clear()
            self._mem_bytes = 0
            if disk and self.path is not None:
                for f in self.path.glob("*" + _SUFFIX):
                    _unlink(f)
                self._disk = {}

    def get_or_compute(self, key: str, compute: Callable[[], Any], *, ttl: float | None = None) -> Any:
        """Cached value, or ``compute()`` stored then returned. Concurrent callers of one key compute once."""
        value = self._lookup(key)
        if value is not _MISSING:
            return value
        with self._lock:
            lock = self._inflight.setdefault(key, threading.Lock())
        try:
            with lock:
                value = self._lookup(key, count=False)
                if value is not _MISSING:
                    with self._lock:  # another thread computed it while we waited: a hit after all
                        self._stats.misses -= 1
                        self._stats.hits += 1
                        self._stats.memory_hits += 1
                    return value
                t0 = time.perf_counter()
                value = compute()
                self.set(key, value, ttl=ttl, cost=time.perf_counter() - t0)
        finally:
            with self._lock:
                self._inflight.pop(key, None)
        return value

    def stats(self) -> CacheStats:
        """Snapshot of counters and current sizes."""
        with self._lock:
            s = dataclasses.replace(self._stats)
            s.entries = len(self._mem)
            s.bytes = self._mem_bytes
            if self.path is not None:
                self._load_index()
                s.disk_entries = len(self._disk)
                s.disk_bytes = sum(v[0] for v in self._disk.values())
        return s

    def reset_stats(self) -> None:
        with self._lock:
            self.save_stats()
            self._stats = CacheStats()
            self._flushed = {k: 0 for k in _COUNTERS}

    def keys(self) -> list[str]:
        """Keys present in memory or on disk (may include expired disk entries)."""
        with self._lock:
            keys = list(self._mem)
            if self.path is not None:
                self._load_index()
                keys += [k for k in self._disk if k not in self._mem]
        return keys

    def purge_expired(self) -> int:
        """Drop expired entries from both levels now; returns how many were dropped."""
        now = time.time()
        n = 0
        with self._lock:
            for k in [k for k, e in self._mem.items() if e.expires <= now]:
                self._drop_mem(k)
                n += 1
            if self.path is not None:
                self._load_index()
                for k in list(self._disk):
                    meta = self._read_meta(k)
                    if meta is None or meta.get("expires", float("inf")) <= now:
                        self._drop_disk(k)
                        n += 1
            self._stats.expired += n
        return n

    def save_stats(self) -> None:
        """Add this session's counters to ``stats.json`` in the cache directory (for ``nbtrade cache stats``)."""
        if self.path is None or not self.path.exists():
            return
        with self._lock:
            delta = {k: getattr(self._stats, k) - self._flushed[k] for k in _COUNTERS}
            if not any(delta.values()):
                return
            file = self.path / _STATS_FILE
            try:
                total = json.loads(file.read_text())
            except (OSError, ValueError):
                total = {}
            for k, v in delta.items():
                total[k] = total.get(k, 0) + v
            atomic_write(file, json.dumps(total, indent=1).encode())
            self._flushed = {k: getattr(self._stats, k) for k in _COUNTERS}

    def __repr__(self) -> str:
        s = self.stats()
        return (f"Cache(name={self.name!r}, path={str(self.path) if self.path else None!r}, "
                f"entries={s.entries}, disk_entries={s.disk_entries}, hit_rate={s.hit_rate:.2f})")

    # ---------------------------------------------------------------- internals
    @staticmethod
    def _check_key(key: str) -> None:
        if not isinstance(key, str) or not key or len(key) > 128 or not all(c.isalnum() or c in "-_" for c in key):
            raise ValueError(f"key must be a non-empty string of letters, digits, '-' or '_' (<= 128), got {key!r}; "
                             "use make_key(...) to derive one")

    def _lookup(self, key: str, count: bool = True) -> Any:
        self._check_key(key)
        now = time.time()
        with self._lock:
            e = self._mem.get(key)
            if e is not None:
                if e.expires > now:
                    self._mem.move_to_end(key)
                    if count:
                        self._stats.hits += 1
                        self._stats.memory_hits += 1
                        self._stats.time_saved += e.cost
                    return e.value
                self._drop_mem(key)
                self._stats.expired += 1
            if self.path is None:
                if count:
                    self._stats.misses += 1
                return _MISSING
        loaded = self._read_disk(key, now)
        with self._lock:
            if loaded is _MISSING:
                if count:
                    self._stats.misses += 1
                return _MISSING
            value, nbytes, expires, cost = loaded
            if count:
                self._stats.hits += 1
                self._stats.disk_hits += 1
                self._stats.time_saved += cost
            self._put_mem(key, _Entry(value, nbytes, expires, cost))
        return value

    def _put_mem(self, key: str, entry: _Entry) -> None:
        if self.maxsize == 0:
            return
        if key in self._mem:
            self._drop_mem(key)
        self._mem[key] = entry
        self._mem_bytes += entry.nbytes
        while self._mem and ((self.maxsize is not None and len(self._mem) > self.maxsize)
                             or (self.maxbytes is not None and self._mem_bytes > self.maxbytes)):
            old, e = self._mem.popitem(last=False)
            self._mem_bytes -= e.nbytes
            self._stats.evictions += 1

    def _drop_mem(self, key: str) -> bool:
        e = self._mem.pop(key, None)
        if e is None:
            return False
        self._mem_bytes -= e.nbytes
        return True

    # disk ------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        assert self.path is not None
        return self.path / (key + _SUFFIX)

    def _secret(self) -> bytes:
        if self._hkey is None:
            self._hkey = _load_or_create_key(self.path / _KEY_FILE)
        return self._hkey

    def _load_index(self) -> None:
        if self._disk is not None:
            return
        index = {}
        for f in self.path.glob("*" + _SUFFIX):
            try:
                st = f.stat()
            except OSError:
                continue
            index[f.name[: -len(_SUFFIX)]] = (st.st_size, st.st_mtime)
        self._disk = index

    def _sign(self, key: str, meta: bytes, payload: bytes) -> bytes:
        mac = hmac.new(self._secret(), digestmod=hashlib.sha256)
        mac.update(_MAGIC + key.encode() + b"\0" + struct.pack("<I", len(meta)) + meta)
        mac.update(payload)
        return mac.digest()

    def _write_disk(self, key: str, blob: bytes, expires: float, cost: float) -> None:
        import lz4.frame

        payload = lz4.frame.compress(blob, compression_level=self.compression_level)
        meta = json.dumps({"key": key, "created": time.time(), "expires": expires if expires != float("inf") else None,
                           "cost": cost, "raw": len(blob), "name": self.name}).encode()
        with self._lock:
            digest = self._sign(key, meta, payload)
        data = _HEADER.pack(_MAGIC, digest, len(meta)) + meta + payload
        atomic_write(self._file(key), data)
        with self._lock:
            self._load_index()
            self._disk[key] = (len(data), time.time())
            self._evict_disk()

    def _evict_disk(self) -> None:
        def over() -> bool:
            return ((self.disk_maxsize is not None and len(self._disk) > self.disk_maxsize)
                    or (self.disk_maxbytes is not None and sum(v[0] for v in self._disk.values()) > self.disk_maxbytes))

        if not over():
            return
        for k in sorted(self._disk, key=lambda k: self._disk[k][1]):
            if len(self._disk) <= 1 or not over():
                break
            self._drop_disk(k)
            self._stats.evictions += 1

    def _drop_disk(self, key: str) -> bool:
        present = self._disk.pop(key, None) is not None
        return _unlink(self._file(key)) or present

    def _read_verified(self, key: str) -> tuple[dict, bytes] | None:
        """(meta, payload) of a file whose signature verifies; a bad file is deleted and None returned."""
        f = self._file(key)
        try:
            data = f.read_bytes()
        except FileNotFoundError:
            with self._lock:
                if self._disk is not None:
                    self._disk.pop(key, None)
            return None
        except OSError:
            return None
        ok = False
        if len(data) >= _HEADER.size:
            magic, digest, mlen = _HEADER.unpack_from(data)
            if magic == _MAGIC and _HEADER.size + mlen <= len(data):
                meta_b = data[_HEADER.size:_HEADER.size + mlen]
                payload = data[_HEADER.size + mlen:]
                with self._lock:
                    expected = self._sign(key, meta_b, payload)
                ok = hmac.compare_digest(digest, expected)
        if not ok:
            self._refuse(key)
            return None
        return json.loads(meta_b), payload

    def _refuse(self, key: str) -> None:
        with self._lock:
            self._stats.corrupt += 1
            self._load_index()
            self._drop_disk(key)

    def _read_meta(self, key: str) -> dict | None:
        got = self._read_verified(key)
        if got is None:
            return None
        meta = got[0]
        meta["expires"] = meta["expires"] if meta.get("expires") is not None else float("inf")
        return meta

    def _read_disk(self, key: str, now: float) -> Any:
        with self._lock:
            self._load_index()
            if key not in self._disk:
                return _MISSING
        got = self._read_verified(key)
        if got is None:
            return _MISSING
        meta, payload = got
        expires = meta["expires"] if meta.get("expires") is not None else float("inf")
        if expires <= now:
            with self._lock:
                self._drop_disk(key)
                self._stats.expired += 1
            return _MISSING
        import lz4.frame

        try:
            blob = lz4.frame.decompress(payload)
            value = pickle.loads(blob)  # signature verified above: written by this cache
        except Exception:  # e.g. a class that no longer exists: treat as a bad entry
            self._refuse(key)
            return _MISSING
        with self._lock:
            if key in self._disk:
                self._disk[key] = (self._disk[key][0], time.time())
        try:
            os.utime(self._file(key))
        except OSError:
            pass
        return value, int(meta.get("raw", len(blob))), expires, float(meta.get("cost", 0.0))


def _unlink(f: Path) -> bool:
    try:
        f.unlink()
        return True
    except FileNotFoundError:
        return False


def _load_or_create_key(file: Path) -> bytes:
    """Read the per-cache HMAC key, creating it (32 random bytes, mode 0600) when absent."""
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process may be writing it right now
            key = file.read_bytes()
            if len(key) == 32:
                return key
            time.sleep(0.01)
        raise ValueError(f"cache key file {file} is damaged; delete the cache directory to reset it")
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    return key


_LIVE: "weakref.WeakSet[Cache]" = weakref.WeakSet()


@atexit.register
def _save_all_stats() -> None:
    for c in list(_LIVE):
        try:
            c.save_stats()
        except Exception:
            pass


# --------------------------------------------------------------------------- reporting

def disk_summary(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per cache directory under ``root`` (default :func:`default_root`): files, bytes, saved stats."""
    root = Path(root) if root is not None else default_root()
    rows = []
    if not root.exists():
        return rows
    dirs = {p.parent for p in root.rglob("*" + _SUFFIX)} | {p.parent for p in root.rglob(_STATS_FILE)}
    for d in sorted(dirs):
        files = list(d.glob("*" + _SUFFIX))
        try:
            saved = json.loads((d / _STATS_FILE).read_text())
        except (OSError, ValueError):
            saved = {}
        hits, misses = saved.get("hits", 0), saved.get("misses", 0)
        rows.append({"cache": str(d.relative_to(root)), "entries": len(files),
                     "bytes": sum(f.stat().st_size for f in files if f.exists()),
                     "hits": hits, "misses": misses,
                     "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
                     "evictions": saved.get("evictions", 0), "corrupt": saved.get("corrupt", 0),
                     "time_saved": saved.get("time_saved", 0.0)})
    return rows


def print_summary(root: str | os.PathLike | None = None) -> int:
    """Print :func:`disk_summary` as a table (``nbtrade cache stats``); returns an exit code."""
    from rich.table import Table

    from .report.dashboard import make_console

    root_path = Path(root) if root is not None else default_root()
    rows = disk_summary(root_path)
    table = Table(title=f"nbtrade caches under {root_path}")
    for col in ("cache", "entries", "size", "hits", "misses", "hit rate", "evictions", "corrupt", "time saved"):
        table.add_column(col, justify="left" if col == "cache" else "right")
    for r in rows:
        table.add_row(r["cache"], f"{r['entries']:,}", _human(r["bytes"]), f"{r['hits']:,}", f"{r['misses']:,}",
                      f"{100 * r['hit_rate']:.1f} %", f"{r['evictions']:,}", f"{r['corrupt']:,}",
                      f"{r['time_saved']:.1f} s")
    if not rows:
        table.add_row("(empty)", "0", "0 B", "0", "0", "-", "0", "0", "0.0 s")
    make_console().print(table)
    return 0


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def clear_disk(root: str | os.PathLike | None = None) -> int:
    """Delete every cache entry and saved stats under ``root``; returns the number of files removed."""
    root = Path(root) if root is not None else default_root()
    n = 0
    if root.exists():
        for f in list(root.rglob("*" + _SUFFIX)) + list(root.rglob(_STATS_FILE)):
            n += _unlink(f)
    return n


# --------------------------------------------------------------------------- decorator

def cached(fn: Callable | None = None, *, ttl: float | None = None, maxsize: int | None = 128,
           maxbytes: int | None = None, disk: bool | str | os.PathLike = False,
           version: str | None = None, ignore: Iterable[str] = (), cache: Cache | None = None) -> Any:
    """Memoise a function in a :class:`Cache`.

    Arguments are bound to the signature (defaults applied), so ``f(1, b=2)``,
    ``f(1, 2)`` and ``f(b=2, a=1)`` share one entry; they are hashed by content
    (:func:`fingerprint`). The key also holds the function's qualified name and
    ``version`` (default: a digest of its source), so editing the function
    invalidates old disk entries.

    Parameters
    ----------
    ttl, maxsize, maxbytes : see :class:`Cache`.
    disk : bool or path
        ``True``: persist under ``default_root()/fn/<module.qualname>``; a path: there.
    version : str, optional
        Explicit code version (default: digest of the source).
    ignore : names of arguments left out of the key (e.g. ``progress``, ``n_jobs``).
    cache : an existing :class:`Cache` to use instead of creating one.

    The wrapper has ``.cache`` (the :class:`Cache`), ``.cache_clear()``,
    ``.cache_info()`` and ``.key(*args, **kwargs)``.
    """
    if fn is None:
        return functools.partial(cached, ttl=ttl, maxsize=maxsize, maxbytes=maxbytes, disk=disk,
                                 version=version, ignore=ignore, cache=cache)
    if not callable(fn):
        raise TypeError(f"cached: fn must be callable, got {type(fn).__name__}")
    qual = _qualname(fn)
    if cache is None:
        path = None
        if disk is True:
            path = default_root() / "fn" / "".join(c if c.isalnum() or c in "._-" else "_" for c in qual)
        elif disk:
            path = Path(disk)
        cache = Cache(path, maxsize=maxsize, maxbytes=maxbytes, ttl=ttl, name=qual)
    code = version if version is not None else _code_digest(fn)
    sig = inspect.signature(fn)
    skip = frozenset(ignore)

    def key(*args: Any, **kwargs: Any) -> str:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        named = {k: v for k, v in bound.arguments.items() if k not in skip}
        try:
            return make_key(qual, code, **named)
        except TypeError as exc:  # name the argument that cannot be keyed
            for name, value in named.items():
                try:
                    fingerprint(value)
                except TypeError:
                    raise TypeError(f"@cached {qual}: argument {name!r} cannot be part of a cache key: "
                                    f"{exc}") from None
            raise

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return cache.get_or_compute(key(*args, **kwargs), lambda: fn(*args, **kwargs))

    wrapper.cache = cache  # type: ignore[attr-defined]
    wrapper.cache_clear = cache.clear  # type: ignore[attr-defined]
    wrapper.cache_info = cache.stats  # type: ignore[attr-defined]
    wrapper.key = key  # type: ignore[attr-defined]
    return wrapper
