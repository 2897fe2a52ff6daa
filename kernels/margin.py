"""Margin, liquidation and funding kernels for perpetual (and leveraged spot) positions.

Small scalar kernels the bar loops call; the rules, their sources and the per-bar order of
events are in :mod:`nbtrade.margin` (module docstring). Conventions:

* Prices and notionals in quote currency (USDT); ``qty`` is an absolute size in base units;
  ``side`` is ``+1`` (long) or ``-1`` (short); a signed ``size`` is ``side * qty``.
* Maintenance tiers are five parallel float64 arrays of one symbol, tier ``k`` covering the
  position notional ``floor[k] < notional <= cap[k]`` (Binance's brackets read "0 < Position
  <= 50,000"): ``floor``, ``cap``, ``mmr`` (maintenance margin rate), ``cum`` (maintenance
  amount) and ``max_lev``; ``n`` is how many tiers are used (2-D padded tables store one symbol
  per row). Maintenance margin ``MM(N) = N * mmr[k] - cum[k]`` for the tier of ``N``; the
  validated ``cum`` recurrence makes ``MM`` continuous, so a notional exactly on a boundary
  gives the same margin in either tier. Notionals beyond the last cap use the last tier
  (only entries beyond it are refused, by :func:`max_leverage_nb` returning 0).
* Cash flows are signed from the account's side: positive = received.
* Liquidation price 0.0 means "never" for a long (no positive price liquidates it) and
  "at any price" for a short (already under its maintenance margin); the checks below
  (``low <= 0`` never true, ``high >= 0`` always true) then do the right thing with no branch.
"""
from __future__ import annotations

import numpy as np

from ._jit import jit

#: Relative slack when testing that a liquidation price solved with tier ``k`` lies in tier ``k``:
#: at a boundary both tiers give the same price up to rounding (continuity of ``MM``).
TIER_SLACK = 1e-12


@jit
def tier_index_nb(floor, cap, n, notional):
    """Tier of ``notional`` (>= 0): the first ``k`` with ``notional <= cap[k]``, else the last tier."""
    for k in range(n):
        if notional <= cap[k]:
            return k
    return n - 1


@jit
def maintenance_margin_nb(floor, cap, mmr, cum, n, notional):
    """Maintenance margin of a position of ``notional`` (= qty * mark): ``notional * mmr - cum`` of its tier."""
    k = tier_index_nb(floor, cap, n, notional)
    return notional * mmr[k] - cum[k]


@jit
def initial_margin_nb(notional, leverage):
    """Initial margin of an entry: ``notional / leverage`` (quote currency)."""
    return notional / leverage


@jit
def max_leverage_nb(floor, cap, max_lev, n, notional):
    """Highest leverage the tier of ``notional`` allows; 0.0 above the last tier's cap (no entry there)."""
    if notional > cap[n - 1]:
        return 0.0
    return max_lev[tier_index_nb(floor, cap, n, notional)]


@jit
def liquidation_price_at_nb(side, qty, entry, wallet, other, mmr, cum):
    """Binance's USD-M liquidation price for one-way mode with given ``mmr`` and ``cum`` (no clamp).

    ``LP = (WB + other + cum - side * qty * entry) / (qty * mmr - side * qty)`` with
    ``other = UPNL - TMM`` of the other positions in cross mode (0 when isolated) and ``WB``
    the wallet balance (isolated: the position's margin). Source: Binance FAQ "How to
    Calculate Liquidation Price of USDⓈ-M Futures Contracts" (b3c689c1f50a44cabb3a84e663b81d93),
    the hedge-mode terms dropped.
    """
    return (wallet + other + cum - side * qty * entry) / (qty * mmr - side * qty)


