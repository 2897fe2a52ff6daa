"""Issue 15 options through ``nbtrade.backtest``: keywords, bad input (errors naming the argument, bar
and symbol), durations, statistics, and parity with backtesting.py where the semantics agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade import backtest

from .helpers import frame


def _ohlc(closes, spread=0.5, freq="1h", symbols=("A",)):
    c = np.asarray(closes, dtype=np.float64)
    if c.ndim == 1:
        c = c[:, None]
    idx = pd.date_range("2024-01-01", periods=len(c), freq=freq, tz="UTC")
    out = {}
    for j, s in enumerate(symbols):
        out[s] = pd.DataFrame({"open": c[:, j], "high": c[:, j] + spread, "low": c[:, j] - spread,
                               "close": c[:, j]}, index=idx)
    return out


def _sig(n, bars, symbols=("A",)):
    a = np.zeros((n, len(symbols)), dtype=bool)
    a[list(bars), 0] = True
    return a


def test_dca_accumulates_with_the_average_entry_price():
    # dollar-cost averaging: 100 quote every 2 bars, one exit at the end
    closes = [10.0, 10, 8, 8, 5, 5, 10, 10]
    data = _ohlc(closes, spread=0.0)
    res = backtest(data, entries=_sig(8, [0, 2, 4]), exits=_sig(8, [6]), size=100.0, size_type="value",
                   accumulate=True, init_cash=1000.0)
    (t,) = res.trades.itertuples()
    units = 100 / 10 + 100 / 8 + 100 / 5
    assert t.size == pytest.approx(units)
    assert t.entry_price == pytest.approx(300 / units)  # the harmonic mean of the prices
    assert res.equity.iloc[-1] == pytest.approx(1000 - 300 + units * 10)
    assert "accumulate" in res.assumptions


def test_accumulate_refuses_target_percent_and_resting_entries():
    data = _ohlc([10.0] * 5)
    with pytest.raises(ValueError, match="accumulate=True cannot be combined with size_type='target_percent'"):
        backtest(data, entries=_sig(5, [0]), size_type="target_percent", size=0.5, accumulate=True)
    with pytest.raises(ValueError, match="accumulate=True needs order_type='market'"):
        backtest(data, entries=_sig(5, [0]), accumulate=True, order_type="limit",
                 order_price=np.full((5, 1), 9.0))
    with pytest.raises(TypeError, match="accumulate must be True or False"):
        backtest(data, entries=_sig(5, [0]), accumulate="yes")


def test_reenter_closes_and_reopens_on_one_bar():
    data = _ohlc([10.0, 10, 11, 12, 13, 14])
    both = _sig(6, [2])
    res = backtest(data, entries=_sig(6, [0, 2]), exits=both, size=1.0, size_type="amount", reenter=True)
    assert res.trades["entry_time"].dt.hour.tolist() == [1, 3]
    res = backtest(data, entries=_sig(6, [0, 2]), exits=both, size=1.0, size_type="amount")
    assert len(res.trades) == 1


def test_entry_size_per_bar_and_its_bad_values_name_bar_and_symbol():
    data = _ohlc([10.0] * 6)
    sizes = np.full((6, 1), np.nan)
    sizes[0, 0] = 3.0
    res = backtest(data, entries=_sig(6, [0, 2]), exits=_sig(6, [1, 3]), size=2.0, size_type="amount",
                   entry_size=sizes)
    assert res.orders.loc[res.orders.side == "buy", "size"].tolist() == [3.0, 2.0]
    sizes[2, 0] = -1.0
    with pytest.raises(ValueError, match=r"entry_size must be > 0 .* got -1.0 at 2024-01-01 02:00:00\+00:00 \(A\)"):
        backtest(data, entries=_sig(6, [0, 2]), size=2.0, size_type="amount", entry_size=sizes)
    with pytest.raises(ValueError, match="entry_size must be <= 1 with size_type='percent'"):
        backtest(data, entries=_sig(6, [0]), entry_size=np.full((6, 1), 2.0))


def test_ind_stop_exits_and_refuses_a_level_on_the_wrong_side():
    closes = [100.0, 100, 104, 108, 106, 101, 99, 98]
    data = _ohlc(closes)
    stop = np.asarray(closes)[:, None] - 5.0
    res = backtest(data, entries=_sig(8, [0]), size=1.0, size_type="amount", ind_stop=stop)
    assert res.trades["exit_reason"].tolist() == ["ind_stop"]
    bad = stop.copy()
    bad[0, 0] = 101.0
    with pytest.raises(ValueError, match=r"ind_stop must be below the close at a long entry signal.*\(A\)"):
        backtest(data, entries=_sig(8, [0]), ind_stop=bad)
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="ind_stop must be finite and > 0"):
        backtest(data, entries=_sig(8, [0]), ind_stop=bad)


def test_td_stop_in_bars_or_as_a_duration():
    data = _ohlc(np.linspace(10, 17, 8))
    for td in (3, "3h", pd.Timedelta("150min")):  # 150 min on 1h bars: 3 bars (rounded up)
        res = backtest(data, entries=_sig(8, [0]), size=1.0, size_type="amount", td_stop=td)
        t = res.trades.iloc[0]
        assert t.exit_reason == "time" and (t.exit_time - t.entry_time) == pd.Timedelta("3h")
    with pytest.raises(ValueError, match="td_stop must be at least one bar"):
        backtest(data, entries=_sig(8, [0]), td_stop=0)
    with pytest.raises(ValueError, match="td_stop must be a number of bars"):
        backtest(data, entries=_sig(8, [0]), td_stop="soon")


def test_min_roi_table_freqtrade_style():
    closes = [100.0] * 8
    data = _ohlc(closes, spread=1.0)
    data["A"].loc[data["A"].index[4], "high"] = 103.0
    # freqtrade: minutes as strings; "120" on 1h bars is 2 bars
    res = backtest(data, entries=_sig(8, [0]), size=1.0, size_type="amount", min_roi={"0": 0.1, "120": 0.025})
    t = res.trades.iloc[0]
    assert t.exit_reason == "roi" and t.exit_price == pytest.approx(102.5)
    with pytest.raises(ValueError, match="min_roi"):
        backtest(data, entries=_sig(8, [0]), min_roi={0: -2.0})
    with pytest.raises(ValueError, match="min_roi must be a non-empty"):
        backtest(data, entries=_sig(8, [0]), min_roi={})


def test_finalize_trades_closes_with_fees():
    data = _ohlc([10.0, 10, 12, 14], spread=0.0)
    res = backtest(data, entries=_sig(4, [0]), size=1.0, size_type="amount", fees=0.01, finalize_trades=True)
    t = res.trades.iloc[0]
    assert t.exit_reason == "final" and t.fees == pytest.approx(0.1 + 0.14)
    s = res.stats()
    assert s["# Trades"] == 1 and s["Win Rate [%]"] == 100.0


def test_borrow_rate_per_year_charged_per_bar_and_in_the_stats():
    closes = [100.0, 100, 100, 90, 80, 80]
    data = _ohlc(closes, spread=0.0, freq="1D")
    none = np.zeros((6, 1), dtype=bool)
    res = backtest(data, entries=none, exits=none, short_entries=_sig(6, [0]), short_exits=_sig(6, [3]), size=1.0,
                   size_type="amount", borrow_rate=0.365)  # 0.1 % a day
    paid = 0.001 * (100 + 100 + 90)
    assert res.stats()["Borrow Paid [$]"] == pytest.approx(paid)
    assert res.trades["pnl"].iloc[0] == pytest.approx(20 - paid)
    assert backtest(data, entries=none, short_entries=_sig(6, [0]), size=1.0,
                    size_type="amount").stats()["Borrow Paid [$]"] == 0.0
    with pytest.raises(ValueError, match=r"borrow_rate must be finite and >= 0.*\(A\)"):
        backtest(data, entries=none, short_entries=_sig(6, [0]), borrow_rate=-0.1)
    two = _ohlc(np.column_stack([closes, closes]), spread=0.0, freq="1D", symbols=("A", "B"))
    with pytest.raises(ValueError, match=r"borrow_rate must be finite and >= 0.*\(B\)"):
        backtest(two, entries=np.zeros((6, 2), bool), borrow_rate={"B": -1.0})


def test_parity_with_backtesting_py_atr_trailing_stop_and_finalize():
    """backtesting.py's TrailingStrategy (sl = max(sl, close - 3 ATR) in next, from the bar after entry) on
    its GOOG data equals ind_stop = close - 3 ATR with the signal bar's value unset, trade for trade."""
    bt = pytest.importorskip("backtesting")
    from backtesting.lib import TrailingStrategy, crossover
    from backtesting.test import GOOG, SMA

    class Bt(TrailingStrategy):
        def init(self):
            super().init()
            self.set_trailing_sl(3)
            self.s1 = self.I(SMA, self.data.Close, 10)
            self.s2 = self.I(SMA, self.data.Close, 30)

        def next(self):
            super().next()
            if crossover(self.s1, self.s2) and not self.position:
                self.buy(size=10)
            elif crossover(self.s2, self.s1) and self.position:
                self.position.close()

    theirs = bt.Backtest(GOOG, Bt, cash=100_000, commission=0.0, finalize_trades=True).run()
    df = GOOG.rename(columns=str.lower)
    close = df["close"]
    s1, s2 = close.rolling(10).mean(), close.rolling(30).mean()
    up = (s1 > s2) & (s1.shift() < s2.shift())
    down = (s1 < s2) & (s1.shift() > s2.shift())
    hi, lo, prev = df["high"], df["low"], close.shift(1)
    tr = np.max([hi - lo, (prev - hi).abs(), (prev - lo).abs()], axis=0)
    atr = pd.Series(tr, index=df.index).rolling(100).mean().bfill()
    stop = (close - 3 * atr).where(~up)  # backtesting.py sets the first level in the entry bar's next()
    ours = backtest(df, entries=up, exits=down, size=10.0, size_type="amount", init_cash=100_000, ind_stop=stop,
                    finalize_trades=True, on_gap="skip")
    t = theirs._trades
    assert len(ours.trades) == len(t)
    np.testing.assert_allclose(ours.trades["entry_price"], t["EntryPrice"], rtol=1e-9)
    np.testing.assert_allclose(ours.trades["exit_price"], t["ExitPrice"], rtol=1e-9)
    np.testing.assert_allclose(ours.trades["pnl"], t["PnL"], rtol=1e-9, atol=1e-6)
    assert ours.equity.iloc[-1] == pytest.approx(theirs["Equity Final [$]"], rel=1e-9)
