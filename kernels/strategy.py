"""Former name of :mod:`nbtrade.kernels.python_next` (the compiled ``on_bar`` calling a class-API Python
``next``), kept so that old imports work."""
from __future__ import annotations

from .python_next import python_next_nb  # noqa: F401
