"""Fill rules of the engine: slippage, fees, entry sizing with exchange filters, stop triggers.

Small scalar kernels, one rule each, called from the bar loop in ``engine.py``.
The rules (the Python reference engine in ``tests/engine`` restates them):

* slippage moves every fill price against the trader: buys at ``p * (1 + slip)``,
  sells at ``p * (1 - slip)``, stop fills included; volume impact adds
  ``p * min(k * sqrt(qty / volume), MAX_IMPACT)`` (``impact_price_nb``);
* fees per order: ``size * price * fee + fixed_fee``, on entries and exits;
* stop levels come from the average entry price (slippage included): a long's
  stop-loss sits at ``entry * (1 - sl)``, its take-profit at ``entry * (1 + tp)``,
  its trailing stop at ``peak * (1 - trail)`` where ``peak`` is the highest of the
  entry price and the highs of the bars from entry *before* the current bar
  (the current bar's high cannot move the level it is checked against: no
  same-bar look-ahead). Shorts mirror this with lows;
* triggers are inclusive (``low <= level`` for a long stop); a bar that opens
  beyond a level (a gap) fills at the open; when one bar touches the stop side
  and the take-profit, the stop side is assumed first (pessimistic) unless the
  optimistic rule is chosen. Trailing and fixed stop-loss: the tighter level
  rules (the fixed one on ties);
* resting entries (``pending_fill_nb``): a limit buy fills at ``min(open, limit)``
  once ``low <= limit``; a stop buy at ``max(open, stop)`` once ``high >= stop``
  (sells mirror this); stop-limit: ``stop_limit_fill_nb``.
"""
from __future__ import annotations

import numpy as np

from ._jit import ijit, jit
from .records import ExitReason, RejectReason, SizeType

# Helpers called once per order are ``@ijit``: inlined into their callers at numba IR level,
# which saves the call (arguments, array structs) and made an order ~25 % cheaper.

#: Tolerance of the cash check and of lot rounding (relative): absorbs float
#: round-off of all-in sizing, e.g. ``0.3 / 0.1 = 2.9999999999999996`` lots.
EPS = 1e-9


@ijit
def slip_price_nb(price, is_buy, slippage):
    """Fill price after slippage, adverse to the trader."""
    if is_buy:
        return price * (1.0 + slippage)
    return price * (1.0 - slippage)


@ijit
def order_fees_nb(size, price, fee, fixed_fee):
    """Fees of one order in quote currency: percentage of notional plus a fixed amount."""
    return size * price * fee + fixed_fee


#: Cap of the volume impact as a fraction of the price: the square-root law describes orders
#: that are a modest part of what trades; past the cap the order dwarfs the bar's volume.
MAX_IMPACT = 0.5


@ijit
def impact_price_nb(price, base, impact, qty, is_buy):
    """``price`` moved against the trader by the volume impact ``base * min(impact * sqrt(qty), MAX_IMPACT)``.

    ``impact`` is ``slippage_volume / sqrt(volume)`` of the last complete bar (0: none), so the
    move is ``slippage_volume * sqrt(qty / volume)`` of the price: the square-root law.
    """
    move = base * min(impact * np.sqrt(qty), MAX_IMPACT)
    if is_buy:
        return price + move
    return price - move


@ijit
def impact_units_nb(notional, price, base, impact):
    """Units ``q`` of a buy worth ``notional`` at its own impacted price, solving
    ``q * (price + base * min(impact * sqrt(q), MAX_IMPACT)) = notional``.

    Newton's method from ``notional / price`` (above the root; the left side is convex and
    increasing in ``q``), until it stops decreasing: converged to the last float.
    """
    q_cap = (MAX_IMPACT / impact) ** 2
    if q_cap * (price + base * MAX_IMPACT) <= notional:
        return notional / (price + base * MAX_IMPACT)
    beta = base * impact
    q = notional / price
    for _ in range(200):
        r = np.sqrt(q)
        q_new = q - (q * (price + beta * r) - notional) / (price + 1.5 * beta * r)
        if not q_new < q:
            break
        q = q_new
    return q


@ijit
def exchange_filter_nb(units, price, lot_size, min_qty, min_notional):
    """Reason an order of ``units`` (already rounded down to ``lot_size``) at ``price`` breaks the
    exchange filters, checked in order: no whole lot, ``min_qty``, ``min_notional``; else ``NONE``."""
    if lot_size > 0.0 and units <= 0.0:
        return RejectReason.LOT_SIZE
    if units < min_qty:
        return RejectReason.MIN_QTY
    if units * price < min_notional:
        return RejectReason.MIN_NOTIONAL
    return RejectReason.NONE


