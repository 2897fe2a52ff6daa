"""Sweep-native built-in strategies: ``nbtrade.strategies``' ``sma_cross``/``ema_cross`` as signal
functions of a sweep (arrays in, one compiled pass).

``sma_cross`` forms both averages as running sums inside its crossing pass
(``kernels.sweep.sma_cross_rows_nb``): no indicator array is stored, so a combination's working set
is its two bool signal arrays (a quarter of the float64 close), whatever the grid; recomputing the
two sums costs about what reading two stored averages would. ``ema_cross`` uses the memoised EMAs
(:mod:`nbtrade.sweep.memo`)."""
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
    """``nbtrade.strategies.sma_cross`` as a sweep signal function (same signals): ``(entries, exits)``,
    bool arrays shaped like the close ``(n_bars, n_symbols)``, from one pass over the close."""
    return sma_cross_into(market, fast, slow)


def sma_cross_into(market: Any, fast: int = 10, slow: int = 50,
                   out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sma_cross` written into ``out`` (two C-ordered bool arrays shaped like the 2-D close), when
    given: a sweep's chunk reuses one pair per thread instead of faulting in fresh pages per combination."""
    from .._arrays import check_period
    from ..kernels.sweep import sma_cross_clean_nb, sma_cross_rows_nb
    from ..panel import Market
    from .memo import _as_float, _source

    fast = check_period(fast, "fast", 1)
    slow = check_period(slow, "slow", 1)
    a = _as_float(_source(market))
    x = np.ascontiguousarray(a if a.ndim == 2 else a[:, None])
    if out is not None and a.ndim == 2 and out[0].shape == x.shape:
        entries, exits = out
    else:
        entries, exits = np.empty(x.shape, dtype=np.bool_), np.empty(x.shape, dtype=np.bool_)
    # a Market holds no inf (validated): no NaN close means every value is finite
    clean = market.n_missing == 0 if isinstance(market, Market) else bool(np.isfinite(x).all())
    (sma_cross_clean_nb if clean else sma_cross_rows_nb)(x, fast, slow, entries, exits)
    return (entries, exits) if a.ndim == 2 else (entries[:, 0], exits[:, 0])


def ema_cross(market: Any, fast: int = 12, slow: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``nbtrade.strategies.ema_cross`` as a sweep signal function (same signals)."""
    from .memo import ema

    return _crossings(ema(market, fast), ema(market, slow))


NATIVE: dict[str, Callable] = {"sma_cross": sma_cross, "ema_cross": ema_cross}
