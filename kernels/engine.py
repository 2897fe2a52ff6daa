"""Bar loop of the signals backtest: one shared cash balance, symbols in column order.

Arrays are ``(n_bars, n_cols)`` float64 (prices) or bool (signals), C-contiguous,
time on axis 0. Per-column parameters come packed in one ``(N_PARAMS, n_cols)``
float64 array (rows ``P_SIZE`` ... ``P_MIN_NOTIONAL``), NaN for an unset stop;
the per-column state likewise lives in one ``(N_STATE, n_cols)`` array. Packing
matters: every array handed to a compiled call costs reference-count updates,
which dominated the cost of an order before. A bar is missing for a column when its close is NaN (the Python layer
makes all four prices NaN together); nothing fills on a missing bar. An order due on a
missing bar is rejected here (``NO_DATA``): the Python layer first moves signals whose
fill bar has no candle to the bar before the column's next candle, so they wait for it.

Events of bar ``i``, each phase over all columns in order before the next phase:

``fill_mode == NEXT_OPEN`` (default)
    1. at the open: orders from the signals of bar ``i - 1`` fill at ``open[i]``
       (an exit first, then an entry: a reversal is two orders);
    2. intrabar: stops of open positions, those entered at this open included (the whole
       bar happens after an open fill; rules in ``fills.py``);
    3. at the close: marks move to ``close[i]``, equity is recorded.
``fill_mode == CLOSE``
    1. intrabar: stops of positions entered before bar ``i``;
    2. at the close: orders from the signals of bar ``i`` fill at ``close[i]``,
       equity is recorded.

Signals: when long, a short entry reverses and an exit closes (all of the position, or the
fraction ``exit_size`` gives: a partial close, a trade of its own); when short,
mirrored; when flat, an entry opens (exits are ignored). Long and short entry
together cancel each other. An entry while already in the same direction is
ignored (no pyramiding). Sizing of an entry values the portfolio at the price
of the moment (the bar's opens, or its closes) and the last valid close for a
symbol with no candle. Equity at bar ``i`` is ``cash + sum(position * mark)``,
``mark`` being the last valid close (valuation only; never a fill price).
"""
from __future__ import annotations

import numpy as np

from ._jit import ijit, jit, jit_borrow
from .fills import (EPS, entry_size_nb, exchange_filter_nb, impact_price_nb, order_fees_nb, pending_fill_nb,
                    slip_price_nb, stop_fill_nb, stop_limit_fill_nb)
from .records import Direction, ExitReason, FillMode, Intrabar, OrderType, RejectReason, Side, Status

#: Rows of the packed per-column parameter array.
#: ``P_MAKER_FEES``: fee rate of resting limit entries (NaN: use ``P_FEES``).
#: ``P_SLIP_RANGE``: extra adverse slippage as a fraction of the last complete bar's high - low.
#: ``P_SLIP_VOLUME``: volume impact coefficient (square-root law, ``fills.impact_price_nb``).
(P_SIZE, P_FEES, P_FIXED_FEES, P_SLIPPAGE, P_SL, P_TP, P_TRAIL, P_LOT, P_MIN_QTY, P_MIN_NOTIONAL,
 P_MAKER_FEES, P_SLIP_RANGE, P_SLIP_VOLUME) = range(13)
N_PARAMS = 13
#: Rows of the per-column state: signed position, mark (last valid close, valuation only),
#: trailing extreme before the current bar, average entry price, entry bar, entry fees.
#: Pending entry (limit/stop orders): direction (0 none, +1/-1), price, signal bar.
#: Absolute stop levels of the current/next entry (NaN: use the percent stops).
#: Stop-limit entries: limit price and triggered flag.
#: ``S_RANGE``: high - low of the column's last complete valid bar (range slippage).
#: ``S_GROUP``: the column's cash account (index into ``acct``; set by the caller).
#: ``S_WAIT``: callback path: 1 + the signal bar of signals waiting for the column's next candle (0: none).
#: ``S_VOLUME``: volume of the column's last complete bar with volume > 0 (volume impact; 0: none yet).
(S_POS, S_MARK, S_EXTREME, S_AVG, S_ENTRY_IDX, S_ENTRY_FEES, S_PEND_DIR, S_PEND_PRICE, S_PEND_BAR,
 S_SL_ABS, S_TP_ABS, S_PEND_LIMIT, S_PEND_TRIG, S_RANGE, S_GROUP, S_WAIT, S_VOLUME) = range(17)
