"""Perpetuals on the target-weights path (issue 17, "works in every way of driving the engine"):
``backtest_weights(..., instrument="perp", leverage=, margin=, maintenance=, liquidation_fee=)``.

Hand-computed cases from the documented formulas (``nbtrade.margin``), agreement with the signals path
where both express the same run, bookkeeping invariants on random rebalancing runs, bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.data.panels import _attach_events
from nbtrade.engine.run import prepare_data
from nbtrade.margin import Tiers

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")


def _frame(close, mark_low=None, mark_high=None, mark_open=None):
    idx = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC")
    c = np.asarray(close, dtype=float)
    df = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx)
    if mark_low is not None or mark_high is not None:
        df["mark_open"] = c if mark_open is None else np.asarray(mark_open, dtype=float)
        df["mark_high"] = c if mark_high is None else np.asarray(mark_high, dtype=float)
        df["mark_low"] = c if mark_low is None else np.asarray(mark_low, dtype=float)
        df["mark_close"] = c
    return df, idx


def _weights(idx, values, col="BTC"):
    return pd.DataFrame({col: np.asarray(values, dtype=float)}, index=idx)


# ------------------------------------------------------------------------------------------------
# hand-computed cases

def test_10x_long_liquidated_on_a_mark_wick():
    """10x long of 100 units at 100 (margin 1,000); the mark wicks to 80 on bar 2. Binance's isolated
    formula with the first default tier (mmr 0.4 %, cum 0): LP = (1000 - 100 * 100) / (100 * 0.004 - 100)
    = 90 / 0.996. The default fee forfeits the maintenance margin left: equity 0 afterwards."""
    df, idx = _frame([100.0] * 6, mark_low=[100, 100, 80, 100, 100, 100])
    w = _weights(idx, [10.0] + [np.nan] * 5)
    r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=10, init_cash=1000.0)
    lp = 90 / 0.996
    tr = r.trades.iloc[0]
    assert tr["exit_reason"] == "liquidation" and tr["size"] == pytest.approx(100.0)
    assert tr["exit_price"] == pytest.approx(lp, abs=1e-9)
    assert r.trades["exit_time"].iloc[0] == idx[2]
    # remaining margin 1000 + 100 * (lp - 100) = 0.4 * lp = the maintenance margin at lp: all forfeited
    assert r.orders["fees"].iloc[1] == pytest.approx(100 * lp * 0.004, abs=1e-9)
    np.testing.assert_allclose(r.equity.to_numpy(), [1000, 1000, 0, 0, 0, 0], atol=1e-9)
    assert "mark-price candles" in r.assumptions["mark"]
    # a fee rate instead: 0.1 % of the notional at the liquidation price
    r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=10, init_cash=1000.0,
                                 liquidation_fee=0.001)
    assert r.equity.iloc[-1] == pytest.approx(1000 + 100 * (lp - 100) - 0.001 * 100 * lp, abs=1e-9)
    # the same weights on spot at 1x-sized weight never liquidate (no margin rule, price candles flat)
    r = nbtrade.backtest_weights({"BTC": df}, _weights(idx, [1.0] + [np.nan] * 5), init_cash=1000.0)
    assert list(r.trades["exit_reason"]) == ["end"]


def test_short_liquidated_on_the_mark_high_and_gap_fills_at_the_mark_open():
    """5x short of 50 units at 100 (margin 1,000): LP = (1000 + 5000) / (50 * 0.004 + 50) = 6000 / 50.2.
    A mark opening above it (125) closes the short at the mark open; the loss past the bankruptcy
    price (120) is absorbed: equity 0, never below."""
    df, idx = _frame([100.0] * 5, mark_high=[100, 100, 130, 100, 100])
    w = _weights(idx, [-5.0] + [np.nan] * 4)
    r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=5, init_cash=1000.0)
    tr = r.trades.iloc[0]
    assert tr["direction"] == "short" and tr["exit_reason"] == "liquidation"
    assert tr["exit_price"] == pytest.approx(6000 / 50.2, abs=1e-9)
    df2, _ = _frame([100.0] * 5, mark_high=[100, 100, 130, 100, 100], mark_open=[100, 100, 125, 100, 100])
    r = nbtrade.backtest_weights({"BTC": df2}, w, instrument="perp", leverage=5, init_cash=1000.0)
    assert r.trades["exit_price"].iloc[0] == 125.0
    assert abs(r.equity.iloc[-1]) < 1e-9 and (r.equity.to_numpy() >= -1e-9).all()


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("side, expected", [(1, [-1.0, 2.0]), (-1, [1.0, -2.0])])
def test_funding_long_short_positive_negative_rate(side, expected, fill):
    """100 units at mark 100 (weight +-10 at 10x): +0.01 % at bar 2's open -> a long pays 1, a short
    receives 1; -0.02 % inside bar 3 -> a long receives 2, a short pays 2."""
    df, idx = _frame([100.0] * 6)
    market = prepare_data({"BTC": df})
    t0 = int(idx[2].value // 1_000_000)
    _attach_events(market, {"BTC": {"time": np.array([t0, t0 + 90 * 60_000]), "rate": np.array([1e-4, -2e-4])}})
    w = _weights(idx, [10.0 * side] + [np.nan] * 5)
    r = nbtrade.backtest_weights(market, w, instrument="perp", leverage=10, init_cash=1000.0, fill=fill)
    assert r.trades["size"].iloc[0] == pytest.approx(100.0)
    f = r.funding["BTC"].to_numpy()
    np.testing.assert_allclose(f[[2, 3]], expected, atol=1e-12)
    assert f[[0, 1, 4, 5]].tolist() == [0.0] * 4
    assert r.stats()["Funding Paid [$]"] == pytest.approx(-sum(expected))
    assert r.equity.iloc[-1] == pytest.approx(1000.0 + sum(expected))
    assert "funding" in r.assumptions["mark"]


def test_funding_moves_the_isolated_margin_and_the_liquidation_price():
    """A 10x long pays 1 % funding (100 of its 1,000 margin) at bar 2: LP = (900 - 10000) / (0.4 - 100)
    = 9100 / 99.6 ~ 91.37; a mark low of 91 liquidates it (it would not have without the funding)."""
    df, idx = _frame([100.0] * 5, mark_low=[100, 100, 91, 100, 100])
    market = prepare_data({"BTC": df})
    t0 = int(idx[2].value // 1_000_000)
    _attach_events(market, {"BTC": {"time": np.array([t0]), "rate": np.array([1e-2])}})
    w = _weights(idx, [10.0] + [np.nan] * 4)
    r = nbtrade.backtest_weights(market, w, instrument="perp", leverage=10, init_cash=1000.0)
    assert r.trades["exit_reason"].iloc[0] == "liquidation"
    assert r.trades["exit_price"].iloc[0] == pytest.approx(9100 / 99.6, abs=1e-9)
    r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=10, init_cash=1000.0)
    assert r.trades["exit_reason"].iloc[0] == "end"


def test_increase_beyond_the_tier_max_leverage_is_rejected():
    """Tiers: 20x up to a notional of 5,000, 5x above. 10x on 1,000 of equity wants a notional of
    10,000, in the 5x tier: rejected with reason ``leverage``; a weight of 4 (notional 4,000) fills."""
    tiers = Tiers([(0, 5000, 0.01, 0, 20), (5000, 1e6, 0.05, 200, 5)])
    df, idx = _frame([100.0] * 4)
    w = _weights(idx, [10.0, np.nan, np.nan, np.nan])
    with pytest.warns(UserWarning):
        r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=10, maintenance=tiers,
                                     init_cash=1000.0)
    assert list(r.orders["status"]) == ["rejected"] and list(r.orders["reason"]) == ["leverage"]
    r = nbtrade.backtest_weights({"BTC": df}, _weights(idx, [4.0, np.nan, np.nan, np.nan]), instrument="perp",
                                 leverage=10, maintenance=tiers, init_cash=1000.0)
    assert list(r.orders["status"]) == ["filled"]


def test_per_symbol_leverage_sets_each_margin_and_liquidation():
    """A at 2x and B at 20x, half the equity each (weights 1 and 10): B holds 200 units on a margin of
    1,000, LP = (200 * 100 - 1000) / (200 - 0.8) ~ 95.4, reached by a mark low of 94; A's (~50.2) is not."""
    dfa, idx = _frame([100.0] * 4, mark_low=[100, 100, 94, 100])
    data = {"A": dfa, "B": dfa}
    w = pd.DataFrame({"A": [1.0, np.nan, np.nan, np.nan], "B": [10.0, np.nan, np.nan, np.nan]}, index=idx)
    r = nbtrade.backtest_weights(data, w, instrument="perp", leverage={"A": 2, "B": 20}, init_cash=2000.0)
    reasons = dict(zip(r.trades["symbol"], r.trades["exit_reason"]))
    assert reasons == {"A": "end", "B": "liquidation"}
    assert r.assumptions["leverage"] == {"A": 2.0, "B": 20.0}
    b = r.trades[r.trades["symbol"] == "B"].iloc[0]
    assert b["exit_price"] == pytest.approx(19000 / 199.2, abs=1e-9)
    # a Series by symbol is the same as the mapping
    r2 = nbtrade.backtest_weights(data, w, instrument="perp", leverage=pd.Series({"B": 20.0, "A": 2.0}),
                                  init_cash=2000.0)
    np.testing.assert_array_equal(r.equity.to_numpy(), r2.equity.to_numpy())


