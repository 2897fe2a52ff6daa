"""Technical indicators with TA-Lib's names, defaults and values, on numba kernels.

Every function takes numpy arrays (any real dtype, any contiguity; converted
once to float64) or pandas Series/DataFrames. A 2-D input is ``time x symbols``:
columns run in parallel and a DataFrame comes back with the same index and
columns. Results equal TA-Lib's (same warm-up NaNs, same seeding) within 1e-9
relative; for MACD, whose values cross zero, within 1e-12 of the price level.
Recursions are written as fused multiply-adds (like TA-Lib 0.8's FMA builds),
so the last bits can differ from an older TA-Lib.

Conventions shared by all functions
-----------------------------------
Causality
    The value at bar ``t`` uses bars up to ``t`` only.
Missing values (NaN policy)
    NaN and +-inf are both missing values (one rule for every indicator, the
    rolling statistics and the batched averages, as pandas' rolling treats inf):
    a missing value in any input *restarts* the indicator: the output is NaN at that bar
    and through a fresh warm-up after it, exactly as if the series began right
    after the NaN. So leading NaNs are skipped as TA-Lib does (the warm-up
    starts at the first valid bar), and an inner NaN never poisons the rest of
    the series (TA-Lib propagates it forever). For windowed indicators (SMA,
    WMA, BBANDS, STOCH, TRANGE) this is the same as "NaN while the NaN is in the
    window"; recursive ones (EMA, DEMA, TEMA, KAMA, RSI, MACD, ATR, ADX) are
    re-seeded, and OBV restarts its running total.
Input checks
    Where a function takes both ``high`` and ``low`` (TRANGE, ATR, STOCH, ADX),
    ``high < low`` on any bar is an error naming the bar (swapped arguments are
    the usual cause). A 2-D numpy array is time x symbols, so a ``(1, n)`` array
    (one bar of n symbols) is refused with the two ways to say what was meant;
    a one-row DataFrame is accepted. Periods are integers in
    ``[minimum, 2**32]`` (``nbtrade._arrays.MAX_PERIOD``); errors name the parameter
    and the range. Unknown keyword arguments get "did you mean" (``period=`` ->
    ``timeperiod=``).
Lookback
    :func:`lookback` gives each indicator's :class:`~nbtrade.lookback.Lookback`:
    ``warmup`` leading NaNs and ``settle`` bars after which values no longer
    depend on where the data started.
Zero tests
    Where TA-Lib treats ``|v| < 1e-14`` as zero (RSI, KAMA, ADX, BBANDS), the
    kernels test ``v == 0`` exactly, so micro-priced assets keep correct
    values (any power-of-two rescale of the prices gives the same RSI); on
    ordinary prices the results are the same.
Numerics
    Windowed sums are O(1) per bar and do not drift: BBANDS keeps its sums
    around a shift reset to the window mean every window (exact for flat
    windows, no ``E[x^2] - mean^2`` cancellation at large prices) and WMA
    recomputes its sums every ``16 * timeperiod`` bars.
"""
from __future__ import annotations

import inspect
import math
import sys
from numbers import Real
from typing import Any, Callable

import numpy as np

from ._arrays import apply_kernel, check_period
from ._names import check_kwargs, did_you_mean, public_dir, suggest_kwargs
from .lookback import Lookback, decay_bars

__all__ = [
    "sma", "ema", "wma", "dema", "tema", "kama", "rsi", "macd", "bbands", "trange", "atr", "stoch", "obv",
    "adx", "lookback", "NEVER_SETTLES",
    # rolling statistics, returns and batched moving averages live in nbtrade.rolling, re-exported here
    "rolling_sum", "rolling_mean", "rolling_var", "rolling_std", "rolling_min", "rolling_max", "rolling_zscore",
    "rolling_corr", "rolling_beta", "rolling_cov", "rolling_vwap", "ret", "ema_many", "sma_many",
]

#: ``Lookback.settle`` of indicators whose values never stop depending on the
#: first bar (OBV is a running total): load the whole history.
NEVER_SETTLES = sys.maxsize


def _unary(name: str, x: Any, out: np.ndarray | None, args: tuple) -> Any:
    return apply_kernel(name, [("close", x)], args, out=out, fn=name)


