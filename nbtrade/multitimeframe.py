"""Several timeframes without look-ahead: indicators on higher bars (4h, 1d) used on the trading bars (1h).

Three steps, each usable alone:

* :func:`resample_market` (``Market.resample("4h")``): the market's candles aggregated to a higher
  timeframe (first open, max high, min low, last close, summed volume), buckets on the exchange
  grid (epoch multiples, Monday weeks, calendar months) labelled by their **open** time, as every
  panel is. Rule for missing candles: a higher bar is *complete* for a symbol when every lower slot
  of it holds a candle. ``incomplete="nan"`` (default) makes an incomplete higher bar NaN (no
  candle: an indicator then sees a gap, never a bar built from part of its data);
  ``incomplete="keep"`` builds it from the candles there are. Either way the count is kept in the
  field ``n_candles`` (lower candles per higher bar, per symbol). Buckets without any lower candle
  of any symbol are not produced (a gap stays a gap: the index skips it, as the store's resampling
  and backtesting.py's ``resample_apply`` do). Perpetual fields (:func:`nbtrade.data.panels.perp_fields`)
  come along: ``mark_open..mark_close`` as OHLC (same incomplete rule, on the mark candles' own
  count), ``funding_rate`` summed over the higher bar (NaN when no funding falls in it),
  ``funding_time`` the last funding's time, and the exact events (``meta["funding_events"]``)
  unchanged. Other fields are not carried over.
* :func:`informative`: values computed on higher bars, aligned back to the lower bars. The value of
  the higher bar opening at ``H`` (length ``L``) closes at ``H + L`` and is used only from then on:

  - ``available="close"`` (default): from the lower bar whose *close* is at or after ``H + L`` (the
    last lower bar inside the higher bar, when it exists). This is the convention of every lower
    indicator in nbtrade (row ``t`` is known at bar ``t``'s close; orders fill at the next open)
    and of freqtrade's ``merge_informative_pair``.
  - ``available="next"``: from the first lower bar *opening* at or after ``H + L``, one lower bar
    later: backtesting.py's ``resample_apply`` with rules closed on the left (``"D"``, ``"4h"``).

  Each lower bar takes the latest higher bar closed by then (its value as it is, NaN included: no
  value is carried over a NaN); before the first closed higher bar it gets NaN (False for booleans).
* :func:`resample_apply` (``Market.informative("4h", func, *args)``): both, around an indicator
  function: resample, apply ``func`` to the higher field(s), align the result(s) back.

Causality: a lower bar ``t`` only ever sees higher bars built from lower bars ``<= t`` (with a
causal ``func``), so changing prices after ``t`` changes nothing used at or before ``t``
(``tests/test_multitimeframe.py`` checks this by perturbation).

Timeframe pairs: the higher timeframe must be a whole multiple of the market's bars (and ``1w``
needs a lower timeframe dividing its Monday offset, 4 days; ``1M`` one dividing a day): from ``1h``
every one of ``2h 4h 6h 8h 12h 1d 3d 1w 1M`` works; from ``4h``, ``8h 12h 1d 3d 1w 1M`` (not
``6h``). :func:`higher_timeframes` lists them for a lower timeframe.

>>> import nbtrade, nbtrade.indicators as ind
>>> m = nbtrade.Market(nbtrade.market(["BTC", "ETH"], "2024-01-01", "2024-01-15", "1h"))
>>> daily_sma = m.informative("1d", ind.sma, 5)       # DataFrame on m's hourly bars
>>> m.resample("4h").timeframe
'4h'
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .data import _grid
from .data.resample import _check_pair, resample_panel
from .panel import Market, _instants
from .timeframes import TIMEFRAME_MS, TIMEFRAMES

__all__ = ["resample_market", "informative", "resample_apply", "higher_timeframes"]

AVAILABLE = ("close", "next")
INCOMPLETE = ("nan", "keep")


def higher_timeframes(lower: str) -> list[str]:
    """Timeframes a market of ``lower`` bars can be resampled to (whole multiples on the same grid)."""
    out = []
    for tf in TIMEFRAMES:
        try:
            _check_pair(lower, tf)
        except ValueError:
            continue
        out.append(tf)
    return out


def _check_timeframe(timeframe: Any, name: str = "timeframe") -> str:
    if not isinstance(timeframe, str):
        raise TypeError(f"{name} must be a timeframe string such as '4h' or '1d', got {type(timeframe).__name__}")
    if timeframe in TIMEFRAMES:
        return timeframe
    raise ValueError(f"unknown {name} {timeframe!r}{_hint(timeframe)}; expected one of {', '.join(TIMEFRAMES)}")


def _hint(timeframe: str) -> str:
    """A suggestion for a pandas rule or a mis-cased timeframe (``"4H"``, ``"D"``, ``"240min"``, ``"W-FRI"``)."""
    if timeframe.lower() in TIMEFRAMES:
        return f" (did you mean {timeframe.lower()!r}?)"
    if timeframe.upper().startswith("W"):
        return " (did you mean '1w'? nbtrade weeks open on Mondays 00:00 UTC, as exchanges' do)"
    if timeframe in ("M", "MS", "ME"):
        return " (did you mean '1M', calendar months?)"
    try:
        ms = pd.Timedelta(pd.tseries.frequencies.to_offset(timeframe)) // pd.Timedelta(milliseconds=1)
    except (ValueError, TypeError):
        return ""
    name = next((k for k, v in TIMEFRAME_MS.items() if v == ms), None)
    return f" (did you mean {name!r}?)" if name else ""


def _lower_timeframe(index: pd.Index, freq_ms: float | None, name: str) -> str:
    """The timeframe of the lower bars (their median step), checked: a known one, times on its grid."""
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError(f"{name} needs a DatetimeIndex (bar open times) to change timeframe, got "
                        f"{type(index).__name__}")
    if freq_ms is None:
        raise ValueError(f"{name} has one bar: its timeframe is unknown, so it cannot be resampled")
    lower = next((k for k, v in TIMEFRAME_MS.items() if v == freq_ms), None)
    if lower is None:
        raise ValueError(f"{name} bars are {pd.Timedelta(milliseconds=freq_ms)} apart (median step), not a timeframe "
                         f"nbtrade knows ({', '.join(TIMEFRAME_MS)}); resample it to one first")
    return lower


def _check_pair_named(lower: str, higher: str) -> None:
    try:
        _check_pair(lower, higher)
    except ValueError:
        ok = higher_timeframes(lower)
        if higher == lower or (higher in TIMEFRAME_MS and TIMEFRAME_MS[higher] < TIMEFRAME_MS[lower]):
            why = f"{higher!r} is not higher than the market's {lower!r} bars"
        else:
            why = f"{higher!r} is not a whole number of {lower!r} bars on the same grid"
        raise ValueError(f"timeframe {why}; from {lower} bars these work: {', '.join(ok) or 'none'}") from None


def _on_grid(ms: np.ndarray, timeframe: str, index: pd.Index, name: str) -> None:
    ok = _grid.on_grid(ms, timeframe)
    if not ok.all():
        first = index[int(np.argmin(ok))]
        raise ValueError(f"{name} has a bar opening at {first}, not on the {timeframe} grid (bars open at whole "
                         f"multiples of {timeframe} since the epoch, Mondays for 1w, month starts for 1M)")


def _close_times(opens: np.ndarray, timeframe: str) -> np.ndarray:
    if timeframe == "1M":
        return np.array([_grid.next_open(int(x), "1M") for x in opens], dtype=np.int64)
    return opens + TIMEFRAME_MS[timeframe]


# --------------------------------------------------------------------------------------------
# resampling

def resample_market(market: Market, timeframe: str, *, incomplete: str = "nan") -> Market:
    """``market``'s candles on ``timeframe`` bars (a new :class:`Market`, index = higher bar open times).

    Parameters
    ----------
    market : Market with a DatetimeIndex on a known timeframe (its median bar step).
    timeframe : str
        Higher timeframe (``"4h"``, ``"1d"``, ``"1w"``, ``"1M"``...), a whole multiple of the market's.
    incomplete : ``"nan"`` or ``"keep"``
        A higher bar missing some of its lower candles (an outage, a listing inside it, the data
        starting or ending inside it) is NaN for that symbol (``"nan"``, default) or built from the
        candles there are (``"keep"``). The field ``n_candles`` counts them either way.

    Close-only markets give close-only results (last close); volume is summed when present.
    """
    if not isinstance(market, Market):
        raise TypeError(f"market must be an nbtrade.Market, got {type(market).__name__}")
    timeframe = _check_timeframe(timeframe)
    if incomplete not in INCOMPLETE:
        raise ValueError(f"incomplete must be one of {INCOMPLETE}, got {incomplete!r}")
    lower = _lower_timeframe(market.index, market.freq_ms, "market")
    _check_pair_named(lower, timeframe)
    key = ("resample", timeframe, incomplete)
    if key in market._cache:
        return market._cache[key]
    t = market.time_ms
    _on_grid(t, lower, market.index, "market")
    names = ["close"] if market.close_only else ["open", "high", "low", "close"]
    if market.has("volume"):
        names.append("volume")
    opens, arrays, n_candles, expected = resample_panel(t, {f: market.array(f) for f in names}, lower, timeframe)
    any_candle = n_candles.any(axis=1)
    if not any_candle.all():  # buckets whose lower rows hold no candle at all: not produced
        opens, n_candles, expected = opens[any_candle], n_candles[any_candle], expected[any_candle]
        arrays = {f: np.ascontiguousarray(a[any_candle]) for f, a in arrays.items()}
    if incomplete == "nan":
        short = n_candles < expected[:, None]
        if short.any():
            for a in arrays.values():
                a[short] = np.nan
    if not len(opens):
        raise ValueError(f"market has no candle to resample to {timeframe}")
    arrays.update(_perp_resampled(market, t, lower, timeframe, any_candle, incomplete))
    out = Market.from_arrays(opens, market.symbols, **arrays, n_candles=n_candles.astype(np.float64))
    out.meta = market.meta.copy()
    if timeframe in TIMEFRAME_MS:
        out._cache["freq_ms"] = float(TIMEFRAME_MS[timeframe])  # the index may skip empty buckets
    out._cache["timeframe"] = timeframe
    market._cache[key] = out
    return out


def _perp_resampled(market: Market, t: np.ndarray, lower: str, timeframe: str, keep: np.ndarray,
                    incomplete: str) -> dict[str, np.ndarray]:
    """Perpetual fields on the higher bars (``keep``: the buckets produced): mark OHLC (NaN for an
    incomplete bucket under ``incomplete="nan"``), funding rate summed (NaN when none), last funding time."""
    from .data.panels import FUNDING_FIELDS, MARK_FIELDS
    from .data.resample import _bucket

    out: dict[str, np.ndarray] = {}
    if all(market.has(f) for f in MARK_FIELDS):
        _, mk, have, expected = resample_panel(t, {f[5:]: market.array(f) for f in MARK_FIELDS}, lower, timeframe)
        have, expected = have[keep], expected[keep]
        for f in MARK_FIELDS:
            a = np.ascontiguousarray(mk[f[5:]][keep])
            if incomplete == "nan":
                a[have < expected[:, None]] = np.nan
            out[f] = a
    if all(market.has(f) for f in FUNDING_FIELDS):
        b = _bucket(t, timeframe)
        starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
        rate, when = market.array("funding_rate"), market.array("funding_time")
        hit = ~np.isnan(rate)
        total = np.add.reduceat(np.where(hit, rate, 0.0), starts, axis=0)
        count = np.add.reduceat(hit.astype(np.int64), starts, axis=0)
        rows = np.where(hit, np.arange(t.shape[0])[:, None], -1)
        last = np.maximum.reduceat(rows, starts, axis=0)
        cols = np.arange(rate.shape[1])[None, :]
        out["funding_rate"] = np.where(count > 0, total, np.nan)[keep]
        out["funding_time"] = np.where(last >= 0, when[np.maximum(last, 0), cols], np.nan)[keep]
    return out


# --------------------------------------------------------------------------------------------
# alignment

def _target_index(lower: Any) -> tuple[pd.DatetimeIndex, pd.Index, float | None]:
    """(UTC instants, index to label the result with, median step in ms) of what to align onto."""
    if isinstance(lower, Market):
        return lower.index, lower.index, lower.freq_ms
    if isinstance(lower, (pd.Series, pd.DataFrame)):
        lower = lower.index
    if not isinstance(lower, pd.DatetimeIndex):
        raise TypeError(f"lower must be a Market, a DatetimeIndex or a Series/DataFrame with one, got "
                        f"{type(lower).__name__}")
    inst = _instants(lower)
    if not (inst.is_monotonic_increasing and inst.is_unique):
        raise ValueError("lower index must be sorted and unique (bar open times)")
    from .timeframes import index_to_ms

    ms = index_to_ms(inst)
    step = float(np.median(np.diff(ms))) if len(ms) > 1 else None
    return inst, lower, step


def informative(values: Any, lower: Any, timeframe: str | None = None, *, available: str = "close") -> Any:
    """Align ``values`` computed on higher-timeframe bars onto the lower bars of ``lower``, without look-ahead.

    Parameters
    ----------
    values : Series or DataFrame (or a tuple of them)
        Indexed by the higher bars' **open** times (as :meth:`Market.resample` labels them), any
        time zone or resolution (naive = UTC); columns are kept (symbols, or anything).
    lower : Market, DatetimeIndex, or a Series/DataFrame whose index is used
        The trading bars (open times on a known timeframe's grid).
    timeframe : str, optional
        The higher timeframe; inferred from the median step of ``values.index`` when omitted.
    available : ``"close"`` (default) or ``"next"``
        The higher bar closing at ``C`` is used from the lower bar whose close is ``>= C``
        (``"close"``, same instant: the last lower bar inside it), or from the first lower bar
        opening at or after ``C`` (``"next"``, backtesting.py's ``resample_apply`` convention).

    Returns
    -------
    Same kind as ``values`` on the lower index: each lower bar holds the value of the latest
    higher bar closed by then (NaN, or False for booleans, before the first).
    """
    if isinstance(values, tuple):
        return tuple(informative(v, lower, timeframe, available=available) for v in values)
    if available not in AVAILABLE:
        raise ValueError(f"available must be one of {AVAILABLE}, got {available!r}")
    if not isinstance(values, (pd.Series, pd.DataFrame)):
        raise TypeError(f"values must be a Series or DataFrame indexed by the higher bars' open times, got "
                        f"{type(values).__name__} (wrap an array: pd.DataFrame(arr, index=higher.index))")
    if not isinstance(values.index, pd.DatetimeIndex):
        raise TypeError(f"values must have a DatetimeIndex (higher bar open times), got {type(values.index).__name__}")
    inst, label, step = _target_index(lower)
    lower_tf = _lower_timeframe(inst, step, "lower")
    from .timeframes import index_to_ms

    vin = _instants(values.index)
    if not (vin.is_monotonic_increasing and vin.is_unique):
        raise ValueError("values index must be sorted and unique (higher bar open times)")
    vms = index_to_ms(vin)
    if timeframe is None:
        if len(vms) < 2:
            raise ValueError("values has fewer than 2 bars: give its timeframe (timeframe='4h')")
        med = float(np.median(np.diff(vms)))
        timeframe = next((k for k, v in TIMEFRAME_MS.items() if v == med), None)
        if timeframe is None:
            raise ValueError(f"values bars are {pd.Timedelta(milliseconds=med)} apart (median), not a known "
                             f"timeframe: give timeframe= explicitly")
    timeframe = _check_timeframe(timeframe)
    _check_pair_named(lower_tf, timeframe)
    _on_grid(vms, timeframe, values.index, "values")
    lms = index_to_ms(inst)
    _on_grid(lms, lower_tf, label, "lower")
    closes = _close_times(vms, timeframe)
    at = lms + TIMEFRAME_MS[lower_tf] if available == "close" else lms
    k = np.searchsorted(closes, at, side="right") - 1
    src = values.to_numpy()
    if src.ndim == 1:
        src = src[:, None]
    if src.dtype != np.bool_:
        if src.dtype.kind not in "iuf":
            raise TypeError(f"values must be numeric or boolean, got dtype {src.dtype}")
        src = src.astype(np.float64, copy=False)
    out = src[np.maximum(k, 0)]  # one gather; k is non-decreasing, so bars before the first close lead
    before = int(np.searchsorted(k, 0))
    if before:
        out[:before] = False if src.dtype == np.bool_ else np.nan
    if isinstance(values, pd.Series):
        return pd.Series(out[:, 0], index=label, name=values.name)
    return pd.DataFrame(out, index=label, columns=values.columns)


def _wrap(x: Any, higher: Market, label: str) -> Any:
    """A function's output on the higher bars as a Series/DataFrame on the higher index."""
    if isinstance(x, (pd.Series, pd.DataFrame)):
        return x
    arr = np.asarray(x)
    n, m = higher.shape
    if arr.ndim == 1 and len(arr) == n:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise ValueError(f"{label} returned shape {arr.shape} on {n} higher bars; return (n_bars,) or "
                         f"(n_bars, n_symbols) values, a Series or a DataFrame")
    cols = higher.symbols if arr.shape[1] == m else range(arr.shape[1])
    return pd.DataFrame(arr, index=higher.index, columns=cols)


def resample_apply(timeframe: str, func: Callable | None, data: Any, *args: Any,
                   field: str | Sequence[str] | None = "close", available: str = "close",
                   incomplete: str = "nan", **kwargs: Any) -> Any:
    """``func`` on ``data`` resampled to ``timeframe``, aligned back to ``data``'s bars without look-ahead.

    backtesting.py's ``resample_apply`` for nbtrade (see the module docstring for the conventions).

    Parameters
    ----------
    timeframe : higher timeframe (``"4h"``, ``"1d"``...), a whole multiple of the data's bars.
    func : callable or None
        Called as ``func(higher.<field>, *args, **kwargs)``; ``field`` a tuple of names passes
        several (``("high", "low", "close")`` for ``atr``), ``field=None`` the higher
        :class:`Market` itself. It returns a Series/DataFrame on the higher index, an array
        ``(n_higher,)`` / ``(n_higher, n_symbols)``, or a tuple of those. None: the field itself.
    data : Market or anything :class:`Market` accepts
        A Series or DataFrame of closes (``self.data.close`` in a Strategy's ``init``), OHLCV frames.
    available, incomplete : see :func:`informative` and :func:`resample_market`.

    Returns
    -------
    DataFrame (bars x symbols) on ``data``'s index (a Series for a Series or a one-symbol OHLCV
    frame), or a tuple of those. In a class-API ``init``: ``self.I(nbtrade.resample_apply, "1d",
    ind.sma, self.data.close, 10)``.
    """
    if func is not None and not callable(func):
        raise TypeError(f"func must be callable or None, got {type(func).__name__}")
    market = data if isinstance(data, Market) else Market(data, copy=False)
    higher = resample_market(market, timeframe, incomplete=incomplete)
    if field is None:
        inputs: tuple = (higher,)
    else:
        names = (field,) if isinstance(field, str) else tuple(field)
        for f in names:
            if not higher.has(f):
                raise ValueError(f"field {f!r} is not in the resampled market (fields: {', '.join(higher.fields)})")
        inputs = tuple(higher.frame(f) for f in names)
    label = getattr(func, "__name__", "func")
    out = inputs[0] if func is None else func(*inputs, *args, **kwargs)
    many = isinstance(out, tuple)
    parts = tuple(_wrap(o, higher, label) for o in (out if many else (out,)))
    aligned = tuple(informative(p, market, timeframe, available=available) for p in parts)
    if isinstance(data, (pd.Series, pd.DataFrame)) and len(data.index) == len(market.index):
        one = isinstance(data, pd.Series) or (len(market.symbols) == 1 and market.symbols[0] == "asset")
        fixed = []
        for a in aligned:
            a = a.set_axis(data.index)
            if one and isinstance(a, pd.DataFrame) and a.shape[1] == 1:
                a = a.iloc[:, 0].rename(data.name if isinstance(data, pd.Series) else None)
            fixed.append(a)
        aligned = tuple(fixed)
    return aligned if many else aligned[0]
