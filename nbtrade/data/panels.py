"""Candle arrays of several symbols -> one :class:`nbtrade.Market` panel, without a DataFrame per symbol.

The store, fetch results and imports all hold candles as ``{"time": int64 ms, column: array}``
per symbol. :func:`market_from_series` lays them on the union of their open times in
preallocated ``(n_bars, n_symbols)`` float64 arrays (NaN where a symbol has no candle;
nothing is forward-filled) and hands them to :meth:`Market.from_arrays` without a copy.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

def market_from_series(series: Mapping[Any, Mapping[str, np.ndarray]], *, exchange: str | None = None,
                       columns: Sequence[str] | None = None, what: str = "data",
                       funding: Mapping[Any, Mapping[str, np.ndarray]] | None = None,
                       mark: Mapping[Any, Mapping[str, np.ndarray]] | None = None,
                       timeframe: str | None = None) -> Any:
    """A :class:`~nbtrade.panel.Market` from ``{symbol: {"time": ms, column: values}}``.

    Parameters
    ----------
    series : per symbol, int64 epoch-ms open times (sorted, unique) and value arrays of the same length.
    exchange : written into the market's ``meta["exchange"]`` when given.
    columns : the value columns to keep (default: those of the first symbol). ``close`` is
        required; open/high/low come all together or not at all.
    what : how error messages name the source (``"store binance 1h"``, ``"fetch result"``...).
    funding : ``{symbol: {"time", "rate", "mark_price"}}`` funding-rate history of some or all
        symbols (perpetuals); see :func:`add_perp_fields` for how it enters the panel.
    mark : ``{symbol: {"time", "open", "high", "low", "close"}}`` mark-price candles.
    timeframe : the bar length (``"1h"``; default: the median step of the open times), which
        decides the bar a funding timestamp falls in.

    Raises
    ------
    ValueError naming the symbols without a candle (a column of NaN would hide them), or when
    no symbol is given.
    """
    from ..panel import Market

    names = list(series)
    if not names:
        raise ValueError(f"{what}: no symbols given, so there is no market to build")
    empty = [s for s in names if np.asarray(series[s]["time"]).shape[0] == 0]
    if empty:
        raise ValueError(f"{what}: no candles for {', '.join(map(str, empty))} in the requested range; "
                         "widen start/end, fetch or import them first, or leave those symbols out")
    cols = [c for c in (columns or series[names[0]]) if c != "time"]
    if "close" not in cols:
        raise ValueError(f"{what}: a market needs the close column, got columns {cols}")
    times = [np.asarray(series[s]["time"], dtype=np.int64) for s in names]
    shared = all(t.shape == times[0].shape and np.array_equal(t, times[0]) for t in times[1:])
    grid = times[0] if shared else np.unique(np.concatenate(times))
    n, m = grid.shape[0], len(names)
    rows = [slice(None) if t.shape[0] == n else np.searchsorted(grid, t) for t in times]
    out = {}
    for c in cols:  # one output array at a time stays in cache; NaN only where a symbol can lack bars
        arr = out[c] = np.empty((n, m)) if shared else np.full((n, m), np.nan)
        for j, s in enumerate(names):
            arr[rows[j], j] = series[s][c]
    if funding or mark:
        out.update(perp_fields(grid, names, funding=funding, mark=mark, timeframe=timeframe, what=what))
    market = Market.from_arrays(grid, names, **out)
    if exchange is not None:
        market.meta["exchange"] = exchange
    if funding:
        _attach_events(market, funding)
    return market


# ------------------------------------------------------------------------------------------------
# perpetuals: mark-price candles and funding rates as panel fields
#: panel fields of mark-price candles (NaN where a bar has no mark candle: nothing is invented)
MARK_FIELDS = ("mark_open", "mark_high", "mark_low", "mark_close")
#: panel fields of funding: the rate (fraction of the position's notional; longs pay when > 0) and
#: the exact funding timestamp (epoch ms as float64), both NaN at bars without a funding event
FUNDING_FIELDS = ("funding_rate", "funding_time")


class FundingEvents(tuple):
    """One symbol's exact funding events: ``time`` (int64 epoch ms), ``rate`` and ``mark_price``
    (float64; NaN where the exchange does not report the mark price at funding)."""

    __slots__ = ()

    def __new__(cls, time: np.ndarray, rate: np.ndarray, mark_price: np.ndarray) -> "FundingEvents":
        return tuple.__new__(cls, (time, rate, mark_price))

    time = property(lambda self: self[0])
    rate = property(lambda self: self[1])
    mark_price = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"FundingEvents({self.time.shape[0]} events)"


def _bar_ends(grid: np.ndarray, timeframe: str | None) -> np.ndarray:
    """Close instant of each bar: open + timeframe (calendar month for ``1M``), or the median step."""
    from ..timeframes import TIMEFRAME_MS

    if timeframe == "1M":
        months = grid.astype("datetime64[ms]").astype("datetime64[M]") + 1
        return months.astype("datetime64[ms]").astype(np.int64)
    step = TIMEFRAME_MS.get(timeframe) if timeframe else None
    if step is None:
        step = int(np.median(np.diff(grid))) if grid.shape[0] > 1 else None
    if step is None:
        return np.full(grid.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    return grid + int(step)


def _check_perp(kind: str, symbol: Any, arrays: Mapping[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """Validated copy of one symbol's funding or mark arrays; ValueError naming the field and the symbol."""
    from . import integrity
    from .layout import FUNDING_COLUMNS, MARK_COLUMNS

    cols = FUNDING_COLUMNS if kind == "funding" else MARK_COLUMNS
    missing = [c for c in ("time",) + cols if c not in arrays]
    if missing and not (kind == "funding" and missing == ["mark_price"]):
        raise ValueError(f"{what}: {kind}[{symbol!r}] lacks {missing}; expected {['time', *cols]}")
    t = np.asarray(arrays["time"])
    if t.dtype.kind not in "iu" or t.ndim != 1:
        raise TypeError(f"{what}: {kind}[{symbol!r}]['time'] must be 1-D int64 epoch ms, got {t.dtype} {t.shape}")
    a = {"time": t.astype(np.int64)}
    for c in cols:
        v = np.full(t.shape[0], np.nan) if c not in arrays else np.asarray(arrays[c], dtype=np.float64)
        if v.shape != t.shape:
            raise ValueError(f"{what}: {kind}[{symbol!r}][{c!r}] has shape {v.shape}, 'time' has {t.shape}")
        a[c] = v
    check = integrity.funding_problems if kind == "funding" else integrity.mark_problems
    problems = check(a, 0)
    if problems:
        raise ValueError(f"{what}: {kind} of {symbol}: " + "; ".join(problems))
    return a


