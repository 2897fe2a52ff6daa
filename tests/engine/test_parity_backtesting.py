"""Parity with backtesting.py (0.6.x) on its own examples and data, trade for trade where the semantics
agree (issue 15). Settings that make them agree: ``size=1.0, lot_size=1`` (backtesting.py buys whole units
with all the equity it has: its default size is 1 - eps), ``on_gap="skip"`` (its data has weekends), and
indicators computed the same way (pandas' rolling mean, as its ``SMA``: a close can tie its SMA to the last
bit, where a different summation order flips a crossover). Remaining differences, each tested below:

* backtesting.py's ``_trades`` lists closed trades only; nbtrade also lists the trade open at the end
  (``exit_reason == "end"``) unless ``finalize_trades=True``;
* its first ``next`` call comes one bar after the warm-up (nbtrade: on the first bar where every indicator is
  defined): no difference in these strategies, which never act on their first call;
* its ``W-FRI`` weekly bars close on Friday and the week's value is used on the Friday bar; nbtrade's ``1w``
  bars are exchange weeks closing Sunday midnight, so the value arrives on Monday's bar
  (``tests/test_multitimeframe.py``): the "System" example trades the same way with backtesting.py's weekly
  series, and with nbtrade's own enters its first trade 4 days later (the rest trade for trade);
* ``finalize_trades=True`` closes at the last bar's open there, at its close here
  (``tests/engine/test_orders_frontend.py``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade import Backtest, Strategy, crossover

bt = pytest.importorskip("backtesting")
from backtesting.lib import crossover as bcross  # noqa: E402
from backtesting.lib import resample_apply as bt_resample_apply  # noqa: E402
from backtesting.test import GOOG, SMA  # noqa: E402

OPTS = dict(size=1.0, lot_size=1, on_gap="skip")


def _sma(close, n):
    return close.rolling(n).mean()


def _sma_cross(n1, n2, short, ours):
    """backtesting.py's SmaCross (its README); ``short``: sell on the down cross (long/short)."""
    if ours:
        class SmaCross(Strategy):
            def init(self):
                self.a = self.I(_sma, self.data.close, n1)
                self.b = self.I(_sma, self.data.close, n2)

            def next(self):
                if crossover(self.a, self.b):
                    self.position.close()
                    self.buy()
                elif crossover(self.b, self.a):
                    self.position.close()
                    if short:
                        self.sell()
    else:
        class SmaCross(bt.Strategy):
            def init(self):
                self.a = self.I(SMA, self.data.Close, n1)
                self.b = self.I(SMA, self.data.Close, n2)

            def next(self):
                if bcross(self.a, self.b):
                    self.position.close()
                    self.buy()
                elif bcross(self.b, self.a):
                    self.position.close()
                    if short:
                        self.sell()
    return SmaCross


def _same_trades(ours, theirs, least=5):
    t = theirs._trades
    closed = ours.trades[ours.trades.exit_reason != "end"]
    assert len(closed) == len(t) > least
    np.testing.assert_array_equal(closed["size"].to_numpy(), t["Size"].abs().to_numpy())
    np.testing.assert_array_equal(np.where(closed["direction"] == "long", 1, -1), np.sign(t["Size"]))
    np.testing.assert_allclose(closed["entry_price"], t["EntryPrice"], rtol=1e-12)
    np.testing.assert_allclose(closed["exit_price"], t["ExitPrice"], rtol=1e-12)
    np.testing.assert_allclose(closed["pnl"], t["PnL"], rtol=1e-9, atol=1e-9)
    assert ours.equity.iloc[-1] == pytest.approx(theirs["Equity Final [$]"], rel=1e-12)


@pytest.mark.parametrize("n1, n2, short, commission", [(10, 20, False, 0.0), (5, 25, False, 0.0),
                                                        (10, 20, True, 0.0), (10, 20, True, 0.002),
                                                        (5, 25, False, 0.002)])
def test_sma_cross_long_only_and_long_short_on_goog(n1, n2, short, commission):
    """Long-only (close on the down cross) and long/short (close and reverse); ``position.close(); buy()`` on
    the up cross is a same-bar re-entry (before issue 15 the Python next turned it into a close only and
    missed trades: 36,604 vs 44,241)."""
    theirs = bt.Backtest(GOOG, _sma_cross(n1, n2, short, False), cash=10_000, commission=commission).run()
    ours = Backtest(GOOG, _sma_cross(n1, n2, short, True), cash=10_000, commission=commission, **OPTS).run()
    _same_trades(ours, theirs)


