"""Bar loop of the target-weights backtest: rebalance a shared-cash portfolio to weights.

Arrays are ``(n_bars, n_cols)``, time on axis 0; ``weights[s, c]`` is the target
fraction of equity for column ``c`` decided at bar ``s`` (NaN: leave as is; negative:
short). ``rebalance[s]`` marks the bars whose weights are acted on. Orders fill at
``open[s + 1]`` (``NEXT_OPEN``) or ``close[s]`` (``CLOSE``).

A rebalance values the portfolio once, at the prices of the moment (a symbol with no
candle at its mark), then targets ``w * equity / ((1 + fee) * (1 + slippage) * price)``
units per symbol, so that a fully invested rebalance can pay its own costs. It runs in
two passes over the columns: first every order that shrinks a position (a full close
before a flip of side), then every order that grows one, so sales fund purchases.
Sizes round down to ``lot_size``; partial changes below ``min_qty``/``min_notional``
and purchases beyond the free margin are rejected with a reason; full closes always
fill; changes worth less than ``EPS`` of equity are skipped (no order).

Missing data: a column with no candle at the fill bar (NaN price) cannot fill there; its
target weight waits for the column's next candle ``k`` (``engine.wait_for_candle_nb``, the rule
of all three bar loops) and joins whatever rebalance runs
at ``prices[k]`` (one then runs for the waiting columns alone if none is due): it is sized
then, from the equity at ``k``'s prices, like any target of that bar, and its orders record
bar ``k``. A newer non-NaN weight for the column (a rebalance whose fill bar is ``<= k``)
replaces the waiting one; a NaN weight leaves it waiting; a target of 0 while flat ends the
wait (nothing to do). With no candle up to the last bar the order is rejected ``NO_DATA``
there. Prices are never forward-filled into fills (marks only value the portfolio).

Trades are round trips from flat to flat: ``size`` is the quantity entered,
``entry_price``/``exit_price`` the quantity-weighted averages of entry and exit fills,
``pnl = direction * (exit notional - entry notional) - all fees``.
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import jit, jit_borrow
from .engine import (close_bar_nb, cross_mode_nb, funding_nb, margin_phase_nb, margin_state_nb, mark_candle,
                     next_funding_nb, record_order_nb, record_trade_nb, reject_order_nb, triggered_nb, triggers_nb,
                     wait_for_candle_nb)
from .fills import EPS, exchange_filter_nb, order_fees_nb, slip_price_nb
from .margin import initial_margin_nb, max_leverage_nb
from .records import Direction, ExitReason, FillMode, OrderType, RejectReason, Side, Status, rebalance_state_dt

#: State of one column in the weights loop: :data:`records.rebalance_state_dt` and the fields the margin
#: phase functions of ``engine.py`` read and write on a position (the names of ``records.col_state_dt``):
#: ``group`` (cash account, always 0), ``avg`` (average entry price of the open position, fees apart),
#: ``margin`` (its isolated margin), ``liq`` (its liquidation price, NaN: to compute), ``borrow`` (0: weights
#: have no borrow cost), ``sl_abs``/``extreme``/``ind_stop`` (NaN: weights have no stops). Plain runs carry
#: them unread.
weights_state_dt = np.dtype(rebalance_state_dt.descr + [
    ("group", np.int64), ("avg", np.float64), ("margin", np.float64), ("liq", np.float64), ("borrow", np.float64),
    ("sl_abs", np.float64), ("extreme", np.float64), ("ind_stop", np.float64),
], align=True)


def new_weights_state(m: int) -> np.ndarray:
    """Initial :data:`weights_state_dt` state of ``m`` columns (flat, no wait, no stops)."""
    st = np.zeros(m, dtype=weights_state_dt)
    st["wait"] = -1
    for f in ("liq", "sl_abs", "extreme", "ind_stop"):
        st[f] = np.nan
    return st


@jit
def close_trade_nb(sc, trades, counts, c, exit_idx, sign, exit_notional, exit_reason):
    """Write column ``c``'s round trip (state ``sc``); ``exit_notional`` covers the whole entered quantity."""
    qty = sc["entry_qty"]
    entry_price = sc["entry_notional"] / qty
    exit_price = exit_notional / qty
    record_trade_nb(trades, counts, c, sc["entry_idx"], exit_idx, sign * qty, entry_price, exit_price,
                    sc["entry_fees"], sc["exit_fees"], exit_reason)


