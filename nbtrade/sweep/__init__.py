"""Parameter sweeps and walk-forward optimization at compiled speed, on every core or a Dask cluster.

``nbtrade.sweep(market, signals_fn, params, ...)`` runs a grid (this module is
callable: it is :func:`nbtrade.sweep.run.sweep`); ``nbtrade.sweep.sma`` / ``ema``
memoise indicators within a chunk; :func:`walk_forward_optimize` re-optimizes per
fold and trades the choice out of sample; :func:`deflated_sharpe_ratio` and
:func:`pbo_cscv` measure how much of the best result is selection luck.

Names load lazily (the CLI imports the ``sweep`` command's parser without pandas or numba).
"""
from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

# numpy-only modules, bound eagerly (``grid`` names the function, not its submodule)
from .grid import MAX_COMBINATIONS, grid, parse_param
from .memo import ema, sma
from .overfit import PBO, block_stats, deflated_sharpe_ratio, expected_max_sharpe, pbo_cscv

# pandas-facing ones, loaded on first use
_EXPORTS = {"sweep": "run", "SweepResult": "result", "walk_forward_optimize": "walkforward",
            "WalkForwardOptimizeResult": "walkforward", "optimize_class": "classopt"}

__all__ = sorted([*_EXPORTS, "MAX_COMBINATIONS", "grid", "parse_param", "ema", "sma", "PBO", "block_stats",
                  "deflated_sharpe_ratio", "expected_max_sharpe", "pbo_cscv"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrade.sweep' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


class _CallableModule(types.ModuleType):
    """``nbtrade.sweep(...)`` calls :func:`nbtrade.sweep.run.sweep`; attributes are the module's."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from .run import sweep

        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
