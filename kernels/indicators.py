"""The table of per-bar kernels the Python layer dispatches to: name -> (1-D kernel, 2-D kernel).

One entry per public function of :mod:`nbtrade.indicators` and :mod:`nbtrade.rolling`
whose output has the input's shape (TA-Lib indicators from ``moving`` and
``oscillators``, rolling statistics from ``rolling``, returns from ``returns``).
:func:`nbtrade._arrays.apply_kernel` looks the name up here and picks the 1-D
kernel, a column loop over it, or the parallel 2-D kernel. Batched moving averages
(``batch``: one more output axis) are called directly.

The kernels are also importable from here, as before (``from nbtrade.kernels import
indicators as K; K.ema_1d_nb``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from .moving import (copy_1d_nb, dema_1d_nb, dema_nb, ema_1d_nb, ema_nb, kama_1d_nb, kama_nb, sma_1d_nb,
                     sma_nb, tema_1d_nb, tema_nb, wma_1d_nb, wma_nb)
from .oscillators import (adx_1d_nb, adx_nb, atr_1d_nb, atr_nb, bbands_1d_nb, bbands_nb, macd_1d_nb, macd_nb,
                          obv_1d_nb, obv_nb, rsi_1d_nb, rsi_nb, stoch_1d_nb, stoch_nb, trange_1d_nb, trange_nb)
from . import moving, oscillators, returns, rolling

__all__ = [
    "KernelPair", "KERNELS",
    "copy_1d_nb", "sma_1d_nb", "sma_nb", "ema_1d_nb", "ema_nb", "wma_1d_nb", "wma_nb", "dema_1d_nb", "dema_nb",
    "tema_1d_nb", "tema_nb", "kama_1d_nb", "kama_nb", "rsi_1d_nb", "rsi_nb", "macd_1d_nb", "macd_nb",
    "bbands_1d_nb", "bbands_nb", "trange_1d_nb", "trange_nb", "atr_1d_nb", "atr_nb", "stoch_1d_nb", "stoch_nb",
    "obv_1d_nb", "obv_nb", "adx_1d_nb", "adx_nb",
]


class KernelPair(NamedTuple):
    """A 1-D kernel ``f(*inputs, *params, *outs)`` on ``(n,)`` arrays and its 2-D twin on ``(n, m)``."""

    one: Callable
    many: Callable


def _pairs(module, names: str) -> dict[str, KernelPair]:
    return {n: KernelPair(getattr(module, f"{n}_1d_nb"), getattr(module, f"{n}_nb")) for n in names.split()}


#: Every same-shape kernel by its public name.
KERNELS: dict[str, KernelPair] = {
    **_pairs(moving, "sma ema wma dema tema kama"),
    **_pairs(oscillators, "rsi macd bbands trange atr stoch obv adx"),
    **_pairs(rolling, "rolling_sum rolling_mean rolling_var rolling_std rolling_zscore rolling_min rolling_max "
                      "rolling_corr rolling_beta rolling_cov rolling_vwap rolling_moment rolling_sums"),
    **_pairs(returns, "ret"),
}
