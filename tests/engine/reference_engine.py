"""A deliberately simple, obviously correct pure-Python signals engine.

It restates the documented rules of ``nbtrade.backtesting`` (module docstring) and
``nbtrade.kernels.fills`` with plain loops and plain objects, written apart from
the numba kernels so the two can be checked against each other. Slow on purpose.

Input: validated numpy arrays (n_bars, n_cols), per-column parameter lists (NaN =
stop not set). Output: list of order dicts, list of trade dicts, cash and equity lists.

Rules of the options of issue 15 (restated from ``kernels/engine.py``):

* ``accumulate``: an entry signal of the position's direction adds a market order to it; average
  entry price = size-weighted mean of the fills, entry fees summed, entry bar (age) kept, trailing
  extreme = the better of extreme and the new fill; absolute levels given with the add replace,
  the indicator stop ratchets with the add's ``stop_price``;
* ``reenter``: exit + entry of the position's direction on one bar: close all, open a new trade;
* ``entry_size[s][c]``: the entry's size (NaN: the column's);
* ``stop_price``: indicator stop; the signal bar's value starts the trade's level, each bar's value
  (after that bar's stop check) ratchets it in the position's favour; on the stop side with SL and
  trail (the tightest; earlier ones win ties), exit reason ``ind_stop``;
* ``td_stop[c]`` (bars, 0: none): a trade aged ``i - entry_idx >= td`` exits at bar i's open before
  other stops, reason ``time``;
* ``roi``: rows ``(age, r)`` by age: the last row with ``age <= i - entry_idx`` gives the take-side
  level ``avg * (1 +/- r)`` (nearer of TP and ROI, TP on ties), reason ``roi``;
* ``borrow[c]``: per bar, after the stops and before the close's orders, a short pays
  ``|size| * close * rate`` (last close without a candle); carried by the trade (pro rata on partial
  exits) and subtracted from its pnl;
* ``order_types[s][c]`` (names; None: ``order_type`` for every entry): the type of the entry signalled at
  bar ``s`` (market, limit, stop, stop_limit), each with the rules of that run-level type; a resting
  entry keeps its type until it fills, expires, is cancelled or is left open;
* ``finalize``: open positions close at the end with a market order at the last valid close
  (slippage, fees), at the last bar, reason ``final``; the last equity point is recorded again.
"""
from __future__ import annotations

import math

from . import reference_margin as rm

from dataclasses import dataclass

EPS = 1e-9


@dataclass
class Position:
    size: float = 0.0          # signed base units
    entry_price: float = 0.0
    entry_idx: int = -1
    entry_fees: float = 0.0
    extreme: float = 0.0       # best price since entry, before the current bar
    ind_stop: float = math.nan  # indicator stop level (ratcheted)
    borrow: float = 0.0        # borrow cost accrued (shorts)
    margin: float = 0.0        # isolated margin (margin rule: entry notional / leverage)


