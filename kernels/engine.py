"""Bar loop of the signals backtest: one shared cash balance, symbols in column order.

Arrays are ``(n_bars, n_cols)`` float64 (prices) or bool (signals), C-contiguous,
time on axis 0. Per-column parameters are ``(n_cols,)`` float64 arrays, NaN for an
unset stop. A bar is missing for a column when its close is NaN (the Python layer
makes all four prices NaN together); nothing fills on a missing bar.

Events of bar ``i``, each phase over all columns in order before the next phase:

``fill_mode == NEXT_OPEN`` (default)
    1. at the open: orders from the signals of bar ``i - 1`` fill at ``open[i]``
       (an exit first, then an entry: a reversal is two orders);
    2. intrabar: stops of positions entered before bar ``i`` (rules in ``fills.py``);
    3. at the close: marks move to ``close[i]``, equity is recorded.
``fill_mode == CLOSE``
    1. intrabar: stops of positions entered before bar ``i``;
    2. at the close: orders from the signals of bar ``i`` fill at ``close[i]``,
       equity is recorded.

Signals: when long, a short entry reverses and an exit closes; when short,
mirrored; when flat, an entry opens (exits are ignored). Long and short entry
together cancel each other. An entry while already in the same direction is
ignored (no pyramiding). Sizing of an entry values the portfolio at the price
of the moment (the bar's opens, or its closes) and the last valid close for a
symbol with no candle. Equity at bar ``i`` is ``cash + sum(position * mark)``,
``mark`` being the last valid close (valuation only; never a fill price).
"""
from __future__ import annotations

import numpy as np

from ._jit import jit
from .fills import entry_size_nb, order_fees_nb, slip_price_nb, stop_fill_nb
from .records import Direction, ExitReason, FillMode, Intrabar, OrderType, RejectReason, Side, Status


@jit
def write_order_nb(orders, k, col, idx, side, size, price, fees, otype, status, reason):
    rec = orders[k]
    rec["id"] = k
    rec["col"] = col
    rec["idx"] = idx
    rec["side"] = side
    rec["size"] = size
    rec["price"] = price
    rec["fees"] = fees
    rec["type"] = otype
    rec["status"] = status
    rec["reason"] = reason


@jit
def write_trade_nb(trades, k, col, entry_idx, exit_idx, pos, entry_price, exit_price,
                   entry_fees, exit_fees, exit_reason):
    rec = trades[k]
    size = abs(pos)
    sign = 1.0 if pos > 0.0 else -1.0
    pnl = sign * (exit_price - entry_price) * size - entry_fees - exit_fees
    rec["id"] = k
    rec["col"] = col
    rec["entry_idx"] = entry_idx
    rec["exit_idx"] = exit_idx
    rec["direction"] = Direction.LONG if pos > 0.0 else Direction.SHORT
    rec["size"] = size
    rec["entry_price"] = entry_price
    rec["exit_price"] = exit_price
    rec["entry_fees"] = entry_fees
    rec["exit_fees"] = exit_fees
    rec["pnl"] = pnl
    rec["ret"] = pnl / (entry_price * size)
    rec["exit_reason"] = exit_reason


@jit
def margin_state_nb(pos, mark, prices, i, use_prices, cash, leverage):
    """Equity and free margin, valuing each position at ``prices[i]`` (if set and valid) else its mark."""
    equity = cash
    gross = 0.0
    for j in range(pos.shape[0]):
        if pos[j] != 0.0:
            p = mark[j]
            if use_prices:
                q = prices[i, j]
                if q == q:
                    p = q
            equity += pos[j] * p
            gross += abs(pos[j]) * p
    return equity, equity - gross / leverage


@jit
def exit_position_nb(state, pos, orders, trades, counts, c, i, base_price, slippage, fee, fixed_fee,
                     otype, exit_reason):
    """Close column ``c``'s whole position at ``base_price`` (before slippage); returns new cash."""
    cash = state[0]
    p = pos[c]
    is_buy = p < 0.0
    price = slip_price_nb(base_price, is_buy, slippage)
    size = abs(p)
    fees = order_fees_nb(size, price, fee, fixed_fee)
    if is_buy:
        cash -= size * price + fees
    else:
        cash += size * price - fees
    write_order_nb(orders, counts[0], c, i, Side.BUY if is_buy else Side.SELL, size, price, fees,
                   otype, Status.FILLED, RejectReason.NONE)
    counts[0] += 1
    write_trade_nb(trades, counts[1], c, int(state[1 + 5 * c + 1]), i, p, state[1 + 5 * c], price,
                   state[1 + 5 * c + 2], fees, exit_reason)
    counts[1] += 1
    pos[c] = 0.0
    state[0] = cash
    return cash