@jit
def fill_change_nb(books, params, c, i, base, q, is_buy, lev):
    """Fill ``q`` units of column ``c`` at ``base`` (before slippage), updating the trade's books.

    Margin books (read by the margin runs only): an entry or increase adds its initial margin
    ``q * price / lev`` (``kernels.margin.initial_margin_nb``) and averages ``avg`` by size; a partial
    decrease releases margin in proportion to the size closed (``nbtrade.margin``); any change makes
    the liquidation price stale (``liq`` NaN)."""
    st, acct, counts, orders, trades = books
    sc = st[c]
    pc = params[c]
    price = slip_price_nb(base, is_buy, pc["slippage"])
    fee = order_fees_nb(q, price, pc["fees"], pc["fixed_fees"])
    pos = sc["pos"]
    signed = q if is_buy else -q
    if is_buy:
        acct[0] -= q * price + fee
    else:
        acct[0] += q * price - fee
    record_order_nb(orders, counts, c, i, Side.BUY if is_buy else Side.SELL, q, price, fee, OrderType.MARKET,
                    Status.FILLED, RejectReason.NONE)
    sc["liq"] = np.nan
    if pos == 0.0:
        sc["entry_idx"] = i
        sc["entry_notional"] = q * price
        sc["entry_qty"] = q
        sc["exit_notional"] = 0.0
        sc["entry_fees"] = fee
        sc["exit_fees"] = 0.0
        sc["pos"] = signed
        sc["avg"] = price
        sc["margin"] = initial_margin_nb(q * price, lev)
    elif (pos > 0.0) == is_buy:  # grows the position
        held = abs(pos)
        sc["entry_notional"] += q * price
        sc["entry_qty"] += q
        sc["entry_fees"] += fee
        sc["pos"] = pos + signed
        sc["avg"] = (sc["avg"] * held + price * q) / (held + q)
        sc["margin"] += initial_margin_nb(q * price, lev)
    else:  # shrinks it (never past zero: flips are split by the caller)
        sc["exit_notional"] += q * price
        sc["exit_fees"] += fee
        if q == abs(pos):
            sc["pos"] = 0.0
            sc["margin"] = 0.0
            sign = 1.0 if pos > 0.0 else -1.0
            close_trade_nb(sc, trades, counts, c, i, sign, sc["exit_notional"], ExitReason.SIGNAL)
        else:
            sc["margin"] -= sc["margin"] * (q / abs(pos))
            sc["pos"] = pos + signed


@jit
def targets_nb(prices, i, s, weights, books):
    """Set each column's ``target``, the weight it trades at ``prices[i]`` (NaN: none).

    The weight is bar ``s``'s (``s < 0``: no rebalance due), else the column's waiting one. A
    column with no candle at ``prices[i]`` waits for its next candle (``wait_for_candle_nb``; a
    newer weight replaces the waiting one) unless there is nothing to do (flat and target 0:
    that also ends a wait) or no later candle can come (the last bar: rejected ``NO_DATA``).
    """
    st, acct, counts, orders, trades = books
    last = i == prices.shape[0] - 1
    for c in range(st.shape[0]):
        sc = st[c]
        sc["target"] = np.nan
        new = -1
        if s >= 0 and weights[s, c] == weights[s, c]:
            new = s
        elif sc["wait"] < 0:
            continue
        valid = prices[i, c] == prices[i, c]
        pos = sc["pos"]
        if new >= 0 and not valid and weights[new, c] == 0.0 and pos == 0.0:
            # nothing to do: no wait (and a waiting target is replaced by this one)
            if sc["wait"] >= 0:
                sc["wait"] = -1
                counts[0]["waiting"] -= 1
            continue
        d = wait_for_candle_nb(sc, counts, new, valid, last, True, True)
        if d < 0:
            continue
        w = weights[d, c]
        if valid:
            sc["target"] = w
        elif w != 0.0 or pos != 0.0:  # the last bar, no candle
            if w == 0.0:
                side = Side.BUY if pos < 0.0 else Side.SELL
            else:
                side = Side.BUY if w > 0.0 else Side.SELL
            reject_order_nb(orders, counts, c, i, side, np.nan, np.nan, OrderType.MARKET, RejectReason.NO_DATA)