def _n_bars(x: Any) -> int:
    try:
        return len(x)
    except TypeError:  # not a sequence: the conversion names the problem
        return 0


def _hlc(name: str, high: Any, low: Any, close: Any, args: tuple, out: np.ndarray | None = None, n_out: int = 1,
         out_names: tuple[str, ...] | None = None) -> Any:
    return apply_kernel(name, [("high", high), ("low", low), ("close", close)], args, n_out=n_out, out=out,
                        out_names=out_names, fn=name)


def _check_matype(value: Any, name: str) -> None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value != 0:
        raise ValueError(f"{name}={value} is not supported: only 0 (SMA) is implemented")


def _check_real(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


# ------------------------------------------------------------------ moving averages
@suggest_kwargs
def sma(close: Any, timeperiod: int = 30, *, out: np.ndarray | None = None) -> Any:
    """Simple moving average (TA-Lib ``SMA``).

    ``sma_t = mean(close[t-timeperiod+1 .. t])``.

    Parameters
    ----------
    close : array-like or Series/DataFrame, prices (quote currency); 1-D or time x symbols.
    timeperiod : int >= 1, bars in the window.
    out : optional float64 array of the input's shape to write into.

    Returns
    -------
    Same shape and type as ``close``, float64, price units.

    Warm-up: the first ``timeperiod - 1`` values are NaN. Causal: ``sma_t`` uses
    bars up to ``t``. NaN: NaN while a NaN is inside the window, then recovers.
    Equals ``close.rolling(timeperiod).mean()`` on NaN-free data.

    >>> sma(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), timeperiod=3)
    array([nan, nan,  2.,  3.,  4.])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _unary("sma", close, out, (p,))


@suggest_kwargs
def ema(close: Any, timeperiod: int = 30, seed: str = "sma", *, out: np.ndarray | None = None) -> Any:
    """Exponential moving average (TA-Lib ``EMA``).

    ``ema_t = ema_{t-1} + k * (close_t - ema_{t-1})`` with ``k = 2 / (timeperiod + 1)``.

    Parameters
    ----------
    close : array-like or Series/DataFrame, prices; 1-D or time x symbols.
    timeperiod : int >= 1, span of the average.
    seed : ``"sma"`` (default, TA-Lib): the first value is the SMA of the first
        ``timeperiod`` bars, so the first ``timeperiod - 1`` values are NaN.
        ``"first"``: seeded with the first bar, no warm-up; equals pandas
        ``close.ewm(span=timeperiod, adjust=False).mean()``.
    out : optional float64 array to write into.

    Recursive: a value depends on all earlier bars, with weight ``(1-k)**age``;
    ``lookback("ema", ...).settle`` says when the seed no longer matters. Causal.
    NaN: re-seeded after a NaN (see module docstring).

    >>> ema(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), timeperiod=3)
    array([nan, nan,  2.,  3.,  4.])
    >>> ema(np.array([1.0, 2.0, 3.0]), timeperiod=3, seed="first")
    array([1.  , 1.5 , 2.25])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    if seed not in ("sma", "first"):
        raise ValueError(f"seed must be 'sma' or 'first', got {seed!r}")
    return _unary("ema", close, out, (p, seed == "first"))


@suggest_kwargs
def wma(close: Any, timeperiod: int = 30, *, out: np.ndarray | None = None) -> Any:
    """Linearly weighted moving average (TA-Lib ``WMA``).

    ``wma_t = sum(w_i * close_{t-p+i}) / sum(w_i)`` with weights ``w_i = i`` for
    ``i = 1..p`` (the newest bar weighs most). Warm-up ``timeperiod - 1`` NaNs;
    ``timeperiod=1`` returns the input. Causal; NaN while a NaN is in the window.

    >>> wma(np.array([1.0, 2.0, 3.0, 4.0]), timeperiod=3)
    array([       nan,        nan, 2.33333333, 3.33333333])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _unary("wma", close, out, (p,))


@suggest_kwargs
def dema(close: Any, timeperiod: int = 30, *, out: np.ndarray | None = None) -> Any:
    """Double exponential moving average (TA-Lib ``DEMA``).

    ``dema = 2 * EMA(close) - EMA(EMA(close))``; each EMA stage is seeded with the
    SMA of its first ``timeperiod`` inputs as TA-Lib, so the warm-up is
    ``2 * (timeperiod - 1)`` NaNs. Recursive, causal; re-seeded after a NaN.

    >>> dema(np.arange(1.0, 7.0), timeperiod=3)
    array([nan, nan, nan, nan,  5.,  6.])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _unary("dema", close, out, (p,))


