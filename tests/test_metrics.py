import warnings

import numpy as np
import pandas as pd
import pytest

from nbtrade.metrics import compute_stats, max_drawdown_duration


def _stats(equity, index, init=100.0, freq_ms=86_400_000.0):
    n = len(equity)
    return compute_stats(np.asarray(equity, float), index, init, freq_ms, np.array([]), np.array([], bool), 0.0,
                         np.zeros(n, bool))


def test_drawdown_duration_counts_from_initial_cash():
    idx = pd.date_range("2024-01-01", periods=3, freq="D")
    assert max_drawdown_duration(np.array([90.0, 95.0, 96.0]), idx, 100.0) == pd.Timedelta(days=2)
    assert max_drawdown_duration(np.array([101.0, 102.0, 103.0]), idx, 100.0) == pd.Timedelta(0)


def test_cagr_uses_elapsed_time_not_bar_count():
    full = pd.date_range("2024-01-01", periods=731, freq="D")
    eq = np.linspace(100.0, 200.0, 731)
    gappy = full.delete(np.arange(100, 465))  # a year of rows missing
    a = _stats(eq, full)["CAGR [%]"]
    b = _stats(np.linspace(100.0, 200.0, len(gappy)), gappy)["CAGR [%]"]
    assert a == pytest.approx(b, rel=1e-9)
    assert a == pytest.approx((2.0 ** (365 / 731) - 1) * 100, rel=1e-9)


# ---------------------------------------------------------------- the statistics backtesting.py users expect

def _scenario():
    """Six daily bars, init cash 100, two closed trades and one open; a market that doubles."""
    idx = pd.date_range("2024-01-01", periods=6, freq="D", tz="UTC")
    equity = np.array([100.0, 110.0, 99.0, 121.0, 108.9, 115.0])
    market = np.array([1.0, 1.2, 1.1, 1.5, 1.4, 2.0])
    pnl = np.array([10.0, -5.0, 3.0])
    ret = np.array([0.10, -0.05, 0.02])
    closed = np.array([True, True, False])
    durations = np.array([pd.Timedelta("2D"), pd.Timedelta("1D"), pd.Timedelta("1D")], dtype="timedelta64[ns]")
    s = compute_stats(equity, idx, 100.0, 86_400_000.0, pnl, closed, 1.5, np.ones(6, bool),
                      returns=ret, durations=durations, market=market)
    return s, idx, equity, market


def test_new_statistics_by_hand():
    s, idx, equity, market = _scenario()
    assert s["Buy & Hold Return [%]"] == pytest.approx(100.0)
    # drawdowns from the cash: 110 -> 99 (-10 %, regained at 121 one bar later: 2 days peak to
    # recovery) and 121 -> 108.9 -> 115 (-10 %, not regained: 2 days to the end)
    assert s["Max. Drawdown [%]"] == pytest.approx(-10.0)
    assert s["Avg. Drawdown [%]"] == pytest.approx(-10.0)
    assert s["Max. Drawdown Duration"] == pd.Timedelta("2D")
    assert s["Avg. Drawdown Duration"] == pd.Timedelta("2D")
    assert s["# Trades"] == 3 and s["Win Rate [%]"] == pytest.approx(50.0)
    assert s["Best Trade [%]"] == pytest.approx(10.0) and s["Worst Trade [%]"] == pytest.approx(-5.0)
    assert s["Avg. Trade [%]"] == pytest.approx((np.sqrt(1.10 * 0.95) - 1) * 100)
    assert s["Expectancy [%]"] == pytest.approx(2.5) and s["Expectancy [$]"] == pytest.approx(2.5)
    assert s["Max. Trade Duration"] == pd.Timedelta("2D") and s["Avg. Trade Duration"] == pd.Timedelta("36h")
    assert s["Profit Factor"] == pytest.approx(2.0)
    assert s["SQN"] == pytest.approx(np.sqrt(2) * 2.5 / np.std([10.0, -5.0], ddof=1))
    assert s["Kelly Criterion"] == pytest.approx(0.5 - 0.5 / (10.0 / 5.0))
    a, b = np.log(equity[1:] / equity[:-1]), np.log(market[1:] / market[:-1])
    beta = np.cov(a, b)[0, 1] / np.var(b, ddof=1)
    assert s["Beta"] == pytest.approx(beta)
    assert s["Alpha [%]"] == pytest.approx(15.0 - beta * 100.0)
    daily = equity[1:] / equity[:-1] - 1
    g = np.prod(1 + daily) ** (1 / 5) - 1
    assert s["Return (Ann.) [%]"] == pytest.approx(((1 + g) ** 365 - 1) * 100)


