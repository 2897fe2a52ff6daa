"""Record dtypes and integer enums shared by the engine kernels and the Python layer.

Records are aligned numpy structured dtypes with ``id, col, idx`` first; kernels
store bar indices (``idx``) and column numbers (``col``), the Python layer maps
them to timestamps and symbols. Enums are NamedTuples of ints, usable inside
``@njit`` code (numba freezes them as constants) and from Python
(``Side.BUY``, ``Side._fields[rec["side"]]``).

The bar loops take their inputs in a few groups, in the spirit of vectorbt's
``execute_order_nb(state, order)``: :class:`Prices` and :class:`Signals` (named tuples
of ``(n_bars, n_cols)`` arrays), :class:`Levels` (per-bar order inputs), :class:`Config`
(scalar settings), ``params`` (one :data:`param_dt` record per column), the per-column
state (:data:`col_state_dt`, :data:`rebalance_state_dt`) and :data:`counts_dt` counters.
Named tuples and records are cacheable numba types; both are built by the Python layer.
"""
from __future__ import annotations

from collections import namedtuple
from typing import NamedTuple

import numpy as np

i8, f8 = np.int64, np.float64


class SideT(NamedTuple):
    BUY: int
    SELL: int


#: Side of an order.
Side = SideT(*range(2))


class OrderTypeT(NamedTuple):
    MARKET: int
    LIMIT: int
    STOP: int
    STOP_LIMIT: int
    STOP_LOSS: int
    TAKE_PROFIT: int
    TRAILING_STOP: int


#: What created an order: a market order from a signal, a resting order, or an attached stop.
OrderType = OrderTypeT(*range(7))


class StatusT(NamedTuple):
    FILLED: int
    REJECTED: int
    CANCELLED: int
    EXPIRED: int
    OPEN: int


#: Outcome of an order. ``CANCELLED``: a resting entry replaced by a new entry signal or
#: cancelled by an exit signal of its side; ``EXPIRED``: its time in force ran out;
#: ``OPEN``: still resting when the data ended.
Status = StatusT(*range(5))


class RejectReasonT(NamedTuple):
    NONE: int
    NO_DATA: int
    INSUFFICIENT_CASH: int
    LOT_SIZE: int
    MIN_QTY: int
    MIN_NOTIONAL: int
    LEVERAGE: int


#: Why an order was rejected (``NONE`` for filled orders).
#: ``NO_DATA``: the bar that should fill it has no candle (NaN) and the order could not wait
#: for the next one (none before the data ends, a reversal with resting entries, a rebalance);
#: ``INSUFFICIENT_CASH``: cost + fees exceed the available margin;
#: ``LOT_SIZE``: the size rounds down to zero lots; ``MIN_QTY`` / ``MIN_NOTIONAL``:
#: below the exchange filters; ``LEVERAGE``: the run's leverage is above the ``max_leverage`` of the
#: maintenance tier of the resulting position's notional (margin rule, ``Option.MARGIN``).
RejectReason = RejectReasonT(*range(7))


class DirectionT(NamedTuple):
    LONG: int
    SHORT: int


#: Direction of a trade.
Direction = DirectionT(*range(2))


class ExitReasonT(NamedTuple):
    SIGNAL: int
    SL: int
    TP: int
    TRAIL: int
    END: int
    TIME: int
    ROI: int
    IND_STOP: int
    FINAL: int
    LIQUIDATION: int


#: Why a trade closed; ``END``: still open at the last bar, marked to the last valid close (no
#: order); ``TIME``: its age reached ``td_stop``; ``ROI``: the minimal-ROI table's return for its
#: age was reached; ``IND_STOP``: the indicator stop (``stop_price``) was hit; ``FINAL``: closed by
#: a market order at the last valid close (``finalize_trades``); ``LIQUIDATION``: the position reached
#: its liquidation price (margin rule of ``nbtrade.margin``, ``Option.MARGIN``).
ExitReason = ExitReasonT(*range(10))


class FillModeT(NamedTuple):
    NEXT_OPEN: int
    CLOSE: int


#: When orders from a bar's signals fill: next bar's open (default) or this bar's close.
FillMode = FillModeT(*range(2))


