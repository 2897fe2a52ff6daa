"""The sweep's call into the engine: validated once per sweep, then only the signals change.

``nbtrade.backtest`` validates and converts every option on each call and builds a
``Result``: ~1 ms of Python per call, holding the GIL, which on threads serialises what the
engine kernel (``nogil``) would run side by side. :class:`ConfigEngine` validates the options
once into the engine's run configuration (``nbtrade.engine.RunConfig``) and calls
``run_signals`` per combination: every option ``backtest`` takes, bit-for-bit its results (tested).

This module and ``run._evaluate`` are the only places a sweep calls the engine.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np


class ConfigEngine:
    """One sweep's engine inputs, validated once: ``RunConfig.build`` once, ``run_signals`` per combination."""

    def __init__(self, market: Any, options: Mapping[str, Any]):
        from ..engine import RunConfig, run_signals

        self._run = run_signals
        self.market = market
        self.cfg = RunConfig.build(market, "signals", **options)

    @classmethod
    def build(cls, market: Any, options: Mapping[str, Any]) -> "ConfigEngine":
        return cls(market, options)

    def run(self, signals: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(equity, orders, trades)`` of one combination: ``(n_bars,)`` float64 and the used records."""
        res = self._run(self.market, self.cfg, **signals)
        return res.equity.to_numpy(), res.order_records, res.trade_records
