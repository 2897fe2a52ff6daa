"""How much history an indicator needs: its warm-up and its settling length.

Every indicator declares a :class:`Lookback`. The feature cache and the engine
use it to load just enough history before a window, and tests check that values
past ``settle`` do not change when more history is loaded.
"""
from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ["Lookback", "decay_bars", "SETTLE_TOLERANCE"]

from ._names import public_dir

#: Relative influence of the starting point below which a recursive value counts as settled.
SETTLE_TOLERANCE = 1e-12


class Lookback(NamedTuple):
    """History requirements of an indicator, in bars.

    warmup : int
        Leading outputs that are NaN (TA-Lib's ``lookback``): output ``t`` is
        defined from ``t = warmup`` on.
    settle : int
        Bars of history after which a value no longer depends on where the input
        started (within ``SETTLE_TOLERANCE`` relative). Equals ``warmup`` for
        windowed indicators (SMA, rolling stats); larger for recursive ones
        (EMA, RSI, ATR, ADX), like TA-Lib's unstable period.
    """

    warmup: int
    settle: int


def decay_bars(alpha: float, tol: float = SETTLE_TOLERANCE) -> int:
    """Bars after which a weight ``(1 - alpha) ** k`` falls below ``tol``."""
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"alpha must be in (0, 1], got {alpha}")
    if alpha == 1.0:
        return 0
    # log1p: for tiny alpha (periods near 2**32) log(1 - alpha) rounds to 0
    return int(math.ceil(math.log(tol) / math.log1p(-alpha)))


__dir__ = public_dir(__all__)
