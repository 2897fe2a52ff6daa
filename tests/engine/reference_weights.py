"""Pure-Python reference of the target-weights backtest (rules in ``nbtrade.kernels.rebalance``).

Missing data: a target whose fill bar has no candle waits (``waiting[c]``) for the column's next
candle, where it trades with that bar's rebalance (or alone); a newer non-NaN weight replaces it.
"""
from __future__ import annotations

import math

EPS = 1e-9


def run_reference_weights(open_, close, weights, rebalance, *, fees, fixed_fees, slippage, lot_size, min_qty,
                          min_notional, leverage=1.0, init_cash=10_000.0, fill="next_open"):
    """Returns ``(orders, trades, cash, equity, n_delayed)``: records as dicts, curves as lists.

    Free margin (``nbtrade.margin``, "Accounting"): the smaller of equity less ``|size| * price / leverage``
    and the wallet ``cash + sum(size * avg entry)`` less the positions' margins (their entries' notional /
    leverage; a decrease releases its share). Spot with leverage > 1 or shorts follows the margin rule:
    its liquidations are not modelled here (the cases compared do not reach one)."""
    n, m = len(close), len(close[0])
    cash = init_cash
    pos = [0.0] * m
    mark = [0.0] * m
    book = [None] * m  # open trade per column: dict of entry/exit totals
    avg = [0.0] * m  # average entry price of the open position (margin runs)
    held_margin = [0.0] * m  # its margin
    waiting = [None] * m  # target weight waiting for the column's next candle
    delayed = 0
    orders, trades, cash_out, equity_out = [], [], [], []

    def value_at(i, j, prices):
        p = prices[i][j]
        return mark[j] if math.isnan(p) else p

    def write_trade(c, exit_idx, exit_notional, why):
        b = book[c]
        qty = b["qty"]
        sign = 1.0 if pos[c] > 0 or (pos[c] == 0 and b["long"]) else -1.0
        entry_price, exit_price = b["entry_notional"] / qty, exit_notional / qty
        pnl = sign * (exit_price - entry_price) * qty - b["entry_fees"] - b["exit_fees"]
        trades.append(dict(col=c, entry_idx=b["idx"], exit_idx=exit_idx, direction="long" if sign > 0 else "short",
                           size=qty, entry_price=entry_price, exit_price=exit_price, entry_fees=b["entry_fees"],
                           exit_fees=b["exit_fees"], pnl=pnl, ret=pnl / (entry_price * qty), exit_reason=why))

    def trade(c, i, base, q, buy):
        nonlocal cash
        price = base * (1 + slippage[c]) if buy else base * (1 - slippage[c])
        fee = q * price * fees[c] + fixed_fees[c]
        cash = cash - q * price - fee if buy else cash + q * price - fee
        orders.append(dict(col=c, idx=i, side="buy" if buy else "sell", size=q, price=price, fees=fee,
                           type="market", status="filled", reason="none"))
        if pos[c] == 0:
            book[c] = dict(idx=i, entry_notional=q * price, qty=q, exit_notional=0.0, entry_fees=fee,
                           exit_fees=0.0, long=buy)
            pos[c] = q if buy else -q
            avg[c], held_margin[c] = price, q * price / leverage
        elif (pos[c] > 0) == buy:
            avg[c] = (avg[c] * abs(pos[c]) + price * q) / (abs(pos[c]) + q)
            held_margin[c] += q * price / leverage
            b = book[c]
            b["entry_notional"] += q * price
            b["qty"] += q
            b["entry_fees"] += fee
            pos[c] = pos[c] + (q if buy else -q)
        else:
            b = book[c]
            b["exit_notional"] += q * price
            b["exit_fees"] += fee
            if q == abs(pos[c]):
                pos[c] = 0.0
                held_margin[c] = 0.0
                write_trade(c, i, b["exit_notional"], "signal")
                book[c] = None
            else:
                held_margin[c] -= held_margin[c] * (q / abs(pos[c]))
                pos[c] = pos[c] + (q if buy else -q)

    def reject(c, i, side, q, price, reason):
        orders.append(dict(col=c, idx=i, side=side, size=q, price=price, fees=0.0, type="market",
                           status="rejected", reason=reason))

    def rebalance_at(i, s, prices, last):
        nonlocal delayed
        # the weight each column trades now: bar s's, else the one waiting for a candle
        now = [None] * m
        for c in range(m):
            w = weights[s][c] if s is not None else math.nan
            if math.isnan(w) and waiting[c] is not None:
                w = waiting[c]
            if math.isnan(w):
                continue
            if not math.isnan(prices[i][c]):
                now[c] = w
                waiting[c] = None
            elif w == 0 and pos[c] == 0:
                waiting[c] = None  # flat and told to stay flat: nothing to wait for
            elif not last:
                if waiting[c] is None:
                    delayed += 1
                waiting[c] = w
            else:
                side = ("buy" if pos[c] < 0 else "sell") if w == 0 else ("buy" if w > 0 else "sell")
                reject(c, i, side, math.nan, math.nan, "no_data")
                waiting[c] = None
        equity = cash
        for j in range(m):
            if pos[j] != 0:
                equity += pos[j] * value_at(i, j, prices)
        smallest = EPS * max(abs(equity), 1.0)
        for shrinking in (True, False):
            for c in range(m):
                w = now[c]
                if w is None:
                    continue
                p = prices[i][c]
                target = w * equity / ((1 + fees[c]) * (1 + slippage[c]) * p)
                same_side = target * pos[c] > 0
                if shrinking:
                    if pos[c] == 0 or (same_side and abs(target) >= abs(pos[c])):
                        continue
                    full = not same_side
                    q = abs(pos[c]) if full else abs(pos[c]) - abs(target)
                    buy = pos[c] < 0
                else:
                    q = abs(target) - abs(pos[c])
                    if target == 0 or q <= 0:
                        continue
                    buy = target > 0
                    full = False
                if not full and lot_size[c] > 0:
                    q = math.floor(q / lot_size[c] + EPS) * lot_size[c]
                if q * p <= smallest:
                    continue
                fill_price = p * (1 + slippage[c]) if buy else p * (1 - slippage[c])
                if not full:
                    side = "buy" if buy else "sell"
                    if q < min_qty[c]:
                        reject(c, i, side, q, fill_price, "min_qty")
                        continue
                    if q * p < min_notional[c]:
                        reject(c, i, side, q, fill_price, "min_notional")
                        continue
                    if not shrinking:
                        eq, gross = cash, 0.0
                        for j in range(m):
                            if pos[j] != 0:
                                v = value_at(i, j, prices)
                                eq += pos[j] * v
                                gross += abs(pos[j]) * v
                        available = eq - gross / leverage
                        wallet = cash + sum(pos[j] * avg[j] for j in range(m) if pos[j] != 0)
                        held = sum(held_margin[j] for j in range(m) if pos[j] != 0)
                        available = min(available, wallet - held)
                        required = q * fill_price / leverage + q * fill_price * fees[c] + fixed_fees[c]
                        if required - available > EPS * max(abs(available), 1.0):
                            reject(c, i, side, q, fill_price, "insufficient_cash")
                            continue
                trade(c, i, p, q, buy)

    prices = open_ if fill == "next_open" else close
    lag = 1 if fill == "next_open" else 0
    for i in range(n):
        s = i - lag
        due = s >= 0 and rebalance[s]
        if due or any(w is not None for w in waiting):
            rebalance_at(i, s if due else None, prices, i == n - 1)
        value = 0.0
        for c in range(m):
            if not math.isnan(close[i][c]):
                mark[c] = close[i][c]
            value += pos[c] * mark[c]
        cash_out.append(cash)
        equity_out.append(cash + value)
    for c in range(m):
        if pos[c] != 0:
            last = max(t for t in range(n) if not math.isnan(close[t][c]))
            write_trade(c, last, book[c]["exit_notional"] + abs(pos[c]) * mark[c], "end")
    return orders, trades, cash_out, equity_out, delayed