@jit
def column_leverage_nb(params, c, leverage):
    """Column ``c``'s leverage: ``params[c].lev`` when set (> 0, margin runs with per-symbol leverage), else
    the run's ``leverage``."""
    lev = params[c]["lev"]
    return lev if lev > 0.0 else leverage


@jit
def free_margin_nb(st, prices, i, cash, params, leverage):
    """Free margin at ``prices[i]`` (a column without a candle at its mark): ``engine.margin_state_nb``, the
    one rule of every path and mode (``nbtrade.margin``, "Accounting"): equity less each open position's
    initial margin at the price of the moment, ``|q| * p / lev`` with its column's leverage, and at most
    the wallet less the positions' margins."""
    return margin_state_nb(st, prices, i, cash, leverage, 0, params, True)[1]


@jit
def rebalance_nb(prices, i, s, weights, books, params, leverage, margin_mode):
    """Move every column towards its target weight (bar ``s``'s, or a waiting one), filling at
    ``prices[i]`` (see :func:`targets_nb`). ``margin_mode`` (0 plain, 1 isolated, 2 cross): the free
    margin of :func:`free_margin_nb`; in margin runs an increase whose resulting notional lies in a tier
    allowing less than the column's leverage is rejected ``LEVERAGE``."""
    targets_nb(prices, i, s, weights, books)
    st, acct, counts, orders, trades = books
    m = st.shape[0]
    equity = acct[0]
    for j in range(m):
        if st[j]["pos"] != 0.0:
            p = prices[i, j]
            if p != p:
                p = st[j]["mark"]
            equity += st[j]["pos"] * p
    floor = EPS * max(abs(equity), 1.0)
    for phase in range(2):
        for c in range(m):
            sc = st[c]
            pc = params[c]
            w = sc["target"]
            if w != w:
                continue
            pos = sc["pos"]
            p = prices[i, c]
            lev = column_leverage_nb(params, c, leverage)
            target = w * equity / ((1.0 + pc["fees"]) * (1.0 + pc["slippage"]) * p)
            same_side = target * pos > 0.0
            if phase == 0:
                if pos == 0.0 or (same_side and abs(target) >= abs(pos)):
                    continue
                full = not same_side
                q = abs(pos) if full else abs(pos) - abs(target)
                is_buy = pos < 0.0
            else:
                q = abs(target) - abs(pos)
                if target == 0.0 or q <= 0.0:
                    continue
                is_buy = target > 0.0
                full = False
            lot = pc["lot"]
            if not full and lot > 0.0:
                q = np.floor(q / lot + EPS) * lot
            if q * p <= floor:
                continue
            if not full:
                # q > 0 here (changes below EPS of equity were skipped): the lot check cannot fire
                reason = exchange_filter_nb(q, p, lot, pc["min_qty"], pc["min_notional"])
                if reason == RejectReason.NONE and phase == 1:
                    # free margin at this moment: equity less the margin of open positions
                    available = free_margin_nb(st, prices, i, acct[0], params, leverage)
                    fill = slip_price_nb(p, is_buy, pc["slippage"])
                    required = initial_margin_nb(q * fill, lev) + order_fees_nb(q, fill, pc["fees"], pc["fixed_fees"])
                    if required - available > EPS * max(abs(available), 1.0):
                        reason = RejectReason.INSUFFICIENT_CASH
                    elif margin_mode > 0 and max_leverage_nb(pc["t_floor"], pc["t_cap"], pc["t_lev"], pc["t_n"],
                                                       (abs(pos) + q) * fill) < lev:
                        reason = RejectReason.LEVERAGE  # the tier of the resulting position allows less
                if reason != RejectReason.NONE:
                    reject_order_nb(orders, counts, c, i, Side.BUY if is_buy else Side.SELL, q,
                                    slip_price_nb(p, is_buy, pc["slippage"]), OrderType.MARKET, reason)
                    continue
            fill_change_nb(books, params, c, i, p, q, is_buy, lev)