N_STATE = 17


#: Slots of the ``counts`` array of the bar loops: orders and trades written (the used prefix of
#: each record buffer), signals delayed to a later candle (callback loop), then rejected orders
#: by ``RejectReason`` from ``C_REJECTED`` on: the Python layer warns without a pass over the records.
C_ORDERS, C_TRADES, C_DELAYED, C_REJECTED = range(4)
N_COUNTS = C_REJECTED + len(RejectReason)


@ijit
def fill_price_nb(st, params, c, base, is_buy):
    """Fill price of column ``c`` at ``base`` before volume impact: percent slippage, then range
    slippage, both adverse.

    The range (and the volume of ``impact_nb``) is the last *complete* bar's (no look-ahead):
    the previous bar for fills at the open or intrabar, the current bar for fills at its close.
    """
    extra = params[P_SLIP_RANGE, c] * st[S_RANGE, c]
    if is_buy:
        return slip_price_nb(base, True, params[P_SLIPPAGE, c]) + extra
    return slip_price_nb(base, False, params[P_SLIPPAGE, c]) - extra


@ijit
def impact_nb(st, params, c):
    """Volume impact coefficient of column ``c``: ``slippage_volume / sqrt(volume)`` (0: none)."""
    k = params[P_SLIP_VOLUME, c]
    v = st[S_VOLUME, c]
    if k == 0.0 or not v > 0.0:
        return 0.0
    return k / np.sqrt(v)


@ijit
def tracking_nb(params):
    """``(use_range, use_volume)``: whether any column asks for range or volume slippage, so the
    bar loops read highs/lows or volumes only then."""
    use_range = False
    use_volume = False
    for c in range(params.shape[1]):
        use_range = use_range or params[P_SLIP_RANGE, c] != 0.0
        use_volume = use_volume or params[P_SLIP_VOLUME, c] != 0.0
    return use_range, use_volume


@ijit
def track_bar_nb(high, low, volume, i, c, st, use_range, use_volume):
    """Remember bar ``i``'s range and volume for column ``c``'s later fills (slippage models)."""
    if use_range:
        st[S_RANGE, c] = high[i, c] - low[i, c]
    if use_volume:
        v = volume[i, c]
        if v > 0.0:
            st[S_VOLUME, c] = v


@ijit
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


@ijit
def reject_order_nb(orders, counts, col, idx, side, size, price, otype, reason):
    """Record a rejected order (no fill, no fees) and count it by reason."""
    write_order_nb(orders, counts[C_ORDERS], col, idx, side, size, price, 0.0, otype, Status.REJECTED, reason)
    counts[C_ORDERS] += 1
    counts[C_REJECTED + reason] += 1


@ijit
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


@ijit
def margin_state_nb(st, prices, i, cash, leverage, group):
    """Equity and free margin of cash account ``group``, valuing each of its positions at
    ``prices[i]`` (the price of the moment) if valid, else at its mark (last valid close)."""
    equity = cash
    gross = 0.0
    for j in range(st.shape[1]):
        q = st[S_POS, j]
        if q != 0.0 and st[S_GROUP, j] == group:
            p = prices[i, j]
            if p != p:
                p = st[S_MARK, j]
            equity += q * p
            gross += abs(q) * p
    return equity, equity - gross / leverage


