"""Class API orders of issue 15: per-order limit/stop entries, a stop moved from ``next``
(``Position.set_stop``), options refused at construction; backtesting.py parity where it applies."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade import Backtest, Strategy, crossover
from nbtrade import indicators as ind


def _ohlc(closes, spread=0.5):
    c = np.asarray(closes, dtype=float)
    idx = pd.date_range("2024-01-01", periods=len(c), freq="1h", tz="UTC")
    return pd.DataFrame({"open": c, "high": c + spread, "low": c - spread, "close": c}, index=idx)


def _goog():
    bt = pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    return bt, GOOG


@pytest.mark.parametrize("kind", ["limit", "stop"])
def test_per_order_limit_and_stop_entries_agree_with_backtesting_py(kind):
    """buy(limit=) / buy(stop=) per order on GOOG, trade for trade. backtesting.py keeps every unfilled
    order until cancelled, so its strategy cancels the resting one before a new entry, as a new entry
    replaces it here."""
    bt, GOOG = _goog()
    from backtesting.test import SMA

    f = 0.99 if kind == "limit" else 1.01

    class Theirs(bt.Strategy):
        def init(self):
            self.sma = self.I(SMA, self.data.Close, 10)

        def next(self):
            c = self.data.Close[-1]
            if not self.position and c > self.sma[-1]:
                for o in self.orders:
                    o.cancel()
                self.buy(size=10, **{kind: c * f})
            elif self.position and c < self.sma[-1]:
                self.position.close()

    class Ours(Strategy):
        def init(self):  # pandas' rolling mean as backtesting.py's SMA: on 2011-02-04 the close ties the SMA
            self.sma = self.I(lambda c: c.rolling(10).mean(), self.data.close)

        def next(self):
            c = float(self.data.close[-1])
            if not self.position and c > self.sma[-1]:
                self.buy(size=10, **{kind: c * f})
            elif self.position and c < self.sma[-1]:
                self.position.close()

    t = bt.Backtest(GOOG, Theirs, cash=100_000).run()._trades
    ours = Backtest(GOOG, Ours, cash=100_000, size_type="amount", order_type=kind, on_gap="skip").run().trades
    closed = ours[ours.exit_reason != "end"]
    assert len(closed) == len(t) > 50
    np.testing.assert_allclose(closed["entry_price"], t["EntryPrice"], rtol=1e-9)
    np.testing.assert_allclose(closed["exit_price"], t["ExitPrice"], rtol=1e-9)
    assert list(closed["entry_time"]) == list(t["EntryTime"].dt.tz_localize("UTC")) or \
        list(closed["entry_time"].dt.tz_localize(None)) == list(t["EntryTime"])


def test_per_order_limit_fills_at_its_level_and_bad_levels():
    class Dip(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 0:
                self.buy(limit=8.6)

    data = _ohlc([10.0, 10, 9, 8, 9, 10])
    res = Backtest(data, Dip, size=1.0, size_type="amount", order_type="limit").run()
    o = res.orders.iloc[0]
    assert o.price == 8.6 and o.time == data.index[2]  # low 8.5 reaches 8.6; the open 9 is above

    def strat(**kw):
        class S(Strategy):
            def init(self):
                pass

            def next(self):
                self.buy(**kw)
        return S

    with pytest.raises(ValueError, match=r"buy\(limit=...\) needs Backtest\(..., order_type='limit'\)"):
        Backtest(data, strat(limit=9.0), order_type="stop").run()  # no order_type: allowed (mixed)
    with pytest.raises(ValueError, match=r"buy\(stop=...\) needs Backtest\(..., order_type='stop'\).*this run's "
                                         r"is 'limit'"):
        Backtest(data, strat(stop=11.0), order_type="limit").run()
    with pytest.raises(ValueError, match=r"limit=, stop=\) together .* not supported"):
        Backtest(data, strat(limit=9.0, stop=11.0), order_type="limit").run()
    with pytest.raises(ValueError, match=r"buy\(limit=...\) must be a finite number > 0, got -1"):
        Backtest(data, strat(limit=-1), order_type="limit").run()
    with pytest.raises(ValueError, match=r"buy\(\) in a run with order_type='stop' .* buy\(stop=price\)"):
        Backtest(data, strat(), order_type="stop").run()
    with pytest.raises(TypeError, match=r"buy\(\) takes size=, limit=, stop=, sl=, tp= \(got tag\)"):
        Backtest(data, strat(tag="x")).run()


def test_per_order_levels_do_not_leak_between_runs_or_into_order_price():
    """buy(limit=) writes into a per-run copy of order_price: the next run's buy() rests at the user's level."""
    class Dip(Strategy):
        lvl = 8.6

        def init(self):
            pass

        def next(self):
            if self.i == 0:
                self.buy(limit=self.lvl) if self.lvl else self.buy()

    data = _ohlc([10.0, 10, 9, 8, 9, 10])
    price = pd.DataFrame({"asset": np.full(len(data), 9.5)}, index=data.index)
    bt = Backtest(data, Dip, size=1.0, size_type="amount", order_type="limit", order_price=price)
    first = bt.run().orders
    assert list(first.price) == [8.6] and first.time.iloc[0] == data.index[2]
    second = bt.run(lvl=0).orders
    assert list(second.price) == [9.5] and second.time.iloc[0] == data.index[1]
    assert (price["asset"] == 9.5).all()


def test_set_stop_trails_like_backtesting_py_trailing_strategy():
    """Position.set_stop(close - 3 ATR) each bar equals backtesting.py's TrailingStrategy on GOOG, trade for
    trade (finalize_trades on both; the last trade differs only in its fill price, see
    test_finalize_trades_against_backtesting_py_documented_difference)."""
    bt, GOOG = _goog()
    from backtesting.lib import TrailingStrategy, crossover as bcross
    from backtesting.test import SMA

    class Theirs(TrailingStrategy):
        def init(self):
            super().init()
            self.set_trailing_sl(3)
            self.s1 = self.I(SMA, self.data.Close, 10)
            self.s2 = self.I(SMA, self.data.Close, 30)

        def next(self):
            super().next()
            if bcross(self.s1, self.s2) and not self.position:
                self.buy(size=10)
            elif bcross(self.s2, self.s1) and self.position:
                self.position.close()

    def atr(df):
        hi, lo, prev = df["high"], df["low"], df["close"].shift(1)
        tr = np.max([hi - lo, (prev - hi).abs(), (prev - lo).abs()], axis=0)
        return pd.Series(tr, index=df.index).rolling(100).mean().bfill()

    class Ours(Strategy):
        def init(self):
            df = pd.concat({k: getattr(self.data, k).iloc[:, 0] for k in ("high", "low", "close")}, axis=1)
            self.atr = self.I(atr, df)
            self.s1 = self.I(ind.sma, self.data.close, 10)
            self.s2 = self.I(ind.sma, self.data.close, 30)

        def next(self):
            if self.position:
                self.position.set_stop(float(self.data.close[-1]) - 3 * self.atr[-1])
            if crossover(self.s1, self.s2) and not self.position:
                self.buy(size=10)
            elif crossover(self.s2, self.s1) and self.position:
                self.position.close()

    t = bt.Backtest(GOOG, Theirs, cash=100_000, finalize_trades=True).run()._trades
    ours = Backtest(GOOG, Ours, cash=100_000, size_type="amount", on_gap="skip", finalize_trades=True).run().trades
    assert len(ours) == len(t) and (ours.exit_reason == "ind_stop").sum() > 3
    np.testing.assert_allclose(ours["entry_price"], t["EntryPrice"], rtol=1e-9)
    np.testing.assert_allclose(ours["exit_price"][:-1], t["ExitPrice"][:-1], rtol=1e-9)


def test_set_stop_ratchets_only_in_the_positions_favour():
    class Loose(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 0:
                self.buy()
            elif self.i == 1:
                self.position.set_stop(9.2)
            elif self.i == 2:
                self.position.set_stop(5.0)  # looser: ignored

    data = _ohlc([10.0, 10, 10, 10, 9, 9, 9], spread=0.1)
    res = Backtest(data, Loose, size=1.0, size_type="amount").run()
    t = res.trades.iloc[0]
    assert t.exit_reason == "ind_stop" and t.exit_price == 9.0  # gap below 9.2: fills at the open
    assert t.exit_time == data.index[4]

    class Bad(Strategy):
        def init(self):
            pass

        def next(self):
            self.position.set_stop(float("nan"))

    with pytest.raises(ValueError, match=r"set_stop\(price\) must be a finite number > 0, got nan"):
        Backtest(data, Bad).run()


def test_unsupported_options_are_refused_at_construction():
    class S(Strategy):
        def init(self):
            pass

        def next(self):
            pass

    data = _ohlc([10.0, 11, 12])
    lv = np.full((3, 1), 9.0)
    for key in ("sl_price", "tp_price"):
        with pytest.raises(ValueError, match=f"Backtest does not take {key}"):
            Backtest(data, S, **{key: lv})
    with pytest.raises(ValueError, match="Backtest does not take exit_size"):
        Backtest(data, S, exit_size=0.5)
    with pytest.raises(ValueError, match="stop_limit"):
        Backtest(data, S, order_type="stop_limit", order_price=lv, limit_price=lv)


def test_backtesting_py_code_is_warned_once_at_the_users_line(recwarn):
    """Code reading backtesting.py's capitalised names meets the documented differences: one warning each,
    once per strategy class, pointing at the user's line."""
    import warnings

    from nbtrade.engine import classapi
    from nbtrade.engine.classapi import BacktestingPyDifference

    class Ported(Strategy):
        def init(self):
            self.sma = self.I(ind.sma, self.data.Close, 2)

        def next(self):
            if not self.position:
                self.buy()
            else:
                self.position.close(0.5)  # the partial-close line

    classapi._WARNED.clear()
    data = _ohlc([10.0, 11, 12, 13, 14, 15])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Backtest(data, Ported, finalize_trades=True).run()
        Backtest(data, Ported, finalize_trades=True).run()
    ours = [w for w in caught if issubclass(w.category, BacktestingPyDifference)]
    assert len(ours) == 3
    text = {str(w.message).split(":")[1].strip()[:20]: w for w in ours}
    src = open(__file__).read().splitlines()
    by_kind = {k: w for w in ours for k in ("first called", "close(portion)", "finalize_trades") if k in str(w.message)}
    assert set(by_kind) == {"first called", "close(portion)", "finalize_trades"}, text
    assert all(w.filename == __file__ for w in ours)
    assert "def next(self)" in src[by_kind["first called"].lineno - 1]
    assert "the partial-close line" in src[by_kind["close(portion)"].lineno - 1]
    assert "Backtest(data, Ported, finalize_trades=True).run()" in src[by_kind["finalize_trades"].lineno - 1]
    assert "bar 1" in str(by_kind["first called"].message) and "(bar 2)" in str(by_kind["first called"].message)

    class Native(Strategy):
        def init(self):
            self.sma = self.I(ind.sma, self.data.close, 2)

        def next(self):
            if not self.position:
                self.buy()
            else:
                self.position.close(0.5)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Backtest(data, Native, finalize_trades=True).run()
    assert not [w for w in caught if issubclass(w.category, BacktestingPyDifference)]