class SizeTypeT(NamedTuple):
    AMOUNT: int
    VALUE: int
    PERCENT: int
    TARGET_PERCENT: int


#: How ``size`` is read: base units, quote value, fraction of available margin, fraction of equity.
SizeType = SizeTypeT(*range(4))


class IntrabarT(NamedTuple):
    PESSIMISTIC: int
    OPTIMISTIC: int


#: Which of stop-loss and take-profit fills first when one bar touches both.
Intrabar = IntrabarT(*range(2))


order_dt = np.dtype([
    ("id", i8), ("col", i8), ("idx", i8), ("side", i8),
    ("size", f8), ("price", f8), ("fees", f8),
    ("type", i8), ("status", i8), ("reason", i8),
], align=True)
"""One order: filled or rejected. ``size`` > 0 in base units; for a rejected order
``size`` is the requested size (NaN when it could not be computed) and ``fees`` 0."""

trade_dt = np.dtype([
    ("id", i8), ("col", i8), ("entry_idx", i8), ("exit_idx", i8), ("direction", i8),
    ("size", f8), ("entry_price", f8), ("exit_price", f8), ("entry_fees", f8), ("exit_fees", f8),
    ("pnl", f8), ("ret", f8), ("exit_reason", i8), ("borrow", f8),
], align=True)
"""One round trip: entry to full exit. ``pnl`` is net of both legs' fees and of the ``borrow`` cost
of a short (quote currency, charged bar by bar while it was open), ``ret`` = ``pnl / (entry_price * size)``.
With accumulation (``accumulate``) ``entry_idx`` is the first entry's bar and ``entry_price`` the
size-weighted average entry price (fees excluded) of the combined position."""


#: Most maintenance tiers a symbol's table may have (``param_dt.t_*``).
MAX_TIERS = 16

param_dt = np.dtype([
    ("size", f8), ("fees", f8), ("fixed_fees", f8), ("slippage", f8), ("sl", f8), ("tp", f8), ("trail", f8),
    ("lot", f8), ("min_qty", f8), ("min_notional", f8), ("maker_fees", f8), ("slip_range", f8),
    ("slip_volume", f8), ("td", f8), ("borrow", f8),
    ("liq_fee", f8), ("lev", f8), ("t_n", i8), ("t_floor", f8, (MAX_TIERS,)), ("t_cap", f8, (MAX_TIERS,)),
    ("t_mmr", f8, (MAX_TIERS,)), ("t_cum", f8, (MAX_TIERS,)), ("t_lev", f8, (MAX_TIERS,)),
], align=True)
"""Order parameters of one column. Stops ``sl``, ``tp``, ``trail`` are fractions of the entry price
(NaN: unset); ``maker_fees``: fee rate of resting limit entries (NaN: use ``fees``); ``slip_range``:
extra adverse slippage as a fraction of the last complete bar's high - low; ``slip_volume``: volume
impact coefficient (square-root law, ``fills.impact_price_nb``); ``td``: time stop, bars a trade may
stay open (NaN: unset); ``borrow``: borrow rate of a short per bar (fraction of the short's notional at
each close, 0: none). Margin rule (``Option.MARGIN``, ``nbtrade.margin``): ``liq_fee`` the liquidation fee
rate (NaN: the remaining maintenance margin is forfeited), ``lev`` the column's leverage (margin runs read
it instead of ``Config.leverage``; 0: unset, ``Config.leverage``), ``t_n`` tiers of the maintenance table in
``t_floor``, ``t_cap``, ``t_mmr``, ``t_cum``, ``t_lev`` (max leverage; padded to :data:`MAX_TIERS`)."""

