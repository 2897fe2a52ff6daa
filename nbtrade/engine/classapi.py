"""A backtesting.py-style class API on top of the event-callback engine.

Write a :class:`Strategy` subclass (parameters as class attributes, indicators in
``init``, decisions in ``next``) and run it with :class:`Backtest`::

    class SmaCross(Strategy):
        fast, slow = 10, 50

        def init(self):
            self.sma1 = self.I(ind.sma, self.data.close, self.fast)
            self.sma2 = self.I(ind.sma, self.data.close, self.slow)

        def next(self):                       # Python mode, backtesting.py style
            if crossover(self.sma1, self.sma2):
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()

    res = Backtest(data, SmaCross, fees=0.001).run(fast=20)

Two honest ways to write ``next``, both driving the same compiled engine
(:func:`nbtrade.backtest_callback`; same fills, stops, costs, records):

* Compiled: ``next`` is a ``@staticmethod`` numba ``@njit`` function ``next(ctx, i)``
  called once per bar for all symbols at engine speed. ``ctx.user`` is a namedtuple
  of the indicators declared in ``init``, in declaration order and named after the
  attributes holding them (``ctx.user.sma1[i, c]``, or ``sma1, sma2, params =
  ctx.user``), followed by ``params``, a namedtuple of the numeric parameters
  (``ctx.user.params.fast``). Other ``ctx`` fields: see ``nbtrade.kernels.callback``.
* Python: ``def next(self)``, called once per bar *and symbol* at Python speed (see
  :class:`Strategy`): the compiled engine calls back into Python through a ctypes
  function pointer at each bar, so ``self.position`` and ``self.cash`` are the
  engine's live state after the bar's fills. Precomputing signals with a Python loop
  and running the signals engine would not be equivalent: a ``next`` that reads its
  position or cash depends on fills, which only the bar-by-bar engine knows.

Compilation: the first run of a strategy in a process compiles the engine around its
``next`` (compiled mode) or around the Python bridge (Python mode): about 1.5 s. The
engine takes ``on_bar`` as an argument, which numba's disk cache cannot reuse across
processes; later runs in the same process (``run``, ``optimize``) do not compile.
"""
from __future__ import annotations

import ctypes
import dataclasses
import inspect
import itertools
import keyword
import sys
import types
import warnings
import weakref
from collections import namedtuple
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from numpy.lib.mixins import NDArrayOperatorsMixin

from .._names import check_kwargs, did_you_mean
from ..panel import Market, align
from ..result import Result
from .callback import check_margin, run_callback
from .options import MODE_OPTIONS, RunConfig
from .run import user_stacklevel

__all__ = ["Strategy", "Backtest", "crossover", "BacktestingPyDifference"]


class BacktestingPyDifference(UserWarning):
    """Code written for backtesting.py met a documented difference of nbtrade's class API (issued once
    per strategy class and difference, at the user's line; see :class:`Strategy`)."""


#: (difference, strategy class) pairs already warned about in this process
_WARNED: set = set()


def _bt_difference(strategy: Any, kind: str, message: str, where: Any) -> None:
    """Warn once per strategy class about a backtesting.py difference ``kind``; ``where``: the user's frame,
    or a ``(filename, lineno)`` pair."""
    key = (kind, type(strategy) if not isinstance(strategy, type) else strategy)
    if key in _WARNED:
        return
    _WARNED.add(key)
    if isinstance(where, tuple):
        filename, lineno = where
    else:
        filename, lineno = where.f_code.co_filename, where.f_lineno
    # (no module=None: warn_explicit then matches no filter and shows nothing)
    warnings.warn_explicit(f"backtesting.py difference: {message}", BacktestingPyDifference, filename, lineno,
                           registry={})


def _from_backtesting_py(cls: type) -> bool:
    """Whether the module defining ``cls`` uses backtesting.py (it holds something imported from it)."""
    mod = sys.modules.get(cls.__module__)
    for v in vars(mod).values() if mod is not None else ():
        m = v.__name__ if isinstance(v, types.ModuleType) else getattr(v, "__module__", None)
        if isinstance(m, str) and (m == "backtesting" or m.startswith("backtesting.")):
            return True
    return False

_SIGNAL_KEYS = ("entries", "exits", "short_entries", "short_exits")
#: ``Backtest`` keywords of backtesting.py mapped to nbtrade's.
_ALIASES = {"cash": "init_cash", "commission": "fees"}


# --------------------------------------------------------------------------------------------
# indicator views

class _Cursor:
    """Current bar ``i`` and column ``c`` while ``next`` runs; ``i`` is None in ``init``."""

    __slots__ = ("i", "c")

    def __init__(self) -> None:
        self.i: int | None = None
        self.c = 0


