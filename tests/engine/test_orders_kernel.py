"""Issue 15 options of the signals kernel, hand-computed: accumulation, same-bar re-entry, per-entry
sizes, the indicator stop, time stops, the minimal-ROI table, finalize and short borrow costs.

The kernel is driven directly (``run_kernel``), apart from the Python front end; the random
comparison with the reference engine is ``test_orders_reference.py``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from nbtrade.kernels.engine import simulate_signals_nb
from nbtrade.kernels.records import (Books, Direction, ExitReason, FillMode, Intrabar, Levels, OrderLevels, OrderType, Prices,
                                     RejectReason, Side, Signals, SizeType, Status, counts_dt, make_config, new_state,
                                     order_dt, param_dt, trade_dt)

_NAMES = {
    "side": [f.lower() for f in Side._fields], "type": [f.lower() for f in OrderType._fields],
    "status": [f.lower() for f in Status._fields], "reason": [f.lower() for f in RejectReason._fields],
    "direction": [f.lower() for f in Direction._fields], "exit_reason": [f.lower() for f in ExitReason._fields],
}
_SIZE = {"amount": SizeType.AMOUNT, "value": SizeType.VALUE, "percent": SizeType.PERCENT,
         "target_percent": SizeType.TARGET_PERCENT}
_OTYPE = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
          "stop_limit": OrderType.STOP_LIMIT}


def _arr(x, n, m, fill=np.nan):
    return np.full((1, 1), fill) if x is None else np.ascontiguousarray(np.asarray(x, dtype=np.float64))


def run_kernel(o, h, l, c, le, lx, se=None, sx=None, *, size=1.0, size_type="amount", fees=0.0, fixed_fees=0.0,
               slippage=0.0, slippage_range=0.0, sl_stop=math.nan, tp_stop=math.nan, trail_stop=math.nan,
               lot_size=0.0, min_qty=0.0, min_notional=0.0, maker_fees=math.nan, leverage=1.0, init_cash=1000.0,
               fill="next_open", intrabar="pessimistic", groups=None, order_type="market", order_price=None,
               limit_price=None, tif=0, sl_price=None, tp_price=None, exit_size=None, entry_size=None,
               stop_price=None, roi=None, td_stop=0.0, borrow=0.0, accumulate=False, reenter=False,
               finalize=False, order_types=None):
    """Run ``simulate_signals_nb`` on ``(n, m)`` arrays; per-column options are scalars or length-m lists.

    Returns ``(orders, trades, cash, equity)``: orders and trades as lists of dicts with enum names
    (the reference engine's form). ``order_types``: each entry's type by name, per bar (``Option.ENTRY_TYPES``)."""
    o, h, l, c = (np.ascontiguousarray(np.asarray(a, dtype=np.float64)) for a in (o, h, l, c))
    n, m = c.shape
    le, lx = np.asarray(le, dtype=bool), np.asarray(lx, dtype=bool)
    has_short = se is not None
    se = np.asarray(se, dtype=bool) if has_short else le
    sx = np.asarray(sx, dtype=bool) if has_short else le
    params = np.zeros(m, dtype=param_dt)
    for field, v in (("size", size), ("fees", fees), ("fixed_fees", fixed_fees), ("slippage", slippage),
                     ("sl", sl_stop), ("tp", tp_stop), ("trail", trail_stop), ("lot", lot_size),
                     ("min_qty", min_qty), ("min_notional", min_notional), ("maker_fees", maker_fees),
                     ("slip_range", slippage_range), ("td", td_stop), ("borrow", borrow)):
        params[field] = v
    groups = np.zeros(m, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    partial = exit_size is not None
    levels = Levels(c if order_price is None else _arr(order_price, n, m),
                    c if limit_price is None else _arr(limit_price, n, m),
                    _arr(sl_price, n, m) if (sl_price is not None or tp_price is not None) else _arr(None, n, m),
                    _arr(tp_price, n, m) if (sl_price is not None or tp_price is not None) else _arr(None, n, m),
                    _arr(exit_size, n, m) if partial else np.ones((1, 1)))
    if entry_size is not None or stop_price is not None or roi is not None:
        levels = levels._replace(extra=OrderLevels(
            _arr(entry_size, n, m), _arr(stop_price, n, m),
            np.ones((1, 2)) if roi is None else np.ascontiguousarray(np.asarray(roi, dtype=np.float64))))
    if order_types is not None:
        codes = np.array([[_OTYPE[t] for t in row] for row in order_types], dtype=np.int64).reshape(n, m)
        ex = levels.extra if levels.extra is not None else OrderLevels(_arr(None, n, m), _arr(None, n, m),
                                                                       np.ones((1, 2)))
        levels = levels._replace(extra=ex._replace(entry_type=codes))
    abs_stops = sl_price is not None or tp_price is not None
    if abs_stops:
        levels = levels._replace(sl_price=np.full((n, m), np.nan) if sl_price is None else levels.sl_price,
                                 tp_price=np.full((n, m), np.nan) if tp_price is None else levels.tp_price)
    cfg = make_config(_SIZE[size_type], leverage, FillMode.NEXT_OPEN if fill == "next_open" else FillMode.CLOSE,
                      Intrabar.OPTIMISTIC if intrabar == "optimistic" else Intrabar.PESSIMISTIC, _OTYPE[order_type],
                      tif, has_short, abs_stops, partial, accumulate=accumulate, reenter=reenter, finalize=finalize,
                      sizes=entry_size is not None, ind_stop=stop_price is not None, roi=roi is not None,
                      borrow=bool(np.any(np.asarray(borrow) > 0)), time_stop=bool(np.any(np.asarray(td_stop) > 0)),
                      entry_types=order_types is not None)
    if leverage > 1.0 or has_short:  # spot margin rule (nbtrade.engine.signals.spot_margin)
        from nbtrade.engine.signals import margin_params
        from nbtrade.kernels.records import Option
        cfg = cfg._replace(options=cfg.options | Option.MARGIN)
        params = margin_params(params)
    orders = np.empty(8 * n * m + 16 * m, dtype=order_dt)
    trades = np.empty(4 * n * m + 8 * m, dtype=trade_dt)
    state, acct, counts = new_state(groups), np.full(int(groups.max()) + 1, float(init_cash)), np.zeros(1, counts_dt)
    cash, equity = np.empty(n), np.empty(n)
    done = simulate_signals_nb(Prices(o, h, l, c, c), Signals(le, lx, se, sx), levels, cfg, params, 0,
                               Books(state, acct, counts, orders, trades), cash, equity)
    assert done == n
    k = counts[0]
    out_o = [dict(col=int(r["col"]), idx=int(r["idx"]), side=_NAMES["side"][r["side"]], size=float(r["size"]),
                  price=float(r["price"]), fees=float(r["fees"]), type=_NAMES["type"][r["type"]],
                  status=_NAMES["status"][r["status"]], reason=_NAMES["reason"][r["reason"]])
             for r in orders[:k["orders"]]]
    out_t = [dict(col=int(r["col"]), entry_idx=int(r["entry_idx"]), exit_idx=int(r["exit_idx"]),
                  direction=_NAMES["direction"][r["direction"]], size=float(r["size"]),
                  entry_price=float(r["entry_price"]), exit_price=float(r["exit_price"]),
                  entry_fees=float(r["entry_fees"]), exit_fees=float(r["exit_fees"]), pnl=float(r["pnl"]),
                  ret=float(r["ret"]), exit_reason=_NAMES["exit_reason"][r["exit_reason"]],
                  borrow=float(r["borrow"]))
             for r in trades[:k["trades"]]]
    return out_o, out_t, cash, equity


def assert_same(got, ref, rtol=1e-9):
    """Kernel output equals the reference's: every record field, cash and equity (``rtol``, atol 1e-9)."""
    (go, gt, gc, ge), (ro, rt, rc, re) = got, ref
    assert len(go) == len(ro), f"{len(go)} orders vs reference {len(ro)}\n{go}\n{ro}"
    for k, (g, r) in enumerate(zip(go, ro)):
        for f in ("col", "idx", "side", "type", "status", "reason"):
            assert g[f] == r[f], (k, f, g, r)
        for f in ("size", "price", "fees"):
            np.testing.assert_allclose(g[f], r[f], rtol=rtol, atol=1e-9, err_msg=f"order {k} {f}: {g} vs {r}")
    assert len(gt) == len(rt), f"{len(gt)} trades vs reference {len(rt)}\n{gt}\n{rt}"
    for k, (g, r) in enumerate(zip(gt, rt)):
        for f in ("col", "entry_idx", "exit_idx", "direction", "exit_reason"):
            assert g[f] == r[f], (k, f, g, r)
        for f in ("size", "entry_price", "exit_price", "entry_fees", "exit_fees", "pnl", "ret", "borrow"):
            np.testing.assert_allclose(g[f], r.get(f, 0.0), rtol=rtol, atol=1e-9, err_msg=f"trade {k} {f}: {g} vs {r}")
    np.testing.assert_allclose(gc, rc, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(ge, re, rtol=rtol, atol=1e-9)


def flat(closes, spread=0.0):
    """One column of candles: open = close = the given values, high/low +- ``spread``."""
    c = np.asarray(closes, dtype=np.float64)[:, None]
    return c.copy(), c + spread, c - spread, c.copy()


def sig(n, bars):
    a = np.zeros((n, 1), dtype=bool)
    a[list(bars), 0] = True
    return a


# --------------------------------------------------------------------------------------------- accumulate

def test_accumulate_adds_at_market_and_averages_the_entry_price():
    o, h, l, c = flat([10, 10, 12, 14, 16, 16])
    orders, trades, cash, equity = run_kernel(o, h, l, c, sig(6, [0, 1, 2]), sig(6, [4]), size=1.0,
                                              accumulate=True, fees=0.01)
    fills = [(r["idx"], r["side"], r["size"], r["price"]) for r in orders]
    assert fills == [(1, "buy", 1.0, 10.0), (2, "buy", 1.0, 12.0), (3, "buy", 1.0, 14.0), (5, "sell", 3.0, 16.0)]
    (t,) = trades
    assert t["entry_idx"] == 1 and t["size"] == 3.0
    assert t["entry_price"] == pytest.approx(12.0)  # (10 + 12 + 14) / 3
    assert t["entry_fees"] == pytest.approx(0.36)
    assert t["pnl"] == pytest.approx(3 * (16 - 12) - 0.36 - 0.48)
    assert equity[-1] == pytest.approx(1000 + t["pnl"])


def test_without_accumulate_a_repeated_entry_is_ignored():
    o, h, l, c = flat([10, 10, 12, 14, 16, 16])
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(6, [0, 1, 2]), sig(6, [4]))
    assert [r["size"] for r in orders] == [1.0, 1.0] and trades[0]["entry_price"] == 10.0


def test_accumulated_position_partial_exit_keeps_the_average():
    o, h, l, c = flat([10, 10, 20, 20, 30, 30])
    _, trades, _, _ = run_kernel(o, h, l, c, sig(6, [0, 1]), sig(6, [3]), size=2.0, accumulate=True,
                                 exit_size=np.full((6, 1), 0.25))
    part, rest = trades
    assert part["size"] == 1.0 and part["entry_price"] == 15.0 and part["exit_price"] == 30.0
    assert part["exit_reason"] == "signal" and rest["exit_reason"] == "end" and rest["size"] == 3.0
    assert rest["entry_price"] == 15.0


def test_accumulated_stops_use_the_average_price():
    # adds at 100 and 80: average 90, stop-loss 10 % below = 81, hit at bar 3 (low 80)
    o = np.array([[100.0], [100.0], [80.0], [85.0], [85.0]])
    c = o.copy()
    h, l = o + 1, o - 1
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(5, [0, 1]), sig(5, []), accumulate=True, sl_stop=0.1)
    # the add fills at bar 2's open (80); the stop is then checked inside bar 2 on the combined position:
    # level 0.9 * 90 = 81 and the open (80) is at or below it: a gap fill at the open
    (t,) = trades
    assert t["entry_price"] == pytest.approx(90.0) and t["exit_idx"] == 2 and t["exit_reason"] == "sl"
    assert t["exit_price"] == 80.0


