"""Rolling statistics, returns and batch moving averages on numpy or pandas input (``nbtrade.rolling``).

Every function takes ``(n_bars,)`` or ``(n_bars, n_symbols)`` input: numpy arrays
of any real dtype and layout (converted once to float64), pandas Series or
DataFrames (a DataFrame is computed column-parallel and returned with the same
index and columns), and an optional ``out`` float64 array to write into.

Conventions (pandas' ``rolling``): the window ending at bar ``t`` covers bars
``t - window + 1 .. t``; NaNs inside it are skipped and the result is NaN unless
at least ``minp`` non-NaN values remain; ``minp`` defaults to ``window``. Value
``t`` uses bars up to ``t`` only (no look-ahead). +-inf count as missing values,
as in pandas' rolling (which turns them into NaN), here and in ``ema_many``/
``sma_many``. Sums are re-summed exactly
every ``max(4096, 32 * window)`` bars, so results do not drift on long series
(see :mod:`nbtrade.kernels.rolling`). :func:`lookback` gives each function's
warm-up and settling length.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._arrays import PARALLEL_MIN_SIZE, apply_kernel, as_float_array, check_period, columns_contiguous  # noqa: F401
from ._names import check_kwargs, did_you_mean, public_dir, suggest_kwargs
from .lookback import Lookback, decay_bars

__all__ = [
    "rolling_sum", "rolling_mean", "rolling_var", "rolling_std", "rolling_min", "rolling_max",
    "rolling_zscore", "rolling_corr", "rolling_beta", "rolling_cov", "rolling_vwap", "ret",
    "ema_many", "sma_many", "lookback",
]


# --------------------------------------------------------------------------- helpers

def _window_args(window: Any, minp: Any) -> tuple[int, int]:
    window = check_period(window, "window")
    minp = window if minp is None else check_period(minp, "minp")
    if minp > window:
        raise ValueError(f"minp must be <= window ({window}), got {minp}")
    return window, minp


def _ddof(ddof: Any) -> int:
    return check_period(ddof, "ddof", minimum=0)


def _run(name: str, inputs: Sequence[tuple[str, Any]], args: tuple, out: np.ndarray | None,
         kernel: str | None = None) -> Any:
    """``kernel``: the table entry when several public functions share one compiled kernel (each
    entry point costs seconds of compile on a cold cache)."""
    return apply_kernel(kernel or name, inputs, args, out=out, fn=name)


#: modes of the shared second-moment kernel (``kernels.rolling.VAR/STD/ZSCORE``)
_VAR, _STD, _ZSCORE = 0, 1, 2


# --------------------------------------------------------------------------- rolling statistics


@suggest_kwargs
def rolling_sum(x: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling sum over ``window`` bars.

    Equals ``x.rolling(window, min_periods=minp).sum()``. Warm-up: the first
    ``minp - 1`` values are NaN. NaNs are skipped; NaN where fewer than ``minp``
    non-NaN values. Value ``t`` uses bars up to ``t``.

    >>> rolling_sum(np.array([1.0, 2.0, 3.0, 4.0]), 2)
    array([nan,  3.,  5.,  7.])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_sum", [("x", x)], (window, minp, False), out, kernel="rolling_sums")


@suggest_kwargs
def rolling_mean(x: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling mean ``sum / count`` of the non-NaN values of the window.

    Equals ``x.rolling(window, min_periods=minp).mean()`` and, with the default
    ``minp = window``, TA-Lib's ``SMA(x, window)`` on NaN-free data. Warm-up:
    ``minp - 1`` NaNs. Value ``t`` uses bars up to ``t``.

    >>> rolling_mean(np.array([1.0, 2.0, np.nan, 4.0]), 2, minp=1)
    array([1. , 1.5, 2. , 4. ])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_mean", [("x", x)], (window, minp, True), out, kernel="rolling_sums")


@suggest_kwargs
def rolling_var(x: Any, window: int, minp: int | None = None, ddof: int = 1,
                out: np.ndarray | None = None) -> Any:
    """Rolling variance ``sum((x - mean)**2) / (count - ddof)``.

    ``ddof=1`` (sample, pandas' default) or ``ddof=0`` (population, TA-Lib's VAR
    and Bollinger bands). Equals ``x.rolling(window, min_periods=minp).var(ddof=ddof)``:
    NaN where fewer than ``minp`` or at most ``ddof`` non-NaN values; exactly 0
    when they are all equal. Numerically stable (anchored sums, periodic exact
    re-summation): no drift on long series or large offsets such as 1e9 + noise.
    Warm-up: the first ``max(minp, ddof + 1) - 1`` values are NaN. Value ``t``
    uses bars up to ``t``.

    >>> rolling_var(np.array([1.0, 2.0, 4.0]), 2)
    array([nan, 0.5, 2. ])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_var", [("x", x)], (window, minp, _ddof(ddof), _VAR), out, kernel="rolling_moment")