# ------------------------------------------------------------------ compiled next: the same orders
from numba import njit  # noqa: E402

from nbtrade.kernels.callback import (enter_long_nb, enter_short_nb, entry_level_nb, exit_long_nb,  # noqa: E402
                                      exit_short_nb, order_nb)


class _PyLevels(Strategy):
    """Each entry a resting order 1 % through the close, with its own size, stop-loss and take-profit."""
    fast = 3
    slow = 8

    def init(self):
        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I(ind.sma, self.data.close, self.slow)

    def next(self):
        c = float(self.data.close[-1])
        f0, f1 = self.f[-2], self.f[-1]
        s0, s1 = self.s[-2], self.s[-1]
        up = f0 < s0 and f1 > s1
        down = f0 > s0 and f1 < s1
        limit = self._otype == "limit"
        if up:
            if self.position.is_short:
                self.position.close()
            lvl = c * (0.99 if limit else 1.01)
            kw = {"limit" if limit else "stop": lvl}
            self.buy(size=2.0, sl=c * 0.95, tp=c * 1.08, **kw)
        elif down:
            if self.position.is_long:
                self.position.close()
            lvl = c * (1.01 if limit else 0.99)
            kw = {"limit" if limit else "stop": lvl}
            self.sell(size=1.0, sl=c * 1.05, tp=c * 0.92, **kw)


