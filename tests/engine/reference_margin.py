"""Pure-Python reference of the margin rules of ``nbtrade.margin`` (module docstring), written
apart from ``nbtrade.kernels.margin`` so the two can be checked against each other; the random
engine comparison will reuse it. Slow and plain on purpose.

Tiers are lists of ``(floor, cap, mmr, cum, max_leverage)`` rows. The liquidation price is
found differently from the kernel: the margin surplus ``f(P) = balance(P) - MM(qty * P)`` is
piecewise linear in ``P`` with kinks at the tier caps, so walk the kinks in price order, find
the segment where ``f`` changes sign and solve the line there.
"""
from __future__ import annotations

import math


def tier_of(tiers, notional):
    """Index of the tier holding ``notional``: ``floor < notional <= cap``; the last tier beyond it."""
    for k, (_, cap, _, _, _) in enumerate(tiers):
        if notional <= cap:
            return k
    return len(tiers) - 1


def maintenance(tiers, notional):
    _, _, mmr, cum, _ = tiers[tier_of(tiers, notional)]
    return notional * mmr - cum


def max_leverage(tiers, notional):
    if notional > tiers[-1][1]:
        return 0.0
    return tiers[tier_of(tiers, notional)][4]


def initial_margin(notional, leverage):
    return notional / leverage


def surplus(side, qty, entry, wallet, other, tiers, price):
    """Margin balance minus maintenance margin if the position's mark were ``price``."""
    return wallet + other + side * qty * (price - entry) - maintenance(tiers, qty * price)


def liquidation_price(side, qty, entry, wallet, other, tiers):
    """Price where the surplus is zero (0.0: never for a long, already for a short)."""
    f0 = wallet + other - side * qty * entry
    if (side > 0 and f0 >= 0) or (side < 0 and f0 <= 0):
        return 0.0
    # kinks of f in price, then one far point; f is linear between consecutive points
    points = [0.0] + [cap / qty for (_, cap, _, _, _) in tiers if math.isfinite(cap)]
    points.append(max(points[-1], entry) * 4.0 + (abs(wallet) + abs(other)) / qty * 4.0 + 1.0)
    for a, b in zip(points, points[1:]):
        fa = surplus(side, qty, entry, wallet, other, tiers, a) if a > 0 else f0
        # the line of the tier holding the notionals strictly inside (a, b) (the midpoint's:
        # qty * (cap / qty) may round past the cap)
        _, _, mmr, cum, _ = tiers[tier_of(tiers, qty * (a + b) / 2.0)]
        slope = side * qty - qty * mmr
        fb = fa + slope * (b - a)
        if (fa <= 0.0 <= fb) or (fb <= 0.0 <= fa):
            if slope == 0.0:
                return a
            return a - fa / slope
    # beyond the far point: the last tier's line
    _, _, mmr, cum, _ = tiers[-1]
    return max((wallet + other + cum - side * qty * entry) / (qty * mmr - side * qty), 0.0)


def bankruptcy_price(side, qty, entry, wallet, other):
    return max(entry - side * (wallet + other) / qty, 0.0)


def margin_balance(positions, wallet):
    """``positions``: list of dicts with ``size``, ``entry``, ``mark``, ``tiers`` (summed in list order)."""
    total = wallet
    for p in positions:
        if p["size"] != 0:
            total += p["size"] * (p["mark"] - p["entry"])
    return total


def total_maintenance(positions):
    total = 0.0
    for p in positions:
        if p["size"] != 0:
            total += maintenance(p["tiers"], abs(p["size"]) * p["mark"])
    return total


def cross_liquidated(positions, wallet):
    if not any(p["size"] != 0 for p in positions):
        return False
    return margin_balance(positions, wallet) <= total_maintenance(positions)


def cross_liquidation_price(j, positions, wallet):
    p = positions[j]
    if p["size"] == 0:
        return math.nan
    others = [q for i, q in enumerate(positions) if i != j]
    other = margin_balance(others, 0.0) - total_maintenance(others)
    side = 1 if p["size"] > 0 else -1
    return liquidation_price(side, abs(p["size"]), p["entry"], wallet, other, p["tiers"])


def adverse_mark(size, high, low):
    return high if size < 0 else low


def liquidation_fill(side, liq, mark_open, mark_high, mark_low):
    """Fill price of a liquidation in one bar (gap -> the open), NaN if the bar does not reach it."""
    if math.isnan(liq):
        return math.nan
    if side > 0:
        return mark_open if mark_open <= liq else (liq if mark_low <= liq else math.nan)
    return mark_open if mark_open >= liq else (liq if mark_high >= liq else math.nan)


def liquidation_first(side, liq, stop):
    if math.isnan(stop):
        return True
    return liq >= stop if side > 0 else liq <= stop


def liquidation_fee(qty, fill, fee_rate, maint, remaining):
    fee = maint if math.isnan(fee_rate) else fee_rate * qty * fill
    return min(max(fee, 0.0), max(remaining, 0.0))


def settle_isolated(size, entry, margin, fill, fee_rate, maint):
    pnl = size * (fill - entry)
    remaining = margin + pnl
    fee = liquidation_fee(abs(size), fill, fee_rate, maint, remaining)
    return max(remaining - fee, 0.0), pnl, fee, max(-remaining, 0.0)