col_state_dt = np.dtype([
    ("pos", f8), ("mark", f8), ("group", i8), ("wait", i8), ("pend_dir", i8),  # read every bar: one cache line
    ("avg", f8), ("extreme", f8), ("entry_fees", f8), ("entry_idx", i8), ("sl_abs", f8), ("tp_abs", f8),
    ("pend_bar", i8), ("pend_trig", np.bool_), ("pend_type", np.int8), ("pend_price", f8), ("pend_limit", f8),
    ("range", f8), ("volume", f8), ("wait_frac", f8), ("ind_stop", f8), ("borrow", f8), ("pend_size", f8),
    ("margin", f8), ("liq", f8),
], align=True)
"""State of one column in the signals and callback loops: signed position ``pos``; ``mark``, the
last valid close (valuation only); ``avg``, ``entry_idx``, ``entry_fees`` of the open position;
``extreme``: trailing peak (trough) before the current bar; ``sl_abs``/``tp_abs``: absolute stop
levels of the current/next entry (NaN: use the percent stops). Resting entry: ``pend_dir`` (0 none,
+1/-1), ``pend_bar`` (signal bar), ``pend_trig`` (stop-limit armed), ``pend_price``, ``pend_limit``.
``range``/``volume``: high - low and volume (> 0) of the last complete bar (slippage models);
``group``: the column's cash account (index into ``acct``); ``wait``: the signal bar of an order
waiting for the column's next candle (-1: none), ``wait_frac`` its exit fraction (callback).
``ind_stop``: the indicator stop level of the open position (ratcheted, NaN: none); ``borrow``: borrow
cost accrued by the open short (quote); ``pend_size``: the size of the resting entry; ``margin``: the
isolated margin of the open position (entry notional / leverage, quote); ``liq``: its liquidation
price (NaN: to be computed; ``Option.MARGIN`` runs only); ``pend_type``: the ``OrderType`` of the resting
entry (int8 in ``pend_trig``'s padding: the record keeps its size; set where an entry is placed, -1: the
run's ``Config.order_type``)."""

rebalance_state_dt = np.dtype([
    ("pos", f8), ("mark", f8), ("entry_idx", i8), ("entry_notional", f8), ("entry_qty", f8),
    ("exit_notional", f8), ("entry_fees", f8), ("exit_fees", f8), ("wait", i8), ("target", f8),
], align=True)
"""State of one column in the weights loop: position, mark (last valid close), books of the open
round trip; ``wait``: the bar whose target weight waits for the column's next candle (-1: none);
``target``: the weight traded by the rebalance being run (scratch, NaN: none)."""

counts_dt = np.dtype([
    ("orders", i8), ("trades", i8), ("delayed", i8), ("waiting", i8), ("rejected", i8, (len(RejectReason),)),
], align=True)
"""Counters of a bar loop (one record): orders and trades written (the used prefix of each record
buffer), orders that waited for a later candle (``delayed``; ``waiting``: columns waiting now),
rejected orders by ``RejectReason`` (the Python layer warns without a pass over the records)."""

#: Bars x symbols price arrays of a run; ``volume`` is read only for volume impact (else any array).
Prices = namedtuple("Prices", ["open", "high", "low", "close", "volume"])
#: Bars x symbols bool signals; without short signals the short fields alias ``entries`` (not read).
Signals = namedtuple("Signals", ["entries", "exits", "short_entries", "short_exits"])
#: Per-bar order inputs read at a signal's bar ``s``: resting entries' ``order_price`` and
#: ``limit_price`` (stop-limit), absolute ``sl_price``/``tp_price`` (NaN: unset) and ``exit_size``,
#: the fraction an exit closes (one row: per column). Unused ones may be ``(1, 1)`` placeholders.
#: ``extra``: None (default), or the :class:`OrderLevels` of a run using them. None has no size:
#: a run without them passes the kernels the same arguments as before they existed (each array
#: argument of a kernel call is copied on every call), and numba compiles it apart.
#: ``marks``: None (the price candles are the mark), or the :class:`Marks` a perpetual run checks
#: liquidation against (``Option.MARGIN``).
Levels = namedtuple("Levels", ["order_price", "limit_price", "sl_price", "tp_price", "exit_size", "extra", "marks"],
                    defaults=(None, None))