@njit
def _levels_next_nb(ctx, i, f, s, limit):
    if i == 0:
        return
    for c in range(ctx.close.shape[1]):
        if f[i - 1, c] != f[i - 1, c] or s[i - 1, c] != s[i - 1, c]:
            continue
        px = ctx.close[i, c]
        if f[i - 1, c] < s[i - 1, c] and f[i, c] > s[i, c]:
            if ctx.position[c] < 0.0:
                exit_short_nb(ctx, i, c)
            enter_long_nb(ctx, i, c)
            entry_level_nb(ctx, i, c, px * (0.99 if limit else 1.01))
            order_nb(ctx, i, c, 2.0, px * 0.95, px * 1.08, np.nan)
        elif f[i - 1, c] > s[i - 1, c] and f[i, c] < s[i, c]:
            if ctx.position[c] > 0.0:
                exit_long_nb(ctx, i, c)
            enter_short_nb(ctx, i, c)
            entry_level_nb(ctx, i, c, px * (1.01 if limit else 0.99))
            order_nb(ctx, i, c, 1.0, px * 1.05, px * 0.92, np.nan)


class _NbLevelsLimit(_PyLevels):
    @staticmethod
    @njit
    def next(ctx, i):
        _levels_next_nb(ctx, i, ctx.user.f, ctx.user.s, True)


