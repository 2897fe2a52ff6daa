"""Parameter sweeps and walk-forward optimization at compiled speed, on every core or a Dask cluster.

``nbtrade.sweep(market, signals_fn, params, ...)`` runs a grid (this module is
callable: it is :func:`nbtrade.sweep.run.sweep`); ``nbtrade.sweep.sma`` / ``ema``
memoise indicators within a chunk; :func:`walk_forward_optimize` re-optimizes per
fold and trades the choice out of sample; :func:`deflated_sharpe_ratio` and
:func:`pbo_cscv` measure how much of the best result is selection luck.
"""
from __future__ import annotations

import sys
import types
from typing import Any

from .grid import MAX_COMBINATIONS, grid, parse_param
from .memo import ema, sma
from .overfit import PBO, block_stats, deflated_sharpe_ratio, expected_max_sharpe, pbo_cscv
from .result import SweepResult
from .run import sweep
from .walkforward import WalkForwardOptimizeResult, walk_forward_optimize

__all__ = ["sweep", "grid", "parse_param", "sma", "ema", "SweepResult", "walk_forward_optimize",
           "WalkForwardOptimizeResult", "deflated_sharpe_ratio", "expected_max_sharpe", "pbo_cscv", "PBO",
           "block_stats", "MAX_COMBINATIONS"]


class _CallableModule(types.ModuleType):
    """``nbtrade.sweep(...)`` calls :func:`sweep`; attributes are the module's."""

    def __call__(self, *args: Any, **kwargs: Any) -> SweepResult:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