@ijit
def exit_position_nb(st, acct, ci, counts, orders, trades, params, c, i, base_price, otype, exit_reason,
                     fraction=1.0):
    """Close column ``c``'s position, or ``fraction`` of it, at ``base_price`` (before slippage);
    cash in ``acct[ci]``.

    A partial exit (``fraction < 1``) rounds down to the lot size and is rejected below one lot,
    ``min_qty`` or ``min_notional``; if it rounds to the whole position it closes it. It is a
    trade of its own, carrying its share of the entry fees; the rest keeps its average price.
    """
    p = st[S_POS, c]
    is_buy = p < 0.0
    held = abs(p)
    size = held
    side = Side.BUY if is_buy else Side.SELL
    if fraction < 1.0:
        size = held * fraction
        lot = params[P_LOT, c]
        if lot > 0.0:
            size = np.floor(size / lot + EPS) * lot
        if size >= held:
            size = held
    price = fill_price_nb(st, params, c, base_price, is_buy)
    impact = impact_nb(st, params, c)
    if impact > 0.0:
        price = impact_price_nb(price, base_price, impact, size, is_buy)
    if size < held:
        reason = exchange_filter_nb(size, price, params[P_LOT, c], params[P_MIN_QTY, c], params[P_MIN_NOTIONAL, c])
        if reason != RejectReason.NONE:
            reject_order_nb(orders, counts, c, i, side, size, price, otype, reason)
            return
    fees = order_fees_nb(size, price, params[P_FEES, c], params[P_FIXED_FEES, c])
    if is_buy:
        acct[ci] -= size * price + fees
    else:
        acct[ci] += size * price - fees
    write_order_nb(orders, counts[0], c, i, side, size, price, fees, otype, Status.FILLED, RejectReason.NONE)
    counts[0] += 1
    entry_fees = st[S_ENTRY_FEES, c]
    if size == held:
        write_trade_nb(trades, counts[1], c, int(st[S_ENTRY_IDX, c]), i, p, st[S_AVG, c], price,
                       entry_fees, fees, exit_reason)
        st[S_POS, c] = 0.0
    else:
        share = entry_fees * (size / held)
        write_trade_nb(trades, counts[1], c, int(st[S_ENTRY_IDX, c]), i, size if p > 0.0 else -size,
                       st[S_AVG, c], price, share, fees, exit_reason)
        st[S_ENTRY_FEES, c] = entry_fees - share
        st[S_POS, c] = p - size if p > 0.0 else p + size
    counts[1] += 1


@ijit
def has_stops_nb(params, c, abs_stops):
    """Whether column ``c`` has attached stops (percent, trailing, or absolute levels)."""
    return (abs_stops or params[P_SL, c] == params[P_SL, c] or params[P_TP, c] == params[P_TP, c]
            or params[P_TRAIL, c] == params[P_TRAIL, c])