@suggest_kwargs
def tema(close: Any, timeperiod: int = 30, *, out: np.ndarray | None = None) -> Any:
    """Triple exponential moving average (TA-Lib ``TEMA``).

    ``tema = 3*e1 - 3*e2 + e3`` with ``e1 = EMA(close)``, ``e2 = EMA(e1)``,
    ``e3 = EMA(e2)``, each stage SMA-seeded; warm-up ``3 * (timeperiod - 1)``
    NaNs. Recursive, causal; re-seeded after a NaN.

    >>> tema(np.arange(1.0, 9.0), timeperiod=3)
    array([nan, nan, nan, nan, nan, nan,  7.,  8.])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _unary("tema", close, out, (p,))


@suggest_kwargs
def kama(close: Any, timeperiod: int = 30, *, out: np.ndarray | None = None) -> Any:
    """Kaufman adaptive moving average (TA-Lib ``KAMA``, fast 2, slow 30).

    Efficiency ratio ``er = |close_t - close_{t-p}| / sum(|close_i - close_{i-1}|)``
    over ``p = timeperiod`` changes (1 for a flat window), smoothing
    ``sc = (er * (2/3 - 2/31) + 2/31) ** 2``, ``kama_t = kama_{t-1} + sc * (close_t - kama_{t-1})``,
    seeded with ``close_{p-1}``. Warm-up ``timeperiod`` NaNs (``timeperiod=1``
    returns the input). Recursive with a smoothing of at least ``(2/31)**2``, so
    it settles slowly (see :func:`lookback`). Causal; re-seeded after a NaN.

    >>> kama(np.array([1.0, 2.0, 3.0, 4.0]), timeperiod=2)
    array([       nan,        nan, 2.44444444, 3.13580247])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _unary("kama", close, out, (p,))


# ------------------------------------------------------------------ oscillators
@suggest_kwargs
def rsi(close: Any, timeperiod: int = 14, *, out: np.ndarray | None = None) -> Any:
    """Relative strength index with Wilder's smoothing (TA-Lib ``RSI``), 0..100.

    Average gain ``G`` and loss ``L`` start as plain means of the first
    ``timeperiod`` changes, then ``G = (G * (p - 1) + gain) / p`` (Wilder, i.e. an
    EMA with ``alpha = 1/p``); ``rsi = 100 * G / (G + L)``, 0 when both are 0.
    Warm-up ``timeperiod`` NaNs. Recursive, causal; re-seeded after a NaN.
    Charting tools that seed differently (e.g. with the first change) disagree
    for the first few hundred bars; see :func:`lookback`.

    >>> rsi(np.array([1.0, 2.0, 1.5, 2.5, 3.0]), timeperiod=2)
    array([        nan,         nan, 66.66666667, 85.71428571, 90.90909091])
    """
    p = check_period(timeperiod, "timeperiod", 2)
    return _unary("rsi", close, out, (p,))


@suggest_kwargs
def macd(close: Any, fastperiod: int = 12, slowperiod: int = 26, signalperiod: int = 9) -> tuple[Any, Any, Any]:
    """Moving average convergence/divergence (TA-Lib ``MACD``).

    ``macd = EMA_fast(close) - EMA_slow(close)``, ``signal = EMA_signal(macd)``,
    ``hist = macd - signal`` (price units). TA-Lib's seeding: the slow EMA is
    seeded with the SMA of bars ``0..slow-1`` and the fast EMA with the SMA of
    bars ``slow-fast..slow-1``, so both seeds end on the same bar (this is *not*
    the difference of two independently seeded EMAs); the signal is seeded with
    the SMA of its first ``signalperiod`` inputs. All three outputs have the
    warm-up ``slowperiod + signalperiod - 2`` NaNs. If ``slowperiod < fastperiod``
    the two are swapped, as TA-Lib does. Recursive, causal; re-seeded after a NaN.

    Returns
    -------
    (macd, signal, hist), each shaped like ``close``.

    >>> m, s, h = macd(np.arange(1.0, 9.0), fastperiod=2, slowperiod=3, signalperiod=2)
    >>> m
    array([nan, nan, nan, 0.5, 0.5, 0.5, 0.5, 0.5])
    """
    f = check_period(fastperiod, "fastperiod", 2)
    s = check_period(slowperiod, "slowperiod", 2)
    g = check_period(signalperiod, "signalperiod", 1)
    if s < f:
        f, s = s, f
    return apply_kernel("macd", [("close", close)], (f, s, g), n_out=3, out_names=("macd", "macdsignal", "macdhist"),
                        fn="macd")


