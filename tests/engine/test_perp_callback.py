"""Perpetuals through every way of driving the engine (issue 17): the same strategy through the signals
path, a compiled callback and the class API (Python ``next`` and compiled ``next``) gives the same trades,
funding and equity on a perpetual market with mark wicks that liquidate and funding; bad input is refused
(by ``Backtest`` at construction)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numba import njit

import nbtrade
from nbtrade import Backtest, Strategy
from nbtrade.kernels.callback import enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb
from nbtrade.margin import Tiers

SYMS = ("A", "B")


def _market(seed: int, n: int = 48):
    """Two perpetuals: random walks whose mark candles wick deep (liquidations at 10x) and funding every
    8 bars, at bar opens and inside bars, both signs. Returns the market and random signal arrays."""
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    data = {}
    for s in SYMS:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
        open_ = np.r_[close[0], close[:-1]]
        high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
        low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
        wick = rng.random(n) < 0.12
        data[s] = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1.0,
                                "mark_open": open_, "mark_high": np.where(wick, high * 1.15, high),
                                "mark_low": np.where(wick, low * 0.85, low), "mark_close": close}, index=idx)
    market = prepare_data(data)
    t = np.asarray(market.time_ms)
    hour = 3_600_000
    events = {}
    for s in SYMS:
        at = np.arange(2, n, 8)
        times = t[at] + np.where(np.arange(len(at)) % 2 == 0, 0, hour // 2)  # at the open, or inside the bar
        events[s] = {"time": times, "rate": rng.normal(0, 0.002, len(at))}
    _attach_events(market, events)
    sig = {k: rng.random((n, len(SYMS))) < p
           for k, p in (("entries", 0.15), ("exits", 0.06), ("short_entries", 0.1), ("short_exits", 0.06))}
    return market, sig


@njit
def _on_bar(ctx, i):
    le, lx, se, sx = ctx.user
    for c in range(ctx.close.shape[1]):
        if le[i, c]:
            enter_long_nb(ctx, i, c)
        if lx[i, c]:
            exit_long_nb(ctx, i, c)
        if se[i, c]:
            enter_short_nb(ctx, i, c)
        if sx[i, c]:
            exit_short_nb(ctx, i, c)


class _PySignals(Strategy):
    """Python ``next`` acting on the signal arrays (class attribute ``sig``) as the signals path would; it
    records what it sees (position, equity) for the checks."""

    sig = None
    seen = None

    def init(self):
        pass

    def next(self):
        i, c = self.i, SYMS.index(self.symbol)
        s = self.sig
        type(self).seen.append((i, c, self.position.size, self.equity))
        if s["entries"][i, c]:
            self.buy()
        if s["exits"][i, c] and self.position.is_long:
            self.position.close()
        if s["short_entries"][i, c]:
            self.sell()
        if s["short_exits"][i, c] and self.position.is_short:
            self.position.close()


class _CompiledSignals(Strategy):
    sig = None

    def init(self):
        self.le, self.lx, self.se, self.sx = (self.I(lambda a=self.sig[k]: a.astype(float), name=k)
                                              for k in ("entries", "exits", "short_entries", "short_exits"))

    @staticmethod
    @njit
    def next(ctx, i):
        u = ctx.user
        le, lx, se, sx = u.entries, u.exits, u.short_entries, u.short_exits
        for c in range(ctx.close.shape[1]):
            if le[i, c] > 0:
                enter_long_nb(ctx, i, c)
            if lx[i, c] > 0:
                exit_long_nb(ctx, i, c)
            if se[i, c] > 0:
                enter_short_nb(ctx, i, c)
            if sx[i, c] > 0:
                exit_short_nb(ctx, i, c)


TRADE_COLS = ["symbol", "direction", "entry_time", "exit_time", "size", "entry_price", "exit_price", "fees", "pnl",
              "exit_reason"]


def _same(a, b, stats=True):
    pd.testing.assert_frame_equal(a.trades[TRADE_COLS].reset_index(drop=True),
                                  b.trades[TRADE_COLS].reset_index(drop=True), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.equity.to_numpy(), b.equity.to_numpy(), rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(a.cash.to_numpy(), b.cash.to_numpy(), rtol=1e-12, atol=1e-9)
    pd.testing.assert_frame_equal(a.funding, b.funding, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(a.funding_paid(), b.funding_paid(), rtol=1e-12, atol=1e-12)
    for s in (None, *SYMS) if stats else ():
        assert a.stats(s)["Funding Paid [$]"] == pytest.approx(b.stats(s)["Funding Paid [$]"], rel=1e-12,
                                                               abs=1e-12)


CASES = [
    dict(leverage=10, margin="isolated"),
    dict(leverage={"A": 10, "B": 5}, fees=0.0005, liquidation_fee=0.01),
    dict(leverage=12, margin="cross", maintenance=Tiers([(0, math.inf, 0.01, 0, 50)])),
    dict(leverage=15, fill="close", sl_stop=0.2),
]


@pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")
@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("seed", [1, 2])
def test_signals_callback_and_class_api_agree_on_a_perp_market(seed, case):
    market, sig = _market(seed)
    kw = dict(instrument="perp", size=0.5, init_cash=1000.0, reenter=True, **CASES[case])
    ref = nbtrade.backtest(market, **sig, **kw)
    reasons = set(ref.trades["exit_reason"])
    assert "liquidation" in reasons
    assert ref.funding.abs().to_numpy().sum() > 0
    cb = nbtrade.backtest_callback(market, _on_bar, user=tuple(sig[k] for k in
                                                                ("entries", "exits", "short_entries", "short_exits")),
                                   **kw)
    _same(ref, cb)
    assert cb.assumptions["mark"] == ref.assumptions["mark"]
    assert cb.assumptions["margin"] == ref.assumptions["margin"]
    # class API, Python next: positions and equity as it sees them are the engine's
    py_kw = {k: v for k, v in kw.items() if k != "reenter"}  # the class API's default
    _PySignals.sig, _PySignals.seen = sig, []
    bt = Backtest(market, _PySignals, **py_kw)
    res = bt.run()
    _same(ref, res)
    if kw.get("fill") != "close":  # (with fills at the close, next runs before the bar's orders)
        pos = ref.positions.to_numpy()
        for i, c, size, equity in _PySignals.seen:
            assert size == pytest.approx(pos[i, c], rel=1e-12, abs=1e-12)
            assert equity == pytest.approx(ref.equity.iloc[i], rel=1e-12)
    # class API, compiled next
    _CompiledSignals.sig = sig
    _same(ref, Backtest(market, _CompiledSignals, **py_kw).run())


def test_position_is_flat_after_a_liquidation_in_python_next():
    market, sig = _market(1)
    _PySignals.sig, _PySignals.seen = sig, []
    res = Backtest(market, _PySignals, instrument="perp", leverage=10, size=0.5, init_cash=1000.0).run()
    liq = res.trades[res.trades["exit_reason"] == "liquidation"]
    assert len(liq)
    index = market.index
    for _, tr in liq.iterrows():
        i, c = index.get_loc(tr["exit_time"]), SYMS.index(tr["symbol"])
        seen = [p for (k, j, p, _) in _PySignals.seen if k == i and j == c]
        # next at the liquidation bar sees the position closed (unless the same bar's close re-entered)
        assert seen == [0.0]


def _spot(n=10):
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    c = np.full(n, 100.0)
    return {s: pd.DataFrame({"open": c, "high": c, "low": c, "close": c}, index=idx) for s in SYMS}


class _Idle(Strategy):
    def init(self):
        pass

    def next(self):
        pass


@pytest.mark.parametrize("kw, err, match", [
    (dict(margin="isolated"), ValueError, "margin='isolated' applies to perpetuals"),
    (dict(margin="cross"), ValueError, "margin='cross' applies to perpetuals"),
    (dict(maintenance=Tiers([(0, math.inf, 0.01, 0, 50)])), ValueError,
     "maintenance apply to margined positions"),
    (dict(liquidation_fee=0.01), ValueError, "liquidation_fee apply to margined positions"),
    (dict(instrument="perp", leverage={"A": 3, "B": 60}, maintenance=Tiers([(0, 1e6, 0.01, 0, 50)])), ValueError,
     r"leverage\['B'\] 60 is above the maximum 50"),
    (dict(instrument="perp", leverage={"C": 2}), ValueError, r"leverage names symbols not in the data: \['C'\]"),
    (dict(instrument="future"), ValueError, "instrument"),
    (dict(instrument="perp", margin="cross", cash_sharing=False), ValueError,
     "margin='cross' backs every position with one wallet"),
    (dict(instrument={"A": "perp"}, margin="cross"), ValueError, r"instrument makes \['B'\] spot"),
])
def test_bad_perp_input_names_the_argument(kw, err, match):
    data = _spot()
    zero = (np.zeros((10, 2), bool),) * 4
    with pytest.raises(err, match=match):
        nbtrade.backtest_callback(data, _on_bar, user=zero, **kw)
    with pytest.raises(err, match=match):  # at construction, not in run()
        Backtest(data, _Idle, **kw)


def test_margin_only_options_refused_with_one_message_everywhere():
    """Signals, callback, class API and weights word the refusal of ``maintenance``/``liquidation_fee`` on an
    unlevered spot run alike: one message, from ``MarginSettings.refuse_margin_only`` (the chunked path
    calls the same helper)."""
    from nbtrade.margin import margin_settings

    data = _spot()
    zero = (np.zeros((10, 2), bool),) * 4
    kw = dict(maintenance=Tiers([(0, math.inf, 0.01, 0, 50)]), liquidation_fee=0.01)
    with pytest.raises(ValueError) as want:
        margin_settings(["A", "B"], **kw).refuse_margin_only()
    msg = str(want.value)
    assert msg.startswith("maintenance, liquidation_fee apply to margined positions")
    calls = [lambda: nbtrade.backtest(data, entries=zero[0], **kw),
             lambda: nbtrade.backtest_callback(data, _on_bar, user=zero, **kw),
             lambda: Backtest(data, _Idle, **kw),
             lambda: nbtrade.backtest_weights(data, np.full((10, 2), 0.5), **kw)]
    for call in calls:
        with pytest.raises(ValueError) as got:
            call()
        assert str(got.value) == msg


def test_class_api_margin_number_is_still_backtesting_py_margin():
    data = _spot()
    assert Backtest(data, _Idle, margin=0.5)._kwargs == {"leverage": 2.0}
    assert Backtest(data, _Idle, instrument="perp", margin="cross")._kwargs == {"instrument": "perp",
                                                                                "margin": "cross"}
    with pytest.raises(ValueError, match="margin must be in"):
        Backtest(data, _Idle, margin=2.0)


class _Thresh(Strategy):
    """A parameterised compiled next for the sweep: long while the close is above ``k`` x its first close."""

    k = 1.0

    def init(self):
        self.first = self.I(lambda c: np.broadcast_to(c[:1], c.shape).copy(), self.data.close)

    @staticmethod
    @njit
    def next(ctx, i):
        u = ctx.user
        for c in range(ctx.close.shape[1]):
            above = ctx.close[i, c] > u.params.k * u.first[i, c]
            if above and ctx.position[c] == 0.0:
                enter_long_nb(ctx, i, c)
            elif not above and ctx.position[c] > 0.0:
                exit_long_nb(ctx, i, c)


def test_class_api_sweep_on_perps_equals_single_runs():
    market, _ = _market(3)
    bt = Backtest(market, _Thresh, instrument="perp", leverage=5, size=0.45, init_cash=1000.0)
    best, runs = bt.optimize(k=[0.95, 0.97], maximize="Total Return [%]")
    assert len(runs) == 2
    one = bt.run(k=best.params["k"])
    assert best.is_margined and "mark" in best.assumptions and best.funding.abs().to_numpy().sum() > 0
    _same(best, one)


@pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")
@pytest.mark.parametrize("seed", range(3, 11))
def test_callback_equals_signals_on_random_perp_runs(seed):
    """More random cases for the callback loop's margin gating (liquidation checks only on bars with funding
    or a mark candle reaching a trigger): the same records as the signals loop."""
    market, sig = _market(seed, n=64)
    rng = np.random.default_rng(seed)
    kw = dict(instrument="perp", size=float(rng.uniform(0.2, 0.9)), init_cash=1000.0, reenter=True,
              leverage={"A": float(rng.integers(2, 30)), "B": float(rng.integers(2, 30))},
              fill=("next_open", "close")[seed % 2], fees=0.0004, margin=("isolated", "cross")[seed % 3 == 0])
    if kw["margin"] == "cross":
        kw["leverage"] = float(rng.integers(5, 20))
    ref = nbtrade.backtest(market, **sig, **kw)
    cb = nbtrade.backtest_callback(market, _on_bar, user=tuple(sig[k] for k in
                                                                ("entries", "exits", "short_entries", "short_exits")),
                                   **kw)
    _same(ref, cb, stats=False)  # (Return (Ann.) of stats() overflows on some of these 3-day runs)