@jit
def simulate_signals_nb(open_, high, low, close, volume, entries, exits, short_entries, short_exits, has_short,
                        params, size_type, leverage, fill_mode, intrabar,
                        order_type, order_price, limit_price, tif, abs_stops, sl_price, tp_price,
                        partial, exit_size, start, st, acct, counts, orders, trades, cash_out, equity_out):
    """Run the signals backtest from bar ``start``; fill ``orders``, ``trades``, ``cash_out``, ``equity_out``.

    ``volume`` ``(n_bars, n_cols)`` is read only for volume impact (``P_SLIP_VOLUME``; else any
    2-D array). ``params`` is ``(N_PARAMS, n_cols)``. Column ``c`` trades the cash of account
    ``acct[st[S_GROUP, c]]`` (all 0: one shared balance; ``c``: isolated accounts). The state
    (``st`` ``(N_STATE, n_cols)`` zeros, ``acct``, ``counts`` ``[0, 0]``) lives in caller arrays:
    when the preallocated record buffers (``order_dt``, ``trade_dt``) might overflow within the
    next bar, the run stops and returns that bar, and the caller resumes it with larger
    buffers (returns ``n_bars`` when done). ``has_short`` False skips
    reading the short signal arrays. ``order_type`` (``OrderType.MARKET``, ``LIMIT``, ``STOP``
    or ``STOP_LIMIT``, whose limit is ``limit_price[s, c]``) applies to entries: a resting
    entry waits at ``order_price[s, c]`` from
    the bar after its signal bar ``s`` for ``tif`` bars (0: until filled or cancelled) and
    fills intrabar (``fills.pending_fill_nb``). ``abs_stops`` True: ``sl_price[s, c]`` /
    ``tp_price[s, c]`` (absolute levels, NaN = unset) of an entry's signal bar ``s`` replace
    the percent stops for that trade. ``partial`` True: an exit signal at bar ``s`` closes the
    fraction ``exit_size[s, c]`` of the position (one row: per column), else all of it.
    ``counts`` ends as ``(n_orders, n_trades)``: the used
    prefix of each buffer. Open positions at the end are reported as trades with
    exit reason ``END`` at the last valid close, without exit fees.
    """
    n, m = close.shape
    any_stops = False
    for c in range(m):
        any_stops = any_stops or has_stops_nb(params, c, abs_stops)
    use_range, use_volume = tracking_nb(params)
    track = use_range or use_volume
    optimistic = intrabar == Intrabar.OPTIMISTIC
    at_open = fill_mode == FillMode.NEXT_OPEN
    # Without stops nothing happens intrabar, so the phases of a bar fuse into one pass over
    # the columns with identical results (fused_bars_nb). With stops, every column's open
    # orders must precede any stop fill of the bar and stops precede close orders, so phases
    # run as separate passes.
    split = any_stops or order_type != OrderType.MARKET
    lag = 1 if at_open else 0
    if not split:
        done = fused_bars_nb(open_, high, low, close, volume, entries, exits, short_entries, short_exits, has_short,
                             params, size_type, leverage, at_open, use_range, use_volume, order_type, partial,
                             exit_size, start, st, acct, counts, orders, trades, cash_out, equity_out)
        if done < n:
            return done
        close_books_nb(close, st, counts, orders, trades, order_type)
        return n

    for i in range(start, n):
        # worst case of one bar: 3 orders and 2 trades per column, plus the end-of-data records
        if counts[0] + 4 * m > orders.shape[0] or counts[1] + 3 * m > trades.shape[0]:
            return i
        acc = 0.0
        s = i - lag
        for phase in range(3):
            if phase == 1:
                # intrabar stops, then marks move to the close
                for c in range(m):
                    cl = close[i, c]
                    if cl == cl:
                        if st[S_PEND_DIR, c] != 0.0:
                            check_pending_nb(open_, high, low, i, c, st, acct, int(st[S_GROUP, c]), counts,
                                             orders, trades, params, size_type, leverage, order_type, tif)
                        elif (st[S_POS, c] != 0.0 and has_stops_nb(params, c, abs_stops)
                              and (at_open or st[S_ENTRY_IDX, c] < i)):
                            check_stops_nb(open_, high, low, i, c, st, acct, int(st[S_GROUP, c]), counts, orders,
                                           trades, params, optimistic)
                        st[S_MARK, c] = cl
                        if track:
                            track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
                continue
            # phase 0: signals of bar i-1 at the open; phase 2: signals of bar i at the close
            if (phase == 0) != at_open or s < 0:
                continue
            for c in range(m):
                p = st[S_POS, c]
                if p > 0.0:
                    want = exits[s, c] or (has_short and short_entries[s, c])
                elif p < 0.0:
                    want = entries[s, c] or short_exits[s, c]
                else:
                    want = entries[s, c] or (has_short and short_entries[s, c])
                    if st[S_PEND_DIR, c] != 0.0:
                        want = want or exits[s, c] or (has_short and short_exits[s, c])
                if want:
                    process_signal_nb(open_, close, at_open, i, c, entries, exits, short_entries, short_exits,
                                      has_short, st, acct, int(st[S_GROUP, c]), counts, orders, trades, params,
                                      size_type, leverage, order_type, order_price[s, c],
                                      limit_price[s, c] if order_type == OrderType.STOP_LIMIT else np.nan, s,
                                      sl_price[s, c] if abs_stops else np.nan,
                                      tp_price[s, c] if abs_stops else np.nan,
                                      partial, exit_size)
        for c in range(m):
            acc += st[S_POS, c] * st[S_MARK, c]
        cash = acct[0]
        for k in range(1, acct.shape[0]):
            cash += acct[k]
        cash_out[i] = cash
        equity_out[i] = cash + acc

    close_books_nb(close, st, counts, orders, trades, order_type)
    return n