@jit_borrow
def liquidation_nb(prices, marks, params, books, i, at_open, open_only):
    """Adapter of ``engine.margin_phase_nb`` (isolated, or cross with ``marks.cross``) to the weights books.

    The phase closes liquidated positions and records their trades as the signals loop does (size =
    the position, entry price = its average); a round trip with earlier partial decreases is rewritten
    here as the weights loop's round trip (:func:`close_trade_nb`: the quantity entered, the quantity-
    weighted exit price over the decreases and the liquidation, every exit fee), the liquidation's
    absorbed loss (``kernels.margin.settle_isolated_nb``) kept in its ``pnl``."""
    st, acct, counts, orders, trades = books
    k0 = counts[0]["trades"]
    margin_phase_nb(prices, marks, params, books, i, at_open, open_only)
    k1 = counts[0]["trades"]
    for k in range(k0, k1):
        t = trades[k]
        sc = st[t["col"]]
        if sc["exit_notional"] == 0.0:
            continue  # no earlier decrease: the record is the round trip already
        qty = t["size"]
        sign = 1.0 if t["direction"] == Direction.LONG else -1.0
        fill = t["exit_price"]
        fee = t["exit_fees"]
        plain = sign * (fill - t["entry_price"]) * qty - t["entry_fees"] - fee - t["borrow"]
        absorbed = t["pnl"] - plain
        sc["exit_notional"] += qty * fill
        sc["exit_fees"] += fee
        counts[0]["trades"] = k
        close_trade_nb(sc, trades, counts, t["col"], t["exit_idx"], sign, sc["exit_notional"],
                       ExitReason.LIQUIDATION)
        t = trades[k]
        t["pnl"] += absorbed
        t["ret"] = t["pnl"] / (t["entry_price"] * t["size"])
    counts[0]["trades"] = k1


def margin_events_nb(marks, prices, params, books, i, at_open, open_only):
    """:func:`liquidation_nb` in perpetual runs (``marks`` a ``records.Marks``); nothing when ``marks`` is None
    (plain runs: overloaded on the type, so they compile none of the margin code)."""
    if marks is not None:
        liquidation_nb(prices, marks, params, books, i, at_open, open_only)


@overload(margin_events_nb)
def _margin_events_ov(marks, prices, params, books, i, at_open, open_only):
    if isinstance(marks, types.NoneType):
        return lambda marks, prices, params, books, i, at_open, open_only: None

    def impl(marks, prices, params, books, i, at_open, open_only):
        liquidation_nb(prices, marks, params, books, i, at_open, open_only)
    return impl