@suggest_kwargs
def bbands(close: Any, timeperiod: int = 5, nbdevup: float = 2.0, nbdevdn: float = 2.0,
           matype: int = 0) -> tuple[Any, Any, Any]:
    """Bollinger bands on the simple moving average (TA-Lib ``BBANDS``, ``matype=0``).

    ``middle = SMA(close, timeperiod)``, ``upper = middle + nbdevup * std``,
    ``lower = middle - nbdevdn * std``, where ``std`` is the *population*
    standard deviation (ddof 0) of the same window, as TA-Lib (pandas'
    ``rolling().std()`` uses ddof 1 and gives wider bands). The deviation is
    computed around the window mean, so it is exact for flat windows and free
    of the cancellation that hits ``E[x^2] - mean^2`` at large prices. Warm-up
    ``timeperiod - 1`` NaNs. Causal; NaN while a NaN is in the window.
    ``matype`` is accepted for TA-Lib's argument order; only 0 (SMA) is supported.

    Returns
    -------
    (upper, middle, lower), each shaped like ``close``.

    >>> u, m, l = bbands(np.array([1.0, 2.0, 3.0]), timeperiod=3, nbdevup=1, nbdevdn=1)
    >>> u
    array([       nan,        nan, 2.81649658])
    """
    p = check_period(timeperiod, "timeperiod", 2)
    _check_matype(matype, "matype")
    up = _check_real(nbdevup, "nbdevup")
    dn = _check_real(nbdevdn, "nbdevdn")
    return apply_kernel("bbands", [("close", close)], (p, up, dn), n_out=3,
                        out_names=("upperband", "middleband", "lowerband"), fn="bbands")


@suggest_kwargs
def trange(high: Any, low: Any, close: Any, *, out: np.ndarray | None = None) -> Any:
    """True range (TA-Lib ``TRANGE``): ``max(high - low, |high - close_prev|, |low - close_prev|)``.

    Warm-up 1 NaN (needs the previous close). Causal.

    >>> trange(np.array([2.0, 3.0]), np.array([1.0, 2.5]), np.array([1.5, 2.8]))
    array([nan, 1.5])
    """
    return _hlc("trange", high, low, close, (), out)


@suggest_kwargs
def atr(high: Any, low: Any, close: Any, timeperiod: int = 14, *, out: np.ndarray | None = None) -> Any:
    """Average true range with Wilder's smoothing (TA-Lib ``ATR``), price units.

    Seeded with the mean of the first ``timeperiod`` true ranges, then
    ``atr = (atr * (p - 1) + tr) / p``. Warm-up ``timeperiod`` NaNs
    (``timeperiod=1`` gives :func:`trange`). Recursive, causal; re-seeded after a NaN.

    >>> atr(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.5, 3.5]), timeperiod=2)
    array([nan, nan, 1.5])
    """
    p = check_period(timeperiod, "timeperiod", 1)
    return _hlc("atr", high, low, close, (p,), out)