class _NbLevelsStop(_PyLevels):
    @staticmethod
    @njit
    def next(ctx, i):
        _levels_next_nb(ctx, i, ctx.user.f, ctx.user.s, False)


@pytest.mark.parametrize("kind", ["limit", "stop"])
def test_compiled_next_per_order_entry_levels_equal_the_python_next(kind):
    """buy(limit=/stop=, size=, sl=, tp=) in a Python next and entry_level_nb + order_nb in a compiled next:
    the same orders and trades (the Python next starts after the warm-up; the compiled one skips NaN)."""
    rng = np.random.default_rng(5)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (160, 2)), axis=0))
    idx = pd.date_range("2024-01-01", periods=len(c), freq="1h", tz="UTC")
    o = np.vstack([c[:1], c[:-1]])
    hi, lo = np.maximum(o, c) * 1.004, np.minimum(o, c) * 0.996
    data = {k: pd.DataFrame(v, index=idx, columns=["A", "B"]) for k, v in
            (("open", o), ("high", hi), ("low", lo), ("close", c))}
    kw = dict(size=1.0, size_type="amount", order_type=kind, fees=0.001, tif=3)
    py = Backtest(data, _PyLevels, **kw).run()
    nb_cls = _NbLevelsLimit if kind == "limit" else _NbLevelsStop
    nb = Backtest(data, nb_cls, per_order=True, **kw).run()
    assert len(py.trades) > 5
    pd.testing.assert_frame_equal(nb.orders.reset_index(drop=True), py.orders.reset_index(drop=True))
    pd.testing.assert_frame_equal(nb.trades.reset_index(drop=True), py.trades.reset_index(drop=True))
    np.testing.assert_allclose(nb.equity.to_numpy(), py.equity.to_numpy(), rtol=1e-12)
    # the levels went into a copy: a second run gives the same result
    again = Backtest(data, nb_cls, per_order=True, **kw).run()
    np.testing.assert_allclose(again.equity.to_numpy(), nb.equity.to_numpy(), rtol=0)


def test_entry_level_nb_refuses_market_runs_and_bad_levels():
    @njit
    def lvl_next(ctx, i, level):
        if i == 2:
            enter_long_nb(ctx, i, 0)
            entry_level_nb(ctx, i, 0, level)

    class M(Strategy):
        level = 9.0

        def init(self):
            pass

        @staticmethod
        @njit
        def next(ctx, i):
            lvl_next(ctx, i, ctx.user.params.level)

    data = _ohlc([10.0, 10, 10, 9, 9, 10])
    with pytest.raises(ValueError, match="entry_level_nb: per-order entry levels need order_type='limit' or 'stop'"):
        Backtest(data, M, per_order=True).run()
    with pytest.raises(ValueError, match="entry_level_nb: level must be a finite price > 0"):
        Backtest(data, M, per_order=True, order_type="limit").run(level=-1.0)
    with pytest.raises(ValueError, match="per_order=True and each entry's level from entry_level_nb"):
        Backtest(data, M, order_type="limit")
    res = Backtest(data, M, per_order=True, order_type="limit", size=1.0, size_type="amount").run()
    assert res.orders.iloc[0].price == 9.0


@pytest.mark.parametrize("bad", ["2", True, float("nan"), float("inf"), 0.0])
def test_per_order_size_of_the_wrong_kind_is_refused_naming_bar_and_symbol(bad):
    class S(Strategy):
        def init(self):
            pass

        def next(self):
            self.buy(size=bad)

    with pytest.raises(ValueError, match=r"buy\(size=...\) must be a finite number > 0, got .* at 2024-01-01 "
                                         r"00:00:00\+00:00 \(asset\)"):
        Backtest(_ohlc([10.0, 10, 11]), S).run()