@jit
def liquidation_price_nb(side, qty, entry, wallet, other, floor, cap, mmr, cum, n):
    """Liquidation price with the tier *at that price* (Binance's note: recompute with the tier of
    the notional at the liquidation price when it differs from the entry tier).

    Solves ``wallet + other + side * qty * (P - entry) = MM(qty * P)``; the margin balance moves
    by ``qty`` per unit of price and ``MM`` by ``qty * mmr < qty``, so the root is unique. Returns
    0.0 for a long that no positive price liquidates and for a short already liquidated.
    """
    if qty <= 0.0:
        return np.nan
    eq0 = wallet + other - side * qty * entry  # margin balance at P = 0 (MM(0) = 0)
    if side > 0 and eq0 >= 0.0:
        return 0.0
    if side < 0 and eq0 <= 0.0:
        return 0.0
    best = np.nan
    for k in range(n):
        p = liquidation_price_at_nb(side, qty, entry, wallet, other, mmr[k], cum[k])
        notional = qty * p
        lo = floor[k] * (1.0 - TIER_SLACK)
        hi = cap[k] * (1.0 + TIER_SLACK)
        if notional >= lo and (notional <= hi or k == n - 1):
            return max(p, 0.0)
        if k == 0:
            best = p
    return max(best, 0.0)  # unreachable with validated tiers; the first tier's price


@jit
def bankruptcy_price_nb(side, qty, entry, wallet, other):
    """Price at which the margin balance ``wallet + other + side * qty * (P - entry)`` is zero
    (0.0 for a long whose margin covers a fall to zero)."""
    p = entry - side * (wallet + other) / qty
    return max(p, 0.0)


@jit
def margin_balance_nb(sizes, entries, marks, wallet):
    """Cross wallet margin balance: ``wallet + sum(size * (mark - entry))`` over open positions."""
    mb = wallet
    for j in range(sizes.shape[0]):
        q = sizes[j]
        if q != 0.0:
            mb += q * (marks[j] - entries[j])
    return mb


@jit
def total_maintenance_nb(sizes, marks, floor, cap, mmr, cum, counts):
    """Sum of the maintenance margins of open positions, each at ``|size| * mark`` with its row of
    the 2-D tier tables (one symbol per row, ``counts[j]`` tiers)."""
    tot = 0.0
    for j in range(sizes.shape[0]):
        q = sizes[j]
        if q != 0.0:
            tot += maintenance_margin_nb(floor[j], cap[j], mmr[j], cum[j], counts[j], abs(q) * marks[j])
    return tot


@jit
def cross_liquidated_nb(sizes, entries, marks, wallet, floor, cap, mmr, cum, counts):
    """Whether a cross wallet is liquidated at ``marks``: some position open and
    margin balance <= total maintenance margin (inclusive, as stop triggers are)."""
    any_open = False
    for j in range(sizes.shape[0]):
        any_open = any_open or sizes[j] != 0.0
    if not any_open:
        return False
    mb = margin_balance_nb(sizes, entries, marks, wallet)
    return mb <= total_maintenance_nb(sizes, marks, floor, cap, mmr, cum, counts)


@jit
def cross_other_nb(j, sizes, entries, marks, floor, cap, mmr, cum, counts):
    """``UPNL - TMM`` of every open position but ``j`` (Binance's cross terms), at ``marks``."""
    upnl = 0.0
    tmm = 0.0
    for i in range(sizes.shape[0]):
        q = sizes[i]
        if i != j and q != 0.0:
            upnl += q * (marks[i] - entries[i])
            tmm += maintenance_margin_nb(floor[i], cap[i], mmr[i], cum[i], counts[i], abs(q) * marks[i])
    return upnl - tmm


@jit
def cross_liquidation_price_nb(j, sizes, entries, marks, wallet, floor, cap, mmr, cum, counts):
    """Cross liquidation price of position ``j`` holding the others at ``marks`` (NaN if flat)."""
    q = sizes[j]
    if q == 0.0:
        return np.nan
    side = 1.0 if q > 0.0 else -1.0
    other = cross_other_nb(j, sizes, entries, marks, floor, cap, mmr, cum, counts)
    return liquidation_price_nb(side, abs(q), entries[j], wallet, other, floor[j], cap[j], mmr[j], cum[j],
                                counts[j])


