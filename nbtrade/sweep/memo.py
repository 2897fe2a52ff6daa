"""Indicators computed once per distinct parameter value within a chunk of a sweep.

Inside a signal function run by :func:`nbtrade.sweep`, ``nbtrade.sweep.sma(market,
fast)`` returns the memoised array when another combination already asked for it: a
10 x 10 grid of SMA crosses computes 20 averages, not 200. Outside a sweep the same
calls simply compute. The chunks of one sweep running in one process (its threads,
or the tasks a Dask worker runs) share one memo, dropped when the sweep ends (on a
worker: when a newer sweep arrives or the sweep releases it); its size is bounded by the
sweep's ``memo_bytes`` (default: one float64 price panel, the size of the close): once full it keeps what it holds and computes the rest on demand (a grid scan
revisits values cyclically, where evicting old entries would always miss), so memory stays the
inputs plus that budget.

Values equal ``nbtrade.indicators.sma`` / ``ema`` (TA-Lib conventions, the same 1-D
kernels), computed serially per column (threads run side by side; no nested
parallel loops). Returned arrays are read-only ``(n_bars, n_symbols)`` float64 (or
``(n_bars,)`` for 1-D input). Causal: value ``t`` uses bars up to ``t``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import numpy as np

#: Byte budget of a memo made outside :func:`nbtrade.sweep` (which sizes its own from the inputs).
MAX_BYTES = 1 << 30

_local = threading.local()


class Memo:
    """A cache of computed arrays keyed by ``(name, args)`` and the source array (by identity).

    Thread-safe: a thread asking for an entry another thread is computing waits for it."""

    def __init__(self, max_bytes: int = MAX_BYTES):
        self.max_bytes = max_bytes
        self.nbytes = 0
        self.hits = 0
        self.misses = 0
        self._d: OrderedDict[tuple, tuple[Any, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[tuple, threading.Event] = {}  # entries being computed by some thread
        self.extras: dict[Any, Any] = {}  # other per-sweep objects (the validated engine call)

    def get(self, key: tuple, source: Any, compute: Callable[[], np.ndarray]) -> np.ndarray:
        key = (id(source), *key)
        while True:
            with self._lock:
                got = self._d.get(key)
                if got is not None and got[0] is source:
                    self.hits += 1
                    return got[1]
                pending = self._pending.get(key)
                if pending is None:  # this thread computes it; others asking meanwhile wait for it
                    self.misses += 1
                    done = self._pending[key] = threading.Event()
                    break
            pending.wait()
        try:
            val = compute()
            val.flags.writeable = False
            with self._lock:
                # a full memo keeps what it holds: a grid scan revisits values cyclically (each fast
                # value meets every slow one), where evicting the least recently used would miss always
                if self.nbytes + val.nbytes <= self.max_bytes or not self._d:
                    self._d[key] = (source, val)  # the source is kept alive: its id cannot be reused meanwhile
                    self.nbytes += val.nbytes
        finally:
            with self._lock:
                del self._pending[key]
            done.set()
        return val


def current() -> Memo | None:
    """The memo of the chunk running on this thread (None outside a sweep)."""
    return getattr(_local, "memo", None)


#: Memos of the sweeps running in this process, by token (at most ``KEEP`` kept).
_shared: OrderedDict[str, Memo] = OrderedDict()
_shared_lock = threading.Lock()
KEEP = 2


def shared(token: str, max_bytes: int = MAX_BYTES) -> Memo:
    """The memo of sweep ``token`` in this process (created on first use; older sweeps' dropped)."""
    with _shared_lock:
        memo = _shared.get(token)
        if memo is None:
            memo = _shared[token] = Memo(max_bytes)
            while len(_shared) > KEEP:
                _shared.popitem(last=False)
        return memo


def release(token: str) -> None:
    """Drop sweep ``token``'s memo in this process."""
    with _shared_lock:
        _shared.pop(token, None)


@contextmanager
def chunk_memo(token: str | None = None, max_bytes: int = MAX_BYTES) -> Iterator[Memo]:
    """Run a block with sweep ``token``'s memo on this thread (a fresh one without token)."""
    prev = current()
    _local.memo = Memo(max_bytes) if token is None else shared(token, max_bytes)
    try:
        yield _local.memo
    finally:
        _local.memo = prev


def _source(x: Any) -> Any:
    from ..panel import Market

    if isinstance(x, Market):
        return x.array("close")
    return x


def _as_float(x: Any) -> np.ndarray:
    arr = x.to_numpy() if hasattr(x, "to_numpy") else x
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim not in (1, 2):
        raise ValueError(f"expected a (n_bars,) or (n_bars, n_symbols) array, got shape {arr.shape}")
    return arr


def _fortran(src: Any, memo: Memo | None) -> np.ndarray:
    def conv() -> np.ndarray:
        a = _as_float(src)
        return np.asfortranarray(a if a.ndim == 2 else a[:, None])

    return memo.get(("F",), src, conv) if memo is not None else conv()


def _moving(name: str, x: Any, timeperiod: Any) -> np.ndarray:
    from .._arrays import check_period
    from ..kernels.sweep import ema_cols_nb, sma_rows_nb

    p = check_period(timeperiod, "timeperiod", 1)
    src = _source(x)
    memo = current()

    def compute() -> np.ndarray:
        a = _as_float(src)
        if name == "sma":  # row-major in and out: no layout copies
            a2 = np.ascontiguousarray(a if a.ndim == 2 else a[:, None])
            out = sma_rows_nb(a2, p, np.empty(a2.shape))
            return out if a.ndim == 2 else out[:, 0].copy()
        xf = _fortran(src, memo)
        out = np.empty(xf.shape, order="F")
        ema_cols_nb(xf, p, out)
        # row-major for what follows (comparisons, then the engine's bar loop): one copy per value
        return np.ascontiguousarray(out) if a.ndim == 2 else out[:, 0].copy()

    if memo is None:
        return compute()
    return memo.get((name, p), src, compute)


def sma(x: Any, timeperiod: int) -> np.ndarray:
    """TA-Lib SMA of ``x`` (a Market's close, a DataFrame or an array), memoised within a sweep chunk.

    First ``timeperiod - 1`` values NaN; equals ``nbtrade.indicators.sma(x, timeperiod)``."""
    return _moving("sma", x, timeperiod)


def ema(x: Any, timeperiod: int) -> np.ndarray:
    """TA-Lib EMA (seeded with the first window's mean), memoised within a sweep chunk.

    First ``timeperiod - 1`` values NaN; equals ``nbtrade.indicators.ema(x, timeperiod)``."""
    return _moving("ema", x, timeperiod)