@jit
def simulate_signals_nb(open_, high, low, close, entries, exits, short_entries, short_exits,
                        size, size_type, fees, fixed_fees, slippage, sl_stop, tp_stop, trail_stop,
                        lot_size, min_qty, min_notional, leverage, init_cash, fill_mode, intrabar,
                        orders, trades, cash_out, equity_out):
    """Run the signals backtest; fill ``orders``, ``trades``, ``cash_out``, ``equity_out``.

    ``orders`` and ``trades`` are preallocated record buffers (``order_dt``,
    ``trade_dt``) large enough for every order (3 per entry signal + 1 per exit
    signal is an upper bound). Returns ``(n_orders, n_trades)``: the used prefix
    of each buffer. Open positions at the end are reported as trades with exit
    reason ``END`` at the last valid close, without exit fees.
    """
    n, m = close.shape
    pos = np.zeros(m)
    mark = np.zeros(m)          # last valid close: valuation only
    last_valid = np.full(m, -1, dtype=np.int64)
    extreme = np.zeros(m)       # trailing peak (long) / trough (short) before the current bar
    # per column: avg entry price, entry idx, entry fees, spare, spare
    state = np.zeros(1 + 5 * m)
    state[0] = init_cash
    counts = np.zeros(2, dtype=np.int64)
    has_stops = np.zeros(m, dtype=np.bool_)
    for c in range(m):
        has_stops[c] = sl_stop[c] == sl_stop[c] or tp_stop[c] == tp_stop[c] or trail_stop[c] == trail_stop[c]
    optimistic = intrabar == Intrabar.OPTIMISTIC
    at_open = fill_mode == FillMode.NEXT_OPEN

    for i in range(n):
        # phase 1 (next_open): signals of bar i-1 fill at this bar's open
        if at_open and i > 0:
            for c in range(m):
                if entries[i - 1, c] or exits[i - 1, c] or short_entries[i - 1, c] or short_exits[i - 1, c]:
                    process_signal_nb(open_, i, i - 1, c, entries, exits, short_entries, short_exits,
                                      pos, mark, extreme, state, counts, orders, trades, size, size_type,
                                      fees, fixed_fees, slippage, lot_size, min_qty, min_notional,
                                      leverage, True)
        # phase 2: intrabar stops, then marks move to the close
        for c in range(m):
            cl = close[i, c]
            if cl != cl:
                continue
            if pos[c] != 0.0 and has_stops[c] and state[1 + 5 * c + 1] < i:
                check_stops_nb(open_, high, low, i, c, pos, extreme, state, counts, orders, trades,
                               sl_stop, tp_stop, trail_stop, slippage, fees, fixed_fees, optimistic)
            mark[c] = cl
            last_valid[c] = i
        # phase 3 (close): signals of bar i fill at this bar's close
        if not at_open:
            for c in range(m):
                if entries[i, c] or exits[i, c] or short_entries[i, c] or short_exits[i, c]:
                    process_signal_nb(close, i, i, c, entries, exits, short_entries, short_exits,
                                      pos, mark, extreme, state, counts, orders, trades, size, size_type,
                                      fees, fixed_fees, slippage, lot_size, min_qty, min_notional,
                                      leverage, False)
        cash = state[0]
        equity = cash
        for c in range(m):
            if pos[c] != 0.0:
                equity += pos[c] * mark[c]
        cash_out[i] = cash
        equity_out[i] = equity

    for c in range(m):
        if pos[c] != 0.0:
            write_trade_nb(trades, counts[1], c, int(state[1 + 5 * c + 1]), last_valid[c], pos[c],
                           state[1 + 5 * c], mark[c], state[1 + 5 * c + 2], 0.0, ExitReason.END)
            counts[1] += 1
    return counts[0], counts[1]


