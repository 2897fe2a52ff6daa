"""TA-Lib-exact indicator kernels: one import point for ``moving`` and ``oscillators``."""
from __future__ import annotations

from .moving import (copy_1d_nb, dema_1d_nb, dema_nb, ema_1d_nb, ema_nb, kama_1d_nb, kama_nb, sma_1d_nb,
                     sma_nb, tema_1d_nb, tema_nb, wma_1d_nb, wma_nb)
from .oscillators import (adx_1d_nb, adx_nb, atr_1d_nb, atr_nb, bbands_1d_nb, bbands_nb, macd_1d_nb, macd_nb,
                          obv_1d_nb, obv_nb, rsi_1d_nb, rsi_nb, stoch_1d_nb, stoch_nb, trange_1d_nb, trange_nb)

__all__ = [
    "copy_1d_nb", "sma_1d_nb", "sma_nb", "ema_1d_nb", "ema_nb", "wma_1d_nb", "wma_nb", "dema_1d_nb", "dema_nb",
    "tema_1d_nb", "tema_nb", "kama_1d_nb", "kama_nb", "rsi_1d_nb", "rsi_nb", "macd_1d_nb", "macd_nb",
    "bbands_1d_nb", "bbands_nb", "trange_1d_nb", "trange_nb", "atr_1d_nb", "atr_nb", "stoch_1d_nb", "stoch_nb",
    "obv_1d_nb", "obv_nb", "adx_1d_nb", "adx_nb",
]
