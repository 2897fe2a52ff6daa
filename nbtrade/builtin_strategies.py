"""The strategies the CLI runs by name: built-in signal strategies, and loading a user's strategy file
(formerly ``nbtrade.strategies``, still importable under that name).

A strategy is a callable ``strategy(data) -> dict`` taking ``{symbol: OHLCV
DataFrame}`` and returning boolean DataFrames (bars x symbols) under any of
``entries, exits, short_entries, short_exits``. The signal at bar ``t`` may use
bars up to ``t`` only; the engine fills it at ``t + 1``'s open by default.
A strategy file is a Python file defining ``strategy(data)`` or a class-API
:class:`nbtrade.Strategy` subclass (``init``/``next``, run by :class:`nbtrade.Backtest`;
with several subclasses, ``strategy = TheOne`` names it) and, optionally,
``BACKTEST = {...}`` keyword arguments for :func:`nbtrade.backtest`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

#: A signals strategy: ``{symbol: OHLCV DataFrame} -> {"entries": ..., "exits": ...}`` (boolean DataFrames).
SignalStrategy = Callable[[Mapping[str, pd.DataFrame]], dict[str, pd.DataFrame]]


def _close(data: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.DataFrame({s: f["close"] for s, f in data.items()})


def _crossings(fast: pd.DataFrame, slow: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Entries where ``fast`` crosses above ``slow`` (both defined), exits where it crosses below."""
    above = fast > slow
    was = above.shift(1, fill_value=False)
    return {"entries": above & ~was & slow.notna(), "exits": ~above & was}


def ema_cross(data: Mapping[str, pd.DataFrame], fast: int = 12, slow: int = 48) -> dict[str, pd.DataFrame]:
    """Long when the fast EMA crosses above the slow one, flat when it crosses below."""
    from .indicators import ema

    close = _close(data)
    return _crossings(ema(close, fast), ema(close, slow))


def sma_cross(data: Mapping[str, pd.DataFrame], fast: int = 10, slow: int = 50) -> dict[str, pd.DataFrame]:
    """Long when SMA(fast) crosses above SMA(slow), flat when it crosses below."""
    from .indicators import sma

    close = _close(data)
    return _crossings(sma(close, fast), sma(close, slow))


def rsi_reversion(data: Mapping[str, pd.DataFrame], timeperiod: int = 14, lower: float = 30.0,
                  upper: float = 70.0) -> dict[str, pd.DataFrame]:
    """Buy when RSI crosses up through ``lower``; sell when it crosses up through ``upper``."""
    from .indicators import rsi

    r = rsi(_close(data), timeperiod)
    prev = r.shift(1)
    return {"entries": (r > lower) & (prev <= lower), "exits": (r > upper) & (prev <= upper)}


BUILTIN: dict[str, SignalStrategy] = {"ema_cross": ema_cross, "sma_cross": sma_cross, "rsi_reversion": rsi_reversion}


class ClassStrategy:
    """A strategy file's :class:`nbtrade.Strategy` subclass: its orders come from ``next``, so it runs
    through :class:`nbtrade.Backtest` instead of a signals backtest.

    Called as ``strategy(data)`` (what ``check_lookahead`` and ``check_recursive`` test) it returns,
    per bar and symbol, the positions after each bar and every indicator declared in ``init``:
    with no look-ahead, none of them changes at or before bar ``t`` when later bars are removed.
    """

    def __init__(self, cls: type, kwargs: Mapping[str, Any] | None = None) -> None:
        self.cls = cls
        self.kwargs = dict(kwargs or {})
        self.__name__ = cls.__name__

    def backtest(self, data: Any, **kwargs: Any) -> Any:
        """``Backtest(data, cls, **kwargs).run()``: a :class:`nbtrade.Result`."""
        from .engine.classapi import Backtest

        return Backtest(data, self.cls, **kwargs).run()

    def __call__(self, data: Any) -> dict[str, pd.DataFrame]:
        import numpy as np

        res = self.backtest(data, **self.kwargs)
        out = {"positions": res.positions}
        for ind in res.strategy._indicators:
            arr = np.asarray(ind, dtype=np.float64)
            arr = arr.reshape(len(res.index), -1)
            out[f"indicator {ind.name}"] = pd.DataFrame(arr, index=res.index, columns=res.symbols[:arr.shape[1]])
        return out

    def __repr__(self) -> str:
        return f"ClassStrategy({self.cls.__name__})"


def load_strategy(name_or_path: str) -> tuple[SignalStrategy | ClassStrategy, dict[str, Any]]:
    """A built-in strategy by name, or from a Python file: ``strategy(data)`` or a class-API
    :class:`nbtrade.Strategy` subclass (a :class:`ClassStrategy`), and the file's ``BACKTEST`` kwargs."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path], {}
    path = Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"strategy {name_or_path!r} is neither a built-in ({', '.join(BUILTIN)}) nor a file")
    spec = importlib.util.spec_from_file_location(f"nbtrade_user_strategy_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot load strategy file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    kwargs = getattr(module, "BACKTEST", {}) or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"BACKTEST in {path} must be a dict of backtest() keyword arguments")
    fn = getattr(module, "strategy", None)
    cls = _strategy_class(module, fn, path)
    if cls is not None:
        return ClassStrategy(cls, kwargs), dict(kwargs)
    if not callable(fn):
        raise ValueError(f"strategy file {path} must define a function strategy(data) or a subclass of "
                         f"nbtrade.Strategy")
    return fn, dict(kwargs)


def _strategy_class(module: Any, fn: Any, path: Path) -> type | None:
    """The file's class-API strategy: ``strategy`` when it is a Strategy subclass, else the one
    subclass the file defines (None when it defines none, or defines a ``strategy`` function)."""
    from .engine.classapi import Strategy as ClassAPI

    def is_subclass(x: Any) -> bool:
        return isinstance(x, type) and issubclass(x, ClassAPI) and x is not ClassAPI

    if is_subclass(fn):
        return fn
    if fn is not None:
        return None
    found = [v for v in vars(module).values() if is_subclass(v) and v.__module__ == module.__name__]
    if len(found) > 1:
        raise ValueError(f"strategy file {path} defines {len(found)} Strategy subclasses "
                         f"({', '.join(c.__name__ for c in found)}): name the one to run with "
                         f"`strategy = {found[0].__name__}`")
    return found[0] if found else None