# ------------------------------------------------------------------------------------------------ reenter

def test_reenter_closes_and_reopens_on_the_same_bar():
    o, h, l, c = flat([10, 10, 11, 12, 13, 14])
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(6, [0, 2]), sig(6, [2]), reenter=True)
    assert [(r["idx"], r["side"]) for r in orders] == [(1, "buy"), (3, "sell"), (3, "buy")]
    assert [(t["entry_idx"], t["exit_idx"], t["exit_reason"]) for t in trades] == [(1, 3, "signal"), (3, 5, "end")]
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(6, [0, 2]), sig(6, [2]))
    assert [(r["idx"], r["side"]) for r in orders] == [(1, "buy"), (3, "sell")]


# ------------------------------------------------------------------------------------------ entry sizes

def test_entry_size_per_bar_and_nan_falls_back_to_the_column_size():
    o, h, l, c = flat([10, 10, 10, 10, 10, 10])
    sizes = np.full((6, 1), np.nan)
    sizes[0, 0] = 3.0
    orders, _, _, _ = run_kernel(o, h, l, c, sig(6, [0, 2]), sig(6, [1, 3]), size=2.0, entry_size=sizes)
    assert [r["size"] for r in orders if r["side"] == "buy"] == [3.0, 2.0]


# ------------------------------------------------------------------------------------- indicator stop