class _Indicator(NDArrayOperatorsMixin):
    """An indicator (or price) array ``(n_bars, n_symbols)`` seen through the strategy's cursor.

    In ``init`` it is the whole array. In a Python ``next`` it is the current symbol's
    values up to the current bar: ``x[-1]`` is the current bar, ``x[-2]`` the one
    before, ``len(x) == i + 1``; reading a later bar raises IndexError, slices and
    ``np.asarray(x)`` end at the current bar (read-only views).
    """

    __slots__ = ("_a", "_cur", "name")

    def __init__(self, arr: np.ndarray, cur: _Cursor, name: str):
        self._a = arr
        self._cur = cur
        self.name = name

    @property
    def values(self) -> np.ndarray:
        """The visible values (whole array in ``init``, history of the current symbol in ``next``)."""
        i = self._cur.i
        if i is None:
            return self._a
        v = self._a[:i + 1, self._cur.c]
        v.flags.writeable = False
        return v

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = self.values
        if dtype is not None:
            return v.astype(dtype, copy=bool(copy))
        return v.copy() if copy else v

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        inputs = tuple(x.values if isinstance(x, _Indicator) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __getitem__(self, key: Any) -> Any:
        cur = self._cur
        i = cur.i
        if i is None:
            return self._a[key]
        if type(key) is int or isinstance(key, np.integer):
            k = int(key)
            if k < 0:
                k += i + 1
                if k < 0:
                    raise IndexError(f"{self.name}[{key}]: only {i + 1} bars so far")
            elif k > i:
                raise IndexError(f"{self.name}[{key}] is in the future: the current bar is {i} "
                                 f"(use [-1] for it, [-2] for the one before)")
            return self._a[k, cur.c]
        return self.values[key]

    def __len__(self) -> int:
        i = self._cur.i
        return len(self._a) if i is None else i + 1

    def __float__(self) -> float:
        return float(self[-1])

    def __repr__(self) -> str:
        return f"<{self.name} {self.values!r}>"

    @property
    def shape(self) -> tuple:
        return self.values.shape


class _Data:
    """``Strategy.data``: prices (and volume) as DataFrames in ``init``, cursor views in ``next``."""

    def __init__(self, arrays: dict[str, np.ndarray | None], index: pd.Index, symbols: list, cur: _Cursor,
                 market: Market | None = None, frames: dict[str, pd.DataFrame] | None = None):
        self._market = market
        self._frames = {} if frames is None else frames  # built once per Backtest, handed out as shallow copies
        self._arrays = arrays
        self._index = index
        self.symbols = symbols
        self._cur = cur
        self._views = {k: _Indicator(v, cur, k) for k, v in arrays.items() if v is not None}
        self._bt_style = False  # backtesting.py's capitalised names (data.Close) were read

    def __getattr__(self, name: str) -> Any:
        key = name.lower()
        if key != name and name[:1].isupper():
            self.__dict__["_bt_style"] = True
        if key not in ("open", "high", "low", "close", "volume"):
            raise AttributeError(f"data has no attribute {name!r} (open, high, low, close, volume, index, symbols)")
        if self._arrays.get(key) is None:
            raise AttributeError("data has no volume (give OHLCV frames with a 'volume' column)")
        if self._cur.i is None:
            frame = self._frames.get(key)
            if frame is None:
                frame = self._frames[key] = pd.DataFrame(self._arrays[key], index=self._index, columns=self.symbols,
                                                         copy=False)
            return frame.copy(deep=False)
        return self._views[key]

    @property
    def index(self) -> pd.Index:
        """Bar open times (up to the current bar in ``next``)."""
        i = self._cur.i
        return self._index if i is None else self._index[:i + 1]


class _Position:
    """``Strategy.position``: the current symbol's live position (Python ``next``)."""

    __slots__ = ("_s",)

    def __init__(self, strategy: "Strategy"):
        # a weak reference: strategy -> position -> strategy would be a cycle, so a run's arrays (indicators,
        # per-order fields) would wait for the garbage collector, and the next runs page-fault fresh memory
        # meanwhile (issue 15's benchmark: ~29 vs ~56 ms a run)
        self._s = weakref.proxy(strategy)

    @property
    def size(self) -> float:
        """Signed size in base units (short < 0)."""
        return float(self._s._pos[self._s._cur.c])

    @property
    def is_long(self) -> bool:
        return self.size > 0.0

    @property
    def is_short(self) -> bool:
        return self.size < 0.0

    def __bool__(self) -> bool:
        return self.size != 0.0

    def close(self, portion: float = 1.0) -> None:
        """Exit the position, or ``portion`` (0 < portion <= 1) of it, with the engine's next
        fill (nothing when flat). A partial close follows ``backtest(exit_size=...)``'s rules."""
        if not 0.0 < portion <= 1.0:
            raise ValueError(f"portion must be in (0, 1], got {portion!r}")
        s = self._s
        c = s._cur.c
        p = s._pos[c]
        if p > 0.0:
            s._flags[1, c] = True
        elif p < 0.0:
            s._flags[3, c] = True
        else:
            return
        s._portions[c] = portion
        s._flagged = True
        if portion < 1.0 and (s._bt_style or s.data._bt_style):
            _bt_difference(s, "partial", "position.close(portion) closes portion x size here, rounded down to "
                           "lot_size when set (fractional units otherwise); backtesting.py rounds the closed size "
                           "to whole units", sys._getframe(1))

    def set_stop(self, price: float) -> None:
        """Move the open position's stop to ``price`` (quote), backtesting.py's ``trade.sl = price`` as
        its ``TrailingStrategy`` uses it: the level only ratchets in the position's favour (up for a
        long, down for a short; a looser level is ignored), is checked from the next bar on (intrabar,
        like ``sl_stop``; exit reason ``IND_STOP``) and ends with the trade. Called on the bar of a
        ``buy()``/``sell()``, it is the new trade's first stop. Python ``next`` only (a compiled
        ``next`` calls ``trail_stop_nb`` with ``Backtest(..., per_order=True)``)."""
        s = self._s
        if isinstance(price, bool) or not isinstance(price, (int, float, np.integer, np.floating)) \
                or not np.isfinite(price) or price <= 0:
            raise ValueError(f"set_stop(price) must be a finite number > 0, got {price!r} at {s.time} ({s.symbol})")
        c = s._cur.c
        s._fields[3, c] = price
        s._flagged = True

    def __repr__(self) -> str:
        return f"<Position size={self.size}>"


# --------------------------------------------------------------------------------------------
# Strategy

class Strategy:
    """Base class of class-API strategies (backtesting.py style). Subclass it.

    Parameters are class attributes (``fast = 10``); :meth:`Backtest.run` overrides
    them per run. ``init(self)`` runs once, before the bars, and declares indicators
    with :meth:`I` from ``self.data`` (``open, high, low, close, volume`` as DataFrames,
    bars x symbols). ``next`` decides, in one of two modes:

    Compiled ``next`` (engine speed)
        ``@staticmethod`` + ``@numba.njit``, signature ``next(ctx, i)``, called once per
        bar for every symbol; read ``ctx.user.<indicator>[i, c]`` (namedtuple of the
        indicators in declaration order, then ``params``) and ``ctx.position[c]``,
        and signal with ``enter_long_nb(ctx, i, c)`` & co. from
        ``nbtrade.kernels.callback``. Read rows ``<= i`` only. Same speed as
        :func:`nbtrade.backtest_callback` (first run compiles: seconds).
    Python ``next`` (Python speed)
        ``def next(self)``, called once per bar and symbol, in column order,
        backtesting.py style: ``self.position`` (``.size``, ``.close()``, truthy when
        open), ``self.buy()``, ``self.sell()``, indicators and ``self.data.close``
        indexed ``[-1]`` for the current bar (later bars raise IndexError).
        It runs bar by bar in Python, called back from the compiled engine at each
        bar. Measured (100k bars x 5 symbols, shared 2-core VM): an SMA cross using
        :func:`crossover` does 0.76 M bar-symbols/s (0.39 M bars/s on one symbol),
        one reading ``self.position`` and ``self.x[-1]`` 0.95 M/s, an empty ``next``
        3.2 M/s; the same strategy compiled does ~30 M/s (``bench/bench_strategy.py``),
        30-100x faster; backtesting.py does ~0.04 M bars/s (issue #4's figure).
        Fine for prototyping and small data; compile ``next`` for parameter sweeps
        on big data.
        A symbol's ``next`` starts at its first bar where every float indicator is
        defined (warm-up: the largest leading NaN run) and is skipped on bars where it
        has no candle. State kept on ``self`` is shared by all symbols: key it by
        ``self.symbol`` when trading several.

    Orders (both modes) are signals for the current bar: they fill like signals of
    :func:`nbtrade.backtest` (default at the next bar's open) with the run's
    ``size``, ``size_type``, stops and costs. ``buy()`` while long does nothing
    (``accumulate=True``: adds); ``sell()`` while long reverses to short (use
    ``position.close()`` to just exit); ``close()`` then ``buy()`` on one bar while long
    closes and opens a new trade (``reenter=True``, the default here).
    In a Python ``next`` an order may carry its own ``size``, ``sl``, ``tp`` and ``limit`` /
    ``stop`` level (:meth:`buy`: without ``order_type`` market, limit, stop and stop-limit entries
    mix in one run; with ``order_type="limit"`` / ``"stop"`` every entry is of that type);
    ``self.position.set_stop(price)`` moves a stop that only ratchets in
    the position's favour (backtesting.py's ``TrailingStrategy``). A compiled ``next`` says the
    same with ``Backtest(..., per_order=True)`` and ``order_nb`` (size, sl, tp), ``entry_order_nb``
    (the entry's type and levels, no ``order_type``), ``entry_level_nb`` (the level in a limit/stop
    run) and ``trail_stop_nb`` (``set_stop``) from ``nbtrade.kernels.callback``: the same orders as
    the Python ``next``.

    Coming from backtesting.py (``self.data.Close`` reads, capitalised names, work here):
    where both mean the same thing the trades agree (tests/engine/test_parity_backtesting.py).
    Documented differences, each met by code written for backtesting.py (its module imports
    ``backtesting``, or ``next`` reads capitalised names) raises one
    :class:`BacktestingPyDifference` warning per strategy class, at the user's line:

    * warm-up: ``next`` is first called on the first bar where every indicator is defined;
      backtesting.py calls it one bar later;
    * partial closes: ``position.close(portion)`` closes ``portion x size`` rounded down to
      ``lot_size`` (fractional units without one); backtesting.py rounds to whole units;
    * ``finalize_trades=True`` closes at the last bar's close; backtesting.py at its open.

    Other differences, not warned about: sizes are fractional unless ``lot_size`` is set
    (backtesting.py buys whole units: ``size=0.9999`` of equity rounded down), a new entry
    replaces a resting limit/stop entry (backtesting.py keeps a list of orders), and
    ``buy()`` while long adds only with ``accumulate=True``.
    """

    def __init__(self, data: _Data, cur: _Cursor, params: dict[str, Any]):
        self.data = data
        self._cur = cur
        self._indicators: list[_Indicator] = []
        self._names: dict[int, str] = {}  # id(indicator) -> explicit I(name=...)
        self._n = len(data._index)
        self._m = len(data.symbols)
        self._pos = np.zeros(self._m)
        self._cash = np.zeros(1)  # one per account, sized by the run (cash_sharing)
        self._groups = np.zeros(self._m, dtype=np.int64)
        self._members: list[np.ndarray] = []
        self._flags = np.zeros((4, self._m), dtype=np.bool_)
        self._portions = np.ones(self._m)  # fraction closed by an exit flag (Position.close(portion))
        # size, sl, tp of the entry flagged per column, and the indicator stop level (Position.set_stop)
        self._fields = np.full((4, self._m), np.nan)
        self._oprice: np.ndarray | None = None  # the run's order_price (limit/stop runs): buy(limit=/stop=)
        self._otype = "market"
        self._otypes: np.ndarray | None = None  # mixed entry types (Python next, no run-level order_type)
        self._lprice: np.ndarray | None = None  # their stop-limits' limits
        # the run's ctx.orders.live (mixed types): live[2] = SWITCH_TYPES at the first entry that is not a
        # market one switches the engine to per-entry types from that bar (run_callback; the typed engine
        # clears it again)
        self._live: np.ndarray | None = None
        self._bt_style = False  # backtesting.py-style code seen (data.Close...): warn on documented differences
        self._flagged = False
        self._marks: np.ndarray | None = None
        self.position = _Position(self)
        for k, v in params.items():
            setattr(self, k, v)

    def init(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def I(self, func: Callable, *args: Any, name: str | None = None, **kwargs: Any) -> Any:  # noqa: E743
        """Declare an indicator: ``func(*args, **kwargs)`` computed once, vectorised.

        ``func`` returns an array ``(n_bars, n_symbols)`` (or ``(n_bars,)`` for one
        symbol), a Series or a DataFrame aligned with the data (e.g. any
        ``nbtrade.indicators`` function), or a tuple of those (one indicator each, e.g.
        ``macd``). Causality is ``func``'s: the value at bar ``t`` must use bars up to
        ``t`` only (``nbtrade.check_lookahead`` tests a function). Returns an indicator
        view (a tuple for tuple results).
        """
        if self._cur.i is not None:
            raise RuntimeError("I() declares indicators in init(), not in next()")
        if not callable(func):
            raise TypeError(f"I() needs a callable first, got {type(func).__name__}")
        if name is not None and not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"I() name must be an identifier (it names the field of ctx.user), got {name!r}")
        label = name or getattr(func, "__name__", "indicator")
        out = func(*args, **kwargs)
        if name is not None and not isinstance(out, (tuple, list)):
            ind = self._declare(out, label)
            self._names[id(ind)] = name
            return ind
        if isinstance(out, (tuple, list)):
            return tuple(self._declare(o, f"{label}[{k}]") for k, o in enumerate(out))
        return self._declare(out, label)

    def _declare(self, x: Any, label: str) -> _Indicator:
        arr = _aligned(x, self.data, label)
        ind = _Indicator(arr, self._cur, label)
        self._indicators.append(ind)
        return ind

    # ------------------------------------------------------------- Python next
    def next(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def buy(self, *, size: float | None = None, limit: float | None = None, stop: float | None = None,
            sl: float | None = None, tp: float | None = None, **kwargs: Any) -> None:
        """Signal a long entry for the current symbol (a reversal when short; with ``accumulate=True``
        an add when long).

        ``size`` (read as the run's ``size_type``; default the run's ``size``), ``sl`` and ``tp``
        (absolute stop-loss / take-profit prices of this trade; default the run's ``sl_stop`` /
        ``tp_stop``) apply to this order only: ``sl`` must be below the current close and ``tp``
        above it.

        ``limit=`` / ``stop=``: this entry rests at that price (a limit buy fills at ``min(open,
        limit)`` once the low reaches it, a stop buy at ``max(open, stop)`` once the high does) from
        the next bar until filled, replaced by a new entry, cancelled (:meth:`cancel`) or expired
        (``tif``); both at once: a stop-limit (armed at ``stop``, then a limit at ``limit``).
        Without a run-level ``order_type`` (Python ``next``) each entry has its own type: ``buy()``,
        ``buy(limit=)``, ``buy(stop=)`` and ``buy(stop=, limit=)`` mix in one run, as in
        backtesting.py (a compiled ``next``: ``entry_order_nb``). With ``Backtest(..., order_type="limit")`` / ``"stop"`` every entry is of that
        type (without ``order_price`` each names its level; with it, an entry without one rests at
        ``order_price``).
        """
        self._order(0, "buy", size, sl, tp, limit, stop, kwargs)

    def sell(self, *, size: float | None = None, limit: float | None = None, stop: float | None = None,
             sl: float | None = None, tp: float | None = None, **kwargs: Any) -> None:
        """Signal a short entry for the current symbol (a reversal when long); ``size``, ``limit``, ``stop``,
        ``sl``, ``tp`` as for :meth:`buy`, mirrored (``sl`` above the current close, ``tp`` below; a limit
        sell fills at ``max(open, limit)`` once the high reaches it, a stop sell at ``min(open, stop)``)."""
        self._order(2, "sell", size, sl, tp, limit, stop, kwargs)

    def _order(self, row: int, name: str, size: Any, sl: Any, tp: Any, limit: Any, stop: Any,
               kwargs: dict) -> None:
        if kwargs:
            _no_order_args(name, kwargs)
        c = self._cur.c
        if limit is not None or stop is not None or self._otype != "market" or self._otypes is not None:
            self._resting(name, limit, stop)
        if size is not None or sl is not None or tp is not None:
            where = f"at {self.time} ({self.symbol})"
            close = float(self.data.close[-1])
            for key, v in (("size", size), ("sl", sl), ("tp", tp)):
                if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                                      or not np.isfinite(v) or v <= 0):
                    raise ValueError(f"{name}({key}=...) must be a finite number > 0, got {v!r} {where}")
            long = row == 0
            if sl is not None and (sl >= close if long else sl <= close):
                raise ValueError(f"{name}(sl={sl!r}) is on the wrong side: a {'long' if long else 'short'}'s "
                                 f"stop-loss must be {'below' if long else 'above'} the close ({close}) {where}")
            if tp is not None and (tp <= close if long else tp >= close):
                raise ValueError(f"{name}(tp={tp!r}) is on the wrong side: a {'long' if long else 'short'}'s "
                                 f"take-profit must be {'above' if long else 'below'} the close ({close}) {where}")
            self._fields[:3, c] = (np.nan if size is None else size, np.nan if sl is None else sl,
                                  np.nan if tp is None else tp)
        self._flags[row, c] = True
        self._flagged = True

    def _resting(self, name: str, limit: Any, stop: Any) -> None:
        """Write a per-order limit/stop level into the run's ``order_price`` at the current bar; in a run
        without a run-level ``order_type`` (Python ``next``), the entry's own type too (``_otypes``: 0
        market, 1 limit, 2 stop, 3 stop-limit, its limit in ``_lprice``)."""
        where = f"at {self.time} ({self.symbol})"
        i, c = self._cur.i, self._cur.c
        for key, v in (("limit", limit), ("stop", stop)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating))
                                  or not np.isfinite(v) or v <= 0):
                raise ValueError(f"{name}({key}=...) must be a finite number > 0, got {v!r} {where}")
        if self._otypes is not None:  # mixed types in one run: each entry names its own
            code = 3 if (limit is not None and stop is not None) else 1 if limit is not None else \
                2 if stop is not None else 0
            self._otypes[i, c] = code
            self._oprice[i, c] = np.nan if code == 0 else stop if code >= 2 else limit
            self._lprice[i, c] = limit if code == 3 else np.nan
            if code and self._live[2] == 0:  # a resting entry: the engine's per-entry types from this bar
                from ..kernels.callback import SWITCH_TYPES

                self._live[2] = SWITCH_TYPES
            return
        if limit is not None and stop is not None:
            raise ValueError(f"{name}(limit=, stop=) together (a stop-limit entry) is not supported in a run "
                             f"with order_type={self._otype!r} {where}: drop order_type (each entry then names "
                             f"its own type), or give one of them")
        key, v = ("limit", limit) if limit is not None else ("stop", stop)
        if v is not None:
            if self._otype != key:
                raise ValueError(f"{name}({key}=...) needs Backtest(..., order_type={key!r}) {where}: the engine's "
                                 f"order type is one per run (market, limit or stop), its level per order"
                                 + ("" if self._otype == "market" else f"; this run's is {self._otype!r}"))
            if self._oprice is None:  # compiled next: no order_price to write
                raise ValueError(f"{name}({key}=...) per order needs a Python next")
            self._oprice[i, c] = v
        elif self._oprice is not None and not self._oprice[i, c] == self._oprice[i, c]:
            raise ValueError(f"{name}() in a run with order_type={self._otype!r} and no order_price needs its level "
                             f"{where}: {name}({self._otype}=price)")

    def cancel(self) -> None:
        """Cancel the current symbol's resting limit/stop entry (``order_type``), if any.

        Sends both exit signals: an open position of either side is closed too.
        """
        c = self._cur.c
        self._flags[1, c] = self._flags[3, c] = True
        self._flagged = True

    @property
    def i(self) -> int:
        """Current bar number (0-based)."""
        return self._cur.i

    @property
    def symbol(self) -> Any:
        """Current symbol."""
        return self.data.symbols[self._cur.c]

    @property
    def time(self) -> Any:
        """Current bar's open time."""
        return self.data._index[self._cur.i]

    @property
    def cash(self) -> float:
        """Cash of the current symbol's account after this bar's fills (quote currency).

        The whole portfolio's cash with ``cash_sharing=True`` (the default).
        """
        return float(self._cash[self._groups[self._cur.c]])

    @property
    def equity(self) -> float:
        """The current symbol's account: cash plus its positions at their last close (quote)."""
        g = self._groups[self._cur.c]
        members = self._members[g]
        pos = self._pos[members]
        held = pos != 0.0
        return float(self._cash[g] + np.dot(pos[held], self._marks[self._cur.i, members][held]))

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={getattr(self, k)!r}" for k in _params(type(self)))
        return f"{type(self).__name__}({params})"


