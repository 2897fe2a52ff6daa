"""Former home of the backtest front ends, now :mod:`nbtrade.engine` (kept as an alias: every name,
``backtest``, ``backtest_weights``, ``backtest_callback``, ``prepare``, ``RejectedOrdersWarning``...,
imports from here as before). The fill rules are documented in :mod:`nbtrade.engine`."""
from __future__ import annotations

from .engine import (Inputs, RejectedOrdersWarning, backtest, backtest_callback, backtest_weights,  # noqa: F401
                     prepare, prepare_data)
from .engine.alias import make_alias

__all__ = ["backtest", "backtest_weights", "backtest_callback", "prepare", "prepare_data", "Inputs",
           "RejectedOrdersWarning"]
__doc__ = __doc__ + "\n" + (__import__("nbtrade.engine", fromlist=["_"]).__doc__ or "")

make_alias(__name__, "nbtrade.engine.signals", "nbtrade.engine.callback", "nbtrade.engine.weights",
           "nbtrade.engine.run", "nbtrade.engine.options")