def test_indicator_stop_ratchets_up_only_and_exits_with_its_reason():
    # closes rise then fall; stop_price = close - 5 (an ATR-like trail), given every bar
    closes = [100.0, 100, 104, 108, 106, 101, 99, 98]
    o, h, l, c = flat(closes, spread=0.5)
    stop = np.asarray(closes)[:, None] - 5.0
    stop[4, 0] = 90.0  # a lower value never lowers the level
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(8, [0]), sig(8, []), stop_price=stop)
    (t,) = trades
    # level: 95 (signal bar 0), 99 after bar 2, 103 after bar 3; bar 5 opens at 101 <= 103: gap fill at the open
    assert t["exit_reason"] == "ind_stop" and t["exit_idx"] == 5 and t["exit_price"] == 101.0
    assert orders[-1]["type"] == "stop_loss"


def test_indicator_stop_intrabar_fill_at_the_level_and_short_mirrors():
    o = np.array([[100.0], [100.0], [100.0], [100.0]])
    c = o.copy()
    h, l = o + 1, o - 1
    l[2, 0] = 97.0
    stop = np.full((4, 1), 98.0)
    _, trades, _, _ = run_kernel(o, h, l, c, sig(4, [0]), sig(4, []), stop_price=stop)
    assert trades[0]["exit_idx"] == 2 and trades[0]["exit_price"] == 98.0
    h[2, 0] = 103.0
    stop = np.full((4, 1), 102.0)
    _, trades, _, _ = run_kernel(o, h, l, c, sig(4, []), sig(4, []), sig(4, [0]), sig(4, []), stop_price=stop)
    assert trades[0]["direction"] == "short" and trades[0]["exit_price"] == 102.0
    assert trades[0]["exit_reason"] == "ind_stop"