def _engine_keys() -> list[str]:
    from .signals import backtest

    return [k for k in inspect.signature(backtest).parameters if k not in ("data", *_SIGNAL_KEYS)]


def _no_order_args(name: str, kwargs: dict) -> None:
    hint = ""
    if "exectime" in kwargs or "tag" in kwargs:
        hint = ": backtesting.py's exectime/tag are not supported"
    raise TypeError(f"{name}() takes size=, limit=, stop=, sl=, tp= (got {', '.join(kwargs)}){hint}")


def crossover(a: Any, b: Any) -> Any:
    """True when ``a`` crossed above ``b`` on the last bar: ``a[-2] < b[-2]`` and ``a[-1] > b[-1]``.

    ``a`` and ``b`` are indicators, numbers, arrays or pandas Series (positions, not labels,
    as in ``backtesting.lib.crossover``): a bool, False with fewer than two bars. With a
    DataFrame (bars x symbols) on either side the answer is per column: a bool Series
    (the other side broadcast: a number, a Series with the same index, or a DataFrame
    with the same columns).
    """
    if isinstance(a, pd.DataFrame) or isinstance(b, pd.DataFrame):
        frame = a if isinstance(a, pd.DataFrame) else b
        if len(frame) < 2:
            return pd.Series(False, index=frame.columns)
        a2, a1 = _last_two_frame(a, frame)
        b2, b1 = _last_two_frame(b, frame)
        return pd.Series((a2 < b2) & (a1 > b1), index=frame.columns)
    a2, a1 = _last_two(a)
    b2, b1 = _last_two(b)
    return bool(a2 < b2 and a1 > b1)