@jit
def fused_bars_nb(open_, high, low, close, volume, entries, exits, short_entries, short_exits, has_short, params,
                  size_type, leverage, at_open, use_range, use_volume, order_type, partial, exit_size, start, st,
                  acct, counts, orders, trades, cash_out, equity_out):
    """The signals loop without stops or resting orders: a bar's phases fuse into one pass over the columns.

    Same results as the phased loop: nothing happens intrabar, and sizing values other
    columns at the bar's prices (their mark only where the bar has no candle, which leaves
    the mark as it was). Returns the bar to resume from when the record buffers may
    overflow, else ``n_bars``.
    """
    n, m = close.shape
    track = use_range or use_volume
    lag = 1 if at_open else 0
    for i in range(start, n):
        # worst case of one bar: 2 orders and 1 trade per column, plus the end-of-data records
        if counts[0] + 4 * m > orders.shape[0] or counts[1] + 3 * m > trades.shape[0]:
            return i
        acc = 0.0
        s = i - lag
        for c in range(m):
            cl = close[i, c]
            valid = cl == cl
            if valid and not at_open:  # fills at this close see this bar's range and volume
                st[S_MARK, c] = cl
                if track:
                    track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
            if s >= 0:
                # read only the signals that can act on the position; kept inline: a call
                # here, once per bar-step, made the whole loop several times slower
                p = st[S_POS, c]
                if p > 0.0:
                    want = exits[s, c] or (has_short and short_entries[s, c])
                elif p < 0.0:
                    want = entries[s, c] or short_exits[s, c]
                else:
                    want = entries[s, c] or (has_short and short_entries[s, c])
                if want:
                    process_signal_nb(open_, close, at_open, i, c, entries, exits, short_entries, short_exits,
                                      has_short, st, acct, int(st[S_GROUP, c]), counts, orders, trades, params,
                                      size_type, leverage, order_type, np.nan, np.nan, s, np.nan, np.nan,
                                      partial, exit_size)
            if valid and at_open:
                st[S_MARK, c] = cl
                if track:
                    track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
            acc += st[S_POS, c] * st[S_MARK, c]
        cash = acct[0]
        for k in range(1, acct.shape[0]):
            cash += acct[k]
        cash_out[i] = cash
        equity_out[i] = cash + acc
    return n


@jit_borrow
def close_books_nb(close, st, counts, orders, trades, order_type):
    """End of the run: resting orders recorded as OPEN, open positions as trades ending at the last valid close.

    Shared by the signals and the callback loops; nothing is dropped silently.
    """
    n, m = close.shape
    for c in range(m):
        if st[S_PEND_DIR, c] != 0.0:
            write_order_nb(orders, counts[0], c, n - 1, Side.BUY if st[S_PEND_DIR, c] > 0.0 else Side.SELL,
                           np.nan, st[S_PEND_PRICE, c], 0.0, order_type, Status.OPEN, RejectReason.NONE)
            counts[0] += 1
        if st[S_POS, c] != 0.0:
            last = n - 1
            while close[last, c] != close[last, c]:
                last -= 1
            write_trade_nb(trades, counts[1], c, int(st[S_ENTRY_IDX, c]), last, st[S_POS, c],
                           st[S_AVG, c], st[S_MARK, c], st[S_ENTRY_FEES, c], 0.0, ExitReason.END)
            counts[1] += 1