def test_tighter_of_stop_loss_and_indicator_stop_rules():
    o = np.array([[100.0], [100.0], [100.0], [100.0]])
    c = o.copy()
    h, l = o + 1, o - 1
    l[2, 0] = 90.0
    _, trades, _, _ = run_kernel(o, h, l, c, sig(4, [0]), sig(4, []), sl_stop=0.05, stop_price=np.full((4, 1), 93.0))
    assert trades[0]["exit_price"] == 95.0 and trades[0]["exit_reason"] == "sl"
    _, trades, _, _ = run_kernel(o, h, l, c, sig(4, [0]), sig(4, []), sl_stop=0.05, stop_price=np.full((4, 1), 96.0))
    assert trades[0]["exit_price"] == 96.0 and trades[0]["exit_reason"] == "ind_stop"


# ------------------------------------------------------------------------------------------ time exits

def test_time_stop_exits_at_the_open_after_n_bars():
    o, h, l, c = flat([10, 11, 12, 13, 14, 15, 16])
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(7, [0]), sig(7, []), td_stop=3.0)
    (t,) = trades
    assert (t["entry_idx"], t["exit_idx"], t["exit_price"], t["exit_reason"]) == (1, 4, 14.0, "time")
    assert orders[-1]["type"] == "market"
    _, trades, _, _ = run_kernel(o, h, l, c, sig(7, [0]), sig(7, []), td_stop=3.0, fill="close")
    assert (trades[0]["entry_idx"], trades[0]["exit_idx"]) == (0, 3)