def run_reference(open_, high, low, close, entries, exits, short_entries, short_exits, *, size,
                  size_type="percent", fees, fixed_fees, slippage, sl_stop, tp_stop, trail_stop,
                  lot_size, min_qty, min_notional, leverage=1.0, init_cash=10_000.0,
                  fill="next_open", intrabar="pessimistic", cash_sharing=True, order_type="market",
                  order_price=None, tif=0, sl_price=None, tp_price=None, limit_price=None, maker_fees=None,
                  slippage_range=None, groups=None, exit_size=None, volume=None, slippage_volume=None,
                  accumulate=False, reenter=False, finalize=False, entry_size=None, stop_price=None, roi=None,
                  td_stop=None, borrow=None, margin=None, tiers=None, liquidation_fee=math.nan,
                  marks=None, funding=None, perp=None, cross=False, funding_events=None, funding_out=None,
                  order_types=None):
    # Margin and perpetuals (rules of nbtrade.margin; restated in reference_perp.py's docstring):
    # leverage: one number or one per column; tiers: one table of (floor, cap, mmr, cum, max_leverage) rows
    #   or one table per column (None: DEFAULT_TIERS)
    # margin: whether the margin rule applies (None: leverage > 1 anywhere, differing leverages, shorts or
    #   a perpetual column)
    # perp: per column, whether it is a perpetual (None: every column when `marks` is given, else none);
    #   perpetuals are liquidated on the mark candles and pay funding, spot columns on their price candles
    # marks: (open, high, low[, close]) mark candles n x m (None: the price candles)
    # cross: one wallet (one cash account) backs every position: reference_perp.cross_check
    # funding: (f_open, f_in) n x m lists, sum of rate * mark of the funding events at bar i's open / inside
    #   bar i; a position p receives -p * f (at the open before fills; inside: at the close if still open)
    # funding_events: (bar, col, at_open, rate, mark) rows in time order instead of `funding` (mark NaN:
    #   the bar's mark open, else the last valid mark close before the bar)
    # funding_out: a list that receives the n x m funding cash flows (+ received)
    from . import reference_perp as rp

    n, m = len(close), len(close[0])
    lev = [float(x) for x in leverage] if isinstance(leverage, (list, tuple)) else [float(leverage)] * m
    if perp is None:
        perp = [marks is not None] * m
    if margin is None:
        margin = (max(lev) > 1.0 or min(lev) != max(lev) or any(perp)
                  or any(any(row) for row in short_entries))
    if tiers is None:
        from nbtrade.margin import DEFAULT_TIERS
        tiers = DEFAULT_TIERS.rows()
    col_tiers = list(tiers) if isinstance(tiers[0][0], (list, tuple)) else [tiers] * m
    marks = rp.marks_or_prices(marks, perp, open_, high, low, close)
    if funding_events is not None:
        funding = rp.funding_by_bar(funding_events, n, m, perp, open_, close, marks)
    flows = [[0.0] * m for _ in range(n)]  # funding cash flows per bar and column
    # one balance, or one per column when isolated; `acct(c)` names the one column c uses
    if groups is None:
        groups = [0] * m if cash_sharing else list(range(m))
    cash_of = [init_cash] * (max(groups) + 1)

    def acct(c):
        return groups[c]
    positions = [Position() for _ in range(m)]
    last_close = [None] * m
    last_valid = [-1] * m
    last_range = [0.0] * m  # high - low of the last complete valid bar
    last_volume = [0.0] * m  # volume of the last complete bar that had volume (0: none yet)
    orders, trades = [], []
    # resting limit/stop entry per column: [direction, price, signal bar, limit price, triggered]
    pending = [None] * m
    # absolute stop levels given with the latest entry signal per column (None = percent stops)
    abs_levels = [(math.nan, math.nan)] * m
    cash_out, equity_out = [], []

    def missing(i, c):
        return math.isnan(close[i][c])

    def fill_price(p, buy, c):
        extra = 0.0 if slippage_range is None else slippage_range[c] * last_range[c]
        return p * (1 + slippage[c]) + extra if buy else p * (1 - slippage[c]) - extra

    def impact(c):
        # volume impact coefficient: slippage_volume / sqrt(volume) (square-root law)
        if slippage_volume is None or slippage_volume[c] == 0 or last_volume[c] <= 0:
            return 0.0
        return slippage_volume[c] / math.sqrt(last_volume[c])

    def impacted(price, base, imp, qty, buy):
        move = base * min(imp * math.sqrt(qty), 0.5)
        return price + move if buy else price - move

    def impact_qty(notional, price, base, imp):
        # the buy quantity whose impacted price spends `notional` (bisection: a different method
        # from the kernel's Newton iteration, same root)
        lo, hi = 0.0, notional / price
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid * (price + base * min(imp * math.sqrt(mid), 0.5)) > notional:
                hi = mid
            else:
                lo = mid
        return lo

    def filter_reason(c, qty, price):
        # exchange filters, in order: whole lots, min quantity, min notional (None: passes)
        if lot_size[c] > 0 and qty <= 0:
            return "lot_size"
        if qty < min_qty[c]:
            return "min_qty"
        if qty * price < min_notional[c]:
            return "min_notional"
        return None

    def add_order(c, i, side, sz, price, fee, otype, status="filled", reason="none"):
        orders.append(dict(col=c, idx=i, side=side, size=sz, price=price, fees=fee, type=otype,
                           status=status, reason=reason))

    def close_position(c, i, base, otype, why, fraction=1.0):
        pos = positions[c]
        buy = pos.size < 0
        side = "buy" if buy else "sell"
        held = abs(pos.size)
        qty = held
        if fraction < 1.0:  # partial exit: lot rounding and exchange filters apply
            qty = held * fraction
            if lot_size[c] > 0:
                qty = math.floor(qty / lot_size[c] + EPS) * lot_size[c]
            qty = min(qty, held)
        price = fill_price(base, buy, c)
        if impact(c) > 0:
            price = impacted(price, base, impact(c), qty, buy)
        if qty < held:
            reason = filter_reason(c, qty, price)
            if reason is not None:
                add_order(c, i, side, qty, price, 0.0, otype, "rejected", reason)
                return
        fee = qty * price * fees[c] + fixed_fees[c]
        if buy:
            cash_of[acct(c)] -= qty * price + fee
        else:
            cash_of[acct(c)] += qty * price - fee
        add_order(c, i, side, qty, price, fee, otype)
        direction = 1 if pos.size > 0 else -1
        entry_fees = pos.entry_fees if qty == held else pos.entry_fees * (qty / held)
        paid = pos.borrow if qty == held else pos.borrow * (qty / held)
        pnl = direction * (price - pos.entry_price) * qty - entry_fees - fee - paid
        trades.append(dict(col=c, entry_idx=pos.entry_idx, exit_idx=i, direction="long" if direction > 0 else "short",
                           size=qty, entry_price=pos.entry_price, exit_price=price, entry_fees=entry_fees,
                           exit_fees=fee, pnl=pnl, ret=pnl / (pos.entry_price * qty), exit_reason=why, borrow=paid))
        if qty == held:
            positions[c] = Position()
        else:  # the rest keeps its margin share, its entry price, bar, trailing extreme and its share of the fees
            pos.entry_fees = pos.entry_fees - entry_fees
            pos.borrow = pos.borrow - paid
            pos.margin = pos.margin - pos.margin * (qty / held)
            pos.size = pos.size - qty if pos.size > 0 else pos.size + qty

    def value_price(i, c, at_open):
        if at_open and not math.isnan(open_[i][c]):
            return open_[i][c]
        return last_close[c]

    def open_position(c, i, base, direction, at_open, otype="market", sz=None):
        """Open (or, with a position of this direction, add to) column c's position; True if filled."""
        buy = direction > 0
        price = fill_price(base, buy, c)
        cash = cash_of[acct(c)]
        want = size[c] if sz is None else sz
        leverage = lev[c]
        equity, used, wallet, held = cash, 0.0, cash, 0.0
        for j in range(m):
            if positions[j].size != 0 and acct(j) == acct(c):
                pj = value_price(i, j, at_open)
                equity += positions[j].size * pj
                used += abs(positions[j].size) * pj / lev[j]  # each position's initial margin at the price
                wallet += positions[j].size * positions[j].entry_price
                mj = positions[j].margin  # (kept in every run: entry notional / leverage, funding)
                held += mj if mj > 0 else abs(positions[j].size) * positions[j].entry_price / lev[j]
        available = min(equity - used, wallet - held)  # at most the wallet less the positions' margins
        fee_rate, fixed = fees[c], fixed_fees[c]
        if otype == "limit" and maker_fees is not None and not math.isnan(maker_fees[c]):
            fee_rate = maker_fees[c]
        if size_type == "amount":
            qty = want
        elif size_type == "value":
            qty = want / price
        elif size_type == "percent":
            qty = (want * available - fixed) / (1 / leverage + fee_rate) / price
        else:
            qty = want * (equity - fixed) / (1 + want * fee_rate) / price
        reason = "none"
        imp = impact(c)
        if not qty * price > EPS * max(abs(equity), 1.0):  # nothing, or float dust, to spend
            reason = "insufficient_cash"
        else:
            if imp > 0 and buy and size_type != "amount":
                qty = impact_qty(qty * price, price, base, imp)
            if lot_size[c] > 0:
                qty = math.floor(qty / lot_size[c] + EPS) * lot_size[c]
            if imp > 0 and not (lot_size[c] > 0 and qty <= 0):
                price = impacted(price, base, imp, qty, buy)
            reason = filter_reason(c, qty, price) or "none"
            if reason == "none":
                cost = qty * price / leverage + qty * price * fee_rate + fixed
                if cost - available > EPS * max(abs(available), 1.0):
                    reason = "insufficient_cash"
            if reason == "none" and margin and rm.max_leverage(col_tiers[c],
                                                               (abs(positions[c].size) + qty) * price) < leverage:
                reason = "leverage"  # the resulting position's tier does not allow the run's leverage
        side = "buy" if buy else "sell"
        if reason != "none":
            add_order(c, i, side, qty, price, 0.0, otype, "rejected", reason)
            return False
        fee = qty * price * fee_rate + fixed
        cash_of[acct(c)] = cash - qty * price - fee if buy else cash + qty * price - fee
        pos = positions[c]
        add_margin = qty * price / leverage
        if pos.size != 0:  # accumulation
            pos.margin += add_margin
            held = abs(pos.size)
            pos.entry_price = (pos.entry_price * held + price * qty) / (held + qty)
            pos.entry_fees += fee
            pos.size = pos.size + qty if buy else pos.size - qty
            pos.extreme = max(pos.extreme, price) if buy else min(pos.extreme, price)
        else:
            positions[c] = Position(size=qty if buy else -qty, entry_price=price, entry_idx=i, entry_fees=fee,
                                    extreme=price, ind_stop=next_ind[c], margin=add_margin)
        add_order(c, i, side, qty, price, fee, otype)
        return True

    def ratchet(pos, level):
        if math.isnan(level):
            return
        if math.isnan(pos.ind_stop) or (level > pos.ind_stop if pos.size > 0 else level < pos.ind_stop):
            pos.ind_stop = level

    def etype(s, c):
        # the entry type of bar s: per entry when given, else the run's
        return order_type if order_types is None else order_types[s][c]

    def flags(s, c):
        # exits on a bar with no candle are ignored (nothing was computed there)
        ok = not missing(s, c)
        return entries[s][c], exits[s][c] and ok, short_entries[s][c], short_exits[s][c] and ok

    def signals(s, i, c, prices, at_open):
        le, lx, se, sx = flags(s, c)
        want_long = le and not se
        want_short = se and not le
        if pending[c] is not None:
            d, level = pending[c][0], pending[c][1]
            if want_long or want_short or (d > 0 and lx) or (d < 0 and sx):
                add_order(c, i, "buy" if d > 0 else "sell", math.nan, level, 0.0, pending[c][6], "cancelled")
                pending[c] = None
        pos = positions[c].size
        close_it, new_dir = False, 0
        if pos > 0:
            if want_short:
                close_it, new_dir = True, -1
            elif lx:
                close_it = True
                if reenter and want_long:
                    new_dir = 1
            elif accumulate and want_long:
                new_dir = 1
        elif pos < 0:
            if want_long:
                close_it, new_dir = True, 1
            elif sx:
                close_it = True
                if reenter and want_short:
                    new_dir = -1
            elif accumulate and want_short:
                new_dir = -1
        else:
            new_dir = 1 if want_long else (-1 if want_short else 0)
        if not close_it and new_dir == 0:
            return
        base = prices[i][c]
        otype = etype(s, c)
        if math.isnan(base) and (close_it or otype == "market"):  # a lone resting entry is placed
            if close_it:
                add_order(c, i, "buy" if pos < 0 else "sell", abs(pos), math.nan, 0.0, "market", "rejected", "no_data")
            if new_dir:
                add_order(c, i, "buy" if new_dir > 0 else "sell", math.nan, math.nan, 0.0, otype, "rejected",
                          "no_data")
            return
        if close_it:
            frac = 1.0 if new_dir or exit_size is None else exit_size[s][c]
            close_position(c, i, base, "market", "signal", frac)
        if not new_dir:
            return
        sz = None
        if entry_size is not None and not math.isnan(entry_size[s][c]):
            sz = entry_size[s][c]
        sl_new = math.nan if sl_price is None else sl_price[s][c]
        tp_new = math.nan if tp_price is None else tp_price[s][c]
        ind_new = math.nan if stop_price is None else stop_price[s][c]
        if positions[c].size != 0:  # accumulation: a market add
            if open_position(c, i, base, new_dir, at_open, sz=sz):
                old_sl, old_tp = abs_levels[c]
                abs_levels[c] = (old_sl if math.isnan(sl_new) else sl_new, old_tp if math.isnan(tp_new) else tp_new)
                ratchet(positions[c], ind_new)
            return
        abs_levels[c] = (sl_new, tp_new)
        next_ind[c] = ind_new
        if otype != "market":
            limit = limit_price[s][c] if otype == "stop_limit" else math.nan
            pending[c] = [new_dir, order_price[s][c], s, limit, False, sz, otype]
        else:
            open_position(c, i, base, new_dir, at_open, sz=sz)

    def limit_fill(d, o, h, lo, level):
        if d > 0 and lo <= level:
            return min(o, level)
        if d < 0 and h >= level:
            return max(o, level)
        return None

    def resting(i, c):
        d, level, s, limit, armed, sz, otype = pending[c]
        if s >= i:
            return
        if tif > 0 and i > s + tif:
            add_order(c, i, "buy" if d > 0 else "sell", math.nan, level, 0.0, otype, "expired")
            pending[c] = None
            return
        o, h, lo = open_[i][c], high[i][c], low[i][c]
        price = None
        if otype == "stop_limit":
            if armed:
                price = limit_fill(d, o, h, lo, limit)
            elif (d > 0 and o >= level) or (d < 0 and o <= level):  # armed at the open
                pending[c][4] = True
                price = limit_fill(d, o, h, lo, limit)
            elif (d > 0 and h >= level) or (d < 0 and lo <= level):  # armed inside the bar
                pending[c][4] = True
                if (d > 0 and limit >= level) or (d < 0 and limit <= level):
                    price = level
        elif otype == "limit":
            price = limit_fill(d, o, h, lo, level)
        else:
            if d > 0 and h >= level:
                price = max(o, level)
            elif d < 0 and lo <= level:
                price = min(o, level)
        if price is not None:
            pending[c] = None
            open_position(c, i, price, d, True, otype, sz=sz)

    def stops(i, c):
        pos = positions[c]
        if pos.size == 0 or missing(i, c):
            return
        if fill == "close" and pos.entry_idx >= i:  # entered at this close: stops start next bar
            return
        td = 0 if td_stop is None else td_stop[c]
        if td > 0 and i - pos.entry_idx >= td:  # time stop at the open
            close_position(c, i, open_[i][c], "market", "time")
            return
        sl, tp, tr = sl_stop[c], tp_stop[c], trail_stop[c]
        sl_abs, tp_abs = abs_levels[c]
        ind = pos.ind_stop
        roi_level = math.nan
        if roi is not None:
            r = None
            for age, ret in roi:
                if age <= i - pos.entry_idx:
                    r = ret
            if r is not None:
                roi_level = pos.entry_price * (1 + r) if pos.size > 0 else pos.entry_price * (1 - r)
        if (math.isnan(sl) and math.isnan(tp) and math.isnan(tr) and math.isnan(sl_abs) and math.isnan(tp_abs)
                and math.isnan(ind) and math.isnan(roi_level)):
            if stop_price is not None:
                ratchet(pos, stop_price[i][c])
            return
        o, h, lo = open_[i][c], high[i][c], low[i][c]
        hit = None  # (price, reason)
        if pos.size > 0:
            candidates = []  # stop side levels: (level, reason)
            if not math.isnan(sl_abs):
                candidates.append((sl_abs, "sl"))
            elif not math.isnan(sl):
                candidates.append((pos.entry_price * (1 - sl), "sl"))
            if not math.isnan(tr):
                candidates.append((pos.extreme * (1 - tr), "trail"))
            if not math.isnan(ind):
                candidates.append((ind, "ind_stop"))
            stop = None
            if candidates:
                # highest level is the tighter one; the fixed stop-loss wins ties
                stop = candidates[0]
                for cand in candidates[1:]:
                    if cand[0] > stop[0]:
                        stop = cand
            take = tp_abs if not math.isnan(tp_abs) else (pos.entry_price * (1 + tp) if not math.isnan(tp) else None)
            twhy = "tp"
            if not math.isnan(roi_level) and (take is None or roi_level < take):
                take, twhy = roi_level, "roi"
            if stop is not None and o <= stop[0]:
                hit = (o, stop[1])
            elif take is not None and o >= take:
                hit = (o, twhy)
            else:
                hit_stop = stop is not None and lo <= stop[0]
                hit_take = take is not None and h >= take
                if hit_stop and hit_take:
                    hit = (take, twhy) if intrabar == "optimistic" else stop
                elif hit_stop:
                    hit = stop
                elif hit_take:
                    hit = (take, twhy)
        else:
            candidates = []
            if not math.isnan(sl_abs):
                candidates.append((sl_abs, "sl"))
            elif not math.isnan(sl):
                candidates.append((pos.entry_price * (1 + sl), "sl"))
            if not math.isnan(tr):
                candidates.append((pos.extreme * (1 + tr), "trail"))
            if not math.isnan(ind):
                candidates.append((ind, "ind_stop"))
            stop = None
            if candidates:
                stop = candidates[0]
                for cand in candidates[1:]:
                    if cand[0] < stop[0]:
                        stop = cand
            take = tp_abs if not math.isnan(tp_abs) else (pos.entry_price * (1 - tp) if not math.isnan(tp) else None)
            twhy = "tp"
            if not math.isnan(roi_level) and (take is None or roi_level > take):
                take, twhy = roi_level, "roi"
            if stop is not None and o >= stop[0]:
                hit = (o, stop[1])
            elif take is not None and o <= take:
                hit = (o, twhy)
            else:
                hit_stop = stop is not None and h >= stop[0]
                hit_take = take is not None and lo <= take
                if hit_stop and hit_take:
                    hit = (take, twhy) if intrabar == "optimistic" else stop
                elif hit_stop:
                    hit = stop
                elif hit_take:
                    hit = (take, twhy)
        if hit is not None:
            otype = {"sl": "stop_loss", "tp": "take_profit", "trail": "trailing_stop", "ind_stop": "stop_loss",
                     "roi": "take_profit"}[hit[1]]
            close_position(c, i, hit[0], otype, hit[1])
            return
        elif pos.size > 0:
            pos.extreme = max(pos.extreme, h)
        else:
            pos.extreme = min(pos.extreme, lo)
        if stop_price is not None:
            ratchet(pos, stop_price[i][c])

    def stop_level(pos, c):
        # tightest stop-side level (stop-loss absolute or percent, trailing, indicator), None: none
        sl_abs = abs_levels[c][0]
        cands = []
        sgn = 1 if pos.size > 0 else -1
        if not math.isnan(sl_abs):
            cands.append(sl_abs)
        elif not math.isnan(sl_stop[c]):
            cands.append(pos.entry_price * (1 - sgn * sl_stop[c]))
        if not math.isnan(trail_stop[c]):
            cands.append(pos.extreme * (1 - sgn * trail_stop[c]))
        if not math.isnan(pos.ind_stop):
            cands.append(pos.ind_stop)
        if not cands:
            return None
        return max(cands) if sgn > 0 else min(cands)

    def liquidate(c, i, fill_px):
        pos = positions[c]
        qty = abs(pos.size)
        pnl = pos.size * (fill_px - pos.entry_price)
        remaining = pos.margin + pnl
        fee = (rm.maintenance(col_tiers[c], qty * fill_px) if math.isnan(liquidation_fee)
               else liquidation_fee * qty * fill_px)
        fee = min(max(fee, 0.0), max(remaining, 0.0))
        absorbed = max(-remaining, 0.0)
        book_liquidation(c, i, fill_px, fee, absorbed)

    def book_liquidation(c, i, fill_px, fee, absorbed):
        # the close at fill_px and the fee from the column's account, the loss past zero added back
        pos = positions[c]
        qty = abs(pos.size)
        sgn = 1 if pos.size > 0 else -1
        pnl = pos.size * (fill_px - pos.entry_price)
        cash_of[acct(c)] += sgn * qty * fill_px - fee + absorbed
        add_order(c, i, "sell" if sgn > 0 else "buy", qty, fill_px, fee, "market")
        tpnl = pnl - pos.entry_fees - fee - pos.borrow + absorbed
        trades.append(dict(col=c, entry_idx=pos.entry_idx, exit_idx=i, direction="long" if sgn > 0 else "short",
                           size=qty, entry_price=pos.entry_price, exit_price=fill_px, entry_fees=pos.entry_fees,
                           exit_fees=fee, pnl=tpnl, ret=tpnl / (pos.entry_price * qty), exit_reason="liquidation",
                           borrow=pos.borrow))
        positions[c] = Position()

    def mark_candle(i, c):
        # (open, high, low) liquidation is checked on: a perpetual's mark candle, else the price candle
        if marks is not None and perp[c]:
            return marks[0][i][c], marks[1][i][c], marks[2][i][c]
        return open_[i][c], high[i][c], low[i][c]

    def cross_check(i, open_only):
        held = [c for c in range(m) if positions[c].size != 0]
        if not held:
            return
        candles = []
        for c in range(m):
            o, h, lo = mark_candle(i, c)
            candles.append((math.nan if missing(i, c) else o, h, lo))
        out = rp.cross_check(cash_of[0], [positions[c].size for c in range(m)],
                             [positions[c].entry_price for c in range(m)], candles, last_close, col_tiers,
                             liquidation_fee, open_only)
        if out is not None:
            for c in held:
                book_liquidation(c, i, *out[c])

    def liquidation(i, c, open_only):
        pos = positions[c]
        if pos.size == 0 or missing(i, c):
            return
        if fill == "close" and pos.entry_idx >= i:
            return
        sgn = 1 if pos.size > 0 else -1
        liq = rm.liquidation_price(sgn, abs(pos.size), pos.entry_price, pos.margin, 0.0, col_tiers[c])
        o, h, lo = mark_candle(i, c)
        if (sgn > 0 and o <= liq) or (sgn < 0 and o >= liq):
            liquidate(c, i, o)
            return
        if open_only:
            return
        if (sgn > 0 and lo <= liq) or (sgn < 0 and h >= liq):
            stop = stop_level(pos, c)
            if stop is not None and ((sgn > 0 and stop > liq) or (sgn < 0 and stop < liq)):
                return  # the stop comes first along the path from the open
            liquidate(c, i, liq)

    # next_open: signal bar of signals waiting for the column's next candle (None: nothing waits)
    deferred = [None] * m
    next_ind = [math.nan] * m  # indicator stop level of the column's next fresh entry

    def delayable(s, c):
        le, lx, se, sx = flags(s, c)
        if etype(s, c) == "market":
            return le or lx or se or sx
        return (lx or sx) and not (le or se)  # resting entries: only exits wait

    receipt = [0.0] * m  # size of a position due a receipt of this bar's inside funding (0: none)

    def pay_funding(i, part):
        # part 0: the events at the bar's open, on every position; inside the bar: 1, before the intrabar
        # checks, the payments (a position closed inside the bar has paid); 2, at the close, the receipts
        # of the positions noted at 1 and still open (one entered inside the bar neither pays nor receives)
        for c in range(m):
            pos = positions[c]
            v = funding[0 if part == 0 else 1][i][c]
            if part == 1:
                receipt[c] = 0.0
            if v == 0.0 or pos.size == 0:
                continue
            flow = -pos.size * v
            if part == 1 and flow > 0:
                receipt[c] = pos.size
                continue
            if part == 2 and receipt[c] != pos.size:
                continue
            cash_of[acct(c)] += flow
            pos.margin += flow
            flows[i][c] += flow

    for i in range(n):
        if margin and funding is not None:
            pay_funding(i, 0)
        if margin and fill == "next_open":
            if cross:
                cross_check(i, True)
            else:
                for c in range(m):
                    liquidation(i, c, True)
        if fill == "next_open" and i > 0:
            for c in range(m):
                if deferred[c] is not None:
                    # bars since the deferred signal have no candle, hence no signals of their own
                    if not missing(i, c) or i == n - 1:
                        signals(deferred[c], i, c, open_, True)
                        deferred[c] = None
                elif missing(i, c) and i < n - 1 and delayable(i - 1, c):
                    deferred[c] = i - 1
                else:
                    signals(i - 1, i, c, open_, True)
        if margin:
            if funding is not None:
                pay_funding(i, 1)
            if cross:
                cross_check(i, False)
            else:
                for c in range(m):
                    liquidation(i, c, False)
        for c in range(m):
            if pending[c] is not None and not missing(i, c):
                resting(i, c)
            else:
                stops(i, c)
            if not missing(i, c):
                last_close[c] = close[i][c]
                last_valid[c] = i
                last_range[c] = high[i][c] - low[i][c]
                if volume is not None and volume[i][c] > 0:
                    last_volume[c] = volume[i][c]
        if margin and funding is not None:
            pay_funding(i, 2)
        if borrow is not None:  # shorts held at this close pay for the bar
            for c in range(m):
                pos = positions[c]
                if pos.size < 0 and borrow[c] > 0:
                    px = close[i][c] if not missing(i, c) else last_close[c]
                    cost = -pos.size * px * borrow[c]
                    cash_of[acct(c)] -= cost
                    pos.borrow += cost
        if fill == "close":
            for c in range(m):
                signals(i, i, c, close, False)
        cash = sum(cash_of)
        equity = 0.0
        for c in range(m):
            if positions[c].size != 0:
                equity += positions[c].size * last_close[c]
        equity = cash + equity
        cash_out.append(cash)
        equity_out.append(equity)

    if finalize and n > 0:
        for c in range(m):
            if positions[c].size != 0:
                close_position(c, n - 1, last_close[c], "market", "final")
        cash_out[-1] = sum(cash_of)
        equity_out[-1] = cash_out[-1]
    for c in range(m):
        if pending[c] is not None:
            d, level = pending[c][0], pending[c][1]
            add_order(c, n - 1, "buy" if d > 0 else "sell", math.nan, level, 0.0, pending[c][6], "open")
        pos = positions[c]
        if pos.size != 0:
            qty = abs(pos.size)
            direction = 1 if pos.size > 0 else -1
            pnl = direction * (last_close[c] - pos.entry_price) * qty - pos.entry_fees - pos.borrow
            trades.append(dict(col=c, entry_idx=pos.entry_idx, exit_idx=last_valid[c],
                               direction="long" if direction > 0 else "short", size=qty,
                               entry_price=pos.entry_price, exit_price=last_close[c], entry_fees=pos.entry_fees,
                               exit_fees=0.0, pnl=pnl, ret=pnl / (pos.entry_price * qty), exit_reason="end",
                               borrow=pos.borrow))
    if funding_out is not None:
        funding_out[:] = flows
    return orders, trades, cash_out, equity_out
