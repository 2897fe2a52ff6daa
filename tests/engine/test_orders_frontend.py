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


def test_class_api_close_and_buy_on_one_bar_reopens_as_backtesting_py():
    from nbtrade import Backtest, Strategy

    class CloseAndBuy(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 0:
                self.buy()
            elif self.i == 2:
                self.position.close()
                self.buy()

    data = _ohlc([10.0, 10, 11, 12, 13, 14])
    res = Backtest(data, CloseAndBuy, size=1.0, size_type="amount").run()
    assert [(t.entry_time.hour, t.exit_reason) for t in res.trades.itertuples()] == [(1, "signal"), (3, "end")]
    res = Backtest(data, CloseAndBuy, size=1.0, size_type="amount", reenter=False).run()
    assert len(res.trades) == 1 and res.trades.exit_reason.iloc[0] == "signal"


def test_class_api_per_order_size_sl_tp_and_bad_values():
    from nbtrade import Backtest, Strategy

    class PerOrder(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 0:
                self.buy(size=3.0, sl=9.0, tp=13.5)

    closes = [10.0, 10, 11, 12, 13, 14, 15]
    data = _ohlc(closes)
    res = Backtest(data, PerOrder, size=1.0, size_type="amount").run()
    t = res.trades.iloc[0]
    assert t["size"] == 3.0 and t.exit_reason == "tp" and t.exit_price == 13.5

    class WrongSide(Strategy):
        def init(self):
            pass

        def next(self):
            self.buy(sl=11.0)

    with pytest.raises(ValueError, match=r"buy\(sl=11.0\) is on the wrong side.*below the close \(10.0\) at "
                                         r"2024-01-01 00:00:00\+00:00 \(A\)"):
        Backtest(data, WrongSide).run()

    class BadSize(Strategy):
        def init(self):
            pass

        def next(self):
            self.sell(size=-1)

    with pytest.raises(ValueError, match=r"sell\(size=...\) must be a finite number > 0, got -1"):
        Backtest(data, BadSize).run()

    class Limit(Strategy):
        def init(self):
            pass

        def next(self):
            self.buy(limit=9.0)

    with pytest.raises(ValueError, match=r"buy\(limit=...\) needs Backtest\(..., order_type='limit'\)"):
        Backtest(data, Limit, order_type="stop").run()  # no order_type: allowed (mixed)


def test_class_api_per_order_stops_agree_with_backtesting_py():
    """buy(size=10, sl=, tp=) per order on backtesting.py's GOOG, trade for trade."""
    bt = pytest.importorskip("backtesting")
    from backtesting.lib import crossover as bcross
    from backtesting.test import GOOG, SMA

    from nbtrade import Backtest, Strategy, crossover
    from nbtrade import indicators as ind

    class Theirs(bt.Strategy):
        def init(self):
            self.s1 = self.I(SMA, self.data.Close, 10)
            self.s2 = self.I(SMA, self.data.Close, 30)

        def next(self):
            c = self.data.Close[-1]
            if bcross(self.s1, self.s2) and not self.position:
                self.buy(size=10, sl=c * 0.95, tp=c * 1.15)

    class Ours(Strategy):
        def init(self):
            self.s1 = self.I(ind.sma, self.data.close, 10)
            self.s2 = self.I(ind.sma, self.data.close, 30)

        def next(self):
            c = float(self.data.close[-1])
            if crossover(self.s1, self.s2) and not self.position:
                self.buy(size=10, sl=c * 0.95, tp=c * 1.15)

    theirs = bt.Backtest(GOOG, Theirs, cash=100_000).run()
    ours = Backtest(GOOG, Ours, cash=100_000, size_type="amount", on_gap="skip").run()
    t = theirs._trades
    closed = ours.trades[ours.trades.exit_reason != "end"]
    assert len(closed) == len(t)
    np.testing.assert_allclose(closed["entry_price"], t["EntryPrice"], rtol=1e-9)
    np.testing.assert_allclose(closed["exit_price"], t["ExitPrice"], rtol=1e-9)


def test_finalize_trades_against_backtesting_py_documented_difference():
    """A position still open at the end: backtesting.py's finalize_trades=True re-runs its broker on the last
    bar ("HACK" in its source), so the close fills at the last bar's *open*; here it fills at the last
    close (the run's last price). Same trade otherwise: entry, exit bar, commission on both legs."""
    bt = pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    class Hold(bt.Strategy):
        def init(self):
            pass

        def next(self):
            if len(self.data) == 50:
                self.buy(size=7)

    theirs = bt.Backtest(GOOG, Hold, cash=100_000, commission=0.002, finalize_trades=True).run()
    entries = np.zeros(len(GOOG), dtype=bool)
    entries[49] = True
    ours = backtest(GOOG.rename(columns=str.lower), entries=entries, size=7.0, size_type="amount", fees=0.002,
                    init_cash=100_000, finalize_trades=True, on_gap="skip")
    t, o = theirs._trades.iloc[0], ours.trades.iloc[0]
    assert len(theirs._trades) == len(ours.trades) == 1 and o.exit_reason == "final"
    assert o.entry_price == t.EntryPrice and o.exit_time.tz_localize(None) == t.ExitTime
    assert t.ExitPrice == GOOG["Open"].iloc[-1] and o.exit_price == GOOG["Close"].iloc[-1]
    fees = 0.002 * 7 * (t.EntryPrice + o.exit_price)
    assert o.pnl == pytest.approx(7 * (o.exit_price - o.entry_price) - fees, rel=1e-12)
    assert t.PnL == pytest.approx(7 * (t.ExitPrice - t.EntryPrice) - 0.002 * 7 * (t.EntryPrice + t.ExitPrice),
                                  rel=1e-12)


def test_compiled_callback_per_order_fields_equal_the_signals_path():
    """A compiled on_bar giving each entry its size and stops (order_nb) and ratcheting an indicator stop
    (trail_stop_nb) equals the signals path with entry_size, sl_price/tp_price and ind_stop."""
    from numba import njit

    from nbtrade import backtest_callback
    from nbtrade.kernels.callback import enter_long_nb, exit_long_nb, order_nb, trail_stop_nb

    @njit
    def on_bar(ctx, i):
        le, lx, size, sl, tp, stop = ctx.user
        for c in range(ctx.close.shape[1]):
            trail_stop_nb(ctx, i, c, stop[i, c])
            if le[i, c]:
                enter_long_nb(ctx, i, c)
                order_nb(ctx, i, c, size[i, c], sl[i, c], tp[i, c], np.nan)
            if lx[i, c]:
                exit_long_nb(ctx, i, c)

    rng = np.random.default_rng(4)
    n = 60
    steps = rng.normal(0, 0.02, (n, 2)).cumsum(axis=0)
    c = 100 * np.exp(steps)
    o = np.vstack([c[:1], c[:-1]])
    data = {"open": o, "high": np.maximum(o, c) * 1.01, "low": np.minimum(o, c) * 0.99, "close": c}
    le, lx = rng.random((n, 2)) < 0.15, rng.random((n, 2)) < 0.1
    size = np.where(rng.random((n, 2)) < 0.5, np.nan, rng.uniform(1, 3, (n, 2)))
    sl = np.where(rng.random((n, 2)) < 0.3, np.nan, c * 0.96)
    tp = np.where(rng.random((n, 2)) < 0.3, np.nan, c * 1.05)
    stop = c * 0.97
    kw = dict(size=1.0, size_type="amount", fees=0.001, init_cash=10_000.0)
    got = backtest_callback(data, on_bar, user=(le, lx, size, sl, tp, stop), per_order=True, **kw)
    want = backtest(data, le, lx, entry_size=size, sl_price=sl, tp_price=tp, ind_stop=np.where(le, stop, stop), **kw)
    pd.testing.assert_frame_equal(got.trades, want.trades)
    np.testing.assert_allclose(got.equity.to_numpy(), want.equity.to_numpy(), rtol=1e-12)
    assert set(got.trades.exit_reason) >= {"ind_stop"}
    with pytest.raises(TypeError, match="per_order must be True or False"):
        backtest_callback(data, on_bar, user=(le, lx, size, sl, tp, stop), per_order="yes", **kw)


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("key", ["sl_price", "tp_price"])
def test_absolute_level_on_the_wrong_side_of_the_fill_exits_at_the_first_check(fill, key):
    """Signals path: the fill price is unknown when the levels are given, so a level on the wrong side is
    not refused; as documented in backtest(sl_price=...), the first stop check exits at the open."""
    idx = pd.date_range("2024", periods=6, freq="1h", tz="UTC")
    c = np.full(6, 10.0)
    data = pd.DataFrame(dict(open=c, high=c * 1.01, low=c * 0.99, close=c), index=idx)
    e = np.zeros(6, dtype=bool)
    e[0] = True
    level = np.where(e, 11.0 if key == "sl_price" else 9.0, np.nan)
    res = backtest(data, entries=e, size=1.0, size_type="amount", fees=0.001, fill=fill, **{key: level})
    t = res.trades
    assert len(t) == 1
    assert t["exit_reason"].iloc[0] == ("sl" if key == "sl_price" else "tp")
    assert t["exit_time"].iloc[0] == idx[1]  # the fill bar's open (next_open) or the next bar's (close)
    assert t["exit_price"].iloc[0] == 10.0
