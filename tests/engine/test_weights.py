"""Target-weights backtest: hand-computed rebalances and parity with the reference (hypothesis)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.backtesting import backtest_weights

from .helpers import compare_with_reference, random_market
from .reference_weights import run_reference_weights

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


def _frame(rows, symbols=("A",)):
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC")
    return {s: pd.DataFrame([r[k] for r in rows], index=idx, columns=["open", "high", "low", "close"], dtype=float)
            for k, s in enumerate(symbols)}


def test_rebalance_to_half_and_back():
    flat = ((100, 100, 100, 100), (200, 200, 200, 200))
    d = _frame([flat, flat, ((110, 110, 110, 110), (200, 200, 200, 200)), flat], symbols=("A", "B"))
    w = pd.DataFrame({"A": [0.5, np.nan, 0.0, np.nan], "B": [0.5, np.nan, 0.5, np.nan]}, index=d["A"].index)
    res = backtest_weights(d, w, init_cash=1000.0)
    o = res.orders
    # bar 1: 500 / 100 = 5 A, 500 / 200 = 2.5 B; bar 3 (weights of bar 2): equity 1000, A sold first
    assert o["size"].tolist() == pytest.approx([5.0, 2.5, 5.0])
    assert o["side"].tolist() == ["buy", "buy", "sell"] and o["time"].iloc[2] == d["A"].index[3]
    t = res.trades.iloc[0]
    assert (t["symbol"], t["pnl"], t["exit_reason"]) == ("A", 0.0, "signal")
    assert res.trades["exit_reason"].tolist() == ["signal", "end"]


def test_fees_are_paid_by_the_target():
    d = _frame([((100, 100, 100, 100),), ((100, 100, 100, 100),)])
    res = backtest_weights(d, np.ones(2), rebalance_every=2, fees=0.01, init_cash=1000.0)
    assert res.orders["size"].iloc[0] == pytest.approx(1000 / 1.01 / 100)
    assert res.cash.iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_flip_is_a_close_then_an_open():
    p = ((100, 100, 100, 100),)
    d = _frame([p, p, p])
    res = backtest_weights(d, np.array([0.5, -0.5, np.nan]), init_cash=1000.0, leverage=2.0)
    assert res.orders["side"].tolist() == ["buy", "sell", "sell"]
    assert res.orders["size"].tolist() == pytest.approx([5.0, 5.0, 5.0])
    assert res.trades["direction"].tolist() == ["long", "short"]


def test_lot_and_min_notional_rejections():
    p = ((100, 100, 100, 100),)
    d = _frame([p, p, p])
    res = backtest_weights(d, np.array([0.5, 0.51, np.nan]), init_cash=1000.0, lot_size=0.5, min_notional=50.0)
    assert res.orders["size"].tolist() == pytest.approx([5.0])  # the 0.1-unit top-up rounds to 0 lots: no order
    res = backtest_weights(d, np.array([0.5, 0.52, np.nan]), init_cash=1000.0, min_notional=50.0)
    assert res.orders["reason"].tolist() == ["none", "min_notional"]


def test_bad_weights():
    d = _frame([((100, 100, 100, 100),)] * 3)
    with pytest.raises(ValueError, match="weights has shape"):
        backtest_weights(d, np.ones(2))
    with pytest.raises(ValueError, match="rebalance_every must be >= 1"):
        backtest_weights(d, np.ones(3), rebalance_every=0)
    with pytest.raises(ValueError, match="weights must not contain inf"):
        backtest_weights(d, np.array([1.0, np.inf, 1.0]))


case = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "n": st.integers(1, 20),
    "m": st.integers(1, 3),
    "every": st.integers(1, 3),
    "nan_prob": st.sampled_from([0.0, 0.1, 0.3]),
    "shorts": st.booleans(),
    "fill": st.sampled_from(["next_open", "close"]),
    "fees": st.sampled_from([0.0, 0.001, 0.01]),
    "fixed_fees": st.sampled_from([0.0, 0.5]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "lot_size": st.sampled_from([0.0, 0.01, 0.5]),
    "min_qty": st.sampled_from([0.0, 0.2]),
    "min_notional": st.sampled_from([0.0, 30.0]),
    "leverage": st.sampled_from([1.0, 2.0]),
})


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case)
def test_weights_engine_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    n, m = cfg["n"], cfg["m"]
    o, h, l, c = random_market(rng, n, m, nan_prob=cfg["nan_prob"])
    lo = -0.6 if cfg["shorts"] else 0.0
    w = rng.uniform(lo, 1.0 / m, (n, m))
    w[rng.random((n, m)) < 0.3] = np.nan
    w[rng.random((n, m)) < 0.1] = 0.0
    per = {k: [cfg[k]] * m for k in ("fees", "fixed_fees", "slippage", "lot_size", "min_qty", "min_notional")}
    if np.isnan(c).all():  # no candle at all: refused, never a silent run of 0 trades
        with pytest.raises(ValueError, match="no candle at all"):
            backtest_weights({"open": o, "high": h, "low": l, "close": c}, w)
        return
    res = backtest_weights({"open": o, "high": h, "low": l, "close": c}, w, rebalance_every=cfg["every"],
                           init_cash=1000.0, fill=cfg["fill"], leverage=cfg["leverage"], on_gap="skip",
                           **{k: cfg[k] for k in per})
    mask = np.zeros(n, dtype=bool)
    mask[::cfg["every"]] = True
    ref = run_reference_weights(o.tolist(), c.tolist(), w.tolist(), mask.tolist(), init_cash=1000.0,
                                fill=cfg["fill"], leverage=cfg["leverage"], **per)
    compare_with_reference(res, *ref[:4])
    assert res.assumptions["delayed_orders"] == ref[4]
    # positions rebuilt from the orders agree with the engine's equity
    marks = res.marks.fillna(0.0).to_numpy()
    np.testing.assert_allclose(res.cash.to_numpy() + (res.positions.to_numpy() * marks).sum(axis=1),
                               res.equity.to_numpy(), rtol=1e-9, atol=1e-9)


# --------------------------------------------------------------------------------------------
# missing data: a target whose fill bar has no candle waits for the symbol's next candle

def _bars(opens, closes, symbols):
    """Candles with high/low spanning open and close; NaN opens/closes are missing bars."""
    idx = pd.date_range("2024-01-01", periods=len(opens[0]), freq="1h", tz="UTC")
    out = {}
    for s, o, c in zip(symbols, opens, closes):
        o, c = np.asarray(o, dtype=float), np.asarray(c, dtype=float)
        out[s] = pd.DataFrame({"open": o, "high": np.fmax(o, c), "low": np.fmin(o, c), "close": c}, index=idx)
    return out


@pytest.mark.parametrize("every_bar", [False, True])
def test_symbol_listed_late_waits_for_its_first_candle(every_bar):
    # B is listed at bar 3 (open 50). Weights 0.4 / 0.4 from bar 0: A buys 4 at bar 1's open (100);
    # B's order waits and fills at bar 3's open, sized then: equity = 600 cash + 4 * 110 = 1040,
    # 0.4 * 1040 / 50 = 8.32 units. Repeating the weights every bar replaces the waiting target.
    nan = np.nan
    d = _bars([[100, 100, 100, 110, 110], [nan, nan, nan, 50, 50]],
              [[100, 100, 100, 110, 110], [nan, nan, nan, 50, 50]], ("A", "B"))
    w = np.full((5, 2), 0.4) if every_bar else np.array([[0.4, 0.4]] + [[nan, nan]] * 4)
    res = backtest_weights(d, w, init_cash=1000.0, on_gap="skip")
    o = res.orders
    assert (o["status"] == "filled").all()
    b = o[o["symbol"] == "B"]
    assert len(b) == 1 and b["time"].iloc[0] == d["A"].index[3]
    assert (b["side"].iloc[0], b["price"].iloc[0]) == ("buy", 50.0)
    assert b["size"].iloc[0] == pytest.approx(8.32)
    if every_bar:  # at bar 3, A (440 > 416) is trimmed first, in the same rebalance
        a3 = o[(o["symbol"] == "A") & (o["time"] == d["A"].index[3])]
        assert a3["side"].tolist() == ["sell"] and a3["size"].iloc[0] == pytest.approx(24 / 110)
        assert o.loc[o["time"] == d["A"].index[3], "symbol"].tolist() == ["A", "B"]  # the sale came first
    assert res.assumptions["delayed_orders"] == 1
    assert res.equity.iloc[3] == pytest.approx(1040.0)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_gap_mid_history_delays_the_exit_to_the_next_candle(fill):
    # A: bars 2-3 missing, bar 4 opens at 120 and closes at 125. Long 5 units at 100 first; then
    # a target of 0 whose fill bar has no candle: sold at bar 4's open (next_open) or close (close)
    nan = np.nan
    d = _bars([[100, 100, nan, nan, 120, 130]], [[100, 100, nan, nan, 125, 130]], ("A",))
    if fill == "next_open":  # weights of bar 1 fill at bar 2's open: no candle
        w = np.array([0.5, 0.0, nan, nan, nan, nan])
    else:  # weights set on bar 2 (no candle) fill at the next close
        w = np.array([0.5, nan, 0.0, nan, nan, nan])
    res = backtest_weights(d, w, init_cash=1000.0, fill=fill, on_gap="skip")
    exit_price = 120.0 if fill == "next_open" else 125.0
    o = res.orders
    assert o["side"].tolist() == ["buy", "sell"] and o["status"].tolist() == ["filled", "filled"]
    assert o["size"].tolist() == pytest.approx([5.0, 5.0])
    assert o["price"].tolist() == [100.0, exit_price] and o["time"].iloc[1] == d["A"].index[4]
    t = res.trades.iloc[0]
    assert (t["exit_reason"], t["pnl"]) == ("signal", pytest.approx(5 * (exit_price - 100)))
    assert res.assumptions["delayed_orders"] == 1
    # the gap is valued at the last close, never filled at it
    np.testing.assert_allclose(res.equity.iloc[2:4], 1000.0)
    assert res.equity.iloc[-1] == pytest.approx(1000.0 + 5 * (exit_price - 100))


def test_newer_rebalance_replaces_the_waiting_target():
    # A holds 5 units (bought at 100); bar 1's target 0 for A waits (bars 2-3 missing), bar 2's
    # target 0.25 replaces it; at bar 4 (A opens at 120): equity 500 + 5 * 120 = 1100,
    # 0.25 * 1100 / 120 units wanted: one sale of 5 - 275 / 120, nothing of the replaced target
    nan = np.nan
    d = _bars([[100, 100, nan, nan, 120, 120], [10] * 6], [[100, 100, nan, nan, 120, 120], [10] * 6], ("A", "B"))
    w = np.array([[0.5, nan], [0.0, nan], [0.25, nan], [nan, nan], [nan, nan], [nan, nan]])
    res = backtest_weights(d, w, init_cash=1000.0, on_gap="skip")
    o = res.orders
    assert o["side"].tolist() == ["buy", "sell"] and o["time"].iloc[1] == d["A"].index[4]
    assert o["size"].iloc[1] == pytest.approx(5 - 275 / 120)
    assert res.positions["A"].iloc[-1] == pytest.approx(275 / 120)
    assert res.assumptions["delayed_orders"] == 1
    # a newer target of 0 while flat ends the wait: nothing to do
    w = np.array([[nan, nan], [0.5, nan], [0.0, nan], [nan, nan], [nan, nan], [nan, nan]])
    res = backtest_weights(d, w, init_cash=1000.0, on_gap="skip")
    assert len(res.orders) == 0 and res.assumptions["delayed_orders"] == 1


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_no_candle_before_the_end_is_rejected_on_the_last_bar(fill):
    # A is delisted after bar 2: the exit decided at bar 2 (next_open) / bar 3 (close) never finds
    # a candle: rejected no_data on the last bar; the trade is reported open at the last close
    nan = np.nan
    d = _bars([[100, 100, 110, nan, nan, nan]], [[100, 100, 110, nan, nan, nan]], ("A",))
    w = np.array([0.5, nan, 0.0, nan, nan, nan]) if fill == "next_open" else np.array([0.5, nan, nan, 0.0, nan, nan])
    res = backtest_weights(d, w, init_cash=1000.0, fill=fill, on_gap="skip")
    o = res.orders
    assert o["status"].tolist() == ["filled", "rejected"]
    rej = o.iloc[1]
    assert (rej["side"], rej["reason"], rej["time"]) == ("sell", "no_data", d["A"].index[5])
    assert np.isnan(rej["size"]) and np.isnan(rej["price"])
    t = res.trades.iloc[0]
    assert (t["exit_reason"], t["exit_time"]) == ("end", d["A"].index[2])
    assert res.assumptions["delayed_orders"] == 1


def test_missing_fill_bar_on_the_last_bar_is_rejected_at_once():
    nan = np.nan
    d = _bars([[100, 100, nan]], [[100, 100, nan]], ("A",))
    res = backtest_weights(d, np.array([nan, 0.5, nan]), init_cash=1000.0, on_gap="skip")
    assert res.orders["reason"].tolist() == ["no_data"] and res.orders["side"].tolist() == ["buy"]
    assert res.assumptions["delayed_orders"] == 0


def test_weights_rejection_counts_match_the_records():
    """The warning's figures (kernel counters) equal the weights path's records."""
    import re
    import warnings

    from nbtrade.backtesting import RejectedOrdersWarning

    rng = np.random.default_rng(8)
    seen = 0
    for k in range(20):
        o, h, l, c = random_market(rng, 30, 3, nan_prob=0.2)
        w = rng.uniform(-0.6, 0.9, c.shape)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = backtest_weights({"open": o, "high": h, "low": l, "close": c}, w, rebalance_every=3,
                                   min_notional=[0.0, 120.0][k % 2], lot_size=0.5, init_cash=1000.0,
                                   leverage=1.0, on_gap="skip")
        rec = res.order_records
        n_rejected = int(np.count_nonzero(rec["status"] == 1))
        msgs = [str(x.message) for x in caught if issubclass(x.category, RejectedOrdersWarning)]
        if n_rejected == 0:
            assert not msgs
            continue
        seen += 1
        n, total = map(int, re.match(r"(\d+) of (\d+) orders rejected", msgs[0]).groups())
        assert (n, total) == (n_rejected, len(rec))
    assert seen
