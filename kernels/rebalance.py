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
target weight waits for the column's next candle ``k`` and joins whatever rebalance runs
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
from .engine import (C_DELAYED, N_COUNTS, N_PARAMS, P_FEES, P_FIXED_FEES, P_LOT, P_MIN_NOTIONAL, P_MIN_QTY,
                     P_SLIPPAGE, reject_order_nb, write_order_nb, write_trade_nb)
from .fills import EPS, exchange_filter_nb, order_fees_nb, slip_price_nb
from .records import ExitReason, FillMode, OrderType, RejectReason, Side, Status

#: Rows of the per-column state of the weights loop: position, mark (last valid close), books of
#: the open trade; ``R_PEND_W``: target weight waiting for the column's next candle (NaN: none);
#: ``R_TARGET``: the weight traded by the rebalance being run (scratch, NaN: none).
(R_POS, R_MARK, R_ENTRY_IDX, R_ENTRY_NOTIONAL, R_ENTRY_QTY, R_EXIT_NOTIONAL, R_ENTRY_FEES, R_EXIT_FEES, R_PEND_W,
 R_TARGET) = range(10)
N_RSTATE = 10

_ = N_PARAMS  # the parameter rows are shared with the signals engine


@jit
def close_trade_nb(st, trades, counts, c, exit_idx, sign, exit_notional, exit_reason):
    """Write column ``c``'s round trip; ``exit_notional`` covers the whole entered quantity."""
    qty = st[R_ENTRY_QTY, c]
    entry_price = st[R_ENTRY_NOTIONAL, c] / qty
    exit_price = exit_notional / qty
    write_trade_nb(trades, counts[1], c, int(st[R_ENTRY_IDX, c]), exit_idx, sign * qty, entry_price,
                   exit_price, st[R_ENTRY_FEES, c], st[R_EXIT_FEES, c], exit_reason)
    counts[1] += 1


@jit
def fill_change_nb(st, acct, counts, orders, trades, params, c, i, base, q, is_buy):
    """Fill ``q`` units of column ``c`` at ``base`` (before slippage), updating the trade's books."""
    price = slip_price_nb(base, is_buy, params[P_SLIPPAGE, c])
    fee = order_fees_nb(q, price, params[P_FEES, c], params[P_FIXED_FEES, c])
    pos = st[R_POS, c]
    signed = q if is_buy else -q
    if is_buy:
        acct[0] -= q * price + fee
    else:
        acct[0] += q * price - fee
    write_order_nb(orders, counts[0], c, i, Side.BUY if is_buy else Side.SELL, q, price, fee,
                   OrderType.MARKET, Status.FILLED, RejectReason.NONE)
    counts[0] += 1
    if pos == 0.0:
        st[R_ENTRY_IDX, c] = i
        st[R_ENTRY_NOTIONAL, c] = q * price
        st[R_ENTRY_QTY, c] = q
        st[R_EXIT_NOTIONAL, c] = 0.0
        st[R_ENTRY_FEES, c] = fee
        st[R_EXIT_FEES, c] = 0.0
        st[R_POS, c] = signed
    elif (pos > 0.0) == is_buy:  # grows the position
        st[R_ENTRY_NOTIONAL, c] += q * price
        st[R_ENTRY_QTY, c] += q
        st[R_ENTRY_FEES, c] += fee
        st[R_POS, c] = pos + signed
    else:  # shrinks it (never past zero: flips are split by the caller)
        st[R_EXIT_NOTIONAL, c] += q * price
        st[R_EXIT_FEES, c] += fee
        if q == abs(pos):
            st[R_POS, c] = 0.0
            sign = 1.0 if pos > 0.0 else -1.0
            close_trade_nb(st, trades, counts, c, i, sign, st[R_EXIT_NOTIONAL, c], ExitReason.SIGNAL)
        else:
            st[R_POS, c] = pos + signed


@jit
def targets_nb(prices, i, s, weights, st, counts, orders, last):
    """Set ``R_TARGET``, the weight column ``c`` trades at ``prices[i]`` (NaN: none); returns the
    change in the number of waiting columns.

    The weight is bar ``s``'s (``s < 0``: no rebalance due), else the column's waiting one. A
    column with no candle at ``prices[i]`` waits (``R_PEND_W``; a newer weight replaces the
    waiting one; ``counts[C_DELAYED]`` counts the waits begun) unless there is nothing to do (flat and
    target 0) or no later candle can come (``last``: rejected ``NO_DATA``).
    """
    dw = 0
    for c in range(st.shape[1]):
        w = weights[s, c] if s >= 0 else np.nan
        waiting = st[R_PEND_W, c] == st[R_PEND_W, c]
        if w != w:
            w = st[R_PEND_W, c]
        st[R_TARGET, c] = np.nan
        if w != w:
            continue
        pos = st[R_POS, c]
        if prices[i, c] == prices[i, c]:
            st[R_TARGET, c] = w
        elif w != 0.0 or pos != 0.0:
            if not last:
                if not waiting:
                    counts[C_DELAYED] += 1
                    dw += 1
                st[R_PEND_W, c] = w
                continue
            if w == 0.0:
                side = Side.BUY if pos < 0.0 else Side.SELL
            else:
                side = Side.BUY if w > 0.0 else Side.SELL
            reject_order_nb(orders, counts, c, i, side, np.nan, np.nan, OrderType.MARKET, RejectReason.NO_DATA)
        if waiting:
            st[R_PEND_W, c] = np.nan
            dw -= 1
    return dw


