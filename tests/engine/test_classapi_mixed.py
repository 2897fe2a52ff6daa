"""Class API with a Python ``next``: ``buy()``, ``buy(limit=)``, ``buy(stop=)``, ``buy(stop=, limit=)`` (and
``sell``) mix in one run without a run-level ``order_type`` (as backtesting.py does): same orders, trades and
equity as the signals path given the equivalent per-bar ``order_type``; fills as backtesting.py's."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from numba import njit

from nbtrade.backtesting import backtest
from nbtrade.engine.classapi import Backtest, Strategy
from nbtrade.kernels.callback import (OrderType, enter_long_nb, enter_short_nb, entry_order_nb, exit_long_nb,
                                      exit_short_nb)

N = 12
IDX = pd.date_range("2024-01-01", periods=N, freq="1h", tz="UTC")
OPEN = np.array([100, 101, 102, 103, 104, 105, 104, 103, 102, 101, 100, 99.0])


def candles(o=OPEN):
    return pd.DataFrame({"open": o, "high": o + 2, "low": o - 2, "close": o + 0.5}, index=IDX)


#: bar -> (action, limit, stop): market entry, limit entry, stop entry, stop-limit short, exits between
PLAN = {1: ("buy", None, None), 3: ("close", None, None), 4: ("buy", 103.5, None), 6: ("close", None, None),
        8: ("buy", None, 103.0), 9: ("close", None, None)}


#: a stop-limit buy, limit and stop sells, market sells
PLAN2 = {1: ("sell", None, None), 3: ("close", None, None), 4: ("sell", 104.5, None), 6: ("close", None, None),
         7: ("buy", 103.0, 104.0), 9: ("close", None, None), 10: ("sell", None, 99.5)}


class Mixed(Strategy):
    plan = PLAN

    def init(self):
        pass

    def next(self):
        act = self.plan.get(len(self.data.close) - 1)
        if act is None:
            return
        kind, limit, stop = act
        if kind == "close":
            self.position.close()
        else:
            getattr(self, kind)(limit=limit, stop=stop)


def signals_path(plan, data=None, **kw):
    en, ex, se, sx = (np.zeros(N, bool) for _ in range(4))
    types = np.array(["market"] * N, dtype=object)
    price, lprice = np.full(N, np.nan), np.full(N, np.nan)
    for i, (kind, limit, stop) in plan.items():
        if kind == "close":
            ex[i] = sx[i] = True
            continue
        (en if kind == "buy" else se)[i] = True
        if limit is not None and stop is not None:
            types[i], price[i], lprice[i] = "stop_limit", stop, limit
        elif limit is not None:
            types[i], price[i] = "limit", limit
        elif stop is not None:
            types[i], price[i] = "stop", stop
    if (types == "stop_limit").any():
        kw = {**kw, "limit_price": lprice}
    return backtest(candles() if data is None else data, en, ex, short_entries=se, short_exits=sx, order_type=types,
                    order_price=price, **kw)


def same(a, b):
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.trades, b.trades)
    np.testing.assert_allclose(np.asarray(a.equity), np.asarray(b.equity))


KW = {"size": 1.0, "size_type": "amount", "fees": 0.001}


def test_market_limit_stop_in_one_run_as_signals_path():
    res = Backtest(candles(), Mixed, **KW).run()
    o = res.orders
    assert list(o["type"]) == ["market", "market", "limit", "market", "stop", "market"]
    assert list(o["price"]) == [102.0, 104.0, 103.5, 103.0, 103.0, 100.0]
    same(res, signals_path(PLAN, **KW))


def test_stop_limit_and_sell_types_mix():
    plan = PLAN2
    res = Backtest(candles(), Mixed, **KW).run(plan=plan)
    assert set(res.orders["type"]) >= {"market", "limit", "stop_limit"}
    same(res, signals_path(plan, **KW))


def test_market_only_run_unchanged():
    plan = {1: ("buy", None, None), 3: ("close", None, None), 5: ("sell", None, None)}
    same(Backtest(candles(), Mixed, **KW).run(plan=plan), signals_path(plan, **KW))


def test_fill_at_close_switches_before_the_bar_acts():
    # fill="close": the first resting entry is acted on at its own bar's close, right after the next()
    # that asked for the per-entry types (the engine resumes that bar with them)
    kw = {**KW, "fill": "close"}
    res = Backtest(candles(), Mixed, **kw).run()
    assert "limit" in set(res.orders["type"]) and "stop" in set(res.orders["type"])
    same(res, signals_path(PLAN, **kw))


def perp_market():
    """``candles()`` as a 3x perpetual with mark candles and funding at bar 4's open and inside bar 4 (the
    bar whose ``next`` first rests an entry: the engine switches kernels there) and inside bar 7."""
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    c = candles()
    c = c.assign(mark_open=c["open"], mark_high=c["high"] + 1, mark_low=c["low"] - 1, mark_close=c["close"])
    market = prepare_data({"X": c})
    t = np.asarray(market.time_ms)
    _attach_events(market, {"X": {"time": np.array([t[4], t[4] + 1_800_000, t[7] + 60_000]),
                                  "rate": np.array([0.01, -0.004, 0.002])}})
    return market


def test_switch_on_a_perpetual_run_books_funding_once():
    # the resumed bar keeps the funding booked in its first half (at the open) and books the rest once
    kw = {**KW, "instrument": "perp", "leverage": 3.0}
    for plan in (PLAN, PLAN2):
        market = perp_market()
        res = Backtest(market, Mixed, **kw).run(plan=plan)
        ref = signals_path(plan, data=market, **kw)
        same(res, ref)
        np.testing.assert_array_equal(np.asarray(res.funding_flows), np.asarray(ref.funding_flows))
        assert np.asarray(ref.funding_flows)[4, 0] != 0  # paid on the switch bar by the position carried in


def test_only_runs_that_rest_an_entry_take_the_typed_kernel(monkeypatch):
    # a market-only run keeps the kernel variant of every plain class-API run (no per-entry types: no
    # extra compile); a run switches at the bar of its first limit/stop entry and resumes there
    from nbtrade.kernels import callback as kc

    calls = []
    kernel = kc.simulate_callback_nb

    def spy(on_bar, user, prices, signals, levels, cfg, params, touched, exit_frac, start, *rest):
        calls.append((start, levels.extra.entry_type is not None))
        return kernel(on_bar, user, prices, signals, levels, cfg, params, touched, exit_frac, start, *rest)

    monkeypatch.setattr(kc, "simulate_callback_nb", spy)
    Backtest(candles(), Mixed, **KW).run(plan={1: ("buy", None, None), 3: ("close", None, None),
                                               5: ("sell", None, None)})
    assert calls == [(0, False)]
    calls.clear()
    Backtest(candles(), Mixed, **KW).run()
    assert calls == [(0, False), (4, True)]


def test_bad_levels_still_refused():
    with pytest.raises(ValueError, match=r"buy\(limit=...\) must be a finite number > 0"):
        Backtest(candles(), Mixed, **KW).run(plan={2: ("buy", -1.0, None)})
    with pytest.raises(ValueError, match=r"buy\(stop=...\) must be a finite number > 0"):
        Backtest(candles(), Mixed, **KW).run(plan={2: ("buy", 100.0, float("nan"))})
    # a run-level order_type keeps one type per run
    with pytest.raises(ValueError, match=r"needs Backtest\(..., order_type='stop'\)"):
        Backtest(candles(), Mixed, order_type="limit", **KW).run(plan={2: ("buy", None, 101.0)})


def test_fills_as_backtesting_py():
    bt_mod = pytest.importorskip("backtesting")
    df = candles().rename(columns=str.capitalize)
    df.index = df.index.tz_localize(None)
    plan = PLAN

    class BtMixed(bt_mod.Strategy):
        def init(self):
            pass

        def next(self):
            act = plan.get(len(self.data.Close) - 1)
            if act is None:
                return
            kind, limit, stop = act
            if kind == "close":
                self.position.close()
            else:
                self.buy(size=1, limit=limit, stop=stop)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = bt_mod.Backtest(df, BtMixed, cash=10_000, commission=0.0).run()
    theirs = stats._trades
    ours = Backtest(candles(), Mixed, size=1.0, size_type="amount").run().trades
    np.testing.assert_allclose(ours["entry_price"], theirs["EntryPrice"])
    np.testing.assert_allclose(ours["exit_price"], theirs["ExitPrice"])
    assert [IDX.get_loc(t) for t in ours["entry_time"]] == list(theirs["EntryBar"])



# compiled next: entry_order_nb(ctx, i, c, type, price, limit) gives each entry its type, as buy(limit=/stop=)

@njit
def _mixed_nb(ctx, i, kind, lim, stp):
    for c in range(ctx.close.shape[1]):
        k = kind[i, c]
        if k == 3.0:  # position.close()
            if ctx.position[c] > 0.0:
                exit_long_nb(ctx, i, c)
            elif ctx.position[c] < 0.0:
                exit_short_nb(ctx, i, c)
        elif k == 1.0 or k == 2.0:
            if k == 1.0:
                enter_long_nb(ctx, i, c)
            else:
                enter_short_nb(ctx, i, c)
            lv, sv = lim[i, c], stp[i, c]
            if lv != 0.0 and sv != 0.0:
                entry_order_nb(ctx, i, c, OrderType.STOP_LIMIT, sv, lv)
            elif lv != 0.0:
                entry_order_nb(ctx, i, c, OrderType.LIMIT, lv, np.nan)
            elif sv != 0.0:
                entry_order_nb(ctx, i, c, OrderType.STOP, sv, np.nan)
            else:
                entry_order_nb(ctx, i, c, OrderType.MARKET, np.nan, np.nan)


def plan_arrays(plan):
    """The plan as indicators: action (1 buy, 2 sell, 3 close), limit and stop (0: none)."""
    kind, lim, stp = np.zeros(N), np.zeros(N), np.zeros(N)
    for i, (k, limit, stop) in plan.items():
        kind[i] = {"buy": 1.0, "sell": 2.0, "close": 3.0}[k]
        lim[i] = limit or 0.0
        stp[i] = stop or 0.0
    return kind, lim, stp


class NbMixed(Strategy):
    plan = PLAN

    def init(self):
        kind, lim, stp = plan_arrays(self.plan)
        self.kind = self.I(lambda: kind)
        self.lim = self.I(lambda: lim)
        self.stp = self.I(lambda: stp)

    @staticmethod
    @njit
    def next(ctx, i):
        _mixed_nb(ctx, i, ctx.user.kind, ctx.user.lim, ctx.user.stp)


def test_compiled_next_mixes_types_as_the_python_next():
    # one compiled next (its plain and typed engine variants) for every case below
    for plan in (PLAN, PLAN2):
        nb = Backtest(candles(), NbMixed, per_order=True, **KW).run(plan=plan)
        assert len(set(nb.orders["type"])) >= 3
        same(nb, Backtest(candles(), Mixed, **KW).run(plan=plan))
    # a market-only plan never switches: the plain result
    market = {1: ("buy", None, None), 3: ("close", None, None), 5: ("sell", None, None)}
    same(Backtest(candles(), NbMixed, per_order=True, **KW).run(plan=market), signals_path(market, **KW))
    # bad levels, named by the helper; a run-level order type has no per-entry types
    with pytest.raises(ValueError, match="entry_order_nb: price must be a finite price > 0"):
        Backtest(candles(), NbMixed, per_order=True, **KW).run(plan={2: ("buy", -1.0, None)})
    with pytest.raises(ValueError, match="entry_order_nb: a stop-limit's limit must be a finite price > 0"):
        Backtest(candles(), NbMixed, per_order=True, **KW).run(plan={2: ("buy", -1.0, 101.0)})
    with pytest.raises(ValueError, match="entry_order_nb: per-entry order types need a run without order_type"):
        Backtest(candles(), NbMixed, per_order=True, order_type="limit", **KW).run()