@jit_borrow
def check_stops_nb(open_, high, low, i, c, st, acct, ci, counts, orders, trades, params, optimistic):
    """Stops of column ``c`` at bar ``i``; exits on a hit, else moves the trailing extreme."""
    avg = st[S_AVG, c]
    extreme = st[S_EXTREME, c]
    is_long = st[S_POS, c] > 0.0
    if is_long:
        sl_level = avg * (1.0 - params[P_SL, c])
        tp_level = avg * (1.0 + params[P_TP, c])
        tr_level = extreme * (1.0 - params[P_TRAIL, c])
    else:
        sl_level = avg * (1.0 + params[P_SL, c])
        tp_level = avg * (1.0 - params[P_TP, c])
        tr_level = extreme * (1.0 + params[P_TRAIL, c])
    if st[S_SL_ABS, c] == st[S_SL_ABS, c]:
        sl_level = st[S_SL_ABS, c]
    if st[S_TP_ABS, c] == st[S_TP_ABS, c]:
        tp_level = st[S_TP_ABS, c]
    price, reason = stop_fill_nb(is_long, open_[i, c], high[i, c], low[i, c], sl_level, tp_level,
                                 tr_level, optimistic)
    if reason >= 0:
        if reason == ExitReason.SL:
            otype = OrderType.STOP_LOSS
        elif reason == ExitReason.TP:
            otype = OrderType.TAKE_PROFIT
        else:
            otype = OrderType.TRAILING_STOP
        exit_position_nb(st, acct, ci, counts, orders, trades, params, c, i, price, otype, reason)
    elif is_long:
        if high[i, c] > extreme:
            st[S_EXTREME, c] = high[i, c]
    elif low[i, c] < extreme:
        st[S_EXTREME, c] = low[i, c]


@jit_borrow
def process_signal_nb(open_, close, at_open, i, c, entries, exits, short_entries, short_exits, has_short, st, acct,
                      ci, counts, orders, trades, params, size_type, leverage, order_type, entry_price, entry_limit,
                      s, sl_abs, tp_abs, partial, exit_size):
    """Turn column ``c``'s signals (long entry/exit, short entry/exit) of bar ``s`` into orders at
    ``open_[i, c]`` (``at_open``) or ``close[i, c]``; a limit/stop entry becomes a resting order
    at ``entry_price`` instead. An exit signal closes all of the position, or with ``partial``
    the fraction ``exit_size[s, c]`` of it (one row: per column); a reversal closes all of it.
    Both price arrays come in: choosing one in the caller makes a new array variable there,
    reference-counted around every call."""
    prices = open_ if at_open else close
    # the signals are read here, not in the caller: conditional expressions among a call's
    # arguments in the bar loop cost more than the whole rest of a rejected order
    le = entries[s, c]
    lx = exits[s, c]
    se = has_short and short_entries[s, c]
    sx = has_short and short_exits[s, c]
    long_entry = le and not se
    short_entry = se and not le
    p = st[S_POS, c]
    pend = st[S_PEND_DIR, c]
    if pend != 0.0 and (long_entry or short_entry or (pend > 0.0 and lx) or (pend < 0.0 and sx)):
        # a new entry replaces the resting one; an exit signal of its side cancels it
        write_order_nb(orders, counts[0], c, i, Side.BUY if pend > 0.0 else Side.SELL, np.nan,
                       st[S_PEND_PRICE, c], 0.0, order_type, Status.CANCELLED, RejectReason.NONE)
        counts[0] += 1
        st[S_PEND_DIR, c] = 0.0
    do_exit = False
    direction = 0
    if p > 0.0:
        if short_entry:
            do_exit = True
            direction = -1
        elif lx:
            do_exit = True
    elif p < 0.0:
        if long_entry:
            do_exit = True
            direction = 1
        elif sx:
            do_exit = True
    elif long_entry:
        direction = 1
    elif short_entry:
        direction = -1
    if not do_exit and direction == 0:
        return
    base = prices[i, c]
    if base != base and (do_exit or order_type == OrderType.MARKET):
        # no candle to fill on: reject every intended leg (a resting entry alone is placed: it
        # needs no price now and only fills on bars with a candle)
        if do_exit:
            reject_order_nb(orders, counts, c, i, Side.BUY if p < 0.0 else Side.SELL, abs(p), np.nan,
                            OrderType.MARKET, RejectReason.NO_DATA)
        if direction != 0:
            reject_order_nb(orders, counts, c, i, Side.BUY if direction > 0 else Side.SELL, np.nan, np.nan,
                            order_type, RejectReason.NO_DATA)
        return
    if do_exit:
        exit_position_nb(st, acct, ci, counts, orders, trades, params, c, i, base, OrderType.MARKET,
                         ExitReason.SIGNAL,
                         exit_size[s if exit_size.shape[0] > 1 else 0, c] if partial and direction == 0 else 1.0)
    if direction == 0:
        return
    # absolute stop levels travel with the entry signal (to a resting order's fill too)
    st[S_SL_ABS, c] = sl_abs
    st[S_TP_ABS, c] = tp_abs
    if order_type != OrderType.MARKET:
        st[S_PEND_DIR, c] = direction
        st[S_PEND_PRICE, c] = entry_price
        st[S_PEND_BAR, c] = s
        st[S_PEND_LIMIT, c] = entry_limit
        st[S_PEND_TRIG, c] = 0.0
        return
    enter_nb(prices, i, c, base, direction > 0, OrderType.MARKET, st, acct, ci, counts, orders, params,
             size_type, leverage)