@jit
def adverse_marks_nb(sizes, mark_high, mark_low, out):
    """Each position's worst mark of the bar into ``out``: the low for longs, the high for shorts
    (the low where flat). The pessimistic point of the cross check."""
    for j in range(sizes.shape[0]):
        out[j] = mark_high[j] if sizes[j] < 0.0 else mark_low[j]
    return out


@jit
def liquidation_fill_nb(side, liq, mark_open, mark_high, mark_low):
    """Liquidation within one bar, pessimistically against the mark candle: the price it fills at, NaN if none.

    A long is hit when ``mark_low <= liq`` (a short when ``mark_high >= liq``); a bar opening
    through the level (``mark_open <= liq`` for a long) fills at the open: the gap rule of stops.
    """
    if liq != liq:
        return np.nan
    if side > 0:
        if mark_open <= liq:
            return mark_open
        if mark_low <= liq:
            return liq
        return np.nan
    if mark_open >= liq:
        return mark_open
    if mark_high >= liq:
        return liq
    return np.nan


@jit
def liquidation_first_nb(side, liq, stop):
    """Whether liquidation comes before a stop both touched in one bar: the level nearer the open
    along the adverse path comes first, ties to liquidation (it cancels open orders).
    A NaN stop never comes first."""
    if stop != stop:
        return True
    if side > 0:
        return liq >= stop
    return liq <= stop


@jit
def liquidation_fee_nb(qty, fill, fee_rate, maint, remaining):
    """Liquidation fee, never more than what is left (``max(remaining, 0)``).

    ``fee_rate`` NaN (the default): the remaining margin is forfeited, i.e. the fee is the
    maintenance margin ``maint`` at the fill (closing at the bankruptcy price, Binance's
    path when the position is still margin-deficient); else ``fee_rate * qty * fill``.
    ``remaining`` is the margin balance after closing at ``fill``.
    """
    fee = maint if fee_rate != fee_rate else fee_rate * qty * fill
    return min(max(fee, 0.0), max(remaining, 0.0))


@jit
def settle_isolated_nb(size, entry, margin, fill, fee_rate, maint):
    """Close an isolated position liquidated at ``fill``: ``(returned, pnl, fee, absorbed)``.

    ``pnl = size * (fill - entry)``; ``fee`` from :func:`liquidation_fee_nb`; ``returned =
    max(margin + pnl - fee, 0)`` goes back to the wallet (the loss never exceeds the margin),
    ``absorbed = max(-(margin + pnl), 0)`` is the part of the loss past the bankruptcy price
    (taken by the exchange's insurance fund).
    """
    pnl = size * (fill - entry)
    remaining = margin + pnl
    fee = liquidation_fee_nb(abs(size), fill, fee_rate, maint, remaining)
    returned = max(remaining - fee, 0.0)
    absorbed = max(-remaining, 0.0)
    return returned, pnl, fee, absorbed


@jit
def funding_flow_nb(size, mark, rate):
    """Funding cash flow to the account: ``-size * mark * rate`` (a long pays a positive rate,
    a short receives it; a negative rate reverses both). Binance: funding amount = position
    nominal value (mark * size) * funding rate."""
    return -size * mark * rate


@jit
def funding_check_margin_nb(margin, flows, n):
    """Margin used for the liquidation check of a bar holding funding times inside it: payments
    (negative flows) count, receipts do not (the path inside the bar is unknown)."""
    m = margin
    for k in range(n):
        if flows[k] < 0.0:
            m += flows[k]
    return m