@suggest_kwargs
def stoch(high: Any, low: Any, close: Any, fastk_period: int = 5, slowk_period: int = 3, slowk_matype: int = 0,
          slowd_period: int = 3, slowd_matype: int = 0) -> tuple[Any, Any]:
    """Slow stochastic oscillator (TA-Lib ``STOCH`` with SMA smoothing), 0..100.

    ``fastk = 100 * (close - LL) / (HH - LL)`` over ``fastk_period`` bars (0 when
    ``HH == LL``), ``slowk = SMA(fastk, slowk_period)``,
    ``slowd = SMA(slowk, slowd_period)``. Warm-up
    ``fastk_period + slowk_period + slowd_period - 3`` NaNs. Windowed, causal;
    NaN while a NaN is inside any of the windows.

    Returns
    -------
    (slowk, slowd), each shaped like ``close``.

    >>> k, d = stoch(np.array([2.0, 3.0, 4.0]), np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.5, 3.5]), 2, 1, 0, 1)
    >>> k
    array([nan, 75., 75.])
    """
    pk = check_period(fastk_period, "fastk_period", 1)
    ps = check_period(slowk_period, "slowk_period", 1)
    pd_ = check_period(slowd_period, "slowd_period", 1)
    _check_matype(slowk_matype, "slowk_matype")
    _check_matype(slowd_matype, "slowd_matype")
    # the kernel keeps rings of slowk_period and slowd_period values: past the data's
    # length no value completes either way, so longer periods are clamped (same all-NaN result)
    n = _n_bars(close)
    return _hlc("stoch", high, low, close, (pk, min(ps, n + 1), min(pd_, n + 1)), n_out=2,
                out_names=("slowk", "slowd"))


@suggest_kwargs
def obv(close: Any, volume: Any, *, out: np.ndarray | None = None) -> Any:
    """On-balance volume (TA-Lib ``OBV``), base-currency units.

    Starts at the first bar's volume, then adds the bar's volume when the close
    rises and subtracts it when it falls. No warm-up. A running total: its level
    depends on where the data starts (``lookback("obv").settle`` is
    :data:`NEVER_SETTLES`); after a NaN it restarts from that bar's volume.

    >>> obv(np.array([1.0, 2.0, 1.5, 1.5]), np.array([10.0, 3.0, 4.0, 5.0]))
    array([10., 13.,  9.,  9.])
    """
    return apply_kernel("obv", [("close", close), ("volume", volume)], (), out=out, fn="obv")


@suggest_kwargs
def adx(high: Any, low: Any, close: Any, timeperiod: int = 14, *, out: np.ndarray | None = None) -> Any:
    """Average directional movement index with Wilder's smoothing (TA-Lib ``ADX``), 0..100.

    ``+DM``/``-DM`` and the true range are summed over the first ``p - 1``
    changes, then Wilder-smoothed (``s = s - s/p + new``); ``DI = 100 * DM / TR``,
    ``DX = 100 * |+DI - -DI| / (+DI + -DI)``. The first ADX is the mean of the
    first ``p`` DX values, then ``adx = (adx * (p - 1) + dx) / p``; a bar with
    zero range or no directional movement leaves it unchanged. Warm-up
    ``2 * timeperiod - 1`` NaNs. Recursive, causal; re-seeded after a NaN.

    >>> h = np.array([1.0, 2.0, 3.0, 2.5, 4.0])
    >>> adx(h + 0.5, h - 0.5, h, timeperiod=2)
    array([        nan,         nan,         nan, 60.        , 68.23529412])
    """
    p = check_period(timeperiod, "timeperiod", 2)
    return _hlc("adx", high, low, close, (p,), out)


# ------------------------------------------------------------------ lookbacks
def _ema_settle(alpha: float, stages: int = 1) -> int:
    # a cascade of EMAs forgets its start like m**(stages-1) * (1-alpha)**m: the
    # polynomial factor is covered by waiting `stages` times the single-stage time
    return stages * decay_bars(alpha)


def _lb_sma(timeperiod: int = 30) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    return Lookback(p - 1, p - 1)


def _lb_ema(timeperiod: int = 30, seed: str = "sma") -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    if seed not in ("sma", "first"):
        raise ValueError(f"seed must be 'sma' or 'first', got {seed!r}")
    warm = p - 1 if seed == "sma" else 0
    return Lookback(warm, warm + _ema_settle(2.0 / (p + 1)))


def _lb_wma(timeperiod: int = 30) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    return Lookback(p - 1, p - 1)


def _lb_dema(timeperiod: int = 30) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    warm = 2 * (p - 1)
    return Lookback(warm, warm + _ema_settle(2.0 / (p + 1), 2))