def test_same_bar_reentry_in_a_compiled_next_equals_the_python_next():
    """The compiled next closing and re-entering on one bar (exit then entry, ``reenter=True`` by default in
    the class API) trades as the Python next and backtesting.py."""
    from numba import njit

    from nbtrade.kernels.callback import enter_long_nb, exit_long_nb

    class Compiled(Strategy):
        n1, n2 = 5, 25

        def init(self):
            self.a = self.I(_sma, self.data.close, self.n1)
            self.b = self.I(_sma, self.data.close, self.n2)

        @staticmethod
        @njit
        def next(ctx, i):
            a, b, _ = ctx.user
            for c in range(a.shape[1]):
                if i > 0 and a[i - 1, c] < b[i - 1, c] and a[i, c] > b[i, c]:
                    if ctx.position[c] > 0.0:
                        exit_long_nb(ctx, i, c)
                    enter_long_nb(ctx, i, c)
                elif i > 0 and a[i - 1, c] > b[i - 1, c] and a[i, c] < b[i, c] and ctx.position[c] > 0.0:
                    exit_long_nb(ctx, i, c)

    theirs = bt.Backtest(GOOG, _sma_cross(5, 25, False, False), cash=10_000, commission=0.002).run()
    ours = Backtest(GOOG, Compiled, cash=10_000, commission=0.002, **OPTS).run()
    _same_trades(ours, theirs)


def _rsi(close, n):
    """backtesting.py's tutorial RSI (ewm of gains and losses), on a Series or a DataFrame."""
    gain = close.diff()
    loss = gain.copy()
    gain[gain < 0] = 0
    loss[loss > 0] = 0
    rs = gain.ewm(n).mean() / loss.abs().ewm(n).mean()
    return 100 - 100 / (1 + rs)


def _rsi_array(array, n):
    return _rsi(pd.Series(array), n)


def _system(ours, weekly=None, sl=0.92):
    """backtesting.py's multi-timeframe tutorial "System": daily and weekly RSI above 70 and rising MAs
    enter with a per-order stop-loss 8 % below the close; a close 2 % under the 10-day MA exits."""
    base = Strategy if ours else bt.Strategy

    class System(base):
        d_rsi, w_rsi, level = 30, 30, 70

        def init(self):
            close = self.data.close if ours else self.data.Close
            sma = _sma if ours else SMA
            self.ma10 = self.I(sma, close, 10)
            self.ma20 = self.I(sma, close, 20)
            self.ma50 = self.I(sma, close, 50)
            self.ma100 = self.I(sma, close, 100)
            self.daily_rsi = self.I(_rsi if ours else _rsi_array, close, self.d_rsi)
            if not ours:
                self.weekly_rsi = bt_resample_apply("W-FRI", _rsi_array, self.data.Close, self.w_rsi)
            elif weekly is None:
                import nbtrade

                self.weekly_rsi = self.I(nbtrade.resample_apply, "1w", _rsi, close, self.w_rsi, incomplete="keep")
            else:
                self.weekly_rsi = self.I(lambda: weekly)

        def next(self):
            price = float(self.data.close[-1] if ours else self.data.Close[-1])
            if (not self.position and self.daily_rsi[-1] > self.level and self.weekly_rsi[-1] > self.level
                    and self.weekly_rsi[-1] > self.daily_rsi[-1]
                    and self.ma10[-1] > self.ma20[-1] > self.ma50[-1] > self.ma100[-1] and price > self.ma10[-1]):
                self.buy(sl=sl * price)
            elif price < 0.98 * self.ma10[-1]:
                self.position.close()

    return System


@pytest.mark.parametrize("sl", [0.92, 0.97])
def test_multi_timeframe_system_example_with_per_order_stop_loss(sl):
    """Their example (sl 8 % below: never hit on GOOG) and a tighter stop (3 %: hit)."""
    theirs = bt.Backtest(GOOG, _system(False, sl=sl), cash=10_000, commission=0.002).run()
    # their weekly series (W-FRI, values from the Friday bar) in nbtrade's engine: trade for trade
    weekly = _deep(lambda: bt_resample_apply("W-FRI", _rsi_array, GOOG.Close, 30))
    same = Backtest(GOOG, _system(True, weekly.to_numpy(), sl), cash=10_000, commission=0.002, **OPTS).run()
    _same_trades(same, theirs, 3)
    assert (same.trades.exit_reason == "sl").any() == (sl == 0.97)
    if sl != 0.92:
        return
    # nbtrade's own 1w bars (exchange weeks: the value arrives on Monday, one bar after their Friday)
    own = Backtest(GOOG, _system(True), cash=10_000, commission=0.002, **OPTS).run()
    # measured: the same 4 trades but the first, entered on 2005-06-10 at 286.99 instead of 2005-06-06 at
    # 282.39 (the weekly RSI crossed 70 with the week of 2005-06-03: their Friday bar sees it, nbtrade's
    # exchange week closes Sunday); final equity 9,817.84 vs 9,939.03
    t = theirs._trades
    o = own.trades
    assert len(o) == len(t) == 4
    assert o["entry_time"].iloc[0].tz_localize(None) > t["EntryTime"].iloc[0]
    assert o["entry_price"].iloc[0] == 286.99 and o["exit_price"].iloc[0] == t["ExitPrice"].iloc[0]
    np.testing.assert_allclose(o["entry_price"].iloc[1:], t["EntryPrice"].iloc[1:], rtol=1e-12)
    np.testing.assert_allclose(o["exit_price"].iloc[1:], t["ExitPrice"].iloc[1:], rtol=1e-12)


def _deep(fn, depth=5):  # backtesting.py's resample_apply walks 4 stack frames up looking for a Strategy
    return fn() if depth == 0 else _deep(fn, depth - 1)