def test_time_stop_counts_from_the_first_entry_when_accumulating():
    o, h, l, c = flat([10, 11, 12, 13, 14, 15, 16])
    _, trades, _, _ = run_kernel(o, h, l, c, sig(7, [0, 2]), sig(7, []), td_stop=4.0, accumulate=True)
    assert (trades[0]["entry_idx"], trades[0]["exit_idx"], trades[0]["size"]) == (1, 5, 2.0)


def test_min_roi_table_by_trade_age():
    # ROI: 50 % from age 0, 10 % from age 2, 0 from age 4 (exit at break-even)
    roi = [[0, 0.5], [2, 0.1], [4, 0.0]]
    o = np.full((8, 1), 100.0)
    c = o.copy()
    h, l = o + 1.0, o - 1.0
    h[2, 0] = 112.0  # age 1 (entry at bar 1): 12 % < 50 %: no exit
    h[4, 0] = 109.0  # age 3: 9 % < 10 %
    orders, trades, _, _ = run_kernel(o, h, l, c, sig(8, [0]), sig(8, []), roi=roi)
    (t,) = trades
    # age 4 at bar 5: level 100 * (1 + 0) = 100, the open (100) is at the level: exit at the open
    assert (t["exit_idx"], t["exit_price"], t["exit_reason"]) == (5, 100.0, "roi")
    assert orders[-1]["type"] == "take_profit"
    h[4, 0] = 111.0  # age 3: 11 % >= 10 %: exit at the level 110
    _, trades, _, _ = run_kernel(o, h, l, c, sig(8, [0]), sig(8, []), roi=roi)
    assert (trades[0]["exit_idx"], trades[0]["exit_price"]) == (4, pytest.approx(110.0))


# ------------------------------------------------------------------------------------------- finalize

def test_finalize_closes_open_positions_with_fees_at_the_last_close():
    o, h, l, c = flat([10, 10, 12, 14])
    orders, trades, cash, equity = run_kernel(o, h, l, c, sig(4, [0]), sig(4, []), finalize=True, fees=0.01)
    assert orders[-1]["idx"] == 3 and orders[-1]["side"] == "sell" and orders[-1]["fees"] == pytest.approx(0.14)
    (t,) = trades
    assert t["exit_reason"] == "final" and t["exit_price"] == 14.0
    assert t["pnl"] == pytest.approx(4 - 0.1 - 0.14)
    assert cash[-1] == equity[-1] == pytest.approx(1000 + t["pnl"])
    _, trades, _, equity = run_kernel(o, h, l, c, sig(4, [0]), sig(4, []), fees=0.01)
    assert trades[0]["exit_reason"] == "end" and trades[0]["exit_fees"] == 0.0


# --------------------------------------------------------------------------------------------- borrow

def test_borrow_cost_of_a_short_per_bar():
    o, h, l, c = flat([100, 100, 100, 90, 80, 80])
    none = sig(6, [])
    orders, trades, cash, equity = run_kernel(o, h, l, c, none, none, sig(6, [0]), sig(6, [3]), borrow=0.001)
    (t,) = trades
    # short 1 unit from bar 1's open to bar 4's open; held at the closes of bars 1, 2, 3 (100, 100, 90)
    assert t["borrow"] == pytest.approx(0.1 + 0.1 + 0.09)
    assert t["pnl"] == pytest.approx(100 - 80 - 0.29)
    assert equity[-1] == pytest.approx(1000 + 20 - 0.29)
    # a long pays nothing
    _, trades, _, _ = run_kernel(o, h, l, c, sig(6, [0]), sig(6, [3]), borrow=0.001)
    assert trades[0]["borrow"] == 0.0


def test_borrow_split_on_partial_exit_and_carried_by_an_open_trade():
    o, h, l, c = flat([100, 100, 100, 100, 100])
    none = sig(5, [])
    _, trades, _, equity = run_kernel(o, h, l, c, none, none, sig(5, [0]), sig(5, [2]), size=2.0, borrow=0.01,
                                      exit_size=np.full((5, 1), 0.5))
    part, rest = trades
    # bars 1, 2 charged on 2 units (4.0 in all), split half/half; the rest pays 1.0 at bars 3 and 4
    assert part["borrow"] == pytest.approx(2.0) and rest["borrow"] == pytest.approx(2.0 + 2.0)
    assert rest["exit_reason"] == "end" and equity[-1] == pytest.approx(1000 - 6.0)
