"""Model outputs -> engine inputs: entry/exit masks or target weights.

Causality: the probability at bar t comes from features known at the close of
bar t, so a signal at t can only be traded from the next bar on (the engine's
default fill, at the next open). Nothing here shifts data; bars without a
prediction (NaN, e.g. before the first walk-forward test bar) never enter.

Output frames are indexed by time with one boolean (or float) column per
symbol, as ``backtest(data, entries=..., exits=...)`` expects. A probability
frame indexed by ``(time, symbol)`` (a pooled panel) is unstacked to wide.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from .._names import public_dir, suggest_kwargs

__all__ = ["Signals", "proba_to_signals", "proba_to_weights", "predictions_to_signals"]


class Signals(NamedTuple):
    """Boolean DataFrames (time x symbol); short legs are None unless requested."""

    entries: pd.DataFrame
    exits: pd.DataFrame
    short_entries: pd.DataFrame | None = None
    short_exits: pd.DataFrame | None = None

    def as_kwargs(self) -> dict[str, pd.DataFrame]:
        """Keyword arguments for the engine: ``backtest(data, **signals.as_kwargs())``."""
        return {k: v for k, v in self._asdict().items() if v is not None}


def _wide(s: pd.Series, symbol: str | None) -> pd.DataFrame:
    if isinstance(s.index, pd.MultiIndex):
        out = s.unstack(level=list(range(1, s.index.nlevels)))
        out.columns.name = None
        return out
    return s.to_frame(symbol or "asset")


def _column(proba: pd.DataFrame, cls: Any, arg: str) -> pd.Series:
    if cls not in proba.columns:
        raise ValueError(f"{arg}={cls!r} is not a class of proba (classes: {list(proba.columns)})")
    return proba[cls]


def _check_threshold(value: float, arg: str) -> float:
    if not (isinstance(value, (int, float, np.floating)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{arg} must be a probability in [0, 1], got {value!r}")
    return float(value)


@suggest_kwargs
def proba_to_signals(proba: pd.DataFrame, long_threshold: float = 0.55, exit_threshold: float = 0.5,
                     short_threshold: float | None = None, short_exit_threshold: float = 0.5,
                     up_class: Any = None, down_class: Any = None, symbol: str | None = None) -> Signals:
    """Threshold class probabilities into entries and exits (with hysteresis).

    Long entry at t when ``P(up) >= long_threshold``; long exit when
    ``P(up) < exit_threshold``. With ``short_threshold``, short entry when
    ``P(down) >= short_threshold`` and short exit when ``P(down) < short_exit_threshold``.
    ``up_class``/``down_class`` default to the largest/smallest class label
    (1 and -1 for sign labels; for binary labels P(down) = 1 - P(up)).
    NaN probabilities give no entry and no exit.

    Parameters
    ----------
    proba : DataFrame, columns = classes, index = time or (time, symbol)
        E.g. ``walk_forward(...).proba``.
    symbol : column name for a single-symbol index (default ``"asset"``).
    """
    if not isinstance(proba, pd.DataFrame) or proba.shape[1] < 2:
        raise TypeError("proba must be a DataFrame with one column per class (at least two)")
    lt = _check_threshold(long_threshold, "long_threshold")
    et = _check_threshold(exit_threshold, "exit_threshold")
    if et > lt:
        raise ValueError(f"exit_threshold ({et}) must be <= long_threshold ({lt})")
    classes = sorted(proba.columns)
    up = _column(proba, classes[-1] if up_class is None else up_class, "up_class")
    known = up.notna()
    entries = _wide(known & (up >= lt), symbol)
    exits = _wide(known & (up < et), symbol)
    se = sx = None
    if short_threshold is not None:
        st = _check_threshold(short_threshold, "short_threshold")
        sxt = _check_threshold(short_exit_threshold, "short_exit_threshold")
        if sxt > st:
            raise ValueError(f"short_exit_threshold ({sxt}) must be <= short_threshold ({st})")
        down = _column(proba, classes[0] if down_class is None else down_class, "down_class")
        se = _wide(known & (down >= st), symbol)
        sx = _wide(known & (down < sxt), symbol)
    return Signals(entries.fillna(False).astype(bool), exits.fillna(False).astype(bool),
                   None if se is None else se.fillna(False).astype(bool),
                   None if sx is None else sx.fillna(False).astype(bool))


@suggest_kwargs
def proba_to_weights(proba: pd.DataFrame, up_class: Any = None, down_class: Any = None, min_edge: float = 0.05,
                     long_only: bool = False, gross: float = 1.0, symbol: str | None = None) -> pd.DataFrame:
    """Target weights from probabilities: ``w = P(up) - P(down)`` where the edge exceeds ``min_edge``.

    Weights are in [-1, 1] per symbol (>= 0 with ``long_only``), then scaled so
    the gross exposure ``sum |w|`` at each bar is at most ``gross``. Bars without
    a prediction get weight 0.
    """
    if not isinstance(proba, pd.DataFrame) or proba.shape[1] < 2:
        raise TypeError("proba must be a DataFrame with one column per class (at least two)")
    if not 0.0 <= min_edge < 1.0:
        raise ValueError(f"min_edge must be in [0, 1), got {min_edge!r}")
    if not gross > 0:
        raise ValueError(f"gross must be > 0, got {gross!r}")
    classes = sorted(proba.columns)
    up = _column(proba, classes[-1] if up_class is None else up_class, "up_class")
    down = _column(proba, classes[0] if down_class is None else down_class, "down_class")
    edge = (up - down).where(lambda e: e.abs() > min_edge, 0.0).fillna(0.0)
    if long_only:
        edge = edge.clip(lower=0.0)
    w = _wide(edge, symbol).fillna(0.0)
    total = w.abs().sum(axis=1)
    scale = np.where(total > gross, gross / total.where(total > 0, 1.0), 1.0)
    return w.mul(scale, axis=0)


@suggest_kwargs
def predictions_to_signals(predictions: pd.Series, long_class: Any = 1, short_class: Any = None,
                           symbol: str | None = None) -> Signals:
    """Entries where the predicted class is ``long_class``, exits where it is anything else (not NaN)."""
    if not isinstance(predictions, pd.Series):
        raise TypeError("predictions must be a Series (e.g. walk_forward(...).predictions)")
    known = predictions.notna()
    entries = _wide(known & (predictions == long_class), symbol)
    exits = _wide(known & (predictions != long_class), symbol)
    se = sx = None
    if short_class is not None:
        se = _wide(known & (predictions == short_class), symbol)
        sx = _wide(known & (predictions != short_class), symbol)
    return Signals(entries.fillna(False).astype(bool), exits.fillna(False).astype(bool),
                   None if se is None else se.fillna(False).astype(bool),
                   None if sx is None else sx.fillna(False).astype(bool))


__dir__ = public_dir(__all__)