@jit
def check_stops_nb(open_, high, low, i, c, pos, extreme, state, counts, orders, trades,
                   sl_stop, tp_stop, trail_stop, slippage, fees, fixed_fees, optimistic):
    """Stops of column ``c`` at bar ``i``; exits on a hit, else moves the trailing extreme."""
    avg = state[1 + 5 * c]
    is_long = pos[c] > 0.0
    if is_long:
        sl_level = avg * (1.0 - sl_stop[c])
        tp_level = avg * (1.0 + tp_stop[c])
        tr_level = extreme[c] * (1.0 - trail_stop[c])
    else:
        sl_level = avg * (1.0 + sl_stop[c])
        tp_level = avg * (1.0 - tp_stop[c])
        tr_level = extreme[c] * (1.0 + trail_stop[c])
    price, reason = stop_fill_nb(is_long, open_[i, c], high[i, c], low[i, c], sl_level, tp_level,
                                 tr_level, optimistic)
    if reason >= 0:
        if reason == ExitReason.SL:
            otype = OrderType.STOP_LOSS
        elif reason == ExitReason.TP:
            otype = OrderType.TAKE_PROFIT
        else:
            otype = OrderType.TRAILING_STOP
        exit_position_nb(state, pos, orders, trades, counts, c, i, price, slippage[c], fees[c],
                         fixed_fees[c], otype, reason)
    elif is_long:
        if high[i, c] > extreme[c]:
            extreme[c] = high[i, c]
    elif low[i, c] < extreme[c]:
        extreme[c] = low[i, c]


@jit
def process_signal_nb(prices, i, s, c, entries, exits, short_entries, short_exits, pos, mark, extreme,
                      state, counts, orders, trades, size, size_type, fees, fixed_fees, slippage,
                      lot_size, min_qty, min_notional, leverage, at_open):
    """Turn column ``c``'s signals of bar ``s`` into orders filling at ``prices[i, c]``."""
    le = entries[s, c]
    se = short_entries[s, c]
    long_entry = le and not se
    short_entry = se and not le
    p = pos[c]
    do_exit = False
    direction = 0
    if p > 0.0:
        if short_entry:
            do_exit = True
            direction = -1
        elif exits[s, c]:
            do_exit = True
    elif p < 0.0:
        if long_entry:
            do_exit = True
            direction = 1
        elif short_exits[s, c]:
            do_exit = True
    elif long_entry:
        direction = 1
    elif short_entry:
        direction = -1
    if not do_exit and direction == 0:
        return
    base = prices[i, c]
    if base != base:
        # no candle to fill on: reject every intended leg
        if do_exit:
            write_order_nb(orders, counts[0], c, i, Side.BUY if p < 0.0 else Side.SELL, abs(p), np.nan, 0.0,
                           OrderType.MARKET, Status.REJECTED, RejectReason.NO_DATA)
            counts[0] += 1
        if direction != 0:
            write_order_nb(orders, counts[0], c, i, Side.BUY if direction > 0 else Side.SELL, np.nan, np.nan,
                           0.0, OrderType.MARKET, Status.REJECTED, RejectReason.NO_DATA)
            counts[0] += 1
        return
    if do_exit:
        exit_position_nb(state, pos, orders, trades, counts, c, i, base, slippage[c], fees[c], fixed_fees[c],
                         OrderType.MARKET, ExitReason.SIGNAL)
    if direction == 0:
        return
    is_buy = direction > 0
    price = slip_price_nb(base, is_buy, slippage[c])
    cash = state[0]
    equity, available = margin_state_nb(pos, mark, prices, i, at_open, cash, leverage)
    units, reason = entry_size_nb(size[c], size_type, price, fees[c], fixed_fees[c], leverage, available,
                                  equity, lot_size[c], min_qty[c], min_notional[c])
    side = Side.BUY if is_buy else Side.SELL
    if reason != RejectReason.NONE:
        write_order_nb(orders, counts[0], c, i, side, units, price, 0.0, OrderType.MARKET,
                       Status.REJECTED, reason)
        counts[0] += 1
        return
    fee = order_fees_nb(units, price, fees[c], fixed_fees[c])
    if is_buy:
        state[0] = cash - units * price - fee
        pos[c] = units
    else:
        state[0] = cash + units * price - fee
        pos[c] = -units
    state[1 + 5 * c] = price
    state[1 + 5 * c + 1] = i
    state[1 + 5 * c + 2] = fee
    extreme[c] = price
    write_order_nb(orders, counts[0], c, i, side, units, price, fee, OrderType.MARKET, Status.FILLED,
                   RejectReason.NONE)
    counts[0] += 1


@jit
def positions_from_orders_nb(idx, col, signed_size, out):
    """Position per bar and column from filled orders (in execution order) into ``out`` ``(n_bars, n_cols)``.

    Adding each order's signed size to the running position is exact here: an exit
    negates exactly the size its entry set.
    """
    n, m = out.shape
    pos = np.zeros(m)
    k = 0
    for i in range(n):
        while k < idx.shape[0] and idx[k] == i:
            c = col[k]
            pos[c] += signed_size[k]
            k += 1
        for c in range(m):
            out[i, c] = pos[c]
    return out
