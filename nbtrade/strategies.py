"""Former name of :mod:`nbtrade.builtin_strategies` (built-in signal strategies, ``load_strategy``), kept as
an alias: every name imports from here as before."""
from __future__ import annotations

from .builtin_strategies import (BUILTIN, ClassStrategy, SignalStrategy, ema_cross, load_strategy,  # noqa: F401
                                 rsi_reversion, sma_cross)
from .engine.alias import make_alias

#: The former name of :data:`nbtrade.builtin_strategies.SignalStrategy` (not the class API's Strategy).
Strategy = SignalStrategy

__all__ = ["BUILTIN", "ClassStrategy", "ema_cross", "load_strategy", "rsi_reversion", "sma_cross"]

make_alias(__name__, "nbtrade.builtin_strategies")