def cross_event(positions, wallet, open_only, fee_rate):
    """A cross wallet's check and liquidation at one moment of a bar (``kernels.margin.cross_event_nb``).

    ``positions``: dicts with ``size`` (0: flat), ``entry``, ``open``/``high``/``low`` (the bar's mark
    candle; open NaN: none), ``last`` (last mark) and ``tiers``. Returns None when the wallet survives,
    else ``(fill, fee, absorbed)`` per position (zeros for flat ones)."""
    def mark_now(p):
        if math.isnan(p["open"]):
            return p["last"]
        return p["open"] if open_only else adverse_mark(p["size"], p["high"], p["low"])

    snap = [dict(p, mark=mark_now(p)) for p in positions]
    if not cross_liquidated(snap, wallet):
        return None
    fills = []
    for j, p in enumerate(snap):
        if p["size"] == 0:
            fills.append(0.0)
        elif math.isnan(p["open"]):
            fills.append(p["last"])
        elif open_only:
            fills.append(p["open"])
        else:
            side = 1 if p["size"] > 0 else -1
            f = liquidation_fill(side, cross_liquidation_price(j, snap, wallet), p["open"], p["high"], p["low"])
            fills.append(p["mark"] if math.isnan(f) else f)
    pnls = [p["size"] * (f - p["entry"]) if p["size"] != 0 else 0.0 for p, f in zip(snap, fills)]
    balance = wallet + sum(pnls)
    lost = max(-balance, 0.0)
    losses = sum(max(-x, 0.0) for x in pnls)
    out = []
    for p, f, pnl in zip(snap, fills, pnls):
        if p["size"] == 0:
            out.append((0.0, 0.0, 0.0))
            continue
        qty = abs(p["size"])
        raw = maintenance(p["tiers"], qty * f) if math.isnan(fee_rate) else fee_rate * qty * f
        fee = min(max(raw, 0.0), max(balance, 0.0))
        balance -= fee
        if lost > 0 and losses > 0:
            share = lost * max(-pnl, 0.0) / losses
        elif lost > 0:
            notionals = sum(abs(q["size"]) * g for q, g in zip(snap, fills) if q["size"] != 0)
            share = lost * qty * f / notionals if notionals > 0 else 0.0
        else:
            share = 0.0
        out.append((f, fee, share))
    return out


def funding_flow(size, mark, rate):
    """Cash to the account: a long (size > 0) pays a positive rate."""
    return -(size * mark * rate)


def funding_check_margin(margin, flows):
    return margin + sum(f for f in flows if f < 0)


def walk_isolated(side, qty, entry, margin, tiers, bars, *, stop=math.nan, fee_rate=math.nan, funding=()):
    """One isolated perpetual position through the per-bar order of ``nbtrade.margin`` (mark = price).

    Entered at the open of bar 0 (``fill="next_open"``), so bar 0 starts at step 4. ``bars``:
    ``(open, high, low, close)`` per bar; ``funding``: ``(bar, at_open, rate, mark)`` rows in time
    order (``mark`` NaN: the bar's open); ``stop``: an absolute stop-loss level (NaN: none).
    Returns a dict: ``bar``, ``reason`` (``"liquidation"``, ``"stop"`` or ``"open"``), ``fill``,
    ``pnl``, ``fee``, ``returned`` (margin + PnL - fee back to the wallet, >= 0), ``absorbed``,
    ``funding`` (net cash received through funding) and ``margin`` (the isolated margin at the end).
    """
    size = side * qty
    received = 0.0

    def result(bar, reason, fill, pnl=0.0, fee=0.0, returned=None, absorbed=0.0):
        return dict(bar=bar, reason=reason, fill=fill, pnl=pnl, fee=fee,
                    returned=margin + pnl if returned is None else returned, absorbed=absorbed,
                    funding=received, margin=margin)

    def liquidate(bar, fill):
        returned, pnl, fee, absorbed = settle_isolated(size, entry, margin, fill, fee_rate,
                                                       maintenance(tiers, qty * fill))
        return result(bar, "liquidation", fill, pnl, fee, returned, absorbed)

    for i, (o, h, lo, c) in enumerate(bars):
        rows = [f for f in funding if f[0] == i]
        if i > 0:
            # 1. funding due at the open, on the position carried in
            for _, at_open, rate, mark in rows:
                if at_open:
                    flow = funding_flow(size, o if math.isnan(mark) else mark, rate)
                    margin += flow
                    received += flow
            # 2. liquidation at the open (gap through the level)
            lp = liquidation_price(side, qty, entry, margin, 0.0, tiers)
            if (side > 0 and o <= lp) or (side < 0 and o >= lp):
                return liquidate(i, o)
        # 3. (orders at the open: the entry on bar 0)
        # 4. intrabar: funding inside the bar pessimistically, then liquidation vs the stop
        inside = [funding_flow(size, o if math.isnan(mark) else mark, rate)
                  for _, at_open, rate, mark in rows if not at_open]
        lp = liquidation_price(side, qty, entry, funding_check_margin(margin, inside), 0.0, tiers)
        liq_fill = liquidation_fill(side, lp, o, h, lo)
        stop_fill = math.nan
        if not math.isnan(stop):
            if side > 0 and lo <= stop:
                stop_fill = min(o, stop)
            elif side < 0 and h >= stop:
                stop_fill = max(o, stop)
        liq_hit = not math.isnan(liq_fill)
        stop_hit = not math.isnan(stop_fill)
        if liq_hit or stop_hit:
            payments = [f for f in inside if f < 0]
            margin += sum(payments)
            received += sum(payments)
            if liq_hit and (not stop_hit or liquidation_first(side, lp, stop)):
                return liquidate(i, liq_fill)
            return result(i, "stop", stop_fill, size * (stop_fill - entry))
        margin += sum(inside)
        received += sum(inside)
        # 5. at the close: equity (not modelled here)
    last = bars[-1][3]
    return result(len(bars) - 1, "open", last, size * (last - entry))