# ------------------------------------------------------------------------------------------------
# agreement with the signals path

def _perp_market(seed, n=60, m=1, funding=True, wick=0.3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (n, m)), axis=0))
    opn = np.vstack([close[:1], close[:-1]]) * (1 + rng.normal(0, 0.005, (n, m)))
    low = np.minimum(opn, close) * (1 - rng.uniform(0, 0.02, (n, m)))
    high = np.maximum(opn, close) * (1 + rng.uniform(0, 0.02, (n, m)))
    mlow = np.minimum(opn, close) * (1 - rng.uniform(0, wick, (n, m)))
    mhigh = np.maximum(opn, close) * (1 + rng.uniform(0, wick, (n, m)))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    syms = [f"S{j}" for j in range(m)]
    data = {s: pd.DataFrame({"open": opn[:, j], "high": high[:, j], "low": low[:, j], "close": close[:, j],
                             "volume": 1.0, "mark_open": opn[:, j], "mark_high": mhigh[:, j],
                             "mark_low": mlow[:, j], "mark_close": close[:, j]}, index=idx)
            for j, s in enumerate(syms)}
    market = prepare_data(data)
    if funding:
        ms = np.asarray(market.time_ms)
        events = {}
        for j, s in enumerate(syms):
            bars = np.sort(rng.choice(np.arange(1, n), n // 4, replace=False))
            inside = rng.random(len(bars)) < 0.5
            events[s] = {"time": ms[bars] + np.where(inside, 20 * 60_000, 0),
                         "rate": rng.normal(0, 0.004, len(bars)),
                         "mark_price": np.where(rng.random(len(bars)) < 0.5, np.nan, close[bars, j] * 1.01)}
        _attach_events(market, events)
    return market, idx, syms, rng


def _alternating(rng, n, p_in=0.15, p_out=0.12):
    """Entry and exit signal bars that alternate (an entry only when flat, by the signals' own view)."""
    le, lx = np.zeros(n, bool), np.zeros(n, bool)
    flat = True
    for t in range(n - 1):
        if flat and rng.random() < p_in:
            le[t], flat = True, False
        elif not flat and rng.random() < p_out:
            lx[t], flat = True, True
    return le, lx


def _compare(rw, rs):
    assert list(rw.trades["exit_reason"]) == list(rs.trades["exit_reason"])
    for col in ("size", "entry_price", "exit_price", "pnl", "fees"):
        np.testing.assert_allclose(rw.trades[col].to_numpy(), rs.trades[col].to_numpy(), rtol=1e-9, atol=1e-9)
    ow, os_ = rw.orders[rw.orders["status"] == "filled"], rs.orders[rs.orders["status"] == "filled"]
    assert list(ow["time"]) == list(os_["time"]) and list(ow["side"]) == list(os_["side"])
    for col in ("size", "price", "fees"):
        np.testing.assert_allclose(ow[col].to_numpy(), os_[col].to_numpy(), rtol=1e-9, atol=1e-9)
    assert list(rw.trades["entry_time"]) == list(rs.trades["entry_time"])
    assert list(rw.trades["exit_time"]) == list(rs.trades["exit_time"])
    np.testing.assert_allclose(rw.funding.to_numpy(), rs.funding.to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rw.equity.to_numpy(), rs.equity.to_numpy(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(rw.cash.to_numpy(), rs.cash.to_numpy(), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("margin", ["isolated", "cross"])
def test_weight_leverage_in_and_out_equals_the_signals_run(seed, fill, margin):
    """One symbol entering all-in (weight = +-leverage) and leaving (weight 0) on the bars of alternating
    signals: the same trades, liquidations, funding, cash and equity as the signals run with ``size=1``
    (all of the free margin) at that leverage (no fees: the two size from the same equity)."""
    market, idx, syms, rng = _perp_market(seed)
    n = len(idx)
    lev = float(rng.choice([3.0, 10.0, 25.0]))
    side = 1.0 if seed % 2 == 0 else -1.0
    le, lx = _alternating(rng, n)
    w = np.full(n, np.nan)
    w[le] = side * lev
    w[lx] = 0.0
    kw = dict(instrument="perp", leverage=lev, init_cash=1000.0, fill=fill, margin=margin)
    rw = nbtrade.backtest_weights(market, _weights(idx, w, syms[0]), rebalance_every=le | lx, **kw)
    sig = dict(entries=le, exits=lx) if side > 0 else dict(short_entries=le, short_exits=lx,
                                                           entries=np.zeros(n, bool))
    rs = nbtrade.backtest(market, size=1.0, **{k: pd.Series(v, idx) for k, v in sig.items()}, **kw)
    _compare(rw, rs)


def _spot_market(seed, n=60, wick=0.3):
    """One spot symbol whose price candles wick deep (no marks, no funding): leverage liquidates on them."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    opn = np.r_[close[0], close[:-1]] * (1 + rng.normal(0, 0.005, n))
    low = np.minimum(opn, close) * (1 - rng.uniform(0, wick, n))
    high = np.maximum(opn, close) * (1 + rng.uniform(0, wick, n))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    df = pd.DataFrame({"open": opn, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx)
    return prepare_data({"S0": df}), idx, ["S0"], rng


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_spot_leverage_and_shorts_follow_the_signals_margin_rule(seed, fill):
    """Spot weights with leverage > 1, or a negative weight (a short), follow the isolated margin rule of the
    signals path (nbtrade.margin, "Spot with leverage": a perpetual without funding, liquidated on the price
    candle): all-in weights of +-leverage in and 0 out give the signals run's trades (liquidations
    included), cash and equity. Before, spot weights at 10x drove equity below zero."""
    market, idx, syms, rng = _spot_market(seed + 50)
    n = len(idx)
    lev = float(rng.choice([1.0, 3.0, 10.0])) if seed % 2 else float(rng.choice([3.0, 10.0]))
    side = -1.0 if seed % 2 else 1.0
    le, lx = _alternating(rng, n)
    w = np.full(n, np.nan)
    w[le] = side * lev
    w[lx] = 0.0
    kw = dict(leverage=lev, init_cash=1000.0, fill=fill)
    rw = nbtrade.backtest_weights(market, _weights(idx, w, syms[0]), rebalance_every=le | lx, **kw)
    sig = dict(entries=le, exits=lx) if side > 0 else dict(short_entries=le, short_exits=lx,
                                                           entries=np.zeros(n, bool))
    rs = nbtrade.backtest(market, size=1.0, **{k: pd.Series(v, idx) for k, v in sig.items()}, **kw)
    _compare(rw, rs)
    assert "isolated margin rule" in rw.assumptions["margin"] and "mark" not in rw.assumptions
    assert (rw.equity.to_numpy() >= -1e-9).all()
    if seed == 0:
        assert "liquidation" in set(rw.trades["exit_reason"])


def test_spot_weights_without_leverage_or_shorts_have_no_margin_rule():
    """1x long weights on spot are a cash account (no liquidation, no margin assumption), as before; the
    margin options are refused there with the signals path's message."""
    market, idx, syms, _ = _spot_market(1)
    w = _weights(idx, [1.0] + [np.nan] * (len(idx) - 1), syms[0])
    r = nbtrade.backtest_weights(market, w, init_cash=1000.0)
    assert "margin" not in r.assumptions and list(r.trades["exit_reason"]) == ["end"]
    r2 = nbtrade.backtest_weights(market, w, init_cash=1000.0, leverage=2, liquidation_fee=0.01,
                                  maintenance=Tiers.flat(0.02, 20))
    assert "isolated margin rule" in r2.assumptions["margin"]


@pytest.mark.parametrize("seed", range(4))
def test_with_fees_a_single_round_trip_equals_the_signals_run_of_the_same_size(seed):
    """With fees and slippage the weights size differs from the signals' percent sizing: the signals run
    takes the weights' entry size as ``size_type="amount"``; then everything agrees."""
    market, idx, syms, rng = _perp_market(seed + 100, n=40)
    n = len(idx)
    le, lx = np.zeros(n, bool), np.zeros(n, bool)
    a = int(rng.integers(0, 10))
    le[a], lx[a + 20] = True, True
    w = np.full(n, np.nan)
    w[a], w[a + 20] = 8.0, 0.0
    kw = dict(instrument="perp", leverage=10, init_cash=1000.0, fees=0.0005, slippage=0.0002)
    rw = nbtrade.backtest_weights(market, _weights(idx, w, syms[0]), rebalance_every=le | lx, **kw)
    size = float(rw.orders["size"].iloc[0])
    rs = nbtrade.backtest(market, entries=pd.Series(le, idx), exits=pd.Series(lx, idx), size=size,
                          size_type="amount", **kw)
    _compare(rw, rs)


@pytest.mark.parametrize("a_price, fits", [(120.0, 40.0), (90.0, 36.0)])
def test_free_margin_is_one_rule_in_weights_and_signals(a_price, fits):
    """Free margin for sizing is one rule on every path (``engine.margin_state_nb``, nbtrade.margin
    "Accounting"): the smaller of equity less each position's initial margin at the price of the moment and
    the wallet less the positions' margins. A: 10 units at 100, 5x (margin 200, wallet 1,000). At 120:
    equity 1,200, 1,200 - 10 * 120 / 5 = 960, wallet rule 1,000 - 200 = 800: 800 (A's unrealised profit
    does not back B). At 90: 900 - 180 = 720 < 800: 720 (its loss counts). B (price 100, 5x) gets ``fits``
    units (margin 800 or 720) on both paths, one more is rejected. (The weights path used the wallet rule
    alone, the signals path the equity rule alone.)"""
    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    prices = {"A": [100.0, 100.0, a_price, a_price], "B": [100.0] * 4}
    data = {s: pd.DataFrame({"open": v, "high": v, "low": v, "close": v}, index=idx) for s, v in prices.items()}
    le = pd.DataFrame({"A": [True, False, False, False], "B": [False, False, True, False]}, idx)
    kw = dict(instrument="perp", leverage=5, init_cash=1000.0, fill="close")
    equity = 1000.0 + 10 * (a_price - 100)
    for units, ok in ((fits, True), (fits + 1, False)):
        w = pd.DataFrame({"A": [1.0, np.nan, np.nan, np.nan], "B": [np.nan, np.nan, units * 100 / equity, np.nan]},
                         idx)
        rw = nbtrade.backtest_weights(data, w, rebalance_every=1, **kw)
        rs = nbtrade.backtest(data, entries=le, size={"A": 1000.0, "B": units * 100}, size_type="value", **kw)
        for r in (rw, rs):
            o = r.orders
            assert list(o["status"]) == ["filled", "filled" if ok else "rejected"], o
            assert o["size"].to_numpy() == pytest.approx([10.0, units], abs=1e-9)
        np.testing.assert_allclose(rw.equity.to_numpy(), rs.equity.to_numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# bookkeeping on random rebalancing runs (partial decreases, increases, flips, liquidations)

@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("margin", ["isolated", "cross"])
def test_random_rebalancing_books_balance(seed, margin):
    """Final equity = initial cash + every round trip's pnl (liquidations with their absorbed loss, open
    ones at the last close) + the funding received; isolated equity never goes below zero."""
    market, idx, syms, rng = _perp_market(seed + 7, n=80, m=3, wick=0.15)
    n = len(idx)
    w = rng.uniform(-4, 4, (n, 3))
    w[rng.random((n, 3)) < 0.3] = np.nan
    lev = {s: float(rng.choice([2.0, 5.0, 10.0])) for s in syms}
    r = nbtrade.backtest_weights(market, pd.DataFrame(w, idx, syms), rebalance_every=3, instrument="perp",
                                 leverage=lev, init_cash=1000.0, fees=0.0004, margin=margin)
    total = 1000.0 + r.trades["pnl"].sum() + r.funding.to_numpy().sum()
    assert r.equity.iloc[-1] == pytest.approx(total, rel=1e-9, abs=1e-7)
    assert (r.equity.to_numpy() >= -1e-9).all()
    filled = r.orders[r.orders["status"] == "filled"]
    assert len(filled) >= len(r.trades)


def test_liquidation_after_a_partial_decrease_is_one_round_trip():
    """Long 100 at 100 (10x), cut to 50 at 110 (equity 2,000: weight 50 * 110 / 2000; realised +500,
    margin 500), then liquidated by a wick: one trade of 100 units, exit price the average of the two
    exits; LP = (500 - 5000) / (0.2 - 50)."""
    close = [100.0, 100.0, 110.0, 110.0, 110.0, 110.0]
    df, idx = _frame(close, mark_low=[100, 100, 110, 110, 80, 110])
    w = _weights(idx, [10.0, 50 * 110 / 2000, np.nan, np.nan, np.nan, np.nan])
    r = nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", leverage=10, init_cash=1000.0,
                                 rebalance_every=np.array([True, True, False, False, False, False]))
    assert len(r.trades) == 1
    tr = r.trades.iloc[0]
    lp = 4500 / 49.8
    assert tr["exit_reason"] == "liquidation" and tr["size"] == pytest.approx(100.0)
    assert tr["exit_price"] == pytest.approx((50 * 110 + 50 * lp) / 100, rel=1e-12)
    assert r.equity.iloc[-1] == pytest.approx(1000.0 + tr["pnl"], abs=1e-9)


# ------------------------------------------------------------------------------------------------
# bad input

def test_perp_options_on_a_spot_run_name_the_argument():
    df, idx = _frame([100.0] * 4)
    w = _weights(idx, [1.0, np.nan, np.nan, np.nan])
    with pytest.raises(ValueError, match="maintenance"):
        nbtrade.backtest_weights({"BTC": df}, w, maintenance=Tiers.flat(0.01, 20))
    with pytest.raises(ValueError, match="liquidation_fee"):
        nbtrade.backtest_weights({"BTC": df}, w, liquidation_fee=0.01)
    with pytest.raises(ValueError, match="margin='cross' applies to perpetuals"):
        nbtrade.backtest_weights({"BTC": df}, w, margin="cross")
    with pytest.raises(ValueError, match="instrument"):
        nbtrade.backtest_weights({"BTC": df}, w, instrument="future")
    with pytest.raises(TypeError, match="leverage must be a number in this mode"):
        nbtrade.backtest_weights({"BTC": df}, w, leverage={"BTC": 2})


@pytest.mark.parametrize("lev, match", [
    ({"A": 3, "B": 60}, r"leverage\['B'\] 60 is above the maximum 50"),
    (60, r"leverage 60 is above the maximum 50"),
    ({"A": 0, "B": 2}, r"leverage\['A'\] must be a finite number > 0"),
    ({"C": 2}, r"leverage names symbols not in the data: \['C'\]"),
])
def test_bad_perp_leverage_names_the_symbol(lev, match):
    df, idx = _frame([100.0] * 4)
    w = pd.DataFrame(1.0, index=idx, columns=["A", "B"])
    with pytest.raises(ValueError, match=match):
        nbtrade.backtest_weights({"A": df, "B": df}, w, instrument="perp", leverage=lev,
                                 maintenance=Tiers([(0, 1e6, 0.01, 0, 50)]))


def test_bad_liquidation_fee_and_margin_mode():
    df, idx = _frame([100.0] * 4)
    w = _weights(idx, [1.0, np.nan, np.nan, np.nan])
    with pytest.raises(ValueError, match="liquidation_fee"):
        nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", liquidation_fee=1.5)
    with pytest.raises(ValueError, match="margin must be one of"):
        nbtrade.backtest_weights({"BTC": df}, w, instrument="perp", margin="portfolio")


# ------------------------------------------------------------------------------------------------
# no look-ahead

@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_perturbing_after_bar_t_changes_nothing_up_to_t(fill):
    """Prices, mark candles and funding after bar ``t`` (weights too) leave every record up to ``t`` as it was."""
    n, t = 60, 35
    base, idx, syms, rng = _perp_market(5, n=n, m=2, wick=0.2)
    w = rng.uniform(-6, 6, (n, 2))
    runs = []
    for perturb in (False, True):
        market, _, _, _ = _perp_market(5, n=n, m=2, wick=0.2)
        ww = w.copy()
        if perturb:
            k = 1.0 + rng.uniform(-0.2, 0.2, (n - t - 1, 2))  # one factor per candle: candles stay consistent
            for f in ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "mark_close"):
                market.array(f)[t + 1:] *= k
            ev = market.meta["funding_events"].tolist()
            cut = np.asarray(market.time_ms)[t + 1]
            for e in ev:
                e.rate[e.time >= cut] *= -3.0
            ww[t + 1:] = rng.uniform(-6, 6, (n - t - 1, 2))
        r = nbtrade.backtest_weights(market, pd.DataFrame(ww, idx, syms), rebalance_every=4, instrument="perp",
                                     leverage=8, init_cash=1000.0, fill=fill, fees=0.0005)
        runs.append(r)
    a, b = runs
    np.testing.assert_array_equal(a.equity.to_numpy()[:t + 1], b.equity.to_numpy()[:t + 1])
    np.testing.assert_array_equal(a.funding.to_numpy()[:t + 1], b.funding.to_numpy()[:t + 1])
    oa, ob = a.orders[a.orders["time"] <= idx[t]], b.orders[b.orders["time"] <= idx[t]]
    pd.testing.assert_frame_equal(oa, ob)
    assert not np.array_equal(a.equity.to_numpy()[t + 1:], b.equity.to_numpy()[t + 1:])  # the change took
    assert not np.array_equal(a.funding.to_numpy()[t + 1:], b.funding.to_numpy()[t + 1:])


def test_weights_perp_result_feeds_the_margin_views_and_report(tmp_path):
    """The weights Result carries what the signals one does: liquidations, funding paid, per-symbol leverage,
    margin usage, the HTML report's margin panes."""
    market, idx, syms, rng = _perp_market(3, n=80, m=2, wick=0.15)
    w = pd.DataFrame(rng.uniform(-5, 5, (80, 2)), idx, syms)
    r = nbtrade.backtest_weights(market, w, rebalance_every=5, instrument="perp", leverage={"S0": 5, "S1": 10},
                                 init_cash=1000.0)
    assert r.is_margined
    assert len(r.liquidations) == int((r.trades["exit_reason"] == "liquidation").sum()) > 0
    assert r.leverage().to_dict() == {"S0": 5.0, "S1": 10.0}
    paid = r.funding_paid()
    assert paid["portfolio"].iloc[-1] == pytest.approx(r.stats()["Funding Paid [$]"], rel=1e-12)
    assert (r.margin_usage() >= 0).all()
    html = open(r.report(str(tmp_path / "r.html"))).read()
    assert "funding" in html.lower()


def test_cross_wallet_with_two_positions_liquidates_both():
    """Cross, 1,000 of wallet: A long 50 at 100 and B short 50 at 100 (weights 5 and -5 at 10x). A's mark
    low of 80 takes the margin balance to 1000 - 1000 = 0, below the maintenance of both (16 + 20): every
    position closes. A at its cross price with B held at its adverse mark (100, UPNL 0, MM 20):
    (1000 - 20 - 5000) / (0.2 - 50) = 4020 / 49.8; B's cross price with A at 80 (UPNL -1000, MM 16) is
    (1000 - 1016 + 5000) / (0.2 + 50) ~ 99.28, below B's mark open of 100: it fills at the open (gap rule).
    The fees forfeit both maintenance margins: equity 0."""
    df, idx = _frame([100.0] * 5, mark_low=[100, 100, 100, 100, 100])
    dfa = df.copy()
    dfa.loc[idx[2], "mark_low"] = 80.0
    w = pd.DataFrame({"A": [5.0] + [np.nan] * 4, "B": [-5.0] + [np.nan] * 4}, index=idx)
    r = nbtrade.backtest_weights({"A": dfa, "B": df}, w, instrument="perp", leverage=10, margin="cross",
                                 init_cash=1000.0)
    tr = r.trades.set_index("symbol")
    assert list(tr["exit_reason"]) == ["liquidation", "liquidation"]
    assert (tr["exit_time"] == idx[2]).all()
    assert tr.loc["A", "exit_price"] == pytest.approx(4020 / 49.8, abs=1e-9)
    assert tr.loc["B", "exit_price"] == 100.0
    assert r.equity.iloc[-1] == pytest.approx(0.0, abs=1e-9)
    assert "cross margin" in r.assumptions["margin"]