#: Mark-price candles ``(n_bars, n_cols)`` (open, high, low; NaN: no mark candle at that bar) of a
#: perpetual run (spot columns carry their price candles), and its funding, one row per bar holding a
#: funding event: ``f_bar`` ``(k,)`` int64 those bars (sorted, unique); ``f_open[r, c]`` the sum of
#: ``rate * mark`` of the events at bar ``f_bar[r]``'s open time, ``f_in[r, c]`` of those strictly
#: inside it (``(k, n_cols)``); ``flows`` (output ``(k, n_cols)``, zeroed by the caller) the funding
#: cash flows booked; ``cross``: the perpetuals share one cross wallet (else isolated margin; None: isolated, and
#: the kernels compile without the cross-margin code, as ``nbtrade.one_variant`` passes it), ``scratch``
#: a ``(11, n_cols)`` float64 work array of the cross check and funding (the bar loops do not allocate).
Marks = namedtuple("Marks", ["open", "high", "low", "f_bar", "f_open", "f_in", "flows", "cross", "scratch"],
                   defaults=(False, None))
#: Per-order inputs of issue 15: ``size``, the entry's size at its signal bar (NaN: the column's
#: ``param_dt.size``; read with ``Config.sizes``); ``stop_price``, the indicator stop read at every bar
#: (``Config.ind_stop``); ``roi``, the minimal-ROI table, ``(k, 2)`` rows ``(age in bars, return)`` by
#: increasing age (``Config.roi``). Unused ones may be ``(1, 1)`` placeholders. ``entry_type``: None (default:
#: every entry has the run's ``Config.order_type``), or ``(n_bars, n_cols)`` int64 ``OrderType`` codes
#: (``MARKET``..``STOP_LIMIT``; < 0: the run's type), the type of the entry signalled at bar ``s``
#: (``Option.ENTRY_TYPES``; a run without it compiles without the reads).
OrderLevels = namedtuple("OrderLevels", ["size", "stop_price", "roi", "entry_type"], defaults=(None,))
#: A run's mutable books: per-column ``state`` (:data:`col_state_dt` or :data:`rebalance_state_dt`),
#: ``acct`` cash per account, ``counts`` (one :data:`counts_dt` record), ``orders`` and ``trades``
#: record buffers (``order_dt``, ``trade_dt``). Kept by the caller so that a run can resume with
#: larger buffers.
Books = namedtuple("Books", ["state", "acct", "counts", "orders", "trades"])
#: Scalar settings of a run: ``size_type`` (``SizeType``), ``leverage``, ``fill_mode`` (``FillMode``),
#: ``intrabar`` (``Intrabar``), ``order_type`` (``OrderType`` of entries), ``tif`` (bars a resting
#: entry lives, 0: until filled), ``has_short`` (short signals given), ``abs_stops`` (``sl_price``/
#: ``tp_price`` given), ``partial`` (``exit_size`` given); ``options``: bits of :data:`Option` (0 by
#: default: a run without them takes the paths it took before they existed).
Config = namedtuple("Config", ["size_type", "leverage", "fill_mode", "intrabar", "order_type", "tif", "has_short",
                               "abs_stops", "partial", "options"])


class OptionT(NamedTuple):
    ACCUMULATE: int
    REENTER: int
    FINALIZE: int
    SIZES: int
    IND_STOP: int
    ROI: int
    BORROW: int
    TIME_STOP: int
    MARGIN: int
    ENTRY_TYPES: int


#: Bits of ``Config.options`` (one int: a run passes the kernels one argument for all of them, and
#: 0 in runs without them): ``ACCUMULATE`` (an entry in the position's direction adds to it),
#: ``REENTER`` (an exit and an entry of the position's direction on one bar close it and open a new
#: trade), ``FINALIZE`` (close open positions at the last valid close, exit reason ``FINAL``),
#: ``SIZES`` (``OrderLevels.size`` given), ``IND_STOP`` (``OrderLevels.stop_price`` given), ``ROI``
#: (``OrderLevels.roi`` given), ``BORROW`` (a column has ``param_dt.borrow`` > 0), ``TIME_STOP`` (a
#: column has ``param_dt.td`` > 0), ``MARGIN`` (spot leverage > 1 or shorts: isolated margin rule,
#: liquidation at the liquidation price, ``nbtrade.margin``), ``ENTRY_TYPES`` (``OrderLevels.entry_type``
#: given: each entry's own order type).
Option = OptionT(*(1 << k for k in range(10)))

class CapT(NamedTuple):
    STOPS: int
    PENDING: int
    EXTRA: int
    MARGIN: int
    BORROW: int
    FINALIZE: int