def test_stats_stay_numeric():
    s, *_ = _scenario()
    assert s.dtype == np.float64
    r = s.round(2)
    assert r["Total Return [%]"] == 15.0 and r["Start"] == pd.Timestamp("2024-01-01", tz="UTC")
    assert (s * 2)["Equity Final [$]"] == 230.0 and (s > 0)["Profit Factor"]
    assert s.times["Duration"] == pd.Timedelta("6D")
    text = repr(s)
    assert "Start" in text and "Max. Drawdown Duration" in text and "Kelly Criterion" in text
    assert list(s.full().index[:3]) == ["Start", "End", "Duration"]


def test_no_trades_and_no_market_give_nan_not_errors():
    idx = pd.date_range("2024-01-01", periods=3, freq="D")
    s = _stats([100.0, 100.0, 100.0], idx)
    for label in ("Best Trade [%]", "SQN", "Kelly Criterion", "Beta", "Buy & Hold Return [%]", "Avg. Drawdown [%]"):
        assert np.isnan(s[label]), label
    assert s["Max. Drawdown Duration"] == pd.Timedelta(0) and s["Avg. Trade Duration"] is pd.NaT


def test_same_definitions_as_backtesting_py():
    """Where the definitions are the same, the numbers equal backtesting.py 0.6.6's."""
    bt_stats = pytest.importorskip("backtesting._stats")
    rng = np.random.default_rng(3)
    n = 24 * 40  # hourly bars with weekends, so backtesting.py uses 365-day years too
    idx = pd.date_range("2024-01-01", periods=n, freq="h")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    equity = 1000 * np.exp(np.cumsum(rng.normal(0.0002, 0.005, n)))
    equity[0] = 1000.0  # our returns start at the cash, backtesting.py's at the first bar
    entry = np.array([5, 100, 300, 600])
    exit_ = np.array([50, 250, 301, 900])
    pnl = np.array([12.0, -7.5, 3.25, -1.0])
    ret = np.array([0.012, -0.0075, 0.00325, -0.001])
    trades = pd.DataFrame({"PnL": pnl, "ReturnPct": ret, "EntryBar": entry, "ExitBar": exit_,
                           "Duration": idx[exit_] - idx[entry]})
    ohlc = pd.DataFrame({"Close": close}, index=idx)
    ref = bt_stats.compute_stats(trades, equity, ohlc, None)
    s = compute_stats(equity, idx, 1000.0, 3_600_000.0, pnl, np.ones(4, bool), 0.0, np.ones(n, bool),
                      returns=ret, durations=np.asarray(trades["Duration"]), market=close)
    for label in ("Buy & Hold Return [%]", "Return (Ann.) [%]", "Alpha [%]", "Beta", "Max. Drawdown [%]",
                  "Avg. Drawdown [%]", "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]", "Avg. Trade [%]",
                  "Expectancy [%]", "SQN", "Kelly Criterion", "Equity Final [$]"):
        assert s[label] == pytest.approx(ref[label], rel=1e-9), label
    assert s["Total Return [%]"] == pytest.approx(ref["Return [%]"])
    # backtesting.py rounds durations up to whole bars
    for label in ("Max. Drawdown Duration", "Avg. Drawdown Duration", "Max. Trade Duration", "Avg. Trade Duration"):
        assert abs(s[label] - ref[label]) < pd.Timedelta("1h"), label
    # the definitions that differ, as the docstring says
    assert s["Profit Factor"] == pytest.approx(15.25 / 8.5)
    assert ref["Profit Factor"] == pytest.approx(0.01525 / 0.0085)


