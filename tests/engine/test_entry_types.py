"""Per-entry order types on the signals path (issue 15, "Orders per call"): ``order_type`` per bar mixes
market, limit, stop and stop-limit entries in one run; hand-computed cases, equivalence with run-level
types, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest

from .helpers import random_market, random_signals

N = 12
IDX = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")
OPEN = np.array([100, 101, 102, 103, 104, 105, 104, 103, 102, 101, 100, 99.0])


def same_records(a, b):
    """Record arrays equal field by field (NaN equal to NaN)."""
    assert a.shape == b.shape
    for name in a.dtype.names:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def candles(o=OPEN):
    return pd.DataFrame({"open": o, "high": o + 2, "low": o - 2, "close": o + 0.5}, index=IDX)


def signals_and_types():
    en = np.zeros(N, bool)
    ex = np.zeros(N, bool)
    en[[1, 4, 8]] = True
    ex[[3, 6]] = True
    types = np.array(["market"] * N, dtype=object)
    types[4], types[8] = "limit", "stop"
    price = np.full(N, np.nan)  # market entries read no price: NaN there
    price[4], price[8] = 103.5, 103.0
    return en, ex, types, price


def test_market_then_limit_then_stop_in_one_run():
    en, ex, types, price = signals_and_types()
    res = backtest(candles(), en, ex, order_type=types, order_price=price, size=1.0, size_type="amount",
                   fees=0.001, maker_fees=0.0)
    o = res.orders
    assert list(o["type"]) == ["market", "market", "limit", "market", "stop"]
    assert list(o["status"]) == ["filled"] * 5
    # market: signal at bar 1 fills at bar 2's open; limit 103.5 placed at bar 4: bar 5 opens at 105 above
    # it and its low 103 reaches it -> min(open, 103.5); stop 103 placed at bar 8: bar 9 opens at 101, its
    # high 103 reaches it -> max(open, 103)
    assert list(o["price"]) == [102.0, 104.0, 103.5, 103.0, 103.0]
    assert [IDX.get_loc(t) for t in o["time"]] == [2, 4, 5, 7, 9]
    # the limit entry pays the maker rate (0), the others the taker rate
    np.testing.assert_allclose(o["fees"], [0.102, 0.104, 0.0, 0.103, 0.103])
    t = res.trades
    np.testing.assert_allclose(t["entry_price"], [102.0, 103.5, 103.0])
    np.testing.assert_allclose(t["pnl"], [2 - 0.206, -0.5 - 0.103, -3.5 - 0.103])
    assert list(t["exit_reason"]) == ["signal", "signal", "end"]
    cash = 10_000 - 102.102 + 103.896 - 103.5 + 102.897 - 103.103
    assert res.cash.iloc[-1] == pytest.approx(cash, abs=1e-9)
    assert res.equity.iloc[-1] == pytest.approx(cash + 99.5, abs=1e-9)
    assert res.assumptions["order_type"] == "per bar"


def test_codes_and_dataframe_by_label_give_the_same_run():
    en, ex, types, price = signals_and_types()
    base = backtest(candles(), en, ex, order_type=types, order_price=price, size=1.0, size_type="amount")
    codes = np.array([{"market": 0, "limit": 1, "stop": 2, "stop_limit": 3}[t] for t in types])
    by_code = backtest(candles(), en, ex, order_type=codes, order_price=price, size=1.0, size_type="amount")
    frame = pd.DataFrame({"asset": types}, index=IDX)[::-1]  # matched by label, any order
    by_frame = backtest(candles(), en, ex, order_type=frame, order_price=price, size=1.0, size_type="amount")
    for r in (by_code, by_frame):
        same_records(r.order_records, base.order_records)
        same_records(r.trade_records, base.trade_records)


def test_stop_limit_and_short_stop_entries_and_resting_records_keep_their_type():
    o = OPEN
    en = np.zeros(N, bool)
    ex = np.zeros(N, bool)
    se = np.zeros(N, bool)
    sx = np.zeros(N, bool)
    en[1] = True      # stop-limit: stop 102.5, limit 103 -> armed inside bar 2 (high 104), fills at the stop
    ex[3] = True
    se[4] = True      # short stop at 101: bar 5 low 103 never reaches it, bar 6 low 102 no, bar 7 low 101: fills
    sx[8] = True
    en[9] = True      # limit 90 never fills: cancelled by the exit signal at bar 10... (long exit)
    ex[10] = True
    en[10] = False
    types = np.full(N, "market", dtype=object)
    types[1], types[4], types[9] = "stop_limit", "stop", "limit"
    price = np.full(N, np.nan)
    price[1], price[4], price[9] = 102.5, 101.0, 90.0
    limit = np.full(N, np.nan)
    limit[1] = 103.0
    res = backtest(candles(o), en, ex, se, sx, order_type=types, order_price=price, limit_price=limit,
                   size=1.0, size_type="amount")
    rec = res.orders
    rows = list(zip(rec["type"], rec["status"], rec["side"], rec["price"]))
    assert rows == [("stop_limit", "filled", "buy", 102.5), ("market", "filled", "sell", 104.0),
                    ("stop", "filled", "sell", 101.0), ("market", "filled", "buy", 101.0),
                    ("limit", "cancelled", "buy", 90.0)]
    # left open at the end: recorded with its own type
    en2 = np.zeros(N, bool)
    en2[2] = True
    t2 = np.full(N, "limit", dtype=object)
    res2 = backtest(candles(o), en2, order_type=t2, order_price=np.full(N, 50.0), size=1.0, size_type="amount",
                    tif=0)
    assert list(zip(res2.orders["type"], res2.orders["status"])) == [("limit", "open")]
    res3 = backtest(candles(o), en2, order_type=np.full(N, "stop", dtype=object), order_price=np.full(N, 500.0),
                    size=1.0, size_type="amount", tif=2)
    assert list(zip(res3.orders["type"], res3.orders["status"])) == [("stop", "expired")]


@pytest.mark.parametrize("kind", ["market", "limit", "stop", "stop_limit"])
def test_one_type_per_bar_equals_the_run_level_type(kind):
    rng = np.random.default_rng(7)
    o, h, l, c = random_market(rng, 40, 2, nan_prob=0.1)
    le, lx = random_signals(rng, c, 0.2), rng.random(c.shape) < 0.2
    se, sx = random_signals(rng, c, 0.1), rng.random(c.shape) < 0.1
    data = {"open": o, "high": h, "low": l, "close": c}
    kw = dict(size=0.4, fees=0.001, maker_fees=0.0002, tif=3, sl_stop=0.05, on_gap="skip")
    if kind != "market":
        kw["order_price"] = np.where(np.isnan(c), np.nan, c * rng.uniform(0.97, 1.03, c.shape))
    if kind == "stop_limit":
        kw["limit_price"] = kw["order_price"] * 1.01
    run = backtest(data, le, lx, se, sx, order_type=kind, **kw)
    per_bar = backtest(data, le, lx, se, sx, order_type=np.full(c.shape, kind, dtype=object), **kw)
    same_records(per_bar.order_records, run.order_records)
    same_records(per_bar.trade_records, run.trade_records)
    np.testing.assert_array_equal(per_bar.equity.to_numpy(), run.equity.to_numpy())


def test_random_mixed_runs_reach_every_type_and_outcome():
    """The mixed cases of the reference comparison are not vacuous: fills of the four types and each
    resting outcome occur."""
    seen = set()
    for k in range(30):
        rng = np.random.default_rng(k)
        o, h, l, c = random_market(rng, 30, 2, nan_prob=0.05)
        le, lx = random_signals(rng, c, 0.3), rng.random(c.shape) < 0.2
        types = rng.choice(np.array(["market", "limit", "stop", "stop_limit"], dtype=object), c.shape)
        price = np.where(np.isnan(c), np.nan, c * rng.uniform(0.97, 1.03, c.shape))
        res = backtest({"open": o, "high": h, "low": l, "close": c}, le, lx, order_type=types, order_price=price,
                       limit_price=price * 1.01, tif=k % 3, on_gap="skip")
        seen |= set(zip(res.orders["type"], res.orders["status"]))
    for t in ("market", "limit", "stop", "stop_limit"):
        assert (t, "filled") in seen
    assert {s for _, s in seen} >= {"filled", "cancelled", "expired", "open"}


# ------------------------------------------------------------------ bad input

def test_unknown_type_names_and_codes_are_refused_with_their_place():
    en, ex, types, price = signals_and_types()
    bad = types.copy()
    bad[6] = "limt"
    with pytest.raises(ValueError, match=r"order_type: unknown order type 'limt' at .*(02:00|06:00|asset)"):
        backtest(candles(), en, ex, order_type=pd.DataFrame({"asset": bad}, index=IDX), order_price=price)
    with pytest.raises(ValueError, match="unknown order type 'limt'"):
        backtest(candles(), en, ex, order_type=bad, order_price=price)
    codes = np.zeros(N)
    codes[5] = 7
    with pytest.raises(ValueError, match=r"unknown order type code 7.0 at 2024-01-01 05:00:00\+00:00 \(asset\)"):
        backtest(candles(), en, ex, order_type=codes, order_price=price)
    with pytest.raises(ValueError, match="got booleans"):
        backtest(candles(), en, ex, order_type=np.zeros(N, bool), order_price=price)
    with pytest.raises(ValueError, match="order_type must be one of|order_type"):
        backtest(candles(), en, ex, order_type="mixed")


def test_a_resting_entry_without_its_price_is_refused_naming_bar_and_symbol():
    en, ex, types, price = signals_and_types()
    with pytest.raises(ValueError, match=r"order_price is needed by the 'limit' entry at 2024-01-01 04:00:00\+00:00 "
                                         r"\(asset\)"):
        backtest(candles(), en, ex, order_type=types)
    p = price.copy()
    p[8] = np.nan
    with pytest.raises(ValueError, match=r"order_price must be finite and > 0 at every 'stop' entry .* got nan at "
                                         r"2024-01-01 08:00:00\+00:00 \(asset\)"):
        backtest(candles(), en, ex, order_type=types, order_price=p)
    t = types.copy()
    t[8] = "stop_limit"
    with pytest.raises(ValueError, match=r"limit_price is needed by the 'stop_limit' entry at 2024-01-01 "
                                         r"08:00:00\+00:00 \(asset\)"):
        backtest(candles(), en, ex, order_type=t, order_price=price)
    lim = np.full(N, np.nan)
    lim[8] = -1.0
    with pytest.raises(ValueError, match=r"limit_price must be finite and > 0 at every 'stop_limit' entry"):
        backtest(candles(), en, ex, order_type=t, order_price=price, limit_price=lim)
    with pytest.raises(ValueError, match="limit_price is only used by 'stop_limit' entries"):
        backtest(candles(), en, ex, order_type=types, order_price=price, limit_price=price)


def test_per_bar_types_are_refused_where_they_do_not_apply():
    en, ex, types, price = signals_and_types()
    with pytest.raises(ValueError, match="accumulate=True needs order_type='market'"):
        backtest(candles(), en, ex, order_type=types, order_price=price, accumulate=True)
    from nbtrade.engine.chunked import _check_options  # backtest_chunked's option checks

    with pytest.raises(ValueError, match="order_type per bar: per-bar inputs of a chunked run come from signals_fn"):
        _check_options({"order_type": types})
    from nbtrade.engine.callback import backtest_callback

    with pytest.raises(ValueError, match="order_type per bar"):
        backtest_callback(candles(), lambda ctx, i: None, order_type=types, order_price=price)