#: What a signals run may use, as bits of a :class:`Config` class's ``CAPS`` (compile-time: numba compiles
#: the signals loop once per ``Config`` class, without the phases a class leaves out): ``STOPS`` (percent,
#: trailing or absolute stops), ``PENDING`` (resting entries), ``EXTRA`` (indicator stop, minimal ROI, time
#: stops), ``MARGIN``, ``BORROW``, ``FINALIZE`` (the ``Option`` bits of those names). :class:`Config` itself
#: has them all (any run); :func:`config_variant` gives the class of a run's own set.
Cap = CapT(*(1 << k for k in range(6)))
ALL_CAPS = (1 << len(Cap)) - 1
Config.CAPS = ALL_CAPS
_VARIANTS: dict[int, type] = {ALL_CAPS: Config}


def _variant_class(caps: int) -> type:
    """The :class:`Config` subclass of ``caps`` (module-level names ``Config_<caps>``: numba's cache pickles
    a signature's classes by name)."""
    cls = _VARIANTS.get(caps)
    if cls is None:
        name = f"Config_{caps}"
        cls = type(name, (Config,), {"__slots__": (), "CAPS": caps, "__module__": __name__,
                                     "__doc__": f"A :class:`Config` whose run uses only the ``Cap`` bits {caps}."})
        globals()[name] = cls
        _VARIANTS[caps] = cls
    return cls


for _caps in range(ALL_CAPS):
    _variant_class(_caps)


def run_caps(cfg: Config, params: np.ndarray) -> int:
    """The :data:`Cap` bits a signals run of ``cfg`` and ``params`` (``param_dt`` per column) uses."""
    caps = 0
    if cfg.abs_stops or (len(params) and not (np.isnan(params["sl"]).all() and np.isnan(params["tp"]).all()
                                               and np.isnan(params["trail"]).all())):
        caps |= Cap.STOPS
    if cfg.order_type != OrderType.MARKET or cfg.options & Option.ENTRY_TYPES:
        caps |= Cap.PENDING
    if cfg.options & (Option.IND_STOP | Option.ROI | Option.TIME_STOP):
        caps |= Cap.EXTRA
    for bit, cap in ((Option.MARGIN, Cap.MARGIN), (Option.BORROW, Cap.BORROW), (Option.FINALIZE, Cap.FINALIZE)):
        if cfg.options & bit:
            caps |= cap
    return caps


def config_variant(cfg: Config, caps: int) -> Config:
    """``cfg`` as the :class:`Config` class of ``caps`` (same values): kernels given it compile only the
    phases of those capabilities. ``ALL_CAPS``: a plain :class:`Config`."""
    return _variant_class(int(caps))(*cfg)


#: Keyword names of :func:`make_config`'s options, in ``Option`` order.
EXTRA_CONFIG = tuple(f.lower() for f in OptionT._fields)


def make_config(size_type: int, leverage: float, fill_mode: int, intrabar: int, order_type: int, tif: int,
                has_short: bool, abs_stops: bool, partial: bool, **extra: bool) -> Config:
    """A :class:`Config` with fixed scalar types (one compiled signature whatever the caller passed);
    ``extra``: the options of :data:`Option` by lower-case name (``accumulate=True``...; False unless given)."""
    unknown = set(extra) - set(EXTRA_CONFIG)
    if unknown:
        raise TypeError(f"make_config: unknown options {sorted(unknown)}")
    options = sum(bit for name, bit in zip(EXTRA_CONFIG, Option) if extra.get(name, False))
    return Config(int(size_type), float(leverage), int(fill_mode), int(intrabar), int(order_type), int(tif),
                  bool(has_short), bool(abs_stops), bool(partial), int(options))


def new_state(groups) -> np.ndarray:
    """Initial :data:`col_state_dt` state of the columns; ``groups`` their cash accounts."""
    st = np.zeros(len(groups), dtype=col_state_dt)
    st["group"] = groups
    st["wait"] = -1
    st["wait_frac"] = 1.0
    st["ind_stop"] = np.nan
    st["liq"] = np.nan
    st["pend_type"] = -1
    return st
