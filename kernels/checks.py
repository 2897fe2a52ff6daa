"""Former name of :mod:`nbtrade.kernels.input_checks` (one-pass checks of prices and signals), kept so that
old imports work."""
from __future__ import annotations

from .input_checks import (INCONSISTENT, NOT_FINITE, NOT_POSITIVE, OK, check_blocks_nb, check_close_nb,  # noqa: F401
                           check_ohlc_nb, first_below_nb, signal_stats_nb)
