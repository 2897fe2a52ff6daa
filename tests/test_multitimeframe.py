"""Several timeframes without look-ahead: Market.resample, informative, resample_apply (issue #15)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nbtrade
from nbtrade import indicators as ind
from nbtrade.multitimeframe import higher_timeframes, informative, resample_apply, resample_market
from nbtrade.panel import Market
from nbtrade.synthetic import market

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


@pytest.fixture(scope="module")
def frames():
    return market(["BTC", "ETH"], "2024-01-01", "2024-01-11", "1h", seed=5)


# ------------------------------------------------------------------------------------------------ resample

@pytest.mark.parametrize("tf,rule", [("4h", "4h"), ("1d", "1D"), ("12h", "12h"), ("1w", "W-MON")])
def test_resample_equals_pandas_on_complete_buckets(frames, tf, rule):
    m = Market(frames)
    h = m.resample(tf, incomplete="keep")
    assert h.timeframe == tf
    for j, s in enumerate(m.symbols):
        want = frames[s].resample(rule, label="left", closed="left").agg(AGG)
        want.index = want.index.tz_localize("UTC") if want.index.tz is None else want.index
        np.testing.assert_array_equal(h.index.asi8 // 10 ** 6, want.index.as_unit("ms").asi8)
        for f in AGG:
            np.testing.assert_allclose(h.array(f)[:, j], want[f].to_numpy(), rtol=1e-12, err_msg=f"{tf} {f}")
    assert m.resample(tf, incomplete="keep") is h  # cached


def test_incomplete_buckets_are_nan_by_default_kept_and_counted_on_request(frames):
    f = {s: d.copy() for s, d in frames.items()}
    f["ETH"].iloc[5] = np.nan                                   # one hour of ETH missing in the 04:00 bucket
    f = {s: d.drop(d.index[[9, 10, 11]]) for s, d in f.items()}  # 09-11h missing for everyone (08:00 bucket)
    f = {s: d.iloc[1:-2] for s, d in f.items()}                  # data starts inside 00:00, ends inside 20:00
    m = Market(f)
    nan, keep = m.resample("4h"), m.resample("4h", incomplete="keep")
    counts = keep.array("n_candles")
    assert counts[0].tolist() == [3, 3] and counts[1].tolist() == [4, 3] and counts[2].tolist() == [1, 1]
    assert counts[-1].tolist() == [2, 2]
    np.testing.assert_array_equal(nan.array("n_candles"), counts)
    c = nan.array("close")
    assert np.isnan(c[0]).all() and np.isnan(c[2]).all() and np.isnan(c[-1]).all()
    assert not np.isnan(c[1, 0]) and np.isnan(c[1, 1])           # BTC complete, ETH not
    eth = f["ETH"]["2024-01-01 04:00":"2024-01-01 07:00"]
    k = keep.array("high")[1, 1], keep.array("open")[1, 1], keep.array("volume")[1, 1]
    np.testing.assert_allclose(k, (eth["high"].max(), eth["open"].dropna().iloc[0], eth["volume"].sum()), rtol=1e-12)
    assert keep.array("close")[2, 0] == f["BTC"].loc["2024-01-01 08:00", "close"]  # only 08:00 there


def test_buckets_without_any_candle_are_not_produced(frames):
    f = {s: d.drop(d.loc["2024-01-02"].index) for s, d in frames.items()}  # a whole day missing
    h = Market(f).resample("1d")
    assert pd.Timestamp("2024-01-02", tz="UTC") not in h.index and h.timeframe == "1d" and len(h) == 9


def test_close_only_market_resamples_the_close():
    close = pd.DataFrame({"A": np.arange(1.0, 49.0)}, index=pd.date_range("2024-01-01", periods=48, freq="1h"))
    h = Market(close).resample("1d")
    assert h.close_only and h.array("close")[:, 0].tolist() == [24.0, 48.0]


def test_time_zones_and_resolutions_give_the_same_bars(frames):
    base = Market(frames).informative("4h", ind.sma, 3)
    for unit in ("s", "ms", "us"):
        for tz in (None, "Asia/Tokyo"):
            f = {s: d.set_axis(d.index.as_unit(unit).tz_convert(tz) if tz else d.index.tz_convert(None).as_unit(unit))
                 for s, d in frames.items()}
            got = Market(f).informative("4h", ind.sma, 3)
            np.testing.assert_array_equal(got.to_numpy(), base.to_numpy())


# ------------------------------------------------------------------------------------------------ alignment

def test_alignment_by_hand():
    idx = pd.date_range("2024-01-01", periods=12, freq="1h", tz="UTC")
    close = pd.Series(np.arange(1.0, 13.0), index=idx)
    m = Market(close, symbol="A")
    h = m.resample("4h")
    assert h.array("close")[:, 0].tolist() == [4.0, 8.0, 12.0]
    at_close = informative(h.close, m)["A"].tolist()
    assert at_close[:3] == [None] * 3 or np.isnan(at_close[:3]).all()
    assert at_close[3:] == [4.0] * 4 + [8.0] * 4 + [12.0]       # the 03:00 bar closes with the 00:00 4h bar
    nxt = informative(h.close, m, available="next")["A"].to_numpy()
    assert np.isnan(nxt[:4]).all() and nxt[4:].tolist() == [4.0] * 4 + [8.0] * 4
    # the same on the engine: a 4h value can drive an order filled at the next 1h open, never earlier
    s = m.informative("4h")
    assert s.equals(informative(h.close, m))
    assert informative(h.close["A"], idx).name == "A"           # Series in, Series out; a bare index works
    b = informative(h.close > 5, m)
    assert b.dtypes.iloc[0] == bool and b["A"].tolist() == [False] * 7 + [True] * 5


def test_a_missing_last_lower_bar_delays_the_higher_value_never_advances_it():
    idx = pd.date_range("2024-01-01", periods=12, freq="1h", tz="UTC").delete(3)  # 03:00 missing
    m = Market(pd.Series(np.arange(1.0, 12.0), index=idx), symbol="A")
    v = m.informative("4h", incomplete="keep")["A"].to_numpy()
    assert np.isnan(v[:3]).all() and v[3] == 3.0                 # first seen at 04:00, the first bar after 04:00
    assert np.isnan(m.informative("4h")["A"].to_numpy()[3])       # incomplete: NaN by default


def _perturbed(frames, t, rng):
    out = {}
    for s, d in frames.items():
        d = d.copy()
        k = rng.uniform(0.5, 1.5, size=len(d) - t - 1)
        for f in ("open", "high", "low", "close"):
            d.iloc[t + 1:, d.columns.get_loc(f)] *= k
        d.iloc[t + 1:, d.columns.get_loc("volume")] *= rng.uniform(0, 2, size=len(d) - t - 1)
        out[s] = d
    return out


@pytest.fixture(scope="module")
def gappy(frames):
    f = {s: d.copy() for s, d in frames.items()}
    f["ETH"].iloc[30:35] = np.nan
    f["BTC"].iloc[100] = np.nan
    return {s: d.drop(d.index[[60, 61, 200]]) for s, d in f.items()}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(t=st.integers(0, 230), tf=st.sampled_from(["2h", "4h", "8h", "1d"]),
       available=st.sampled_from(["close", "next"]),
       incomplete=st.sampled_from(["nan", "keep"]), seed=st.integers(0, 2 ** 16))
def test_prices_after_t_change_no_higher_value_used_at_or_before_t(gappy, t, tf, available, incomplete, seed):
    n = len(next(iter(gappy.values())))
    t = min(t, n - 2)
    rng = np.random.default_rng(seed)

    def run(f):
        m = Market(f)
        close = m.informative(tf, ind.sma, 3, available=available, incomplete=incomplete)
        atr = m.informative(tf, ind.atr, 2, field=("high", "low", "close"), available=available, incomplete=incomplete)
        raw = m.informative(tf, None, field="volume", available=available, incomplete=incomplete)
        return np.hstack([close.to_numpy(), atr.to_numpy(), raw.to_numpy()])

    a, b = run(gappy), run(_perturbed(gappy, t, rng))
    np.testing.assert_array_equal(a[:t + 1], b[:t + 1])
    # later values do move, where a complete higher bar (and its 3-bar SMA) lies after t; incomplete and
    # missing-candle bars are NaN either way
    per = {"2h": 2, "4h": 4, "8h": 8, "1d": 24}[tf]
    assert not np.array_equal(a[t + 1:], b[t + 1:], equal_nan=True) or t > n - 4 * per - 5


def test_check_lookahead_agrees(frames):
    for available in ("close", "next"):
        assert nbtrade.check_lookahead(lambda d: Market(d).informative("4h", ind.rsi, 5, available=available), frames)
    # labelling higher bars by open time and forward-filling (the classic mistake) is caught
    leak = nbtrade.check_lookahead(lambda d: Market(d).resample("4h").close.reindex(Market(d).index, method="ffill"),
                                   frames)
    assert not leak


# ------------------------------------------------------------------------------------------------ backtesting.py

def _deep(fn, depth=5):  # backtesting.py's resample_apply walks 4 stack frames up looking for a Strategy
    return fn() if depth == 0 else _deep(fn, depth - 1)


def test_equals_backtesting_py_resample_apply_on_eurusd():
    from backtesting.lib import resample_apply as bt_resample_apply
    from backtesting.test import EURUSD, SMA

    theirs = _deep(lambda: bt_resample_apply("D", SMA, EURUSD.Close, 10))  # their test_resample_apply
    ours = resample_apply("1d", ind.sma, EURUSD.Close, 10, available="next", incomplete="keep")
    assert isinstance(ours, pd.Series) and ours.index.equals(EURUSD.index)
    assert ours.notna().equals(theirs.notna()) and round(ours.count() / ours.size, 4) == 0.9634
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12)
    # default "close": one hourly bar earlier (the 23:00 bar closes with the day); equal to their
    # daily values (labelled by close time) taken at each bar's close instead of its open
    daily = SMA(EURUSD.Close.resample("D", label="right").agg("last").dropna(), 10)
    daily = pd.Series(np.asarray(daily), index=EURUSD.Close.resample("D", label="right").agg("last").dropna().index)
    want = daily.reindex(EURUSD.index + pd.Timedelta("1h"), method="ffill").to_numpy()
    got = resample_apply("1d", ind.sma, EURUSD.Close, 10, incomplete="keep").to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the default incomplete="nan" drops days that miss hours (FX sessions): fewer values, same where defined
    strict = resample_apply("1d", ind.sma, EURUSD.Close, 10, available="next")
    assert strict.count() < ours.count()


def test_backtesting_py_weekly_example_on_goog_differs_by_the_week_grid_only():
    """Their multi-timeframe tutorial resamples daily GOOG with 'W-FRI' (weeks closed on the right,
    labelled Friday): the week's value is used on its Friday bar. nbtrade's 1w bars are exchange
    weeks (Monday 00:00 UTC to Monday), closing Sunday midnight, so the value arrives on the next
    bar, Monday: equal to theirs shifted by one bar, except after a Friday holiday."""
    from backtesting.lib import resample_apply as bt_resample_apply
    from backtesting.test import GOOG

    def mean(s, n):
        return s.rolling(n).mean()

    theirs = _deep(lambda: bt_resample_apply("W-FRI", mean, GOOG.Close, 5)).shift(1)
    ours = resample_apply("1w", mean, GOOG.Close, 5, incomplete="keep")
    assert ours.notna().equals(theirs.notna())
    differ = ours.notna() & ~np.isclose(ours, theirs)
    days = GOOG.index[differ]
    assert 0 < len(days) < 20 and (days.day_of_week == 0).all()
    assert all(d - pd.Timedelta("3D") not in GOOG.index for d in days)  # the Friday before had no bar


# ------------------------------------------------------------------------------------------------ in use

def test_in_a_class_api_init_and_in_signals(frames):
    from nbtrade.strategy import Backtest, Strategy

    m = Market(frames)
    daily = m.informative("1d", ind.sma, 2)

    class Trend(Strategy):
        def init(self):
            self.d = self.I(resample_apply, "1d", ind.sma, self.data.close, 2)

        def next(self):
            if self.data.close[-1] > self.d[-1]:
                self.buy()
            elif self.position:
                self.position.close()

    bt = Backtest(frames, Trend, cash=10_000, size=0.5)
    res = bt.run()
    assert len(res.trades)
    above = m.close > daily
    sig = nbtrade.backtest(m, entries=above, exits=~above & daily.notna(), size=0.5, init_cash=10_000)
    np.testing.assert_allclose(res.equity.to_numpy(), sig.equity.to_numpy(), rtol=1e-9)


# ------------------------------------------------------------------------------------------------ bad input

def test_bad_timeframes_say_which_work(frames):
    m = Market(frames)
    with pytest.raises(ValueError, match=r"unknown timeframe '4H' \(did you mean '4h'\?\)"):
        m.resample("4H")
    for rule, hint in (("240min", "'4h'"), ("D", "'1d'"), ("W-FRI", "'1w'.*Mondays"), ("MS", "'1M'")):
        with pytest.raises(ValueError, match=f"unknown timeframe '{rule}' \\(did you mean {hint}"):
            m.resample(rule)
    with pytest.raises(ValueError, match=r"unknown timeframe 'fortnight'; expected one of 1m, 3m"):
        m.resample("fortnight")
    with pytest.raises(TypeError, match="timeframe must be a timeframe string"):
        m.resample(4)
    with pytest.raises(ValueError, match="'1h' is not higher than the market's '1h' bars; from 1h bars these work: 2h"):
        m.resample("1h")
    with pytest.raises(ValueError, match="'30m' is not higher"):
        m.informative("30m", ind.sma, 3)
    h4 = m.resample("4h")
    with pytest.raises(ValueError, match=r"'6h' is not a whole number of '4h' bars.*work: 8h, 12h, 1d, 3d, 1w, 1M"):
        h4.resample("6h")
    assert higher_timeframes("3d") == [] and "1w" not in higher_timeframes("3d")
    with pytest.raises(ValueError, match="from 3d bars these work: none"):
        m.resample("3d").resample("1w")


def test_bad_arguments_are_named(frames):
    m = Market(frames)
    with pytest.raises(ValueError, match="incomplete must be one of"):
        m.resample("4h", incomplete="drop")
    with pytest.raises(ValueError, match="available must be one of"):
        m.informative("4h", available="open")
    with pytest.raises(TypeError, match="func must be callable"):
        m.informative("4h", 3)
    with pytest.raises(ValueError, match="field 'funding' is not in the resampled market"):
        m.informative("4h", field="funding")
    with pytest.raises(TypeError, match="values must be a Series or DataFrame"):
        informative(np.ones(10), m, "4h")
    off = m.resample("4h").close.set_axis(m.resample("4h").index + pd.Timedelta("1h"))
    with pytest.raises(ValueError, match="values has a bar opening at .*01:00.*not on the 4h grid"):
        informative(off, m, "4h")
    with pytest.raises(ValueError, match="returned shape"):
        m.informative("4h", lambda c: np.ones(3))
    with pytest.raises(TypeError, match="needs a DatetimeIndex"):
        Market(np.ones((10, 2))).resample("4h")
    shifted = {s: d.set_axis(d.index + pd.Timedelta("30min")) for s, d in frames.items()}
    with pytest.raises(ValueError, match="market has a bar opening at .*00:30.*not on the 1h grid"):
        Market(shifted).resample("4h")
    odd = pd.Series(1.0, index=pd.date_range("2024-01-01", periods=10, freq="7min"))
    with pytest.raises(ValueError, match="bars are 0 days 00:07:00 apart.*not a timeframe nbtrade knows"):
        resample_market(Market(odd), "1h")


def test_features_on_a_higher_timeframe(frames):
    m = Market(frames)
    specs = [("rsi", 5), ("ema", 3), ("ret", 1)]
    x = nbtrade.compute_features(m, specs, timeframe="4h")
    assert x.index.equals(m.index) and list(x.columns.get_level_values("feature")[:3]) == ["rsi_5@4h", "ema_3@4h",
                                                                                          "ret_1@4h"]
    higher = nbtrade.compute_features(m.resample("4h"), specs)
    np.testing.assert_array_equal(x.to_numpy(), informative(higher, m, "4h").to_numpy())
    np.testing.assert_array_equal(x.loc["2024-01-02 03:00"].to_numpy(), higher.loc["2024-01-02 00:00"].to_numpy())
    assert nbtrade.check_lookahead(lambda d: nbtrade.compute_features(d, specs, timeframe="4h"), frames)
    cache = nbtrade.FeatureCache()
    y = nbtrade.compute_features(frames, specs, timeframe="4h", cache=cache, dtype=np.float32)
    assert y.dtypes.iloc[0] == np.float32 and cache.stats["full"] == 1
    np.testing.assert_allclose(y.to_numpy(), x.to_numpy(), rtol=1e-6)


def test_readme_block_runs():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("## Several timeframes without look-ahead"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    ns = {"nbtrade": nbtrade}
    exec(code, ns)
    assert ns["entries"].shape == ns["m"].shape and ns["X"].columns[0] == ("BTC/USDT", "rsi_14@4h")
    assert ns["atr4h"].iloc[-1].notna().all()


def test_calendar_months_and_monday_weeks():
    m = Market(market(["BTC"], "2024-01-01", "2024-03-01", "1h", seed=1), symbol="BTC")
    mo = m.resample("1M")
    assert [str(d.date()) for d in mo.index] == ["2024-01-01", "2024-02-01"] and mo.timeframe == "1M"
    assert mo.array("n_candles")[:, 0].tolist() == [744, 696]  # 31 and 29 days of hours
    v = m.informative("1M")
    assert np.isnan(v.loc[:"2024-01-31 22:00"].to_numpy()).all()
    assert (v.loc["2024-01-31 23:00":"2024-02-29 22:00"].to_numpy() == mo.array("close")[0]).all()
    w = m.resample("1d").informative("1w")                  # daily bars, Monday weeks: on the Sunday bar
    assert w.first_valid_index() == pd.Timestamp("2024-01-07", tz="UTC")
    assert nbtrade.higher_timeframes("1d") == ["3d", "1w", "1M"]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 16), holes=st.floats(0.0, 0.9), tf=st.sampled_from(["2h", "4h", "1d"]))
def test_resample_kernel_equals_pandas_with_missing_candles(seed, holes, tf):
    rng = np.random.default_rng(seed)
    f = market(["A", "B", "C"], "2024-01-01", "2024-01-04", "1h", seed=seed % 97)
    for d in f.values():
        d.loc[rng.random(len(d)) < holes] = np.nan           # whole candles missing, volume too
    h = Market(f).resample(tf, incomplete="keep")
    rule = {"2h": "2h", "4h": "4h", "1d": "1D"}[tf]
    for j, s in enumerate(h.symbols):
        r = f[s].resample(rule, label="left", closed="left")
        want = r.agg({"open": "first", "high": "max", "low": "min", "close": "last"})
        want["volume"] = r["volume"].sum(min_count=1)
        want["n"] = r["close"].count()
        want = want.reindex(h.index)
        for fld in AGG:
            np.testing.assert_allclose(h.array(fld)[:, j], want[fld].to_numpy(), rtol=1e-12, err_msg=fld)
        np.testing.assert_array_equal(h.array("n_candles")[:, j], want["n"].to_numpy())


# ------------------------------------------------------------------------------------------------ perpetuals

def _perp_market(incomplete_mark: bool = False):
    """Two perps on 1h bars for 3 days: mark candles (one missing on BTC), 8-hourly funding a few ms
    past the hour on BTC, none on ETH."""
    from nbtrade.data.panels import market_from_series
    from nbtrade.synthetic import candles

    t0, h = 1_704_067_200_000, 3_600_000
    c = {s: candles(s, t0, t0 + 72 * h, "1h", seed=i) for i, s in enumerate(["BTC/USDT:USDT", "ETH/USDT:USDT"])}
    mark = {s: {"time": a["time"], **{k: a[k] * 1.001 for k in ("open", "high", "low", "close")}} for s, a in c.items()}
    if incomplete_mark:
        drop = np.ones(72, dtype=bool)
        drop[5] = False
        mark["BTC/USDT:USDT"] = {k: v[drop] for k, v in mark["BTC/USDT:USDT"].items()}
    ft = t0 + np.arange(0, 72, 8, dtype=np.int64) * h + 7
    funding = {"BTC/USDT:USDT": {"time": ft, "rate": np.linspace(-1e-4, 3e-4, ft.size),
                                 "mark_price": np.full(ft.size, np.nan)}}
    return Market(market_from_series(c, funding=funding, mark=mark, timeframe="1h")), funding, t0, h


@pytest.mark.parametrize("tf", ["4h", "1d"])
def test_resample_carries_mark_ohlc_and_funding(tf):
    m, funding, t0, h = _perp_market()
    r = m.resample(tf)
    rule = {"4h": "4h", "1d": "1D"}[tf]
    for j, s in enumerate(m.symbols):
        mark = pd.DataFrame({f: m.array("mark_" + f)[:, j] for f in ("open", "high", "low", "close")}, index=m.index)
        want = mark.resample(rule, label="left", closed="left").agg({k: AGG[k] for k in mark})
        for f in mark:
            np.testing.assert_allclose(r.array("mark_" + f)[:, j], want[f].to_numpy(), rtol=1e-12, err_msg=f)
    # funding: summed over the higher bar, NaN without one; the last funding's exact time
    f = funding["BTC/USDT:USDT"]
    step = 4 * h if tf == "4h" else 24 * h
    bucket = (f["time"] - t0) // step
    rate, when = r.array("funding_rate")[:, 0], r.array("funding_time")[:, 0]
    for k in range(len(r.index)):
        inside = bucket == k
        if inside.any():
            assert rate[k] == pytest.approx(f["rate"][inside].sum(), abs=1e-18)
            assert when[k] == f["time"][inside][-1]
        else:
            assert np.isnan(rate[k]) and np.isnan(when[k])
    assert np.isnan(r.array("funding_rate")[:, 1]).all()  # ETH: no funding, never 0
    assert np.nansum(rate) == pytest.approx(f["rate"].sum())
    # the exact events are the same objects' content, unchanged
    pd.testing.assert_frame_equal(r.funding_events("BTC/USDT:USDT"), m.funding_events("BTC/USDT:USDT"))
    assert r.has_mark and r.has_funding


def test_resample_mark_follows_the_incomplete_rule():
    m, _, _, _ = _perp_market(incomplete_mark=True)
    assert np.isnan(m.resample("4h").array("mark_close")[1, 0])  # 1h mark candle 5 missing: bar 4h..8h
    kept = m.resample("4h", incomplete="keep").array("mark_close")[1, 0]
    assert kept == m.array("mark_close")[7, 0]
    assert not np.isnan(m.resample("4h").array("close")[1, 0])  # the price candles are complete