@jit
def cross_event_nb(sizes, entries, wallet, mark_open, mark_high, mark_low, last, floor, cap, mmr, cum, counts,
                   fee_rate, open_only, fills, fees, absorbed, work):
    """One cross wallet's liquidation check at one moment of a bar and, when it is liquidated, the close
    of every position of the wallet. Returns whether it was liquidated (``fills``, ``fees``, ``absorbed``
    then hold, per position, the close price, the liquidation fee and the loss past the wallet's zero
    taken by the insurance fund; flat positions get 0).

    ``sizes``/``entries``: ``(m,)`` signed size (0: flat) and entry price; ``wallet``: the wallet
    balance ``WB`` (cash + sum(size * entry) in the engine's bookkeeping); ``mark_open``/``high``/
    ``low``: this bar's mark candle per position (open NaN: no candle, the position keeps its ``last``
    mark); tiers as 2-D tables (one row per position). ``open_only``: the check at the open, every
    position at its mark open; else at the adverse extremes together (low for longs, high for shorts).

    The rule (nbtrade.margin, "Liquidation"; Binance's cross mode: "all positions will be closed" when
    the margin balance falls to the maintenance margin, liquidation protocol in the Binance FAQ
    "Liquidation Protocols" 360033525271): liquidated when the margin balance ``WB + sum(UPNL)`` is at
    or below the sum of maintenance margins (inclusive, as stops trigger). Every open position closes:
    at the open check at its mark open; intrabar at its cross liquidation price with the other positions
    at their adverse extremes (``cross_liquidation_price_nb``: where the wallet crosses its
    maintenance margin along this position's path), filled by the gap rule (``liquidation_fill_nb``:
    the mark open when the bar opens through it; the adverse extreme if rounding puts it outside
    the bar); a position without a candle closes at its last mark. Fees: ``fee_rate`` NaN forfeits
    each position's maintenance margin at its fill, else ``fee_rate * notional``; taken in column
    order, each capped at what is left of the wallet. A wallet ending below zero is brought back to
    zero (Binance: the insurance fund balances a bankrupt account to 0); that amount is ``absorbed``,
    split over the positions in proportion to their losses (by notional when none lost). ``work``: an
    ``(m,)`` scratch array (the marks of the check; the bar loops do not allocate).
    """
    m = sizes.shape[0]
    marks = work
    any_open = False
    for j in range(m):
        o = mark_open[j]
        if o != o:
            marks[j] = last[j]
        elif open_only:
            marks[j] = o
        else:
            marks[j] = mark_high[j] if sizes[j] < 0.0 else mark_low[j]
        any_open = any_open or sizes[j] != 0.0
        fills[j] = 0.0
        fees[j] = 0.0
        absorbed[j] = 0.0
    if not any_open:
        return False
    if not cross_liquidated_nb(sizes, entries, marks, wallet, floor, cap, mmr, cum, counts):
        return False
    for j in range(m):
        q = sizes[j]
        if q == 0.0:
            continue
        o = mark_open[j]
        if o != o:
            fill = last[j]
        elif open_only:
            fill = o
        else:
            side = 1.0 if q > 0.0 else -1.0
            lp = cross_liquidation_price_nb(j, sizes, entries, marks, wallet, floor, cap, mmr, cum, counts)
            fill = liquidation_fill_nb(side, lp, o, mark_high[j], mark_low[j])
            if fill != fill:
                fill = marks[j]
        fills[j] = fill
    bal = wallet  # the wallet after closing every position at its fill, before fees
    loss = 0.0
    gross = 0.0
    for j in range(m):
        q = sizes[j]
        if q != 0.0:
            pnl = q * (fills[j] - entries[j])
            bal += pnl
            loss += max(-pnl, 0.0)
            gross += abs(q) * fills[j]
    lost = max(-bal, 0.0)
    for j in range(m):
        q = sizes[j]
        if q == 0.0:
            continue
        qty = abs(q)
        if fee_rate != fee_rate:
            raw = maintenance_margin_nb(floor[j], cap[j], mmr[j], cum[j], counts[j], qty * fills[j])
        else:
            raw = fee_rate * qty * fills[j]
        fee = min(max(raw, 0.0), max(bal, 0.0))
        bal -= fee
        fees[j] = fee
        if lost > 0.0 and loss > 0.0:
            absorbed[j] = lost * max(-q * (fills[j] - entries[j]), 0.0) / loss
        elif lost > 0.0 and gross > 0.0:  # a wallet below zero without a losing position: by notional
            absorbed[j] = lost * qty * fills[j] / gross
    return True