@ijit
def enter_nb(prices, i, c, base, is_buy, otype, st, acct, ci, counts, orders, params, size_type, leverage):
    """Size, check and fill (or reject) an entry of column ``c`` at ``base`` (before slippage);
    other positions are valued at ``prices[i]``."""
    price = fill_price_nb(st, params, c, base, is_buy)
    impact = impact_nb(st, params, c)
    cash = acct[ci]
    if acct.shape[0] == st.shape[1]:
        # one account per column and this column is flat: nothing else to value
        equity, available = cash, cash
    else:
        equity, available = margin_state_nb(st, prices, i, cash, leverage, ci)
    fee_rate = params[P_FEES, c]
    if otype == OrderType.LIMIT and params[P_MAKER_FEES, c] == params[P_MAKER_FEES, c]:
        fee_rate = params[P_MAKER_FEES, c]
    fixed = params[P_FIXED_FEES, c]
    units, price, reason = entry_size_nb(params[P_SIZE, c], size_type, price, fee_rate, fixed, leverage,
                                         available, equity, params[P_LOT, c], params[P_MIN_QTY, c],
                                         params[P_MIN_NOTIONAL, c], base, impact, is_buy)
    side = Side.BUY if is_buy else Side.SELL
    if reason != RejectReason.NONE:
        reject_order_nb(orders, counts, c, i, side, units, price, otype, reason)
        return
    fee = order_fees_nb(units, price, fee_rate, fixed)
    if is_buy:
        acct[ci] = cash - units * price - fee
        st[S_POS, c] = units
    else:
        acct[ci] = cash + units * price - fee
        st[S_POS, c] = -units
    st[S_AVG, c] = price
    st[S_ENTRY_IDX, c] = i
    st[S_ENTRY_FEES, c] = fee
    st[S_EXTREME, c] = price
    write_order_nb(orders, counts[0], c, i, side, units, price, fee, otype, Status.FILLED, RejectReason.NONE)
    counts[0] += 1


@jit_borrow
def check_pending_nb(open_, high, low, i, c, st, acct, ci, counts, orders, trades, params, size_type, leverage,
                     order_type, tif):
    """Expire, or fill intrabar, column ``c``'s resting entry at bar ``i`` (a valid bar)."""
    s = st[S_PEND_BAR, c]
    if s >= i:
        return  # placed at this bar's close or open: eligible from the next bar
    direction = st[S_PEND_DIR, c]
    level = st[S_PEND_PRICE, c]
    if tif > 0 and i > s + tif:
        write_order_nb(orders, counts[0], c, i, Side.BUY if direction > 0.0 else Side.SELL, np.nan, level, 0.0,
                       order_type, Status.EXPIRED, RejectReason.NONE)
        counts[0] += 1
        st[S_PEND_DIR, c] = 0.0
        return
    if order_type == OrderType.STOP_LIMIT:
        base, trig = stop_limit_fill_nb(direction > 0.0, st[S_PEND_TRIG, c] != 0.0, open_[i, c], high[i, c],
                                        low[i, c], level, st[S_PEND_LIMIT, c])
        st[S_PEND_TRIG, c] = 1.0 if trig else 0.0
    else:
        base = pending_fill_nb(direction > 0.0, order_type == OrderType.LIMIT, open_[i, c], high[i, c],
                               low[i, c], level)
    if base == base:
        st[S_PEND_DIR, c] = 0.0
        enter_nb(open_, i, c, base, direction > 0.0, order_type, st, acct, ci, counts, orders, params, size_type,
                 leverage)


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
