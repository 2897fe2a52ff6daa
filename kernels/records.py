"""Record dtypes and integer enums shared by the engine kernels and the Python layer.

Records are aligned numpy structured dtypes with ``id, col, idx`` first; kernels
store bar indices (``idx``) and column numbers (``col``), the Python layer maps
them to timestamps and symbols. Enums are NamedTuples of ints, usable inside
``@njit`` code (numba freezes them as constants) and from Python
(``Side.BUY``, ``Side._fields[rec["side"]]``).
"""
from __future__ import annotations

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


#: Why an order was rejected (``NONE`` for filled orders).
#: ``NO_DATA``: the bar that should fill it has no candle (NaN) and the order could not wait
#: for the next one (none before the data ends, a reversal with resting entries, a rebalance);
#: ``INSUFFICIENT_CASH``: cost + fees exceed the available margin;
#: ``LOT_SIZE``: the size rounds down to zero lots; ``MIN_QTY`` / ``MIN_NOTIONAL``:
#: below the exchange filters.
RejectReason = RejectReasonT(*range(6))


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


#: Why a trade closed; ``END``: still open at the last bar, marked to the last valid close.
ExitReason = ExitReasonT(*range(5))


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
    ("pnl", f8), ("ret", f8), ("exit_reason", i8),
], align=True)
"""One round trip: entry to full exit. ``pnl`` is net of both legs' fees,
``ret`` = ``pnl / (entry_price * size)``."""
