"""Sweep-native built-in strategies: ``nbtrade.strategies``' ``sma_cross``/``ema_cross`` as signal
functions of a sweep (indicators memoised per value, arrays in, one compiled crossing pass)."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np


def _crossings(f: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The built-in strategies' rule: enter when fast crosses above slow (both defined), exit below
    (one compiled pass, ``kernels.sweep.crossings_nb``; GIL released)."""
    from ..kernels.sweep import crossings_nb

    f2, s2 = (f, s) if f.ndim == 2 else (f[:, None], s[:, None])
    entries, exits = np.empty(f2.shape, dtype=np.bool_), np.empty(f2.shape, dtype=np.bool_)
    crossings_nb(np.ascontiguousarray(f2), np.ascontiguousarray(s2), entries, exits)
    return (entries, exits) if f.ndim == 2 else (entries[:, 0], exits[:, 0])


def sma_cross(market: Any, fast: int = 10, slow: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``nbtrade.strategies.sma_cross`` as a sweep signal function (same signals)."""
    from .memo import sma

    return _crossings(sma(market, fast), sma(market, slow))


def ema_cross(market: Any, fast: int = 12, slow: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``nbtrade.strategies.ema_cross`` as a sweep signal function (same signals)."""
    from .memo import ema

    return _crossings(ema(market, fast), ema(market, slow))


NATIVE: dict[str, Callable] = {"sma_cross": sma_cross, "ema_cross": ema_cross}
