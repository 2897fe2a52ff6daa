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

from ._jit import jit
from .engine import close_bar_nb, record_order_nb, record_trade_nb, reject_order_nb, wait_for_candle_nb
from .fills import EPS, exchange_filter_nb, order_fees_nb, slip_price_nb
from .records import ExitReason, FillMode, OrderType, RejectReason, Side, Status


@jit
def close_trade_nb(sc, trades, counts, c, exit_idx, sign, exit_notional, exit_reason):
    """Write column ``c``'s round trip (state ``sc``); ``exit_notional`` covers the whole entered quantity."""
    qty = sc["entry_qty"]
    entry_price = sc["entry_notional"] / qty
    exit_price = exit_notional / qty
    record_trade_nb(trades, counts, c, sc["entry_idx"], exit_idx, sign * qty, entry_price, exit_price,
                    sc["entry_fees"], sc["exit_fees"], exit_reason)


@jit
def fill_change_nb(books, params, c, i, base, q, is_buy):
    """Fill ``q`` units of column ``c`` at ``base`` (before slippage), updating the trade's books."""
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
    if pos == 0.0:
        sc["entry_idx"] = i
        sc["entry_notional"] = q * price
        sc["entry_qty"] = q
        sc["exit_notional"] = 0.0
        sc["entry_fees"] = fee
        sc["exit_fees"] = 0.0
        sc["pos"] = signed
    elif (pos > 0.0) == is_buy:  # grows the position
        sc["entry_notional"] += q * price
        sc["entry_qty"] += q
        sc["entry_fees"] += fee
        sc["pos"] = pos + signed
    else:  # shrinks it (never past zero: flips are split by the caller)
        sc["exit_notional"] += q * price
        sc["exit_fees"] += fee
        if q == abs(pos):
            sc["pos"] = 0.0
            sign = 1.0 if pos > 0.0 else -1.0
            close_trade_nb(sc, trades, counts, c, i, sign, sc["exit_notional"], ExitReason.SIGNAL)
        else:
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
def rebalance_nb(prices, i, s, weights, books, params, leverage):
    """Move every column towards its target weight (bar ``s``'s, or a waiting one), filling at
    ``prices[i]`` (see :func:`targets_nb`)."""
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
                    eq = acct[0]
                    gross = 0.0
                    for j in range(m):
                        qj = st[j]["pos"]
                        if qj != 0.0:
                            pj = prices[i, j]
                            if pj != pj:
                                pj = st[j]["mark"]
                            eq += qj * pj
                            gross += abs(qj) * pj
                    available = eq - gross / leverage
                    fill = slip_price_nb(p, is_buy, pc["slippage"])
                    required = q * fill / leverage + order_fees_nb(q, fill, pc["fees"], pc["fixed_fees"])
                    if required - available > EPS * max(abs(available), 1.0):
                        reason = RejectReason.INSUFFICIENT_CASH
                if reason != RejectReason.NONE:
                    reject_order_nb(orders, counts, c, i, Side.BUY if is_buy else Side.SELL, q,
                                    slip_price_nb(p, is_buy, pc["slippage"]), OrderType.MARKET, reason)
                    continue
            fill_change_nb(books, params, c, i, p, q, is_buy)


@jit
def simulate_weights_nb(open_, close, weights, rebalance, params, leverage, fill_mode, books, cash_out, equity_out):
    """Run the weights backtest, filling ``books`` (``rebalance_state_dt`` state with ``wait`` -1,
    one cash account, a zeroed ``counts_dt`` record, record buffers) and ``cash_out``, ``equity_out``.

    ``params`` is ``(n_cols,)`` ``param_dt`` (fees, fixed fees, slippage, lot, min qty, min notional
    read). ``orders`` must hold 2 orders per non-NaN weight of a rebalance bar, ``trades`` half
    that plus one per column.
    """
    st, acct, counts, orders, trades = books
    n, m = close.shape
    at_open = fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    prices = open_ if at_open else close
    cnt = counts[0]
    for i in range(n):
        s = i - lag
        due = s >= 0 and rebalance[s]
        run = due or (cnt["waiting"] > 0 and i == n - 1)
        if not run and cnt["waiting"] > 0:
            # the waiting targets alone: a rebalance only when one of their columns has a candle
            for c in range(m):
                if st[c]["wait"] >= 0 and prices[i, c] == prices[i, c]:
                    run = True
                    break
        if run:
            rebalance_nb(prices, i, s if due else -1, weights, books, params, leverage)
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
