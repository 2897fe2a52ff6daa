"""Training labels that look into the future, and know how far.

Every label at bar t is computed from bars t+1 .. t+horizon (the future), so it is
only *known* at the close of bar ``t + horizon``. Each function stores that
horizon in ``result.attrs["horizon"]`` (pandas) and :func:`label_horizon` reads it;
:func:`nbtrade.model.walkforward.walk_forward` uses it to purge training rows
whose label is not yet known when a test segment starts.

The last ``horizon`` labels are NaN (unknown), never filled.

Inputs: a price Series (one symbol), a DataFrame with one column per symbol, or
a 1-D/2-D float array (time on axis 0). Outputs have the same shape and index.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from .._names import public_dir, suggest_kwargs

__all__ = ["forward_return", "sign_label", "triple_barrier", "label_horizon", "ewm_volatility"]

ArrayLike = Any


def _wrap(values: np.ndarray, like: Any, horizon: int, name: str) -> Any:
    if isinstance(like, pd.DataFrame):
        out = pd.DataFrame(values, index=like.index, columns=like.columns)
    elif isinstance(like, pd.Series):
        out = pd.Series(values, index=like.index, name=name)
    else:
        return values
    out.attrs["horizon"] = int(horizon)
    out.attrs["label"] = name
    return out


def _prices(x: Any, arg: str) -> np.ndarray:
    if isinstance(x, (pd.Series, pd.DataFrame)):
        arr = x.to_numpy(dtype=np.float64)
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{arg} must be numeric (Series, DataFrame or array)") from exc
    if arr.ndim not in (1, 2):
        raise ValueError(f"{arg} must be 1-D or 2-D (time on axis 0), got {arr.ndim}-D")
    if arr.ndim == 2 and arr.shape[0] == 1 and arr.shape[1] > 1 and not isinstance(x, pd.DataFrame):
        raise ValueError(f"{arg} has shape {arr.shape}: 2-D inputs are time x symbols, so this is ONE bar of "
                         f"{arr.shape[1]} symbols. For {arr.shape[1]} bars of one series pass a 1-D array "
                         f"({arg}.ravel()); for one bar of many symbols pass a one-row DataFrame")
    with np.errstate(invalid="ignore"):
        bad = (arr <= 0) | np.isinf(arr)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), arr.shape)
        where = f"row {i[0]}" + (f", column {i[1]}" if arr.ndim == 2 else "")
        raise ValueError(f"{arg} must be positive finite prices (NaN marks a missing bar), got {float(arr[i])!r} at "
                         f"{where}")
    return arr


def _check_horizon(n: Any, arg: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{arg} must be an int >= 1 (bars into the future), got {n!r}")
    return int(n)


def label_horizon(y: Any, default: int | None = None) -> int | None:
    """Horizon (bars into the future) recorded on a label Series/DataFrame, else ``default``."""
    h = getattr(y, "attrs", {}).get("horizon") if hasattr(y, "attrs") else None
    return int(h) if h is not None else default


@suggest_kwargs
def forward_return(close: ArrayLike, n: int = 1, log: bool = False) -> Any:
    """Return from the close of bar t to the close of bar t+n.

    ``close[t+n] / close[t] - 1`` (or the log of the ratio). Horizon ``n``: the
    last ``n`` values are NaN.
    """
    n = _check_horizon(n)
    c = _prices(close, "close")
    out = np.full(c.shape, np.nan)
    if c.shape[0] > n:
        ratio = c[n:] / c[:-n]
        out[:-n] = np.log(ratio) if log else ratio - 1.0
    return _wrap(out, close, n, f"fwd_ret_{n}")


@suggest_kwargs
def sign_label(close: ArrayLike, n: int = 1, dead_zone: float | ArrayLike = 0.0) -> Any:
    """Three classes from the forward n-bar return: 1 up, -1 down, 0 inside the dead zone.

    ``dead_zone`` is a return (fraction, e.g. 0.002 = 20 bp) or an array/Series
    of per-bar thresholds (e.g. ``k * ewm_volatility(close) * sqrt(n)``, causal).
    Returns float labels in {-1, 0, 1}; the last ``n`` are NaN.
    """
    ret = forward_return(close, n)
    r = np.asarray(ret, dtype=np.float64)
    dz = np.asarray(dead_zone.to_numpy() if isinstance(dead_zone, (pd.Series, pd.DataFrame)) else dead_zone,
                    dtype=np.float64)
    if np.any(dz < 0):
        raise ValueError("dead_zone must be >= 0")
    if dz.ndim == 1 and r.ndim == 2 and dz.shape[0] == r.shape[0]:
        dz = dz[:, None]
    try:
        np.broadcast_shapes(dz.shape, r.shape)
    except ValueError:
        raise ValueError(f"dead_zone shape {dz.shape} does not match close {r.shape}") from None
    out = np.where(r > dz, 1.0, np.where(r < -dz, -1.0, 0.0))
    out[np.isnan(r)] = np.nan
    return _wrap(out, close, n, f"sign_{n}")


@suggest_kwargs
def ewm_volatility(close: ArrayLike, span: int = 24) -> Any:
    """Causal EWMA standard deviation of log returns (fraction per bar); value at t uses bars up to t."""
    span = _check_horizon(span, "span")
    c = _prices(close, "close")
    r = np.full(c.shape, np.nan)
    r[1:] = np.log(c[1:] / c[:-1])
    vol = pd.DataFrame(r).ewm(span=span, min_periods=max(2, span // 2)).std().to_numpy()
    vol = vol[:, 0] if c.ndim == 1 else vol
    if isinstance(close, pd.Series):
        return pd.Series(vol, index=close.index, name="vol")
    if isinstance(close, pd.DataFrame):
        return pd.DataFrame(vol, index=close.index, columns=close.columns)
    return vol


@suggest_kwargs
def triple_barrier(close: ArrayLike, horizon: int = 24, tp: float = 2.0, sl: float = 1.0,
                   high: ArrayLike | None = None, low: ArrayLike | None = None,
                   vol: ArrayLike | None = None, vol_span: int = 24, time_label: str = "zero") -> Any:
    """Triple-barrier labels (Lopez de Prado): which of take-profit, stop-loss or time limit comes first.

    From the close of bar t, barriers sit at ``close_t * (1 + tp * vol_t)`` and
    ``close_t * (1 - sl * vol_t)``, ``vol_t`` being a causal per-bar volatility
    (default :func:`ewm_volatility` with ``vol_span``) scaled by ``sqrt(horizon)``.
    Bars t+1 .. t+horizon are scanned, using ``high``/``low`` when given (else
    closes). Label 1 when the take-profit is touched first, -1 for the stop-loss;
    when both are touched in the same bar the stop-loss is assumed first
    (conservative). At the time limit: 0 (``time_label="zero"``) or the sign of
    the return (``"sign"``). Horizon ``horizon``: the last ``horizon`` labels and
    bars without a volatility estimate are NaN.
    """
    horizon = _check_horizon(horizon, "horizon")
    if not (tp > 0 and sl > 0):
        raise ValueError(f"tp and sl must be > 0 (multiples of volatility), got tp={tp}, sl={sl}")
    if time_label not in ("zero", "sign"):
        raise ValueError(f"time_label must be 'zero' or 'sign', got {time_label!r}")
    c = _prices(close, "close")
    hi = _prices(high, "high") if high is not None else c
    lo = _prices(low, "low") if low is not None else c
    if hi.shape != c.shape or lo.shape != c.shape:
        raise ValueError(f"high/low shapes {hi.shape}/{lo.shape} must match close {c.shape}")
    v = np.asarray(ewm_volatility(c, vol_span) if vol is None else
                   (vol.to_numpy() if isinstance(vol, (pd.Series, pd.DataFrame)) else vol), dtype=np.float64)
    if v.shape != c.shape:
        raise ValueError(f"vol shape {v.shape} must match close {c.shape}")
    two_d = c.ndim == 2
    c2, hi2, lo2, v2 = (a if two_d else a[:, None] for a in (c, hi, lo, v))
    n, m = c2.shape
    out = np.full((n, m), np.nan)
    if n > horizon:
        k = n - horizon
        width = v2[:k] * np.sqrt(horizon)
        up = c2[:k] * (1.0 + tp * width)
        dn = c2[:k] * (1.0 - sl * width)
        first_up = np.full((k, m), horizon + 1)
        first_dn = np.full((k, m), horizon + 1)
        for j in range(horizon, 0, -1):  # scan backwards so the earliest touch wins
            first_up = np.where(hi2[j:j + k] >= up, j, first_up)
            first_dn = np.where(lo2[j:j + k] <= dn, j, first_dn)
        end = c2[horizon:horizon + k] / c2[:k] - 1.0
        lab = np.where(first_dn <= first_up, -1.0, 1.0)
        none = (first_up > horizon) & (first_dn > horizon)
        lab = np.where(none, np.sign(end) if time_label == "sign" else 0.0, lab)
        lab[np.isnan(width)] = np.nan
        out[:k] = lab
    out = out if two_d else out[:, 0]
    return _wrap(out, close, horizon, f"barrier_{horizon}")


__dir__ = public_dir(__all__)
