"""nbtrade: a Numba-accelerated, event-driven backtester and research pipeline for crypto.

The public API is re-exported here lazily, so ``import nbtrade`` (and the CLI)
start fast: numba, pandas and friends load on first use of what needs them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "market": "nbtrade.synthetic",
    "indicators": "nbtrade.indicators",
    "synthetic": "nbtrade.synthetic",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrade' has no attribute {name!r}")
    mod = import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
