"""Spot leverage and shorts follow the isolated margin rule of ``nbtrade.margin`` (issue #17 slice 1,
issue #14 finding: a 50x short drove equity to -98,679)."""
from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

import nbtrade
from nbtrade.kernels.margin import liquidation_price_nb
from nbtrade.margin import DEFAULT_TIERS, pack_tiers


def _frame(close, spread=0.01):
    idx = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC")
    close = np.asarray(close, dtype=float)
    return pd.DataFrame({"open": close, "high": close * (1 + spread), "low": close * (1 - spread), "close": close,
                         "volume": 1.0}, index=idx), idx


def test_50x_short_is_liquidated_and_equity_stays_non_negative():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0.002, 0.02, 400)))
    df, idx = _frame(close)
    se = pd.Series(False, idx)
    se.iloc[5] = True
    r = nbtrade.backtest({"BTC": df}, entries=pd.Series(False, idx), short_entries=se, leverage=50, size=1.0)
    assert r.equity.min() >= -1e-6
    assert r.cash.min() >= -1e-6
    assert list(r.trades["exit_reason"]) == ["liquidation"]


def test_liquidation_price_hand_computed():
    # a 10x long: entry 100 at the open of bar 1, margin = notional / 10; the fall to 85 crosses the
    # liquidation price LP = (WB - qty * EP) / (qty * mmr - qty) of the first tier (mmr 0.004, cum 0)
    close = [100.0, 100.0, 99.0, 85.0, 85.0]
    df, idx = _frame(close, spread=0.0)
    df.loc[idx[3], ["open", "high"]] = 99.0  # the bar falls from 99 through the liquidation price to 85
    le = pd.Series(False, idx)
    le.iloc[0] = True
    r = nbtrade.backtest({"BTC": df}, entries=le, leverage=10, size=1.0, init_cash=1000.0)
    tr = r.trades.iloc[0]
    qty = tr["size"]
    wb = qty * 100.0 / 10
    lp = (wb - qty * 100.0) / (qty * 0.004 - qty)
    assert abs(lp - 100 * 0.9 / 0.996) < 1e-9
    assert tr["exit_reason"] == "liquidation"
    assert abs(tr["exit_price"] - lp) < 1e-9
    # the kernel's tiered price agrees with the formula in the first tier
    fl, cap, mmr, cum, _, cnt = pack_tiers([DEFAULT_TIERS])
    assert abs(liquidation_price_nb(1.0, qty, 100.0, wb, 0.0, fl[0], cap[0], mmr[0], cum[0], cnt[0]) - lp) < 1e-9
    # default fee: the maintenance margin at the fill is forfeited; what is left of the margin returns
    mm = qty * lp * 0.004
    assert abs(tr["fees"] - mm) < 1e-6
    assert abs(r.equity.iloc[-1] - (1000.0 - wb)) < 1e-6  # the whole margin is lost (no entry fees here)
    assert r.equity.min() >= 0.0


def test_gap_through_liquidation_fills_at_open_and_is_absorbed():
    close = [100.0, 100.0, 100.0, 50.0, 50.0]
    df, idx = _frame(close, spread=0.0)
    le = pd.Series(False, idx)
    le.iloc[0] = True
    r = nbtrade.backtest({"BTC": df}, entries=le, leverage=5, size=1.0, init_cash=1000.0)
    tr = r.trades.iloc[0]
    assert tr["exit_reason"] == "liquidation"
    assert tr["exit_price"] == 50.0  # gap rule: the open
    assert abs(r.equity.iloc[-1]) < 1e-6  # the loss past the bankruptcy price is absorbed
    assert abs(tr["pnl"] + 1000.0) < 1e-6


def test_unlevered_long_never_liquidated():
    close = [100.0, 100.0, 10.0, 1.0, 0.5]
    df, idx = _frame(close)
    le = pd.Series(False, idx)
    le.iloc[0] = True
    r = nbtrade.backtest({"BTC": df}, entries=le, size=1.0)
    assert list(r.trades["exit_reason"]) == ["end"]


