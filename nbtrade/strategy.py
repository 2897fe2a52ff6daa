"""Former home of the class API (``Strategy``, ``Backtest``, ``crossover``), now
:mod:`nbtrade.engine.classapi` (kept as an alias: every name imports from here as before)."""
from __future__ import annotations

from .engine.alias import make_alias
from .engine.classapi import Backtest, Strategy, crossover  # noqa: F401

__all__ = ["Strategy", "Backtest", "crossover"]

make_alias(__name__, "nbtrade.engine.classapi")