def _lb_tema(timeperiod: int = 30) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    warm = 3 * (p - 1)
    return Lookback(warm, warm + _ema_settle(2.0 / (p + 1), 3))


def _lb_kama(timeperiod: int = 30) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    if p == 1:
        return Lookback(0, 0)
    return Lookback(p, p + decay_bars((2.0 / 31.0) ** 2))


def _lb_rsi(timeperiod: int = 14) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 2)
    return Lookback(p, p + decay_bars(1.0 / p))


def _lb_macd(fastperiod: int = 12, slowperiod: int = 26, signalperiod: int = 9) -> Lookback:
    f = check_period(fastperiod, "fastperiod", 2)
    s = check_period(slowperiod, "slowperiod", 2)
    g = check_period(signalperiod, "signalperiod", 1)
    f, s = min(f, s), max(f, s)
    warm = s + g - 2
    return Lookback(warm, warm + _ema_settle(min(2.0 / (s + 1), 2.0 / (g + 1)), 2))


def _lb_bbands(timeperiod: int = 5, nbdevup: float = 2.0, nbdevdn: float = 2.0, matype: int = 0) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 2)
    return Lookback(p - 1, p - 1)


def _lb_trange() -> Lookback:
    return Lookback(1, 1)


def _lb_atr(timeperiod: int = 14) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 1)
    if p == 1:
        return Lookback(1, 1)
    return Lookback(p, p + decay_bars(1.0 / p))


def _lb_stoch(fastk_period: int = 5, slowk_period: int = 3, slowk_matype: int = 0, slowd_period: int = 3,
              slowd_matype: int = 0) -> Lookback:
    pk = check_period(fastk_period, "fastk_period", 1)
    ps = check_period(slowk_period, "slowk_period", 1)
    pd_ = check_period(slowd_period, "slowd_period", 1)
    warm = pk + ps + pd_ - 3
    return Lookback(warm, warm)


def _lb_obv() -> Lookback:
    return Lookback(0, NEVER_SETTLES)


def _lb_adx(timeperiod: int = 14) -> Lookback:
    p = check_period(timeperiod, "timeperiod", 2)
    warm = 2 * p - 1
    return Lookback(warm, warm + _ema_settle(1.0 / p, 2))


_LOOKBACKS: dict[str, Callable[..., Lookback]] = {
    "sma": _lb_sma, "ema": _lb_ema, "wma": _lb_wma, "dema": _lb_dema, "tema": _lb_tema, "kama": _lb_kama,
    "rsi": _lb_rsi, "macd": _lb_macd, "bbands": _lb_bbands, "trange": _lb_trange, "atr": _lb_atr,
    "stoch": _lb_stoch, "obv": _lb_obv, "adx": _lb_adx,
}


def lookback(name: str, **params: Any) -> Lookback:
    """History an indicator needs, for the parameters of its public function.

    ``warmup`` is the number of leading NaNs (TA-Lib's lookback); ``settle`` the
    bars after which a value no longer depends on where the input started
    (within ``nbtrade.lookback.SETTLE_TOLERANCE``): the warm-up for windowed
    indicators, plus the decay time of the seed for recursive ones.

    >>> lookback("sma", timeperiod=20)
    Lookback(warmup=19, settle=19)
    >>> lookback("rsi").warmup
    14
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be an indicator's name (a str such as 'ema'), got {type(name).__name__}")
    key = name.lower()
    fn = _LOOKBACKS.get(key)
    if fn is None:
        if key in _rolling.__all__:
            return _rolling.lookback(key, **params)
        known = [*_LOOKBACKS, *(n for n in _rolling.__all__ if n != "lookback")]
        hint = did_you_mean(key, known)
        raise ValueError(f"unknown indicator {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
                         + f" Known: {', '.join(known)}")
    check_kwargs(f"lookback({name!r})", params, inspect.signature(fn).parameters)
    return fn(**params)


from . import rolling as _rolling  # noqa: E402
from .rolling import (  # noqa: E402,F401  re-exported: one namespace for every indicator
    ema_many, ret, rolling_beta, rolling_corr, rolling_cov, rolling_max, rolling_mean, rolling_min, rolling_std,
    rolling_sum, rolling_var, rolling_vwap, rolling_zscore, sma_many,
)

__dir__ = public_dir(__all__)
