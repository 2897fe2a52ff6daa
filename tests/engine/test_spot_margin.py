"""Spot leverage and shorts follow the isolated margin rule of ``nbtrade.margin`` (issue #17 slice 1,
issue #14 finding: a 50x short drove equity to -98,679)."""
from __future__ import annotations

import numpy as np
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
