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
                       columns: Sequence[str] | None = None, what: str = "data") -> Any:
    """A :class:`~nbtrade.panel.Market` from ``{symbol: {"time": ms, column: values}}``.

    Parameters
    ----------
    series : per symbol, int64 epoch-ms open times (sorted, unique) and value arrays of the same length.
    exchange : written into the market's ``meta["exchange"]`` when given.
    columns : the value columns to keep (default: those of the first symbol). ``close`` is
        required; open/high/low come all together or not at all.
    what : how error messages name the source (``"store binance 1h"``, ``"fetch result"``...).

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
    market = Market.from_arrays(grid, names, **out)
    if exchange is not None:
        market.meta["exchange"] = exchange
    return market


__all__ = ["market_from_series"]