@ijit
def entry_size_nb(size, size_type, price, fee, fixed_fee, leverage, available, equity,
                  lot_size, min_qty, min_notional, base, impact, is_buy):
    """Size (base units), fill price and rejection reason (``RejectReason.NONE`` if accepted) of an entry.

    ``available`` is the free margin: equity minus the margin (``|position| * price
    / leverage``) of the open positions. An order costs ``notional / leverage +
    fees``. Sizing: ``AMOUNT`` base units; ``VALUE`` quote notional;
    ``PERCENT`` spends ``size`` of the free margin, fees included;
    ``TARGET_PERCENT`` makes the position worth ``size`` of the equity left after
    this order's fees. With volume impact (``impact`` > 0, see ``impact_price_nb``) a buy
    sized in quote terms gets the units whose impacted price spends that notional; sells
    are sized at ``price`` (their impact lowers the proceeds, never the margin needed).
    Then the size is rounded down to ``lot_size``, the price gets the impact of that
    size, and the order is checked against ``min_qty``, ``min_notional`` and the free
    margin, in that order. ``price`` is the fill price before volume impact, ``base``
    the price before any slippage.
    """
    if size_type == SizeType.AMOUNT:
        units = size
    elif size_type == SizeType.VALUE:
        units = size / price
    elif size_type == SizeType.PERCENT:
        units = (size * available - fixed_fee) / (1.0 / leverage + fee) / price
    else:
        units = size * (equity - fixed_fee) / (1.0 + size * fee) / price
    # nothing (or only float dust of an all-in order) left to spend
    if not units * price > EPS * max(abs(equity), 1.0):
        return units, price, RejectReason.INSUFFICIENT_CASH
    if impact > 0.0 and is_buy and size_type != SizeType.AMOUNT:
        units = impact_units_nb(units * price, price, base, impact)
    if lot_size > 0.0:
        units = np.floor(units / lot_size + EPS) * lot_size
    if impact > 0.0:
        price = impact_price_nb(price, base, impact, units, is_buy)  # no move for 0 units
    reason = exchange_filter_nb(units, price, lot_size, min_qty, min_notional)
    if reason != RejectReason.NONE:
        return units, price, reason
    notional = units * price
    required = notional / leverage + notional * fee + fixed_fee
    if required - available > EPS * max(abs(available), 1.0):
        return units, price, RejectReason.INSUFFICIENT_CASH
    return units, price, RejectReason.NONE


@jit
def stop_fill_nb(is_long, open_, high, low, sl_level, tp_level, trail_level, optimistic):
    """Price (before slippage) and exit reason of a stop exit in one bar, or ``(nan, -1)``.

    Levels are NaN when the stop is not set. The bar must be valid (no NaN).
    """
    # the stop side: the tighter of the fixed stop-loss and the trailing stop
    stop = sl_level
    reason = ExitReason.SL
    if is_long:
        if trail_level == trail_level and not trail_level <= stop:
            stop = trail_level
            reason = ExitReason.TRAIL
        if open_ <= stop:
            return open_, reason
        if open_ >= tp_level:
            return open_, ExitReason.TP
        hit_stop = low <= stop
        hit_tp = high >= tp_level
    else:
        if trail_level == trail_level and not trail_level >= stop:
            stop = trail_level
            reason = ExitReason.TRAIL
        if open_ >= stop:
            return open_, reason
        if open_ <= tp_level:
            return open_, ExitReason.TP
        hit_stop = high >= stop
        hit_tp = low <= tp_level
    if hit_stop and hit_tp:
        if optimistic:
            return tp_level, ExitReason.TP
        return stop, reason
    if hit_stop:
        return stop, reason
    if hit_tp:
        return tp_level, ExitReason.TP
    return np.nan, -1


@jit
def pending_fill_nb(is_buy, is_limit, open_, high, low, level):
    """Fill price (before slippage) of a resting entry in one bar, or NaN.

    Limit buy: ``low <= level`` fills at ``min(open, level)``; limit sell: ``high >= level``
    at ``max(open, level)``. Stop buy: ``high >= level`` fills at ``max(open, level)`` (a gap
    above fills at the open); stop sell: ``low <= level`` at ``min(open, level)``.
    """
    if is_limit:
        if is_buy:
            if low <= level:
                return min(open_, level)
        elif high >= level:
            return max(open_, level)
    else:
        if is_buy:
            if high >= level:
                return max(open_, level)
        elif low <= level:
            return min(open_, level)
    return np.nan


@jit
def stop_limit_fill_nb(is_buy, triggered, open_, high, low, stop, limit):
    """Fill price (before slippage, NaN if none) and triggered state of a stop-limit entry in one bar.

    Untriggered, a buy arms when the bar reaches ``stop``: at the open (``open >= stop``)
    the bar then acts as a limit buy at ``limit`` (``pending_fill_nb``); intrabar
    (``high >= stop``) it fills at ``stop`` if ``limit >= stop``, else it waits: whether
    the price came back to ``limit`` after the trigger within the bar is unknown, so no
    fill is assumed (pessimistic). Once triggered it is a limit order. Sells mirror this.
    """
    if not triggered:
        if is_buy:
            if open_ >= stop:
                return pending_fill_nb(True, True, open_, high, low, limit), True
            if high >= stop:
                return (stop if limit >= stop else np.nan), True
        else:
            if open_ <= stop:
                return pending_fill_nb(False, True, open_, high, low, limit), True
            if low <= stop:
                return (stop if limit <= stop else np.nan), True
        return np.nan, False
    return pending_fill_nb(is_buy, True, open_, high, low, limit), True