def _last_two(x: Any) -> tuple[Any, Any]:
    if isinstance(x, _Indicator) and x._cur.i is not None:
        i, c = x._cur.i, x._cur.c
        return (x._a[i - 1, c], x._a[i, c]) if i > 0 else (np.nan, np.nan)
    if isinstance(x, (int, float, np.integer, np.floating)):
        return x, x
    if isinstance(x, (pd.Series, pd.Index)):
        x = x.to_numpy()
    if len(x) < 2:
        return np.nan, np.nan
    return x[-2], x[-1]


def _last_two_frame(x: Any, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The last two rows of ``x`` broadcast to ``frame``'s columns (float arrays)."""
    if isinstance(x, pd.DataFrame):
        if list(x.columns) != list(frame.columns):
            x = x.reindex(columns=frame.columns)
        v = x.to_numpy(dtype=np.float64)
        return v[-2], v[-1]
    a2, a1 = _last_two(x)
    m = frame.shape[1]
    return np.full(m, a2, dtype=np.float64), np.full(m, a1, dtype=np.float64)


def _aligned(x: Any, data: _Data, label: str) -> np.ndarray:
    """An indicator output as a C-contiguous ``(n_bars, n_symbols)`` float64 (or bool) array, matched
    to the data by label like every other input (``panel.align``)."""
    if isinstance(x, _Indicator):
        x = x._a
    market = data._market
    if isinstance(x, pd.Series) and len(data.symbols) != 1:
        raise ValueError(f"indicator {label} returned a Series but data has {len(data.symbols)} symbols: return a "
                         f"DataFrame (bars x symbols)")
    is_bool = (x.dtype == np.bool_) if isinstance(x, (np.ndarray, pd.Series)) else (
        isinstance(x, pd.DataFrame) and len(x.columns) > 0 and all(dt == np.bool_ for dt in x.dtypes))
    name = f"indicator {label}"
    if isinstance(x, (pd.Series, pd.DataFrame)):
        return align(x, market, name, "bool" if is_bool else "float")
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        return align(arr, market, name, "bool")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"indicator {label} must be numeric or boolean, got dtype {arr.dtype}")
    return align(arr, market, name, "float")