@suggest_kwargs
def rolling_std(x: Any, window: int, minp: int | None = None, ddof: int = 1,
                out: np.ndarray | None = None) -> Any:
    """Rolling standard deviation ``sqrt(rolling_var(x, window, minp, ddof))``.

    ``ddof=1`` as pandas (TA-Lib's STDDEV uses ``ddof=0``). Equals
    ``x.rolling(window, min_periods=minp).std(ddof=ddof)``. Warm-up and NaN rules
    as :func:`rolling_var`. Value ``t`` uses bars up to ``t``.

    >>> rolling_std(np.array([1.0, 3.0, 5.0]), 2, ddof=0)
    array([nan,  1.,  1.])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_std", [("x", x)], (window, minp, _ddof(ddof), _STD), out, kernel="rolling_moment")


@suggest_kwargs
def rolling_min(x: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling minimum, O(n) whatever the window and the data (van Herk/Gil-Werman blocks).

    Equals ``x.rolling(window, min_periods=minp).min()`` (NaNs skipped). Warm-up:
    the first ``minp - 1`` values are NaN. Value ``t`` uses bars up to ``t``.

    >>> rolling_min(np.array([3.0, 1.0, 2.0, 5.0]), 2)
    array([nan,  1.,  1.,  2.])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_min", [("x", x)], (window, minp), out)


@suggest_kwargs
def rolling_max(x: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling maximum, O(n) whatever the window and the data (van Herk/Gil-Werman blocks).

    Equals ``x.rolling(window, min_periods=minp).max()`` (NaNs skipped). Warm-up:
    the first ``minp - 1`` values are NaN. Value ``t`` uses bars up to ``t``.

    >>> rolling_max(np.array([3.0, 1.0, 2.0, 5.0]), 2)
    array([nan,  3.,  2.,  5.])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_max", [("x", x)], (window, minp), out)


@suggest_kwargs
def rolling_zscore(x: Any, window: int, minp: int | None = None, ddof: int = 1,
                   out: np.ndarray | None = None) -> Any:
    """Rolling z-score ``(x[t] - mean) / std`` of the window ending at ``t`` (bar ``t`` included).

    ``std`` uses ``ddof`` (default 1, as pandas' ``std``). Equals
    ``(x - r.mean()) / r.std(ddof=ddof)`` with ``r = x.rolling(window, min_periods=minp)``,
    except that a constant window (std 0) or a NaN ``x[t]`` gives NaN rather
    than inf. Warm-up as :func:`rolling_var`. Value ``t`` uses bars up to ``t``.

    >>> rolling_zscore(np.array([1.0, 2.0, 3.0, 3.0]), 3, ddof=0).round(4)
    array([   nan,    nan, 1.2247, 0.7071])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_zscore", [("x", x)], (window, minp, _ddof(ddof), _ZSCORE), out, kernel="rolling_moment")


@suggest_kwargs
def rolling_corr(x: Any, y: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling Pearson correlation of ``x`` and ``y`` over pairwise-complete bars.

    A bar counts only when both ``x`` and ``y`` are non-NaN. Equals
    ``x.rolling(window, min_periods=minp).corr(y)``; NaN where either window is
    constant or fewer than ``max(minp, 2)`` pairs (warm-up: ``max(minp, 2) - 1``
    NaNs). 2-D inputs pair column ``j`` of ``x`` with column ``j`` of ``y``.
    Value ``t`` uses bars up to ``t``.

    >>> rolling_corr(np.array([1.0, 2.0, 3.0, 5.0]), np.array([2.0, 4.0, 6.0, 1.0]), 3).round(4)
    array([   nan,    nan,  1.   , -0.737])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_corr", [("x", x), ("y", y)], (window, minp), out)


@suggest_kwargs
def rolling_beta(y: Any, x: Any, window: int, minp: int | None = None, out: np.ndarray | None = None) -> Any:
    """Rolling OLS slope of ``y`` on ``x``: ``cov(x, y) / var(x)`` over pairwise-complete bars.

    Typically ``y`` = asset returns, ``x`` = market (e.g. BTC) returns. Equals
    ``y.rolling(window, minp).cov(x) / x.rolling(window, minp).var()`` when the
    NaNs of x and y are aligned; NaN where ``x`` is constant over the window.
    Warm-up as :func:`rolling_corr`. Value ``t`` uses bars up to ``t``.

    >>> rolling_beta(np.array([2.0, 4.0, 6.0, 7.0]), np.array([1.0, 2.0, 3.0, 4.0]), 3)
    array([nan, nan, 2. , 1.5])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_beta", [("y", y), ("x", x)], (window, minp), out)


@suggest_kwargs
def rolling_cov(x: Any, y: Any, window: int, minp: int | None = None, ddof: int = 1,
                out: np.ndarray | None = None) -> Any:
    """Rolling covariance over pairwise-complete bars; equals ``x.rolling(window, minp).cov(y, ddof=ddof)``.

    >>> rolling_cov(np.array([1.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0]), 2)
    array([ nan,  1. , -0.5])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_cov", [("x", x), ("y", y)], (window, minp, _ddof(ddof)), out)


@suggest_kwargs
def rolling_vwap(price: Any, volume: Any, window: int, minp: int | None = None,
                 out: np.ndarray | None = None) -> Any:
    """Rolling volume-weighted average price ``sum(price * volume) / sum(volume)``.

    ``price`` in quote currency (typically close or (high + low + close) / 3),
    ``volume`` in base units. A bar counts when both are non-NaN; NaN where the
    window's volume is 0 or fewer than ``minp`` bars count (warm-up: ``minp - 1``
    NaNs). Value ``t`` uses bars up to ``t``.

    >>> rolling_vwap(np.array([10.0, 20.0, 30.0]), np.array([1.0, 3.0, 0.0]), 2)
    array([ nan, 17.5, 20. ])
    """
    window, minp = _window_args(window, minp)
    return _run("rolling_vwap", [("price", price), ("volume", volume)], (window, minp), out)


# --------------------------------------------------------------------------- returns


@suggest_kwargs
def ret(close: Any, n: int = 1, log: bool = False, out: np.ndarray | None = None) -> Any:
    """``n``-bar returns: ``close[t] / close[t - n] - 1``, or ``log(close[t] / close[t - n])``.

    Warm-up: the first ``n`` values are NaN. NaN where either price is NaN or the
    base price is 0 (pandas' ``pct_change`` would give inf). Equals
    ``close.pct_change(n, fill_method=None)`` otherwise. Value ``t`` uses bars
    ``t - n`` and ``t``.

    >>> ret(np.array([100.0, 110.0, 99.0]))
    array([ nan,  0.1, -0.1])
    """
    n = check_period(n, "n")
    if not isinstance(log, (bool, np.bool_)):
        raise TypeError(f"log must be a bool, got {type(log).__name__}")
    return _run("ret", [("close", close)], (n, bool(log)), out)


# --------------------------------------------------------------------------- batch moving averages


def _spans(spans: Any, name: str) -> np.ndarray:
    if isinstance(spans, (int, np.integer)) and not isinstance(spans, (bool, np.bool_)):
        spans = [spans]
    try:
        values = list(spans)
    except TypeError:
        raise TypeError(f"{name} must be a sequence of integers, got {type(spans).__name__}") from None
    if not values:
        raise ValueError(f"{name} must not be empty")
    return np.array([check_period(v, name) for v in values], dtype=np.int64)


def _many(kind: str, close: Any, periods: np.ndarray, seed_first: bool, out: np.ndarray | None) -> Any:
    from .kernels import batch

    arr, wrapper = as_float_array(close, "close")
    arr = columns_contiguous([arr])[0]

    # each distinct period once, in order of first appearance
    _, first = np.unique(periods, return_index=True)
    uniq = periods[np.sort(first)]
    position = {int(p): i for i, p in enumerate(uniq)}
    inverse = np.array([position[int(p)] for p in periods], dtype=np.int64)
    shape = arr.shape + (periods.size,)
    if out is None:
        out = np.empty(shape, dtype=np.float64)
    elif not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != shape:
        raise ValueError(f"out must be a float64 array of shape {shape}")
    elif not out.flags.writeable:
        raise ValueError("out must be writeable")
    direct = uniq.size == periods.size
    res = out if direct else np.empty(arr.shape + (uniq.size,), dtype=np.float64)
    if arr.ndim == 1:
        if kind == "ema":
            batch.ema_many_1d_nb(arr, uniq, seed_first, res)
        else:
            batch.sma_many_1d_nb(arr, uniq, res)
    elif arr.size < PARALLEL_MIN_SIZE:
        # the policy of every indicator (nbtrade._arrays.apply_kernel): small inputs run the 1-D
        # kernel column by column, so a cold cache compiles no parallel kernel for them (the
        # parallel twin costs ~3 s more). Each column into a contiguous (n, k) block: the 1-D
        # path's own specialization.
        cols = np.empty((arr.shape[1],) + res.shape[:1] + res.shape[2:], dtype=np.float64)
        for c in range(arr.shape[1]):
            if kind == "ema":
                batch.ema_many_1d_nb(arr[:, c], uniq, seed_first, cols[c])
            else:
                batch.sma_many_1d_nb(arr[:, c], uniq, cols[c])
        res[...] = cols.transpose(1, 0, 2)
    else:
        if kind == "ema":
            batch.ema_many_nb(arr, uniq, seed_first, res)
        else:
            batch.sma_many_nb(arr, uniq, res)
    if not direct:
        out[...] = res[..., inverse]
    names = [f"{kind}_{p}" for p in periods]
    if wrapper.kind == "series":
        return pd.DataFrame(out, index=wrapper.index, columns=names, copy=False)
    if wrapper.kind == "frame":
        cols = pd.MultiIndex.from_tuples([(c, nm) for c in wrapper.columns for nm in names])
        return pd.DataFrame(out.reshape(arr.shape[0], -1), index=wrapper.index, columns=cols, copy=False)
    return out


@suggest_kwargs
def ema_many(close: Any, spans: Sequence[int], seed: str = "sma", out: np.ndarray | None = None) -> Any:
    """Exponential moving averages for several spans in one pass over ``close``.

    ``k = 2 / (span + 1)``, ``ema[t] = (close[t] - ema[t-1]) * k + ema[t-1]``
    (TA-Lib's order of operations). ``seed="sma"``: seeded with the mean of the
    first ``span`` values, the first ``span - 1`` outputs NaN, exactly TA-Lib's
    ``EMA(close, span)``. ``seed="first"``: seeded with the first value, no
    warm-up, equal to pandas ``ewm(span=span, adjust=False).mean()``. Each
    distinct span is computed once.

    NaN policy: leading NaNs are skipped (as TA-Lib); an inner NaN (or +-inf)
    gives NaN at that bar and is skipped, the EMA carries on from the next valid
    bar instead of turning NaN forever (TA-Lib's does). Value ``t`` uses bars up to ``t``.

    Returns ``(n, k)`` for 1-D input (a DataFrame with columns ``ema_<span>`` for
    a Series), ``(n, m, k)`` for 2-D input (a DataFrame with column MultiIndex
    ``(symbol, "ema_<span>")`` for a DataFrame).

    >>> ema_many(np.array([1.0, 2.0, 3.0, 4.0]), [2, 3])
    array([[nan, nan],
           [1.5, nan],
           [2.5, 2. ],
           [3.5, 3. ]])
    """
    if seed not in ("sma", "first"):
        raise ValueError(f"seed must be 'sma' or 'first', got {seed!r}")
    return _many("ema", close, _spans(spans, "spans"), seed == "first", out)


@suggest_kwargs
def sma_many(close: Any, windows: Sequence[int], out: np.ndarray | None = None) -> Any:
    """Simple moving averages for several windows in one pass over ``close``.

    Column ``j`` is the mean of the last ``windows[j]`` bars, NaN unless all are
    non-NaN (so the first ``window - 1`` values are NaN): TA-Lib's
    ``SMA(close, window)`` on NaN-free data and ``close.rolling(window).mean()``
    always; an inner NaN affects only the windows containing it. Value ``t``
    uses bars up to ``t``. Output shapes as :func:`ema_many` (columns ``sma_<window>``).

    >>> sma_many(np.array([1.0, 2.0, 3.0, 4.0]), [1, 2])
    array([[1. , nan],
           [2. , 1.5],
           [3. , 2.5],
           [4. , 3.5]])
    """
    return _many("sma", close, _spans(windows, "windows"), False, out)


# --------------------------------------------------------------------------- lookback

_WINDOWED = {"rolling_sum", "rolling_mean", "rolling_var", "rolling_std", "rolling_min", "rolling_max",
             "rolling_zscore", "rolling_corr", "rolling_beta", "rolling_cov", "rolling_vwap"}

#: Parameters each function's lookback reads (those of the function, less its inputs and ``out``).
_LOOKBACK_PARAMS: dict[str, tuple[str, ...]] = {
    **{n: ("window", "minp") for n in _WINDOWED},
    **{n: ("window", "minp", "ddof") for n in ("rolling_var", "rolling_std", "rolling_zscore", "rolling_cov")},
    "ret": ("n", "log"), "sma_many": ("windows",), "ema_many": ("spans", "seed"),
}


def lookback(name: str, **params: Any) -> Lookback:
    """Warm-up and settling length of a function of this module, for given parameters.

    Windowed statistics: ``warmup = minp - 1`` (at least 1 for corr/beta/cov:
    2 pairs), ``settle = window - 1`` (a full window, after which values do not
    depend on where the data starts). ``ret``: ``n`` and ``n``. ``sma_many``:
    the largest window. ``ema_many``: warm-up ``max(span) - 1`` (``seed="sma"``)
    or 0 (``"first"``), settle adds the bars after which the seed's weight
    falls below ``nbtrade.lookback.SETTLE_TOLERANCE``.

    >>> lookback("rolling_mean", window=20)
    Lookback(warmup=19, settle=19)
    """
    if not isinstance(name, str) or name not in _LOOKBACK_PARAMS:
        known = sorted(_LOOKBACK_PARAMS)
        hint = did_you_mean(str(name), known)
        raise ValueError(f"unknown function name {name!r}" + (f"; did you mean {hint!r}?" if hint else "")
                         + f"; expected one of {known}")
    check_kwargs(f"lookback({name!r})", params, _LOOKBACK_PARAMS[name])
    if name in _WINDOWED:
        if "window" not in params:
            raise TypeError(f"lookback({name!r}) needs window= (bars in the window)")
        window, minp = _window_args(params.get("window"), params.get("minp"))
        first = max(minp, 2) if name in ("rolling_corr", "rolling_beta", "rolling_cov") else minp
        if name in ("rolling_var", "rolling_std", "rolling_zscore"):
            first = max(first, _ddof(params.get("ddof", 1)) + 1)
        return Lookback(first - 1, max(first, window) - 1)
    if name == "ret":
        n = check_period(params.get("n", 1), "n")
        return Lookback(n, n)
    if name == "sma_many":
        w = int(_spans(params.get("windows"), "windows").max())
        return Lookback(w - 1, w - 1)
    if name == "ema_many":
        spans = _spans(params.get("spans"), "spans")
        seed = params.get("seed", "sma")
        if seed not in ("sma", "first"):
            raise ValueError(f"seed must be 'sma' or 'first', got {seed!r}")
        warm = int(spans.max()) - 1 if seed == "sma" else 0
        settle = max((int(p) - 1 if seed == "sma" else 0) + decay_bars(2.0 / (int(p) + 1)) for p in spans)
        return Lookback(warm, max(warm, settle))
    raise AssertionError(name)  # pragma: no cover - every name of _LOOKBACK_PARAMS is handled above


__dir__ = public_dir(__all__)