def perp_fields(grid: np.ndarray, names: Sequence[Any], *, funding: Mapping[Any, Mapping] | None = None,
                mark: Mapping[Any, Mapping] | None = None, timeframe: str | None = None,
                what: str = "data") -> dict[str, np.ndarray]:
    """Panel fields of perpetual data on the bar grid ``grid`` (int64 open times) x ``names``.

    Representation (the engine's contract):

    - ``mark_open, mark_high, mark_low, mark_close``: the mark-price candle opening at the bar's
      open time, NaN where there is none (mark candles off the grid are left out). Absent mark
      candles are never replaced by last prices here; the engine says when it falls back.
    - ``funding_rate``: at the bar whose ``[open, close)`` contains a funding timestamp, the
      rate of that funding (fraction of notional per funding; longs pay a positive rate); the
      sum when several fundings fall in one bar (bars coarser than the funding interval). NaN
      at every other bar, so ``nansum`` over bars is the total rate, and a NaN is never 0 by
      accident.
    - ``funding_time``: the exact funding timestamp (epoch ms, float64: exact below 2**53) at
      the same bar, the last one when several fall in the bar; NaN elsewhere. The full list of
      events per symbol, with the mark price at funding when the exchange gives it, is
      ``Market.funding_events(symbol)`` (kept in ``meta["funding_events"]``), and all symbols'
      events flattened for a kernel, each with its bar, :func:`funding_schedule`.

    A funding timestamp in no bar (before the first, after the last bar's close, in a missing
    bar) enters no field. Bad input raises ``ValueError`` naming the field and the symbol:
    funding times out of order or duplicated, a non-finite rate, mark prices <= 0, and a
    funding or mark series of a symbol that is not in the data.
    """
    grid = np.asarray(grid, dtype=np.int64)
    n, m = grid.shape[0], len(names)
    pos = {s: j for j, s in enumerate(names)}
    out: dict[str, np.ndarray] = {}
    for kind, given in (("funding", funding), ("mark", mark)):
        unknown = [s for s in (given or {}) if s not in pos]
        if unknown:
            raise ValueError(f"{what}: {kind} given for {', '.join(map(str, unknown))}, not in the data's symbols "
                             f"{list(names)}")
    if mark:
        arrs = {f: np.full((n, m), np.nan) for f in MARK_FIELDS}
        for s, raw in mark.items():
            a = _check_perp("mark", s, raw, what)
            i = np.searchsorted(grid, a["time"])
            hit = (i < n) & (grid[np.minimum(i, n - 1)] == a["time"])
            for f in MARK_FIELDS:
                arrs[f][i[hit], pos[s]] = a[f[5:]][hit]
        out.update(arrs)
    if funding:
        rate, ftime = np.full((n, m), np.nan), np.full((n, m), np.nan)
        ends = _bar_ends(grid, timeframe)
        for s, raw in funding.items():
            a = _check_perp("funding", s, raw, what)
            t = a["time"]
            i = np.searchsorted(grid, t, side="right") - 1
            ok = (i >= 0) & (t < ends[np.maximum(i, 0)])
            j = pos[s]
            for row, ts, r in zip(i[ok].tolist(), t[ok].tolist(), a["rate"][ok].tolist()):
                rate[row, j] = r if np.isnan(rate[row, j]) else rate[row, j] + r
                ftime[row, j] = float(ts)
        out.update(funding_rate=rate, funding_time=ftime)
    return out