def test_selections_drop_the_times_element_wise_results_keep_them():
    s, *_ = _scenario()
    part = s[["Sharpe Ratio", "SQN"]]
    assert "Start" not in repr(part) and part.times is None
    assert (s * 1).times is not None and s.copy()["Avg. Trade Duration"] == pd.Timedelta("36h")


def test_result_market_is_equal_parts_buy_and_hold():
    import nbtrade

    idx = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    def bars(close):
        c = pd.Series(close, index=idx)
        return pd.DataFrame({"open": c, "high": c, "low": c, "close": c})

    a, b = bars([100.0, 110.0, 120.0, 130.0]), bars([np.nan, 10.0, 5.0, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # B's missing bars are reported as gaps
        res = nbtrade.backtest({"A": a, "B": b}, entries=pd.DataFrame(False, index=idx, columns=["A", "B"]))
    # B counts as cash (1.0) until it lists, then its close over its first close, carried over its gap
    np.testing.assert_allclose(res.market(), [1.0, (1.1 + 1.0) / 2, (1.2 + 0.5) / 2, (1.3 + 0.5) / 2])
    np.testing.assert_allclose(res.market("B"), [1.0, 1.0, 0.5, 0.5])
    s = res.stats()
    assert s["Buy & Hold Return [%]"] == pytest.approx(-10.0) and res.stats("A")["Buy & Hold Return [%]"] == pytest.approx(30.0)
    assert s["Beta"] == 0.0 and s["Alpha [%]"] == 0.0  # cash moves with nothing


def test_annual_return_of_a_huge_daily_gain_is_inf_not_an_error():
    from nbtrade.metrics import _annual_return

    idx = pd.date_range("2024-01-01", periods=5, freq="D", tz="UTC")
    assert _annual_return(np.array([1.0, 10.0, 100.0, 1e3, 1e4]), idx) == np.inf


def test_annual_return_days_equal_pandas_resample():
    """The annual return's UTC days (numpy) equal pandas' ``resample("D").last().dropna()``: gaps, NaN
    equity, zero equity (inf daily returns), indexes of any unit, naive or UTC."""
    from nbtrade.metrics import DAYS_PER_YEAR, _annual_return, geometric_mean

    def reference(equity, index):
        daily = pd.Series(equity, index=index).resample("D").last().dropna().pct_change().dropna()
        if not len(daily):
            return np.nan
        with np.errstate(over="ignore"):
            return float(np.float64(1.0 + geometric_mean(daily.to_numpy())) ** DAYS_PER_YEAR - 1.0)

    rng = np.random.default_rng(0)
    for k in range(60):
        n = int(rng.integers(2, 300))
        start = pd.Timestamp("2020-01-01 05:00") + pd.Timedelta(minutes=int(rng.integers(0, 3000)))
        index = pd.date_range(start, periods=n, freq=str(rng.choice(["1h", "4h", "1D", "15min", "3D"])),
                              tz="UTC" if k % 2 else None, unit=str(rng.choice(["s", "ms", "us", "ns"])))
        if k % 3 == 0:
            index = index[np.sort(rng.choice(n, size=max(2, n // 2), replace=False))]
        equity = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(index))))
        if k % 5 == 0:
            equity[rng.integers(0, len(equity), 3)] = np.nan
        if k % 7 == 0:
            equity[: len(equity) // 2] = 0.0
        got, want = _annual_return(equity, index), reference(equity, index)
        assert got == want or (np.isnan(got) and np.isnan(want)), (k, got, want)