@jit
def simulate_weights_nb(prices, weights, rebalance, params, leverage, fill_mode, margin_mode, marks, books, cash_out,
                        equity_out):
    """Run the weights backtest, filling ``books`` (:func:`new_weights_state` state, one cash account, a
    zeroed ``counts_dt`` record, record buffers) and ``cash_out``, ``equity_out``.

    ``prices``: ``records.Prices`` (open, high and low read by fills at the open and by margin runs);
    ``params`` is ``(n_cols,)`` ``param_dt`` (fees, fixed fees, slippage, lot, min qty, min notional,
    and in margin runs ``lev``, the maintenance tiers, ``liq_fee``). ``orders`` must hold 2 orders per
    non-NaN weight of a rebalance bar (margin runs: 3, a liquidation per opened position, plus one per
    column), ``trades`` half that plus one per column (margin runs: one per weight plus one per column).

    Margin runs (``margin_mode`` 1 isolated, 2 cross; 0: plain; perpetuals, rules in :mod:`nbtrade.margin`;
    sizing in :func:`rebalance_nb`, free margin in :func:`free_margin_nb`): ``marks`` is the
    ``records.Marks`` of the run (mark candles, or the price candles of columns without them; funding
    rows; the cross flag); plain runs pass None and compile no margin code. Each position has an
    isolated margin (its entries' notional / leverage) and is liquidated on the mark candle (exit reason
    ``LIQUIDATION``), or the cross wallet as a whole (``marks.cross``). Events of bar ``i``, in this
    order (those of the signals loop, phase by phase over all columns; the functions are ``engine.py``'s,
    through :func:`margin_events_nb` / :func:`liquidation_nb`):

    ``fill_mode == NEXT_OPEN``
        1. funding due at the bar's open, on the positions carried in (``funding_nb``);
        2. liquidation at the open: a mark open at or through a liquidation price closes the position
           at the mark open (``margin_phase_nb``, open only);
        3. the rebalance at the open (weights of bar ``i - 1``): sized from the equity after 1-2, so a
           position liquidated at this open is re-entered when a weight for it is due;
        4. funding strictly inside the bar: its payments (``funding_nb`` part 1), then intrabar
           liquidation against the mark low (longs) / high (shorts), positions entered or changed at
           this open included (``margin_phase_nb``); weights have no stops;
        5. the receipts of the funding inside the bar, on the positions still open (part 2);
        6. the close: marks move to the closes, equity is recorded.
    ``fill_mode == CLOSE``
        1. funding at the open; 2. payments of the funding inside the bar, then intrabar liquidation of
        positions entered before bar ``i``; 3. its receipts; 4. the rebalance at the close (weights of
        bar ``i``); 5. the close.
    """
    st, acct, counts, orders, trades = books
    close = prices.close
    n, m = close.shape
    at_open = fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    px = prices.open if at_open else close
    cnt = counts[0]
    margin_on = margin_mode > 0
    # margin runs: the liquidation phases run only on bars where some mark reaches a position's
    # liquidation price (engine.triggers_nb / triggered_nb, the fused signals loop's test; every bar in
    # cross mode), funding only on bars with a funding row (the next at bar nf); the triggers are set
    # anew after anything that moves a position or its margin (dirty)
    mo, mh, ml = mark_candle(marks, prices)
    lo = np.full(m, -np.inf)
    hi = np.full(m, np.inf)
    cross = cross_mode_nb(marks)
    nf = next_funding_nb(marks, 0, n)
    dirty = True
    for i in range(n):
        s = i - lag
        fund = margin_on and i == nf
        if fund:
            funding_nb(marks, books, i, 0)
            dirty = True
        if margin_on and at_open:
            if dirty:
                triggers_nb(st, params, lo, hi)
                dirty = False
            if cross or triggered_nb(mo, mh, ml, i, lo, hi):
                margin_events_nb(marks, prices, params, books, i, True, True)
                dirty = True
        due = s >= 0 and rebalance[s]
        run = due or (cnt["waiting"] > 0 and i == n - 1)
        if not run and cnt["waiting"] > 0:
            # the waiting targets alone: a rebalance only when one of their columns has a candle
            for c in range(m):
                if st[c]["wait"] >= 0 and px[i, c] == px[i, c]:
                    run = True
                    break
        if run and at_open:
            rebalance_nb(px, i, s if due else -1, weights, books, params, leverage, margin_mode)
            dirty = True
        if margin_on:
            if fund:  # payments of the funding inside the bar, before the intrabar check
                funding_nb(marks, books, i, 1)
                dirty = True
            if dirty:
                triggers_nb(st, params, lo, hi)
                dirty = False
            if cross or triggered_nb(mo, mh, ml, i, lo, hi):
                margin_events_nb(marks, prices, params, books, i, at_open, False)
                dirty = True
            if fund:  # its receipts, on the positions still open
                funding_nb(marks, books, i, 2)
                nf = next_funding_nb(marks, i + 1, n)
                dirty = True
        if run and not at_open:
            rebalance_nb(px, i, s if due else -1, weights, books, params, leverage, margin_mode)
            dirty = True
        close_bar_nb(close, st, acct, i, cash_out, equity_out)
    for c in range(m):
        sc = st[c]
        pos = sc["pos"]
        if pos != 0.0:
            last = n - 1
            while close[last, c] != close[last, c]:
                last -= 1
            sign = 1.0 if pos > 0.0 else -1.0
            close_trade_nb(sc, trades, counts, c, last, sign, sc["exit_notional"] + abs(pos) * sc["mark"],
                           ExitReason.END)
