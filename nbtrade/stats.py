"""Old name of :mod:`nbtrade.rolling` (rolling statistics, returns, batched moving averages).

The module was renamed because ``stats`` read like ``Result.stats()``. Everything
importable from here before still is (``nbtrade.stats.rolling_mean``,
``from nbtrade.stats import ema_many``); new code should import :mod:`nbtrade.rolling`.
"""
from __future__ import annotations

from typing import Any

from . import rolling as _rolling
from .rolling import *  # noqa: F401,F403  the public names, unchanged
from .rolling import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    # anything else the old module had (constants, helpers) comes from its new home
    return getattr(_rolling, name)


def __dir__() -> list[str]:
    return list(__all__)