@jit
def rebalance_nb(prices, i, s, weights, st, acct, counts, orders, trades, params, leverage, last):
    """Move every column towards its target weight (bar ``s``'s, or a waiting one), filling at
    ``prices[i]``; returns the change in the number of waiting columns (see :func:`targets_nb`)."""
    dw = targets_nb(prices, i, s, weights, st, counts, orders, last)
    m = st.shape[1]
    equity = acct[0]
    for j in range(m):
        if st[R_POS, j] != 0.0:
            p = prices[i, j]
            if p != p:
                p = st[R_MARK, j]
            equity += st[R_POS, j] * p
    floor = EPS * max(abs(equity), 1.0)
    for phase in range(2):
        for c in range(m):
            w = st[R_TARGET, c]
            if w != w:
                continue
            pos = st[R_POS, c]
            p = prices[i, c]
            target = w * equity / ((1.0 + params[P_FEES, c]) * (1.0 + params[P_SLIPPAGE, c]) * p)
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
            lot = params[P_LOT, c]
            if not full and lot > 0.0:
                q = np.floor(q / lot + EPS) * lot
            if q * p <= floor:
                continue
            if not full:
                # q > 0 here (changes below EPS of equity were skipped): the lot check cannot fire
                reason = exchange_filter_nb(q, p, lot, params[P_MIN_QTY, c], params[P_MIN_NOTIONAL, c])
                if reason == RejectReason.NONE and phase == 1:
                    # free margin at this moment: equity less the margin of open positions
                    eq = acct[0]
                    gross = 0.0
                    for j in range(m):
                        qj = st[R_POS, j]
                        if qj != 0.0:
                            pj = prices[i, j]
                            if pj != pj:
                                pj = st[R_MARK, j]
                            eq += qj * pj
                            gross += abs(qj) * pj
                    available = eq - gross / leverage
                    fill = slip_price_nb(p, is_buy, params[P_SLIPPAGE, c])
                    required = q * fill / leverage + order_fees_nb(q, fill, params[P_FEES, c],
                                                                   params[P_FIXED_FEES, c])
                    if required - available > EPS * max(abs(available), 1.0):
                        reason = RejectReason.INSUFFICIENT_CASH
                if reason != RejectReason.NONE:
                    reject_order_nb(orders, counts, c, i, Side.BUY if is_buy else Side.SELL, q,
                                    slip_price_nb(p, is_buy, params[P_SLIPPAGE, c]), OrderType.MARKET, reason)
                    continue
            fill_change_nb(st, acct, counts, orders, trades, params, c, i, p, q, is_buy)
    return dw


@jit
def simulate_weights_nb(open_, close, weights, rebalance, params, leverage, init_cash, fill_mode,
                        orders, trades, cash_out, equity_out):
    """Run the weights backtest; returns the counts (``engine.N_COUNTS`` slots: orders, trades,
    targets that waited for a later candle, rejections by reason).

    ``orders`` must hold 2 orders per non-NaN weight of a rebalance bar, ``trades`` half that
    plus one per column.
    """
    n, m = close.shape
    st = np.zeros((N_RSTATE, m))
    st[R_PEND_W] = np.nan
    acct = np.full(1, init_cash)
    counts = np.zeros(N_COUNTS, dtype=np.int64)
    at_open = fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    prices = open_ if at_open else close
    n_wait = 0  # columns whose target waits for their next candle
    for i in range(n):
        s = i - lag
        due = s >= 0 and rebalance[s]
        run = due or (n_wait > 0 and i == n - 1)
        if not run and n_wait > 0:
            # the waiting targets alone: a rebalance only when one of their columns has a candle
            for c in range(m):
                if st[R_PEND_W, c] == st[R_PEND_W, c] and prices[i, c] == prices[i, c]:
                    run = True
                    break
        if run:
            n_wait += rebalance_nb(prices, i, s if due else -1, weights, st, acct, counts, orders, trades, params,
                                   leverage, i == n - 1)
        acc = 0.0
        for c in range(m):
            cl = close[i, c]
            if cl == cl:
                st[R_MARK, c] = cl
            acc += st[R_POS, c] * st[R_MARK, c]
        cash_out[i] = acct[0]
        equity_out[i] = acct[0] + acc
    for c in range(m):
        pos = st[R_POS, c]
        if pos != 0.0:
            last = n - 1
            while close[last, c] != close[last, c]:
                last -= 1
            sign = 1.0 if pos > 0.0 else -1.0
            close_trade_nb(st, trades, counts, c, last, sign,
                           st[R_EXIT_NOTIONAL, c] + abs(pos) * st[R_MARK, c], ExitReason.END)
    return counts