# --------------------------------------------------------------------------------------------
# class inspection

def _params(cls: type) -> dict[str, Any]:
    """Public class attributes that are not methods: the strategy's parameters, with defaults."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or klass is Strategy:
            continue
        for k, v in vars(klass).items():
            if k.startswith("_") or k in ("init", "next"):
                continue
            if isinstance(v, (staticmethod, classmethod, property)) or callable(v):
                continue
            out[k] = v
    return out


def _next_mode(cls: type) -> tuple[str, Any]:
    """``("compiled", dispatcher)`` or ``("python", function)``; TypeError for anything else."""
    from numba import config
    from numba.core.dispatcher import Dispatcher

    name = cls.__name__
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise TypeError(f"strategy must be a Strategy subclass, got {cls!r}")
    for meth in ("init", "next"):
        if inspect.getattr_static(cls, meth) is inspect.getattr_static(Strategy, meth):
            raise TypeError(f"{name} must define {meth}(): init(self) declares indicators, next decides "
                            f"(def next(self) in Python, or a @staticmethod @njit next(ctx, i))")
    if len(inspect.signature(cls.init).parameters) != 1:
        raise TypeError(f"{name}.init must take only self: def init(self)")
    raw = inspect.getattr_static(cls, "next")
    fn = raw.__func__ if isinstance(raw, staticmethod) else raw
    hint = "(ctx, i) for a compiled next or def next(self) for a Python one"
    if isinstance(fn, Dispatcher):
        if len(inspect.signature(fn.py_func).parameters) != 2:
            raise TypeError(f"{name}.next is numba-compiled but its signature is "
                            f"{inspect.signature(fn.py_func)}: a compiled next is next(ctx, i)")
        return "compiled", fn
    if not callable(fn):
        raise TypeError(f"{name}.next must be a function {hint}")
    n_args = len(inspect.signature(fn).parameters)
    if isinstance(raw, staticmethod):
        if n_args == 2 and config.DISABLE_JIT:  # NUMBA_DISABLE_JIT=1: the compiled next runs as Python
            return "compiled", fn
        raise TypeError(f"{name}.next is a staticmethod{' (ctx, i)' if n_args == 2 else ''} but not numba-compiled: "
                        f"decorate it with @numba.njit under @staticmethod, or write def next(self) "
                        f"(Python mode)")
    if n_args != 1:
        raise TypeError(f"{name}.next has signature {inspect.signature(fn)}: use def next(self) (Python mode) "
                        f"or a @staticmethod @njit next(ctx, i) (compiled mode)")
    return "python", fn


_TUPLES: dict[tuple, type] = {}


def _namedtuple(typename: str, fields: tuple[str, ...]) -> type:
    """One class per field list: numba types a namedtuple by its class, so reuse avoids recompiling."""
    key = (typename, fields)
    if key not in _TUPLES:
        _TUPLES[key] = namedtuple(typename, fields)
    return _TUPLES[key]


def _user_tuple(strategy: Strategy) -> tuple:
    """``ctx.user`` of a compiled next: indicators (named after their attributes) then ``params``."""
    names = dict(strategy._names)
    for attr, v in vars(strategy).items():
        if isinstance(v, _Indicator) and id(v) not in names:
            names[id(v)] = attr
    fields: list[str] = []
    for k, ind in enumerate(strategy._indicators):
        f = names.get(id(ind), "").lstrip("_")
        if not f.isidentifier() or keyword.iskeyword(f):
            f = f"ind{k}"
        while f in fields or f == "params":
            f += "_"
        fields.append(f)
    params = {k: getattr(strategy, k) for k in _params(type(strategy))}
    params = {k: v for k, v in params.items() if isinstance(v, (int, float, np.integer, np.floating, np.bool_))}
    ptype = _namedtuple("Params", tuple(params))
    utype = _namedtuple("Indicators", tuple(fields) + ("params",))
    return utype(*(ind._a for ind in strategy._indicators), ptype(**params))


# --------------------------------------------------------------------------------------------
# Python next: the compiled engine calls back at each bar

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64)


def _callback_type() -> Any:
    from numba import int64, types as nbtypes

    class PyCallback(nbtypes.WrapperAddressProtocol):
        """A Python function ``f(i) -> int`` callable from numba code through a ctypes pointer."""

        def __init__(self, fn: Callable[[int], int]):
            self._fn = fn
            self._c = _CALLBACK(fn)

        def __wrapper_address__(self) -> int:
            return ctypes.cast(self._c, ctypes.c_void_p).value

        def signature(self) -> Any:
            return int64(int64)

        def __call__(self, i: int) -> int:  # NUMBA_DISABLE_JIT=1
            return self._fn(i)

    return PyCallback


_PY_CALLBACK = None


def _py_callback(fn: Callable[[int], int]) -> Any:
    global _PY_CALLBACK
    if _PY_CALLBACK is None:
        _PY_CALLBACK = _callback_type()
    return _PY_CALLBACK(fn)


def _python_on_bar() -> Any:
    """The compiled on_bar of Python strategies (built on first use: no compilation at import)."""
    global _ON_BAR
    if _ON_BAR is None:
        from ..kernels.python_next import python_next_stops_nb

        _ON_BAR = python_next_stops_nb
    return _ON_BAR


_ON_BAR = None


class _PythonDriver:
    """Calls ``strategy.next()`` for each symbol at bar ``i``; returns 1 if it signalled, -1 on error."""

    def __init__(self, strategy: Strategy, close: np.ndarray, start: np.ndarray):
        self.s = strategy
        self.close = close
        self.start = start
        self.error: BaseException | None = None

    def __call__(self, i: int) -> int:
        s = self.s
        cur = s._cur
        try:
            cur.i = i
            row = self.close[i]
            start = self.start
            nxt = s.next
            for c in range(len(row)):
                if i >= start[c] and row[c] == row[c]:
                    cur.c = c
                    nxt()
            if s._flagged:
                s._flagged = False
                return 1
            return 0
        except BaseException as e:  # noqa: BLE001 - re-raised after the run
            self.error = e
            return -1


def _warmup(indicators: list[_Indicator], m: int, n: int) -> np.ndarray:
    """First bar per column where every float indicator is defined (n when one never is)."""
    start = np.zeros(m, dtype=np.int64)
    for ind in indicators:
        a = ind._a
        if a.dtype != np.float64:
            continue
        ok = ~np.isnan(a)
        first = np.where(ok.any(axis=0), ok.argmax(axis=0), n)
        np.maximum(start, first, out=start)
    return start


# --------------------------------------------------------------------------------------------
# Backtest

class Backtest:
    """Run a :class:`Strategy` on data with one set of engine settings (backtesting.py style).

    Parameters
    ----------
    data
        OHLC(V) as for :func:`nbtrade.backtest`: ``{symbol: DataFrame}``, one DataFrame,
        a dict of fields (``"volume"`` optional) or close prices.
    strategy : Strategy subclass
    **kwargs
        Keywords of :func:`nbtrade.backtest` (``fees``, ``size``, ``sl_stop``,
        ``fill``, ``init_cash``...) except the signals. backtesting.py names are
        accepted: ``cash`` (``init_cash``), ``commission`` (``fees``),
        ``trade_on_close=True`` (``fill="close"``), ``margin`` (a number: ``leverage = 1 /
        margin``; ``"isolated"`` / ``"cross"``: the margin mode of perpetuals). Perpetuals:
        ``instrument="perp"``, ``leverage`` (a number or per symbol), ``margin``, ``maintenance``,
        ``liquidation_fee`` as for :func:`nbtrade.backtest` (validated here): liquidation at the mark
        candles (exit reason ``"liquidation"``; ``self.position`` is flat afterwards) and funding
        (``Result.funding``) as on the signals path. ``reenter`` defaults to True here: ``self.position.close(); self.buy()``
        while long closes the trade and opens a new one on the same bar, as in backtesting.py.
        Without ``order_type`` (Python ``next``) each entry names its own type:
        ``self.buy()``, ``self.buy(limit=...)``, ``self.buy(stop=...)``, ``self.buy(stop=..., limit=...)``
        mix in one run. ``order_type="limit"`` / ``"stop"`` without ``order_price`` (Python ``next``):
        every entry is of that type and names its level, ``self.buy(limit=...)`` / ``self.buy(stop=...)``. Options the class API cannot
        honour are refused here, not in ``run()``: ``sl_price`` / ``tp_price`` / ``limit_price``
        (give ``sl=`` / ``tp=`` per order), ``exit_size`` (``position.close(portion)``),
        ``order_type="stop_limit"``.

    Examples
    --------
    >>> import nbtrade
    >>> from nbtrade import indicators as ind
    >>> class SmaCross(Strategy):
    ...     fast, slow = 5, 20
    ...     def init(self):
    ...         self.f = self.I(ind.sma, self.data.close, self.fast)
    ...         self.s = self.I(ind.sma, self.data.close, self.slow)
    ...     def next(self):
    ...         if crossover(self.f, self.s):
    ...             self.buy()
    ...         elif crossover(self.s, self.f):
    ...             self.position.close()
    >>> df = nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-08", "1h", seed=1)
    >>> res = Backtest(df, SmaCross, commission=0.001).run(fast=10)
    >>> res.equity.shape
    (168,)
    """

    def __init__(self, data: Any, strategy: type, **kwargs: Any):
        self.mode, self._next = _next_mode(strategy)
        self.strategy = strategy
        self._defaults = _params(strategy)
        allowed = set(MODE_OPTIONS["callback"])
        kw: dict[str, Any] = {}
        # a compiled next giving entries their own size/sl/tp (kernels.callback.order_nb): bars x symbols arrays
        self._per_order = kwargs.pop("per_order", False)
        if not isinstance(self._per_order, (bool, np.bool_)):
            raise TypeError(f"per_order must be True or False, got {self._per_order!r}")
        for k, v in kwargs.items():
            if k in _SIGNAL_KEYS:
                raise TypeError(f"Backtest takes no {k}: the strategy's next() writes the signals")
            if k == "trade_on_close":
                k, v = "fill", "close" if v else "next_open"
            elif k == "margin" and not isinstance(v, str):  # backtesting.py's margin; a string: the margin mode
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                    raise ValueError(f"margin must be in (0, 1] (1 / leverage, backtesting.py) or a margin mode "
                                     f"('isolated', 'cross'), got {v!r}")
                k, v = "leverage", 1.0 / v
            else:
                k = _ALIASES.get(k, k)
            if k not in allowed:
                check_kwargs("Backtest()", [k], sorted(allowed) + ["cash", "commission", "trade_on_close", "margin"])
            if k in kw:
                raise TypeError(f"Backtest got {k!r} twice (through an alias: cash/init_cash, commission/fees, "
                                f"trade_on_close/fill, margin/leverage)")
            kw[k] = v
        if kw.get("order_type", "market") == "stop_limit":
            raise ValueError("order_type='stop_limit' is not supported by the class API (nor backtest_callback)")
        if kw.get("order_type") in ("limit", "stop") and kw.get("order_price") is None:
            if self.mode == "compiled" and not self._per_order:
                raise ValueError(f"order_type={kw['order_type']!r} needs order_price (bars x symbols) with a "
                                 f"compiled next, or per_order=True and each entry's level from "
                                 f"entry_level_nb(ctx, i, c, level)")
            # every entry names its level: buy(limit=...) / buy(stop=...), entry_level_nb in a compiled next
            kw["order_price"] = None
        self._kwargs = kw
        # the panel and the run configuration are built, converted and checked once; every run (and
        # optimize) reuses them: a run costs the strategy's init, the kernel and the Result
        self._market = Market(data, copy=False) if not isinstance(data, Market) else data
        self._data = self._market
        self._inputs = self._market.prices(ohlc=True)
        self._volume = self._market.array("volume") if self._market.has("volume") and \
            not self._market.close_only else None
        # backtesting.py: position.close(); buy() on one bar closes and re-buys (reenter=False: the close only)
        if "order_price" in kw and kw["order_price"] is None:
            kw["order_price"] = np.full(self._market.shape, np.nan)
        self.config = _check_options(self._market, {"reenter": True, **kw})
        self._frames: dict[str, pd.DataFrame] = {}  # Strategy.data's DataFrames, shared by the runs
        self._bt_module = _from_backtesting_py(strategy)  # written for backtesting.py: warn on differences
        self._marks: np.ndarray | None = None

    def run(self, **params: Any) -> Result:
        """Run the strategy with parameters overriding its class attributes.

        Returns a :class:`nbtrade.Result` (``equity``, ``trades``, ``stats()``), with
        ``result.strategy`` the strategy instance (its indicators as whole arrays) and
        ``result.params`` the parameters used.
        """
        self._check_params(params)
        inp = self._inputs
        cur = _Cursor()
        arrays = {"open": inp.open, "high": inp.high, "low": inp.low, "close": inp.close, "volume": self._volume}
        data = _Data(arrays, inp.index, list(inp.symbols), cur, self._market, self._frames)
        used = {**self._defaults, **params}
        strat = self.strategy(data, cur, used)
        strat._bt_style = self._bt_module
        strat.init()
        if strat._bt_style or data._bt_style:
            self._bt_warnings(strat)
        # the engine's warnings (rejected orders, gaps) are re-issued at the caller's line
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.mode == "compiled":
                cfg = self.config
                if self._per_order and cfg.order_type != "market":  # entry_level_nb writes: a copy per run
                    cfg = dataclasses.replace(cfg, order_price=cfg.order_price.copy())
                res = run_callback(self._market, cfg, self._next, _user_tuple(strat), per_order=bool(self._per_order))
                note = "compiled next (numba, engine speed)"
            else:
                res = self._run_python(strat, inp)
                note = "Python next (bar by bar, Python speed)"
        for w in caught:
            if issubclass(w.category, BacktestingPyDifference):  # already at the user's line
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, registry={})
            else:
                warnings.warn(w.message, w.category, stacklevel=user_stacklevel())
        cur.i = None  # after the run the indicators read as whole arrays again
        res.strategy = strat
        res.params = used
        res.assumptions["strategy"] = f"{strat!r}: {note}"
        return res

    def _bt_warnings(self, strat: Strategy) -> None:
        """Differences met by code written for backtesting.py, known before the bars run (once each)."""
        if self.mode == "python":
            fn = inspect.getattr_static(self.strategy, "next")
            code = getattr(fn, "__code__", None)
            where = (code.co_filename, code.co_firstlineno) if code is not None else \
                (__file__, 0)
            start = _warmup(strat._indicators, strat._m, strat._n)
            first = int(start.min()) if len(start) else 0
            _bt_difference(strat, "warmup", f"{self.strategy.__name__}.next is first called at bar {first}, the first "
                           f"bar where every indicator is defined; backtesting.py calls it one bar later (bar "
                           f"{first + 1}): an order on the first call comes one bar earlier here", where)
        if self.config.orders is not None and self.config.orders.finalize:
            frame = sys._getframe(user_stacklevel() - 1)
            _bt_difference(strat, "finalize", "finalize_trades=True closes open trades at the last bar's close here; "
                           "backtesting.py fills them at the last bar's open", frame)

    def _combinations(self, grid: Mapping[str, Any], constraint: Callable[[Any], bool] | None,
                      max_tries: int | None, random_state: int | None) -> list[dict]:
        """The combinations :meth:`optimize` runs, in order: the grid's product, the constraint on
        the strategy's defaults plus the combination, ``max_tries`` drawn with ``random_state``."""
        values = {k: (list(v) if isinstance(v, (list, tuple, range, np.ndarray, pd.Index)) else [v])
                  for k, v in grid.items()}
        for k, v in values.items():
            if not v:
                raise ValueError(f"optimize grid for {k!r} is empty")
        combos = [dict(zip(values, c)) for c in itertools.product(*values.values())]
        if constraint is not None:
            combos = [p for p in combos if constraint(types.SimpleNamespace(**{**self._defaults, **p}))]
            if not combos:
                raise ValueError("constraint rejects every combination of the grid")
        if max_tries is not None:
            if isinstance(max_tries, bool) or not isinstance(max_tries, (int, np.integer)) or max_tries < 1:
                raise ValueError(f"max_tries must be an integer >= 1, got {max_tries!r}")
            if max_tries < len(combos):
                pick = np.random.default_rng(random_state).choice(len(combos), int(max_tries), replace=False)
                combos = [combos[k] for k in sorted(pick)]
        return combos

    def _check_params(self, params: Mapping[str, Any]) -> None:
        """Strategy parameters must be its class attributes; a near miss gets "did you mean"."""
        for k in params:
            if k not in self._defaults:
                hint = did_you_mean(k, self._defaults)
                engine = did_you_mean(k, _engine_keys()) if hint is None else None
                msg = (f"{self.strategy.__name__} has no parameter {k!r}" +
                       (f"; did you mean {hint}=?" if hint else "") +
                       f" (parameters: {', '.join(self._defaults) or '(none)'}; declare them as class attributes)")
                if engine:
                    msg += f". Engine settings such as {engine}= go to Backtest(data, strategy, {engine}=...)"
                raise TypeError(msg)

    def _run_python(self, strat: Strategy, inp: Any) -> Result:
        n, m = inp.shape
        start = _warmup(strat._indicators, m, n)
        if self._marks is None:  # last valid closes (Strategy.equity), the same for every run
            self._marks = pd.DataFrame(inp.close).ffill().to_numpy()
        strat._marks = self._marks
        groups = self.config.groups
        strat._groups = groups
        strat._cash = np.zeros(int(groups.max()) + 1)
        strat._members = [np.flatnonzero(groups == g) for g in range(len(strat._cash))]
        driver = _PythonDriver(strat, inp.close, start)
        cb = _py_callback(driver)
        first = np.array([min(int(start.min()), n)], dtype=np.int64)
        user = (strat._pos, strat._cash, strat._flags, first, cb, strat._portions, strat._fields)
        cfg = self.config
        strat._otype = cfg.order_type
        mixed = {}
        if cfg.order_type != "market":  # buy(limit=/stop=) writes its level: a copy per run
            cfg = dataclasses.replace(cfg, order_price=cfg.order_price.copy())
            strat._oprice = cfg.order_price
        elif cfg.order_price is None:  # no run-level type: buy(), buy(limit=), buy(stop=) mix in one run
            shape = self._market.shape
            strat._otypes = np.zeros(shape, dtype=np.int64)
            strat._oprice = np.full(shape, np.nan)
            strat._lprice = np.full(shape, np.nan)
            cfg = dataclasses.replace(cfg, order_price=strat._oprice)
            strat._live = np.zeros(3, dtype=np.int64)
            # a run that never rests an entry keeps the plain kernel variant (run_callback)
            mixed = {"entry_types": strat._otypes, "limit_price": strat._lprice, "live": strat._live}
        # the engine cannot stop early: after an error the callback is no longer called; per-order
        # fields (buy(size=, sl=, tp=), set_stop) cost bars x symbols arrays, negligible at Python speed
        try:
            res = run_callback(self._market, cfg, _python_on_bar(), user, per_order=True, **mixed)
        finally:
            # ctypes keeps the callback in a reference cycle of its own: the strategy (its indicators and
            # arrays) leaves it, so that it is freed with the result, not at the next garbage collection
            driver.s = None
        if driver.error is not None:
            raise driver.error
        return res

    def optimize(self, *, maximize: str | Callable[[Result], float] = "Sharpe Ratio",
                 constraint: Callable[[Any], bool] | None = None, max_tries: int | None = None,
                 random_state: int | None = None, n_jobs: int = 1, client: Any = None,
                 **grid: Any) -> tuple[Result, pd.DataFrame]:
        """Run every combination of the parameter ``grid`` and keep the best.

        Parameters
        ----------
        maximize : str or callable
            A label of ``Result.stats()`` (``"Sharpe Ratio"``, ``"Total Return [%]"``...) or
            a function ``Result -> float``. NaN ranks last.
        constraint : callable, optional
            ``constraint(p) -> bool`` on the parameters as attributes (``lambda p: p.fast
            < p.slow``); combinations failing it are skipped.
        n_jobs, client : threads (``-1``: every core) or a Dask ``Client`` / scheduler address:
            the combinations run through :func:`nbtrade.sweep.optimize_class`, with the same
            result as the serial loop (default: serial, in this thread).
        **grid
            Parameter name to a sequence of values (a scalar is one value).

        Returns
        -------
        (Result, DataFrame)
            The best run, and one row per run: the parameters, then every statistic,
            sorted best first. In-sample: the best of many runs is optimistic (validate
            out of sample, e.g. walk-forward).
        """
        if n_jobs != 1 or client is not None:
            from ..sweep.classopt import optimize_class

            return optimize_class(self, maximize=maximize, constraint=constraint, max_tries=max_tries,
                                  random_state=random_state, n_jobs=n_jobs, client=client, **grid)
        if not grid:
            raise ValueError("optimize needs a parameter grid, e.g. optimize(fast=[5, 10], slow=[20, 50])")
        self._check_params(grid)
        if not (isinstance(maximize, str) or callable(maximize)):
            raise TypeError(f"maximize must be a stats label or a callable, got {maximize!r}")
        combos = self._combinations(grid, constraint, max_tries, random_state)
        rows, best, best_score = [], None, -np.inf
        for p in combos:
            res = self.run(**p)
            stats = res.stats()
            if isinstance(maximize, str):
                if maximize not in stats.index:
                    raise ValueError(f"maximize={maximize!r} is not a statistic; one of: {', '.join(stats.index)}")
                score = float(stats[maximize])
            else:
                score = float(maximize(res))
            rows.append({**p, **stats.to_dict(), "_score": score})
            if best is None or (score == score and score > best_score):
                best, best_score = res, (score if score == score else -np.inf)
        table = pd.DataFrame(rows)
        table = table.sort_values("_score", ascending=False, na_position="last", kind="stable")
        table = table.drop(columns="_score").reset_index(drop=True)
        return best, table


def _check_options(market: Market, kw: dict) -> RunConfig:
    """The run configuration of every run, validated once: options the callback engine does not support
    are refused by the class API's own words, the rest by :meth:`RunConfig.build` (as
    :func:`nbtrade.backtest_callback` would on each run)."""
    for key in ("sl_price", "tp_price", "limit_price"):
        if kw.get(key) is not None:
            hint = "use sl_stop / tp_stop" if key != "limit_price" else "order_type='stop_limit' is not supported"
            raise ValueError(f"Backtest does not take {key} (not supported by the callback engine): {hint}")
    exit_size = kw.get("exit_size", 1.0)
    if not (isinstance(exit_size, (int, float)) and not isinstance(exit_size, bool) and exit_size == 1.0):
        raise ValueError("Backtest does not take exit_size: close a part with self.position.close(portion) "
                         "(or reduce_long_nb / reduce_short_nb in a compiled next)")
    cfg = RunConfig.build(market, "callback", **kw)
    check_margin(cfg)  # perpetual / margin options: refused here, not in run()
    return cfg
