"""Research models: labels, purged walk-forward training, sliding forests, model cache, signals.

Names are loaded lazily (scikit-learn is imported only when a model is trained).
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "walk_forward": "walkforward", "WalkForwardResult": "walkforward", "default_estimator": "walkforward",
    "forward_return": "labels", "sign_label": "labels", "triple_barrier": "labels", "label_horizon": "labels",
    "ewm_volatility": "labels",
    "SlidingForest": "forest", "DriftPolicy": "forest", "psi": "forest",
    "ModelCache": "modelcache",
    "Signals": "signals", "proba_to_signals": "signals", "proba_to_weights": "signals",
    "predictions_to_signals": "signals",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrade.model' has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
