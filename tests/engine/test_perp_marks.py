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


def test_bar_with_a_price_candle_but_no_mark_candle_is_checked_on_the_price_candle():
    """10x long of 10 units at 100 (margin 100): LP = (100 - 1000) / (10 * 0.004 - 10) = 900 / 9.96. Bar 2
    has a price candle (low 85) and no mark candle: it is checked on the price candle and liquidates
    there at LP (it used to be skipped, and bar 3's mark open of 60 then closed the position through the
    bankruptcy price; an isolated balance would have gone below zero but for the absorbed loss). The
    result's assumptions count the bar."""
    df, idx = _frame([100.0] * 5, mark_low=[100.0] * 5)
    df.loc[idx[2], "low"] = 85.0
    for f in ("mark_open", "mark_high", "mark_low", "mark_close"):
        df.loc[idx[2], f] = np.nan
    df.loc[idx[3], ["mark_open", "mark_low"]] = 60.0
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument="perp", leverage=10, size=10.0,
                         size_type="amount", init_cash=1000.0)
    tr = r.trades.iloc[0]
    lp = 900 / 9.96
    assert tr["exit_reason"] == "liquidation" and tr["exit_time"] == idx[2]
    assert tr["exit_price"] == pytest.approx(lp, abs=1e-9)
    assert "1 bar(s) with a price candle but no mark candle" in r.assumptions["mark"]
    # the forfeited maintenance margin is the fee: the account keeps its 900 of free cash
    assert r.equity.iloc[-1] == pytest.approx(900.0, abs=1e-9)
    o, h, lo, c = (df[k].to_numpy()[:, None].tolist() for k in ("open", "high", "low", "close"))
    marks = tuple(df[k].to_numpy()[:, None].tolist() for k in ("mark_open", "mark_high", "mark_low", "mark_close"))
    e = np.zeros((5, 1), bool)
    e[0] = True
    one = [0.0]
    ref = run_reference(o, h, lo, c, e.tolist(), np.zeros((5, 1), bool).tolist(), np.zeros((5, 1), bool).tolist(),
                        np.zeros((5, 1), bool).tolist(), size=[10.0], size_type="amount", fees=one, fixed_fees=one,
                        slippage=one, sl_stop=[np.nan], tp_stop=[np.nan], trail_stop=[np.nan], lot_size=one,
                        min_qty=one, min_notional=one, leverage=10.0, init_cash=1000.0, marks=marks, perp=[True])
    assert [t["exit_reason"] for t in ref[1]] == ["liquidation"]
    assert ref[1][0]["exit_idx"] == 2 and ref[1][0]["exit_price"] == pytest.approx(lp, abs=1e-9)


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