def _attach_events(market: Any, funding: Mapping[Any, Mapping[str, np.ndarray]]) -> None:
    """Keep each symbol's exact funding events in ``market.meta["funding_events"]`` (None: no series)."""
    import pandas as pd

    events = []
    for s in market.symbols:
        raw = funding.get(s)
        if raw is None:
            events.append(None)
            continue
        t = np.asarray(raw["time"], dtype=np.int64).copy()
        mp = raw.get("mark_price")
        events.append(FundingEvents(t, np.asarray(raw["rate"], dtype=np.float64).copy(),
                                    np.full(t.shape[0], np.nan) if mp is None
                                    else np.asarray(mp, dtype=np.float64).copy()))
    market.meta["funding_events"] = pd.Series(events, index=market.meta.index, dtype=object)


def funding_schedule(market: Any) -> dict[str, np.ndarray]:
    """Every funding event of ``market`` that falls in one of its bars, flattened for a kernel.

    Returns arrays sorted by time (ties by symbol column): ``bar`` (int64 row of the bar whose
    ``[open, close)`` contains the event), ``symbol`` (int64 column), ``time`` (int64 epoch ms),
    ``rate`` and ``mark_price`` (float64; NaN where the exchange gives no mark price at funding:
    use the mark candle of the bar, or the price if there is none). Several events in one bar stay
    separate, in time order. Empty arrays when the market has no funding.
    """
    empty = {"bar": np.empty(0, np.int64), "symbol": np.empty(0, np.int64), "time": np.empty(0, np.int64),
             "rate": np.empty(0), "mark_price": np.empty(0)}
    if "funding_events" not in market.meta.columns or market.time_ms is None or not len(market.time_ms):
        return empty
    grid = market.time_ms
    ends = _bar_ends(grid, market.timeframe if market.timeframe in _timeframes() else None)
    parts = []
    for j, ev in enumerate(market.meta["funding_events"].tolist()):
        if ev is None or not ev.time.shape[0]:
            continue
        i = np.searchsorted(grid, ev.time, side="right") - 1
        ok = (i >= 0) & (ev.time < ends[np.maximum(i, 0)])
        parts.append((i[ok], np.full(int(ok.sum()), j, dtype=np.int64), ev.time[ok], ev.rate[ok], ev.mark_price[ok]))
    if not parts:
        return empty
    cols = [np.concatenate(c) for c in zip(*parts)]
    order = np.lexsort((cols[1], cols[2]))
    return {k: v[order] for k, v in zip(("bar", "symbol", "time", "rate", "mark_price"), cols)}


def _timeframes() -> tuple[str, ...]:
    from ..timeframes import TIMEFRAMES

    return TIMEFRAMES


__all__ = ["market_from_series", "perp_fields", "funding_schedule", "FundingEvents", "MARK_FIELDS",
           "FUNDING_FIELDS"]
