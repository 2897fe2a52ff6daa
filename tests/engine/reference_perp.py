"""The perpetual and margin rules of the pure-Python reference engine (``reference_engine.run_reference``),
restated from ``nbtrade.margin`` (module docstring), ``kernels/engine.py`` (``margin_phase_nb``,
``cross_phase_nb``, ``funding_nb``, the phased bar loop) and ``kernels/margin.py``
(``cross_event_nb``), written apart from the kernels so the two can be checked against each other.
The single events (liquidation prices, a cross wallet's event) are ``reference_margin.py``'s.

Rules of a run (what ``run_reference`` does with ``margin``, ``perp``, ``cross``, ``marks``,
``funding_events``, per-column ``leverage`` and ``tiers``):

* Margin rule on: any leverage > 1, leverages that differ between symbols, short signals given, or a
  perpetual. Each position then holds margin ``entry notional / leverage`` (its symbol's leverage);
  an entry is refused (reason ``leverage``) when the tier of the resulting position's notional allows
  less than that leverage (0 above the last cap).
* Sizing: the free margin of an account is its equity (positions valued at the price of the moment)
  minus every position's ``|size| * price / leverage``, and at most the wallet ``cash + sum(size * entry)``
  less the positions' margins (``nbtrade.margin``, "Accounting": one rule in both
  modes and on every path, the kernel's ``margin_state_nb``).
* Marks: a perpetual's liquidation is checked on its mark candle (the price candle without mark
  candles, and on a bar with a price candle but no mark candle: ``marks_or_prices``); a spot column's
  on its price candle. A bar without a price candle liquidates nothing there.
* Funding (perpetuals only): an event at a bar's open time is paid at the open (before liquidation
  and orders) on the positions carried in; the events strictly inside a bar (their net per column):
  a payment is booked before the intrabar liquidation check on the positions open then, a receipt at
  the close (before the orders at the close) on those of them still open (``nbtrade.margin``,
  "Funding strictly inside a bar"). A position ``p`` receives
  ``-p * rate * mark`` per event, the mark being the event's own, else the bar's mark open, else the
  last valid mark close before the bar (none: nothing). It goes to the account's cash and, isolated,
  into the position's margin.
* Per bar (``fill="next_open"``): funding at the open; liquidation at the open (isolated: a mark open
  at or through the position's liquidation price closes it there; cross: the wallet at the mark
  opens); orders at the open; liquidation inside the bar (isolated: the adverse mark extreme
  reaches the liquidation price; a stop-side level strictly between the open and it fills first
  instead; cross: the wallet at every position's adverse extreme, before any stop), after the
  payments of the funding inside the bar; stops; its receipts; the close. ``fill="close"``: no check
  at the open; the intrabar one (gaps fill at the mark open) comes before the stops, and orders fill at
  the close after the funding inside the bar.
* Isolated liquidation at ``fill``: fee = the maintenance margin at the fill (``liquidation_fee``
  NaN) or ``rate * notional``, capped at what is left of the margin; a loss past the margin is
  added back (the account never pays more than the margin).
* Cross (every symbol a perpetual, one account): the wallet ``WB = cash + sum(size * entry)``
  is liquidated when ``WB + sum(UPNL) <= sum(maintenance)`` with every position at the mark of
  the moment (its last close without a candle); then every position closes, each at its cross
  liquidation price (the others at their adverse extremes; the mark open through a gap; at the
  open check, the mark open); fees in column order capped by the wallet left; a wallet below zero
  is brought back to zero, split over the positions by their losses
  (``reference_margin.cross_event``).
"""
from __future__ import annotations

import math

from . import reference_margin as rm


def marks_or_prices(marks, perp, open_, high, low, close):
    """The mark candles a run reads, ``(open, high, low, close)`` lists: each perpetual bar's mark candle,
    its price candle where the mark open is NaN (a bar with a price candle and no mark candle is checked
    on the price candle); spot columns' price candles. ``marks`` None: None (the price candles)."""
    if marks is None:
        return None
    n, m = len(close), len(close[0])
    mc = marks[3] if len(marks) > 3 else close
    out = ([], [], [], [])
    for i in range(n):
        for rows in out:
            rows.append([])
        for c in range(m):
            own = perp[c] and not math.isnan(marks[0][i][c])
            for k, (mk, px) in enumerate(zip((marks[0], marks[1], marks[2], mc), (open_, high, low, close))):
                out[k][i].append(mk[i][c] if own else px[i][c])
    return out


def funding_by_bar(events, n, m, perp, open_, close, marks):
    """``(f_open, f_in)`` n x m: the sum of ``rate * mark`` of the funding events at each bar's open,
    and strictly inside it. ``events``: ``(bar, col, at_open, rate, mark)`` rows (mark NaN: see the
    module docstring); events of spot columns are dropped."""
    f_open = [[0.0] * m for _ in range(n)]
    f_in = [[0.0] * m for _ in range(n)]
    mark_open = open_ if marks is None else marks[0]
    mark_close = close if marks is None or len(marks) < 4 else marks[3]
    for bar, col, at_open, rate, mark in events:
        if not perp[col]:
            continue
        if math.isnan(mark):
            mark = mark_open[bar][col]
        if math.isnan(mark):
            before = [mark_close[k][col] for k in range(bar) if not math.isnan(mark_close[k][col])]
            mark = before[-1] if before else math.nan
        amount = rate * mark
        if math.isnan(amount):
            continue
        if at_open:
            f_open[bar][col] += amount
        else:
            f_in[bar][col] += amount
    return f_open, f_in


def cross_check(cash, sizes, entries, candles, last, tiers, fee_rate, open_only):
    """The cross wallet's check at one moment: None when it survives, else ``(fill, fee, absorbed)`` per
    column. ``cash``: the one account's cash; ``candles``: ``(mark open, high, low)`` per column this
    bar (open NaN: no candle); ``last``: each column's last valid close (None: none yet)."""
    wallet = cash
    for size, entry in zip(sizes, entries):
        if size != 0:
            wallet += size * entry
    positions = []
    for c, (o, h, lo) in enumerate(candles):
        positions.append(dict(size=sizes[c], entry=entries[c], open=o, high=h, low=lo,
                              last=math.nan if last[c] is None else last[c], tiers=tiers[c]))
    return rm.cross_event(positions, wallet, open_only, fee_rate)
