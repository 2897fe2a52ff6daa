"""Built-in signal strategies and loading a user's strategy file.

A strategy is a callable ``strategy(data) -> dict`` taking ``{symbol: OHLCV
DataFrame}`` and returning boolean DataFrames (bars x symbols) under any of
``entries, exits, short_entries, short_exits``. The signal at bar ``t`` may use
bars up to ``t`` only; the engine fills it at ``t + 1``'s open by default.
A strategy file is a Python file defining ``strategy(data)`` and, optionally,
``BACKTEST = {...}`` keyword arguments for :func:`nbtrade.backtesting.backtest`.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd

Strategy = Callable[[Mapping[str, pd.DataFrame]], dict[str, pd.DataFrame]]


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


BUILTIN: dict[str, Strategy] = {"ema_cross": ema_cross, "sma_cross": sma_cross, "rsi_reversion": rsi_reversion}


def load_strategy(name_or_path: str) -> tuple[Strategy, dict[str, Any]]:
    """A built-in strategy by name, or ``strategy`` (and ``BACKTEST`` kwargs) from a Python file."""
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
    fn = getattr(module, "strategy", None)
    if not callable(fn):
        raise ValueError(f"strategy file {path} must define a function strategy(data)")
    kwargs = getattr(module, "BACKTEST", {}) or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"BACKTEST in {path} must be a dict of backtest() keyword arguments")
    return fn, dict(kwargs)
