"""Perpetuals on the signals path (issue 17 slice 2, first part): ``instrument="perp"`` takes the
isolated margin rule at any leverage and checks liquidation against the mark candles."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade

from .reference_engine import run_reference


def _frame(close, mark_low=None, mark_high=None):
    idx = pd.date_range("2024-01-01", periods=len(close), freq="h", tz="UTC")
    c = np.asarray(close, dtype=float)
    df = pd.DataFrame({"open": c, "high": c, "low": c, "close": c, "volume": 1.0}, index=idx)
    if mark_low is not None:
        df["mark_open"] = c
        df["mark_high"] = c if mark_high is None else np.asarray(mark_high, dtype=float)
        df["mark_low"] = np.asarray(mark_low, dtype=float)
        df["mark_close"] = c
    return df, idx


def _entry(idx, at=0):
    s = pd.Series(False, idx)
    s.iloc[at] = True
    return s


def test_mark_wick_liquidates_where_the_price_candle_does_not():
    close = [100.0, 100.0, 100.0, 100.0, 100.0]
    # the mark wicks to 80 on bar 2; the last price never moves
    df, idx = _frame(close, mark_low=[100.0, 100.0, 80.0, 100.0, 100.0])
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument="perp", leverage=10, size=1.0,
                         init_cash=1000.0)
    tr = r.trades.iloc[0]
    lp = 100 * 0.9 / 0.996  # 10x long, first tier mmr 0.4 %
    assert tr["exit_reason"] == "liquidation" and abs(tr["exit_price"] - lp) < 1e-9
    assert "mark-price candles" in r.assumptions["mark"]
    # the same run on spot (price candles) is never liquidated
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx), leverage=10, size=1.0, init_cash=1000.0)
    assert list(r.trades["exit_reason"]) == ["end"]


def test_perp_without_mark_candles_uses_price_candles_and_says_so():
    close = [100.0, 100.0, 80.0, 80.0, 80.0]
    df, idx = _frame(close)
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument="perp", leverage=10, size=1.0,
                         init_cash=1000.0)
    assert list(r.trades["exit_reason"]) == ["liquidation"]
    assert "no mark-price candles" in r.assumptions["mark"]


def test_perp_mark_wicks_kernel_equals_reference():
    rng = np.random.default_rng(3)
    n = 60
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, n)))
    low = close * (1 - rng.uniform(0, 0.45, n))
    df, idx = _frame(close, mark_low=low)
    le = pd.Series(rng.random(n) < 0.2, idx)
    lx = pd.Series(rng.random(n) < 0.05, idx)
    r = nbtrade.backtest({"BTC": df}, entries=le, exits=lx, instrument="perp", leverage=3, size=0.5,
                         init_cash=1000.0)
    c2 = close[:, None].tolist()
    marks = (close[:, None].tolist(), close[:, None].tolist(), low[:, None].tolist())
    nan = [float("nan")]
    _, trades, _, equity = run_reference(c2, c2, c2, c2, le.to_numpy()[:, None].tolist(),
                                         lx.to_numpy()[:, None].tolist(), [[False]] * n, [[False]] * n,
                                         size=[0.5], fees=[0.0], fixed_fees=[0.0], slippage=[0.0], sl_stop=nan,
                                         tp_stop=nan, trail_stop=nan, lot_size=[0.0], min_qty=[0.0],
                                         min_notional=[0.0], leverage=3.0, init_cash=1000.0, margin=True,
                                         marks=marks)
    np.testing.assert_allclose(r.equity.to_numpy(), equity, rtol=1e-9, atol=1e-9)
    assert [t["exit_reason"] for t in trades] == list(r.trades["exit_reason"])
    assert "liquidation" in list(r.trades["exit_reason"])


def test_bad_instrument_names_the_argument():
    df, idx = _frame([100.0] * 3)
    with pytest.raises(ValueError, match="instrument"):
        nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument="future")
    with pytest.raises(ValueError, match="instrument"):
        nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument={"ETH": "perp"})