@pytest.mark.parametrize("side, expected", [(1, [-1.0, 2.0]), (-1, [1.0, -2.0])])
def test_funding_long_short_positive_negative_rate(side, expected):
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    df, idx = _frame([100.0] * 6)
    market = prepare_data({"BTC": df})
    t0 = int(idx[2].value // 1_000_000)
    # +0.01 % at bar 2's open; -0.02 % inside bar 3 (30 min after its open); no mark at funding: mark open
    _attach_events(market, {"BTC": {"time": np.array([t0, t0 + 90 * 60_000]), "rate": np.array([1e-4, -2e-4])}})
    sig = _entry(idx)
    kw = dict(entries=sig) if side > 0 else dict(entries=pd.Series(False, idx), short_entries=sig)
    r = nbtrade.backtest(market, instrument="perp", leverage=10, size=1.0, init_cash=1000.0, **kw)
    qty = r.trades["size"].iloc[0]
    assert qty == pytest.approx(100.0)
    f = r.funding["BTC"].to_numpy()
    np.testing.assert_allclose(f[[2, 3]], expected, atol=1e-12)
    assert f[[0, 1, 4, 5]].tolist() == [0.0] * 4
    assert r.stats()["Funding Paid [$]"] == pytest.approx(-sum(expected))
    assert r.equity.iloc[-1] == pytest.approx(1000.0 + sum(expected))
    assert "funding" in r.assumptions["mark"]


def _inside_funding_run(rate, side=1, low=100.0, sl_stop=None, fill="next_open"):
    """10 units at 100, 10x (margin 100) entered at bar 1 (next_open: signal at bar 0); funding of ``rate`` 30
    minutes into bar 2 at a mark of 100 (flow ``-side * 10 * 100 * rate``); bar 2's low (price and mark)
    ``low``, its open and close 100."""
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    df, idx = _frame([100.0] * 5, mark_low=[100.0] * 5, mark_high=[100.0] * 5)
    df.loc[idx[2], ["low", "mark_low"]] = low
    market = prepare_data({"BTC": df})
    t = int(idx[2].value // 1_000_000) + 30 * 60_000
    _attach_events(market, {"BTC": {"time": np.array([t]), "rate": np.array([rate]), "mark_price": np.array([100.0])}})
    sig = _entry(idx)
    kw = dict(entries=sig) if side > 0 else dict(entries=pd.Series(False, idx), short_entries=sig)
    if sl_stop is not None:
        kw["sl_stop"] = sl_stop
    return nbtrade.backtest(market, instrument="perp", leverage=10, size=10.0, size_type="amount", init_cash=1000.0,
                            fill=fill, **kw), idx


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_funding_inside_a_bar_pays_before_the_intrabar_checks_and_receives_at_the_close(fill):
    """Funding strictly inside a bar (nbtrade.margin, "Funding strictly inside a bar"), hand-computed:

    * a long paying 10 (rate +1 %) and stopped inside the bar (stop-loss 5 %: low 94) has paid it;
    * a long due to receive 10 (rate -1 %) and stopped inside the bar receives nothing; one still open at the
      close receives it;
    * the liquidation check sees the payment: LP of the 10x long = (100 - 1000) / (10 * 0.004 - 10) = 90.36;
      after paying 10 of its margin, (90 - 1000) / -9.96 = 91.37: a low of 91 liquidates it at 91.37 (it did
      not before the payment counted)."""
    r, idx = _inside_funding_run(0.01, low=94.0, sl_stop=0.05, fill=fill)
    assert list(r.trades["exit_reason"]) == ["sl"] and r.trades["exit_time"].iloc[0] == idx[2]
    assert r.funding["BTC"].iloc[2] == pytest.approx(-10.0)
    assert r.equity.iloc[-1] == pytest.approx(1000.0 - 10 * 5.0 - 10.0)
    r, _ = _inside_funding_run(-0.01, low=94.0, sl_stop=0.05, fill=fill)
    assert list(r.trades["exit_reason"]) == ["sl"] and (r.funding.to_numpy() == 0).all()
    r, _ = _inside_funding_run(-0.01, low=99.0, sl_stop=0.05, fill=fill)
    assert list(r.trades["exit_reason"]) == ["end"] and r.funding["BTC"].iloc[2] == pytest.approx(10.0)
    assert r.equity.iloc[-1] == pytest.approx(1010.0)
    r, _ = _inside_funding_run(0.01, low=91.0, fill=fill)
    lp = 910 / 9.96
    assert list(r.trades["exit_reason"]) == ["liquidation"]
    assert r.trades["exit_price"].iloc[0] == pytest.approx(lp, abs=1e-9)
    assert r.funding["BTC"].iloc[2] == pytest.approx(-10.0)
    r, _ = _inside_funding_run(-0.01, low=91.0, fill=fill)  # a receipt does not help the check: not reached
    assert list(r.trades["exit_reason"]) == ["end"]


def test_spot_run_has_no_funding():
    df, idx = _frame([100.0] * 4)
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx))
    assert r.stats()["Funding Paid [$]"] == 0.0
    assert (r.funding.to_numpy() == 0).all()


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_random_perp_runs_with_funding_equal_the_reference(seed, fill):
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    rng = np.random.default_rng(seed)
    n, m = 50, 2
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.03, (n, m)), axis=0))
    low = close * (1 - rng.uniform(0, 0.3, (n, m)))
    high = close * (1 + rng.uniform(0, 0.3, (n, m)))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    data = {}
    for j, s in enumerate(("A", "B")):
        data[s] = pd.DataFrame({"open": close[:, j], "high": close[:, j], "low": close[:, j], "close": close[:, j],
                                "volume": 1.0, "mark_open": close[:, j], "mark_high": high[:, j],
                                "mark_low": low[:, j], "mark_close": close[:, j]}, index=idx)
    market = prepare_data(data)
    ms = np.asarray(market.time_ms)  # epoch ms (idx.asi8 may be in us)
    f_open, f_in = np.zeros((n, m)), np.zeros((n, m))
    events = {}
    for j, s in enumerate(("A", "B")):
        bars = np.sort(rng.choice(np.arange(1, n), 12, replace=False))
        inside = rng.random(12) < 0.5
        t = ms[bars] + np.where(inside, 20 * 60_000, 0)
        rate = rng.normal(0, 0.01, 12)
        mark = np.where(rng.random(12) < 0.5, np.nan, close[bars, j] * 1.01)
        events[s] = {"time": t, "rate": rate, "mark_price": mark}
        amount = rate * np.where(np.isnan(mark), close[bars, j], mark)
        np.add.at(f_open[:, j], bars[~inside], amount[~inside])
        np.add.at(f_in[:, j], bars[inside], amount[inside])
    _attach_events(market, events)
    le, lx = rng.random((n, m)) < 0.15, rng.random((n, m)) < 0.08
    se, sx = rng.random((n, m)) < 0.15, rng.random((n, m)) < 0.08
    lev = float(rng.choice([1.0, 3.0, 10.0]))
    # stops on some seeds: a stop-side level between the open and the liquidation price fills first
    sl = float(rng.choice([np.nan, 0.03, 0.2])) if seed % 2 else np.nan
    tr_ = float(rng.choice([np.nan, 0.05])) if seed % 3 == 0 else np.nan
    r = nbtrade.backtest(market, entries=le, exits=lx, short_entries=se, short_exits=sx, instrument="perp",
                         leverage=lev, size=0.4, fees=0.001, init_cash=1000.0, fill=fill,
                         sl_stop=None if np.isnan(sl) else sl, trail_stop=None if np.isnan(tr_) else tr_)
    c2 = close.tolist()
    nan = [float("nan")] * m
    _, trades, cash, equity = run_reference(
        c2, c2, c2, c2, le.tolist(), lx.tolist(), se.tolist(), sx.tolist(), size=[0.4] * m, fees=[0.001] * m,
        fixed_fees=[0.0] * m, slippage=[0.0] * m, sl_stop=[sl] * m, tp_stop=nan, trail_stop=[tr_] * m, lot_size=[0.0] * m,
        min_qty=[0.0] * m, min_notional=[0.0] * m, leverage=lev, init_cash=1000.0, fill=fill, margin=True,
        marks=(c2, high.tolist(), low.tolist()), funding=(f_open.tolist(), f_in.tolist()))
    np.testing.assert_allclose(r.equity.to_numpy(), equity, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(r.cash.to_numpy(), cash, rtol=1e-9, atol=1e-9)
    assert [t["exit_reason"] for t in trades] == list(r.trades["exit_reason"])
    np.testing.assert_allclose(r.trades["pnl"].to_numpy(), [t["pnl"] for t in trades], rtol=1e-9, atol=1e-9)


def test_symbol_equity_includes_funding():
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    df, idx = _frame([100.0] * 5)
    market = prepare_data({"BTC": df})
    t0 = int(idx[2].value // 1_000_000)
    _attach_events(market, {"BTC": {"time": np.array([t0]), "rate": np.array([1e-3])}})
    r = nbtrade.backtest(market, entries=_entry(idx), instrument="perp", leverage=2, size=1.0, init_cash=1000.0)
    np.testing.assert_allclose(r.symbol_equity("BTC").to_numpy(), r.equity.to_numpy(), atol=1e-9)
    assert r.equity.iloc[-1] == pytest.approx(1000.0 - 2.0)  # 20 units x 100 x 0.1 %


def test_mark_gap_through_liquidation_fills_at_the_mark_open():
    close = [100.0, 100.0, 100.0, 100.0]
    df, idx = _frame(close, mark_low=[100.0, 100.0, 70.0, 100.0], mark_high=[100.0, 100.0, 100.0, 100.0])
    df.loc[idx[2], "mark_open"] = 75.0  # the mark opens bar 2 below the 10x long's liquidation price (~90.4)
    df.loc[idx[2], "mark_close"] = 80.0
    r = nbtrade.backtest({"BTC": df}, entries=_entry(idx), instrument="perp", leverage=10, size=1.0,
                         init_cash=1000.0)
    tr = r.trades.iloc[0]
    assert tr["exit_reason"] == "liquidation" and tr["exit_price"] == 75.0
    assert abs(r.equity.iloc[-1]) < 1e-9  # the loss past the bankruptcy price (90) is absorbed