def _long_10x(**kw):
    close = [100.0, 100.0, 99.0, 85.0, 85.0]
    df, idx = _frame(close, spread=0.0)
    df.loc[idx[3], ["open", "high"]] = 99.0
    le = pd.Series(False, idx)
    le.iloc[0] = True
    return nbtrade.backtest({"BTC": df}, entries=le, leverage=10, size=1.0, init_cash=1000.0, **kw)


def test_maintenance_and_liquidation_fee_options():
    from nbtrade.margin import Tiers

    r = _long_10x(maintenance=Tiers.flat(0.05, 10), liquidation_fee=0.01)
    tr = r.trades.iloc[0]
    qty = tr["size"]
    lp = (qty * 10.0 - qty * 100.0) / (qty * 0.05 - qty)  # flat mmr 5 %, cum 0
    assert tr["exit_reason"] == "liquidation"
    assert abs(tr["exit_price"] - lp) < 1e-9
    remaining = qty * 10.0 + qty * (lp - 100.0)
    assert abs(tr["fees"] - min(0.01 * qty * lp, remaining)) < 1e-9
    assert "margin" in r.assumptions


def test_margin_bad_input_names_the_argument():
    import pytest

    with pytest.raises(ValueError, match="leverage"):
        _long_10x(maintenance=[(0.0, float("inf"), 0.05, 0.0, 5.0)])  # 10x above the tier's 5x
    with pytest.raises(ValueError, match="maintenance"):
        _long_10x(maintenance=[(0.0, 100.0, 0.05, 0.0, 10.0), (50.0, 200.0, 0.1, 5.0, 5.0)])  # overlap
    with pytest.raises(ValueError, match="liquidation_fee"):
        _long_10x(liquidation_fee=1.5)


def test_entry_beyond_the_tiers_max_leverage_is_rejected():
    # 100x is allowed below 250,000 notional (DEFAULT_TIERS); 5,000 x 100 = 500,000 lands in the
    # 250k-1M tier (max 50x): rejected with reason "leverage"; 2,000 x 100 = 200,000 fills
    close = [100.0] * 5
    df, idx = _frame(close, spread=0.0)
    le = pd.Series(False, idx)
    le.iloc[0] = True
    with pytest.warns(UserWarning):
        r = nbtrade.backtest({"BTC": df}, entries=le, leverage=100, size=1.0, init_cash=5000.0)
    o = r.orders
    assert list(o["status"]) == ["rejected"] and list(o["reason"]) == ["leverage"]
    r = nbtrade.backtest({"BTC": df}, entries=le, leverage=100, size=1.0, init_cash=2000.0)
    assert list(r.orders["status"]) == ["filled"]


def test_next_tier_liquidation_price():
    # 20x long of 200,000 notional: entry tier 2 (mmr 0.5 %, cum 50); the liquidation price is solved
    # with the tier of the notional at that price (still tier 2 here, 190k)
    from nbtrade.margin import liquidation_price

    qty, ep = 2000.0, 100.0
    wb = qty * ep / 20
    lp = liquidation_price(1, qty, ep, wb)
    assert abs(lp - (wb + 50.0 - qty * ep) / (qty * 0.005 - qty)) < 1e-9
    assert 50_000 < qty * lp <= 250_000


def test_margin_options_on_an_unmargined_spot_run_are_refused():
    from nbtrade.margin import Tiers

    df, idx = _frame([100.0] * 4)
    le = pd.Series(False, idx)
    le.iloc[0] = True
    with pytest.raises(ValueError, match="maintenance apply to margined positions"):
        nbtrade.backtest({"BTC": df}, entries=le, maintenance=Tiers.flat(0.01, 10))
    with pytest.raises(ValueError, match="liquidation_fee apply"):
        nbtrade.backtest({"BTC": df}, entries=le, liquidation_fee=0.01)
    nbtrade.backtest({"BTC": df}, entries=le, leverage=2, liquidation_fee=0.01)  # margined: fine
