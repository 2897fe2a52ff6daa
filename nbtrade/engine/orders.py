"""What a strategy can say beyond entry/exit signals (issue 15): the signals path's options for
accumulation, same-bar re-entry, per-entry sizes, indicator stops, time exits, a minimal-ROI table,
closing at the end and short borrow costs, validated into :class:`OrderOptions`.

Kept in one place, apart from the front ends: :func:`order_options` checks the keywords (every refusal
names the argument, and the bar and symbol where it depends on them), :meth:`OrderOptions.check_signals`
checks the per-bar values where the signals are, and the front end hands the kernel
:meth:`OrderOptions.config`, :meth:`OrderOptions.levels` and :meth:`OrderOptions.apply_params`. The
rules themselves are the kernel's (``kernels/engine.py``, module docstring, "Options").
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..panel import Market, align

__all__ = ["OrderOptions", "order_options", "order_levels", "ORDER_KEYWORDS"]

#: Keywords of :func:`nbtrade.backtest` handled here, with their defaults.
ORDER_KEYWORDS: dict[str, Any] = {
    "accumulate": False, "reenter": False, "finalize_trades": False, "entry_size": None, "ind_stop": None,
    "td_stop": None, "min_roi": None, "borrow_rate": 0.0,
}

_YEAR_MS = 365 * 24 * 3600 * 1000.0


@dataclass(frozen=True)
class OrderOptions:
    """Validated issue-15 options of a signals run (see :func:`order_options`)."""

    accumulate: bool = False
    reenter: bool = False
    finalize: bool = False
    #: bars x symbols entry sizes (NaN: the symbol's ``size``), or None
    entry_size: np.ndarray | None = None
    #: bars x symbols indicator stop levels (NaN: no value at that bar), or None
    ind_stop: np.ndarray | None = None
    #: time stop per symbol in bars (0: none), or None
    td_bars: np.ndarray | None = None
    #: minimal-ROI table ``(k, 2)``: rows ``(age in bars, return)`` by increasing age, or None
    roi: np.ndarray | None = None
    #: borrow rate per year and per bar, per symbol, or None
    borrow_year: np.ndarray | None = None
    borrow_bar: np.ndarray | None = None

    @property
    def used(self) -> bool:
        """Whether any option is set (else the run is exactly the plain signals run)."""
        return (self.accumulate or self.reenter or self.finalize or self.entry_size is not None
                or self.ind_stop is not None or self.td_bars is not None or self.roi is not None
                or self.borrow_bar is not None)

    @property
    def has_stops(self) -> bool:
        """Whether the options add exits checked inside a bar (one more order per entry, at most)."""
        return self.ind_stop is not None or self.td_bars is not None or self.roi is not None

    def config(self) -> dict:
        """Keyword options of ``records.make_config``."""
        return dict(accumulate=self.accumulate, reenter=self.reenter, finalize=self.finalize,
                    sizes=self.entry_size is not None, ind_stop=self.ind_stop is not None, roi=self.roi is not None,
                    borrow=self.borrow_bar is not None, time_stop=self.td_bars is not None)

    def levels(self) -> dict:
        """Keyword fields of ``records.Levels`` (the placeholders where unset)."""
        out = {}
        if self.entry_size is not None:
            out["size"] = self.entry_size
        if self.ind_stop is not None:
            out["stop_price"] = self.ind_stop
        if self.roi is not None:
            out["roi"] = self.roi
        return out

    def apply_params(self, params: np.ndarray) -> np.ndarray:
        """``param_dt`` records with the time stop (``td``) and borrow rate per bar (``borrow``) set (a copy
        when one is; else ``params`` itself)."""
        if self.td_bars is None and self.borrow_bar is None:
            return params
        out = params.copy()
        if self.td_bars is not None:
            out["td"] = self.td_bars
        if self.borrow_bar is not None:
            out["borrow"] = self.borrow_bar
        return out

    def check_signals(self, sig: Mapping[str, np.ndarray], has_short: bool, close: np.ndarray, index: Any,
                      symbols: list) -> None:
        """Per-bar values where they are read: ``entry_size`` finite and > 0 at every entry signal (NaN:
        the symbol's size), ``ind_stop`` below the close of a long entry's signal bar and above a short's
        (a stop on the wrong side would exit at once); errors name the bar and the symbol."""
        long_e = sig["entries"]
        short_e = sig["short_entries"] if has_short else None
        if self.entry_size is not None:
            at = long_e | short_e if short_e is not None else long_e
            v = self.entry_size
            with np.errstate(invalid="ignore"):
                bad = at & ~np.isnan(v) & ~(v > 0)
            if bad.any():
                t, j = np.argwhere(bad)[0]
                raise ValueError(f"entry_size must be > 0 at every entry signal (NaN: the symbol's size); got "
                                 f"{v[t, j]} at {index[t]} ({symbols[j]})")
        if self.ind_stop is not None:
            v = self.ind_stop
            with np.errstate(invalid="ignore"):
                bad_long = long_e & (v >= close)
                bad_short = (short_e & (v <= close)) if short_e is not None else None
            for bad, side, where in ((bad_long, "long", "below"), (bad_short, "short", "above")):
                if bad is not None and bad.any():
                    t, j = np.argwhere(bad)[0]
                    raise ValueError(f"ind_stop must be {where} the close at a {side} entry signal (a stop on the "
                                     f"wrong side exits at once); got {v[t, j]} vs close {close[t, j]} at "
                                     f"{index[t]} ({symbols[j]})")

    def describe(self, symbols: list) -> dict:
        """Lines of ``Result.assumptions`` for the options set."""
        out: dict[str, Any] = {}
        if self.accumulate:
            out["accumulate"] = ("entries in the position's direction add at market; average entry price "
                                 "size-weighted, stops from it; age from the first entry")
        if self.reenter:
            out["reenter"] = "exit + entry of the position's direction on one bar: close, then a new trade"
        if self.entry_size is not None:
            out["entry_size"] = "per bar (NaN: size)"
        if self.ind_stop is not None:
            out["ind_stop"] = ("level from the signal bar's value, ratcheted in the position's favour by each "
                               "bar's value from the next bar; tightest of sl, trail and ind_stop rules")
        if self.td_bars is not None:
            out["td_stop"] = _describe(self.td_bars, symbols, "bars")
        if self.roi is not None:
            out["min_roi"] = {int(a): float(r) for a, r in self.roi}
        if self.borrow_year is not None:
            out["borrow_rate"] = _describe(self.borrow_year, symbols, "per year, on a short's notional at each close")
        if self.finalize:
            out["open_trades"] = "closed at the last valid close by a market order (fees, slippage): exit_reason 'final'"
        return out


def _describe(arr: np.ndarray, symbols: list, unit: str) -> Any:
    if (arr == arr[0]).all():
        return f"{arr[0]:g} {unit}"
    return {s: f"{v:g} {unit}" for s, v in zip(symbols, arr)}


def _bool(x: Any, name: str) -> bool:
    if not isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {x!r}")
    return bool(x)


def _bars(x: Any, name: str, freq_ms: float | None) -> float:
    """A duration as a number of bars: an int (bars) or a duration (``"4h"``, Timedelta) rounded up to
    whole bars (a trade of ``k`` bars has lasted ``k * freq``)."""
    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number of bars (int) or a duration such as '4h', got {x!r}")
    if isinstance(x, (int, np.integer)):
        if x < 0:
            raise ValueError(f"{name} must be >= 0 bars, got {x}")
        return float(x)
    if isinstance(x, (float, np.floating)):
        if not (math.isfinite(x) and x >= 0 and float(x).is_integer()):
            raise ValueError(f"{name} must be a whole number of bars >= 0 or a duration such as '4h', got {x!r}")
        return float(x)
    try:
        td = pd.Timedelta(x)
    except (ValueError, TypeError):
        raise ValueError(f"{name} must be a number of bars (int) or a duration such as '4h', got {x!r}") from None
    if td < pd.Timedelta(0):
        raise ValueError(f"{name} must not be negative, got {x!r}")
    if freq_ms is None:
        raise ValueError(f"{name}={x!r} is a duration: give freq= (bar length) or a number of bars")
    return float(math.ceil(td / pd.Timedelta(milliseconds=freq_ms) - 1e-9))


def _per_symbol_rate(x: Any, name: str, symbols: list) -> np.ndarray:
    m = len(symbols)
    if isinstance(x, Mapping):
        unknown = set(x) - set(symbols)
        if unknown:
            raise ValueError(f"{name}: unknown symbols {sorted(map(str, unknown))}")
        arr = np.array([float(x.get(s, 0.0)) for s in symbols])
    elif isinstance(x, pd.Series):
        arr = x.reindex(symbols).fillna(0.0).to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(m, float(arr))
        elif arr.shape != (m,):
            raise ValueError(f"{name} must be a number, a {{symbol: value}} mapping or one value per symbol ({m})")
    bad = ~np.isfinite(arr) | (arr < 0)
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"{name} must be finite and >= 0 (a fraction per year, 0.05 = 5 %), got {arr[j]} "
                         f"({symbols[j]})")
    return arr


def order_options(market: Market, *, size_type: str, order_type: str, freq_ms: float | None, mode: str = "signals",
                  accumulate: Any = False, reenter: Any = False, finalize_trades: Any = False, entry_size: Any = None,
                  ind_stop: Any = None, td_stop: Any = None, min_roi: Any = None, borrow_rate: Any = 0.0
                  ) -> OrderOptions:
    """Validate the issue-15 keywords of a run on ``market``.

    ``accumulate``: bool; with ``size_type='target_percent'`` refused (a target is a whole position, not
    an add: use ``'percent'``, ``'value'`` or ``'amount'``), with resting entry types refused (adds fill at
    market). ``entry_size``: bars x symbols (NaN: ``size``). ``ind_stop``: bars x symbols stop levels (> 0
    where set). ``td_stop``: bars (int) or a duration, per symbol as a mapping. ``min_roi``: ``{age:
    return}``, ages in bars (int), durations (``"30min"``, Timedelta) or freqtrade's minute strings
    (``"20"``); returns > -1. ``borrow_rate``: fraction per year (>= 0), per symbol allowed; needs the bar
    length (``freq``). ``mode="callback"`` refuses the bars x symbols inputs (a callback sets them per order).
    """
    syms = list(market.symbols)
    n, m = market.shape
    accumulate = _bool(accumulate, "accumulate")
    reenter = _bool(reenter, "reenter")
    finalize = _bool(finalize_trades, "finalize_trades")
    arrays = [k for k, v in (("entry_size", entry_size), ("ind_stop", ind_stop)) if v is not None]
    if mode == "callback" and arrays:
        raise ValueError(f"{', '.join(arrays)}: bars x symbols inputs of the signals path; a callback sets them per "
                         f"order (nbtrade.kernels.callback.order_nb / trail_stop_nb)")
    if accumulate and size_type == "target_percent":
        raise ValueError("accumulate=True cannot be combined with size_type='target_percent': a target is the "
                         "whole position, not an add; use size_type='percent', 'value' or 'amount' (each add is "
                         "sized on its own)")
    if accumulate and order_type != "market":
        raise ValueError(f"accumulate=True needs order_type='market' (adds fill at market), got {order_type!r}")
    es = None
    if entry_size is not None:
        es = align(entry_size, market, "entry_size", "float")
        if np.isinf(es).any():
            raise ValueError("entry_size must not contain inf")
        if size_type == "percent":
            with np.errstate(invalid="ignore"):
                if (es > 1).any():
                    t, j = np.argwhere(es > 1)[0]
                    raise ValueError(f"entry_size must be <= 1 with size_type='percent' (a fraction of the free "
                                     f"cash), got {es[t, j]} at {market.index[t]} ({syms[j]})")
    stops = None
    if ind_stop is not None:
        stops = align(ind_stop, market, "ind_stop", "float")
        with np.errstate(invalid="ignore"):
            bad = np.isinf(stops) | (stops <= 0)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"ind_stop must be finite and > 0 where set (NaN: no value), got {stops[t, j]} at "
                             f"{market.index[t]} ({syms[j]})")
    td = None
    if td_stop is not None:
        if isinstance(td_stop, Mapping):
            unknown = set(td_stop) - set(syms)
            if unknown:
                raise ValueError(f"td_stop: unknown symbols {sorted(map(str, unknown))}")
            td = np.array([_bars(td_stop[s], f"td_stop[{s!r}]", freq_ms) if s in td_stop else 0.0 for s in syms])
        else:
            td = np.full(m, _bars(td_stop, "td_stop", freq_ms))
        if (td == 0).any() and not isinstance(td_stop, Mapping):
            raise ValueError(f"td_stop must be at least one bar, got {td_stop!r}")
    roi = None
    if min_roi is not None:
        if not isinstance(min_roi, Mapping) or not min_roi:
            raise ValueError("min_roi must be a non-empty {trade age: minimal return} mapping, e.g. "
                             "{0: 0.04, 20: 0.02, 40: 0.0} (ages in bars, or durations such as '30min')")
        rows = []
        for age, r in min_roi.items():
            if isinstance(age, str) and age.strip().isdigit():  # freqtrade: minutes as strings
                age = pd.Timedelta(minutes=int(age))
            a = _bars(age, f"min_roi key {age!r}", freq_ms)
            try:
                r = float(r)
            except (TypeError, ValueError):
                raise ValueError(f"min_roi[{age!r}] must be a number (a return, 0.02 = 2 %), got {r!r}") from None
            if not (math.isfinite(r) and r > -1):
                raise ValueError(f"min_roi[{age!r}] must be a finite return > -1, got {r!r}")
            rows.append((a, r))
        rows.sort()
        if len({a for a, _ in rows}) != len(rows):
            raise ValueError("min_roi has two entries for the same age in bars")
        roi = np.ascontiguousarray(np.array(rows, dtype=np.float64))
    b_year = b_bar = None
    rates = _per_symbol_rate(borrow_rate, "borrow_rate", syms)
    if (rates > 0).any():
        if freq_ms is None:
            raise ValueError("borrow_rate is per year: give freq= (bar length) to charge it per bar")
        b_year, b_bar = rates, rates * (freq_ms / _YEAR_MS)
    return OrderOptions(accumulate, reenter, finalize, es, stops, td, roi, b_year, b_bar)


def order_levels(orders: OrderOptions | None) -> Any:
    """The kernels' ``Levels.extra``: None without per-order arrays (the plain runs' compiled code), else a
    ``records.OrderLevels`` with placeholders for the fields not given."""
    if orders is None or (orders.entry_size is None and orders.ind_stop is None and orders.roi is None):
        return None
    from ..kernels.records import OrderLevels

    nan = np.full((1, 1), np.nan)
    return OrderLevels(nan if orders.entry_size is None else orders.entry_size,
                       nan if orders.ind_stop is None else orders.ind_stop,
                       np.ones((1, 2)) if orders.roi is None else orders.roi)
