"""Class API: Strategy/Backtest in compiled and Python modes equal the signals engine; params, optimize, errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numba import njit

from nbtrade import indicators as ind
from nbtrade.engine import backtest
from nbtrade.kernels.callback import enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb
from nbtrade.engine.classapi import Backtest, Strategy, crossover
from nbtrade.synthetic import market

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


class PyCross(Strategy):
    """Python next: long on a cross up, short on a cross down (reversals)."""
    fast = 5
    slow = 20

    def init(self):
        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I(ind.sma, self.data.close, self.slow)

    def next(self):
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.sell()


class NbCross(PyCross):
    """The same decisions, compiled."""

    @staticmethod
    @njit
    def next(ctx, i):
        f, s, params = ctx.user
        if i < 1:
            return
        for c in range(ctx.close.shape[1]):
            if f[i - 1, c] < s[i - 1, c] and f[i, c] > s[i, c]:
                enter_long_nb(ctx, i, c)
            elif s[i - 1, c] < f[i - 1, c] and s[i, c] > f[i, c]:
                enter_short_nb(ctx, i, c)


class PyRandom(Strategy):
    """State-dependent random decisions (long, short, reversals, exits) read from a table."""
    seed = 0

    def init(self):
        rng = np.random.default_rng(self.seed)
        self.r = self.I(lambda c: rng.random(c.shape), self.data.close)

    def next(self):
        r, pos = self.r[-1], self.position
        if not pos:
            if r < 0.1:
                self.buy()
            elif r < 0.2:
                self.sell()
        elif r > 0.85:
            pos.close()
        elif r < 0.03:
            self.sell() if pos.is_long else self.buy()


@njit
def _random_nb(ctx, i, r):
    for c in range(ctx.close.shape[1]):
        p, x = ctx.position[c], r[i, c]
        if p == 0.0:
            if x < 0.1:
                enter_long_nb(ctx, i, c)
            elif x < 0.2:
                enter_short_nb(ctx, i, c)
        elif x > 0.85:
            if p > 0.0:
                exit_long_nb(ctx, i, c)
            else:
                exit_short_nb(ctx, i, c)
        elif x < 0.03:
            if p > 0.0:
                enter_short_nb(ctx, i, c)
            else:
                enter_long_nb(ctx, i, c)


class NbRandom(PyRandom):
    @staticmethod
    @njit
    def next(ctx, i):
        _random_nb(ctx, i, ctx.user.r)


@pytest.fixture(scope="module")
def data():
    return market(["A", "B", "C"], "2024-01-01", "2024-01-21", "1h", seed=11)


def _close(d):
    return pd.DataFrame({k: v["close"] for k, v in d.items()})


def _reference(d, fast, slow, **kw):
    f, s = ind.sma(_close(d), fast), ind.sma(_close(d), slow)
    up = (f > s) & (f.shift() < s.shift())
    down = (s > f) & (s.shift() < f.shift())
    return backtest(d, entries=up, short_entries=down, exits=None, short_exits=None, **kw)


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("strategy", [PyCross, NbCross], ids=["python", "compiled"])
def test_sma_cross_equals_signals_engine(data, strategy, fill):
    kw = dict(fees=0.001, size=0.3, sl_stop=0.03, fill=fill)
    res = Backtest(data, strategy, **kw).run(fast=4, slow=15)
    ref = _reference(data, 4, 15, **kw)
    assert len(res.trade_records) > 10
    np.testing.assert_allclose(res.equity.to_numpy(), ref.equity.to_numpy(), rtol=0, atol=1e-9)
    assert res.order_records.tobytes() == ref.order_records.tobytes()
    assert (res.trades["exit_reason"] == "sl").any()
    assert "Sharpe Ratio" in res.stats().index


def test_backtesting_py_aliases(data):
    a = Backtest(data, PyCross, cash=5_000, commission=0.002, trade_on_close=True, size=0.3).run()
    b = _reference(data, 5, 20, init_cash=5_000, fees=0.002, fill="close", size=0.3)
    np.testing.assert_allclose(a.equity.to_numpy(), b.equity.to_numpy(), rtol=0, atol=1e-9)


def test_parameters_override_per_run(data):
    bt = Backtest(data, PyCross, size=0.3)
    default, tuned = bt.run(), bt.run(fast=8)
    assert default.params == {"fast": 5, "slow": 20} and tuned.params == {"fast": 8, "slow": 20}
    assert PyCross.fast == 5  # the class is left alone
    np.testing.assert_allclose(tuned.equity.to_numpy(), _reference(data, 8, 20, size=0.3).equity.to_numpy(),
                               rtol=0, atol=1e-9)
    assert "PyCross(fast=8, slow=20)" in tuned.assumptions["strategy"]
    # after the run the strategy's indicators read as whole arrays (for plots)
    assert tuned.strategy.f.shape == (len(tuned.equity), 3)


def test_compiled_next_reads_named_indicators_and_params(data):
    class Thresh(Strategy):
        level = 1.0

        def init(self):
            self.ratio = self.I(lambda c: c / c.rolling(10).mean(), self.data.close)

        @staticmethod
        @njit
        def next(ctx, i):
            u = ctx.user
            for c in range(ctx.close.shape[1]):
                if ctx.position[c] == 0.0 and u.ratio[i, c] > u.params.level:
                    enter_long_nb(ctx, i, c)

    res = Backtest(data, Thresh, size=0.3).run(level=1.01)
    ratio = _close(data) / _close(data).rolling(10).mean()
    ref = backtest(data, entries=ratio > 1.01, size=0.3)
    np.testing.assert_allclose(res.equity.to_numpy(), ref.equity.to_numpy(), rtol=0, atol=1e-9)


def test_optimize_picks_the_best_of_the_grid(data):
    bt = Backtest(data, PyCross, size=0.3, fees=0.001)
    best, table = bt.optimize(fast=[3, 5], slow=[12, 20, 30], constraint=lambda p: p.fast < p.slow)
    assert len(table) == 6 and list(table.columns[:2]) == ["fast", "slow"]
    sharpe = {(f, s): bt.run(fast=f, slow=s).stats()["Sharpe Ratio"] for f in (3, 5) for s in (12, 20, 30)}
    top = max(sharpe, key=sharpe.get)
    assert (best.params["fast"], best.params["slow"]) == top
    assert table["Sharpe Ratio"].iloc[0] == pytest.approx(sharpe[top])
    assert table["Sharpe Ratio"].is_monotonic_decreasing
    best2, _ = bt.optimize(fast=[3, 5], slow=20, maximize=lambda r: -r.stats()["Total Return [%]"])
    worst = min((3, 5), key=lambda f: bt.run(fast=f).stats()["Total Return [%]"])
    assert best2.params["fast"] == worst
    sample, table3 = bt.optimize(fast=[3, 5], slow=[12, 20, 30], max_tries=3, random_state=1)
    assert len(table3) == 3 and len(table3.drop_duplicates(["fast", "slow"])) == 3
    with pytest.raises(ValueError, match="max_tries"):
        bt.optimize(fast=[3], max_tries=0)
    with pytest.raises(ValueError, match="not a statistic"):
        bt.optimize(fast=[3], maximize="Sharpe")
    with pytest.raises(ValueError, match="constraint rejects"):
        bt.optimize(fast=[3], constraint=lambda p: False)
    with pytest.raises(ValueError, match="grid"):
        bt.optimize()


def test_python_next_sees_no_future(data):
    seen = []

    class Peek(Strategy):
        def init(self):
            assert isinstance(self.data.close, pd.DataFrame) and self.data.close.shape == (480, 3)
            self.c = self.I(lambda x: x, self.data.close)

        def next(self):
            i = self.i
            assert len(self.c) == len(self.data.close) == len(self.data.index) == i + 1
            assert self.c[-1] == self.data.close[-1] == self.data.close[i]
            assert np.asarray(self.c).shape == (i + 1,) and self.c[-3:].shape == (min(3, i + 1),)
            with pytest.raises(IndexError, match="future"):
                self.c[i + 1]
            with pytest.raises(IndexError, match="future"):
                self.data.high[i + 5]
            with pytest.raises(ValueError):  # views are read-only
                np.asarray(self.c)[0] = 0.0
            seen.append((i, self.symbol))

    Backtest(data, Peek).run()
    assert len(seen) == 480 * 3 and seen[:3] == [(0, "A"), (0, "B"), (0, "C")]


def test_python_next_perturbing_the_future_changes_nothing_before(data):
    t = 200
    late = {k: v.copy() for k, v in data.items()}
    for v in late.values():
        v.iloc[t + 1:, :4] *= 1.3
    a = Backtest(data, PyCross, size=0.3).run()
    b = Backtest(late, PyCross, size=0.3).run()
    np.testing.assert_array_equal(a.equity.to_numpy()[:t + 1], b.equity.to_numpy()[:t + 1])
    assert not np.array_equal(a.equity.to_numpy(), b.equity.to_numpy())


def test_python_next_reads_live_position_cash_and_volume(data):
    class HoldTwo(Strategy):
        def init(self):
            self.vol = self.I(lambda v: v, self.data.volume)
            self.held = {}

        def next(self):
            assert self.data.volume[-1] == self.vol[-1] > 0
            if not self.position:
                if self.cash > 100.0:
                    self.buy()
                    self.held[self.symbol] = 0
            else:
                assert self.position.is_long and self.position.size > 0 and self.equity > self.cash
                self.held[self.symbol] += 1
                if self.held[self.symbol] >= 2:
                    self.position.close()

    res = Backtest(data, HoldTwo, size=0.2).run()
    trades = res.trades
    assert len(trades) > 100
    bars = (trades["exit_time"] - trades["entry_time"]) / pd.Timedelta("1h")
    assert (bars[trades["exit_reason"] == "signal"] == 2).all()


def test_warm_up_skips_bars_until_indicators_are_defined(data):
    first = {}

    class Warm(Strategy):
        def init(self):
            self.s = self.I(ind.sma, self.data.close, 30)

        def next(self):
            first.setdefault(self.symbol, self.i)
            assert not np.isnan(self.s[-1])

    Backtest(data, Warm).run()
    assert first == {"A": 29, "B": 29, "C": 29}


def test_errors_in_next_are_raised(data):
    class Boom(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 7:
                raise RuntimeError("boom at 7")

    with pytest.raises(RuntimeError, match="boom at 7"):
        Backtest(data, Boom).run()

    class Calls(Strategy):
        def init(self):
            pass

        def next(self):
            self.buy(limit=0.5)

    with pytest.raises(ValueError, match=r"buy\(limit=...\) needs Backtest\(..., order_type='limit'\)"):
        Backtest(data, Calls, order_type="stop").run()  # no run-level type: mixed, allowed

    class LateI(Strategy):
        def init(self):
            pass

        def next(self):
            self.I(ind.sma, self.data.close, 3)

    with pytest.raises(RuntimeError, match="in init"):
        Backtest(data, LateI).run()


def test_bad_strategies_raise_clear_errors(data):
    class NoInit(Strategy):
        def next(self):
            pass

    class NoNext(Strategy):
        def init(self):
            pass

    class WrongNext(Strategy):
        def init(self):
            pass

        def next(self, i):
            pass

    class NotJitted(Strategy):
        def init(self):
            pass

        @staticmethod
        def next(ctx, i):
            pass

    class JitArity(Strategy):
        def init(self):
            pass

        @staticmethod
        @njit
        def next(ctx):
            pass

    for cls, msg in ((NoInit, "must define init"), (NoNext, "must define next"),
                     (WrongNext, r"def next\(self\)"), (NotJitted, "not numba-compiled"),
                     (JitArity, r"next\(ctx, i\)")):
        with pytest.raises(TypeError, match=msg):
            Backtest(data, cls)
    with pytest.raises(TypeError, match="Strategy subclass"):
        Backtest(data, object)
    with pytest.raises(TypeError, match="no parameter 'fsat'"):
        Backtest(data, PyCross).run(fsat=3)
    with pytest.raises(TypeError, match="no parameter 'fsat'"):
        Backtest(data, PyCross).optimize(fsat=[3])
    with pytest.raises(ValueError, match="margin"):
        Backtest(data, PyCross, margin=0)
    assert Backtest(data, PyCross, margin=0.5)._kwargs == {"leverage": 2.0}
    with pytest.raises(TypeError, match="unexpected keyword argument 'feez'; did you mean fees="):
        Backtest(data, PyCross, feez=0.1)
    with pytest.raises(TypeError, match="twice"):
        Backtest(data, PyCross, cash=1.0, init_cash=2.0)
    with pytest.raises(TypeError, match="no entries"):
        Backtest(data, PyCross, entries=None)

    class BadShape(Strategy):
        def init(self):
            self.x = self.I(lambda c: c.to_numpy()[:-1], self.data.close)

        def next(self):
            pass

    with pytest.raises(ValueError, match="has shape"):
        Backtest(data, BadShape).run()

    class BadCols(Strategy):
        def init(self):
            self.x = self.I(lambda c: c.rename(columns={"A": "Z"}), self.data.close)

        def next(self):
            pass

    with pytest.raises(ValueError, match="columns"):
        Backtest(data, BadCols).run()


def test_one_symbol_frame_and_multi_output_indicator():
    df = market("BTC/USDT", "2024-01-01", "2024-01-11", "1h", seed=3)

    class Bands(Strategy):
        def init(self):
            self.up, self.mid, self.lo = self.I(ind.bbands, self.data.close, 20)

        def next(self):
            price = self.data.close[-1]
            if not self.position and price < self.lo[-1]:
                self.buy()
            elif self.position and price > self.mid[-1]:
                self.position.close()

    res = Backtest(df, Bands, commission=0.001).run()
    up, mid, lo = ind.bbands(df["close"], 20)
    ref = backtest(df, entries=df["close"] < lo, exits=df["close"] > mid, fees=0.001)
    assert len(ref.trade_records) > 2
    np.testing.assert_allclose(res.equity.to_numpy(), ref.equity.to_numpy(), rtol=0, atol=1e-9)


_SCRIPT = r"""
from nbtrade.engine.classapi import Backtest
from nbtrade.synthetic import market
from tests.engine.test_classapi import NbCross, PyCross

d = market(["A", "B", "C"], "2024-01-01", "2024-01-21", "1h", seed=11)
for S in (PyCross, NbCross):
    res = Backtest(d, S, fees=0.001, size=0.3, sl_stop=0.03).run(fast=4, slow=15)
    print(repr(float(res.equity.iloc[-1])), len(res.order_records))
"""


def test_both_modes_run_with_jit_disabled(data):
    """NUMBA_DISABLE_JIT=1 runs the compiled next (and the engine) as Python, for debugging."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).parents[2])
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split() for line in proc.stdout.split("\n") if line]
    ref = Backtest(data, NbCross, fees=0.001, size=0.3, sl_stop=0.03).run(fast=4, slow=15)
    assert len(lines) == 2
    for eq, n_orders in lines:
        assert int(n_orders) == len(ref.order_records) > 10
        # equal to the last bits (LLVM may fuse a multiply-add that Python rounds twice)
        assert abs(float(eq) - ref.equity.iloc[-1]) <= 1e-12 * ref.equity.iloc[-1]


def test_symbol_listed_later_and_limit_entries_cancelled(data):
    late = {k: v.copy() for k, v in data.items()}
    late["C"].iloc[:100] = np.nan  # C is listed at bar 100
    calls = {}

    class Dip(Strategy):
        def init(self):
            self.lvl = self.I(lambda c: c * 0.995, self.data.close)

        def next(self):
            calls.setdefault(self.symbol, self.i)
            if not self.position:
                if self.i % 3 == 2:
                    self.cancel()
                else:
                    self.buy()
            elif self.i % 5 == 0:
                self.position.close()
                self.position.close()  # twice is the same signal

    kw = dict(size=0.3, order_type="limit", on_gap="skip")
    close = pd.DataFrame({k: v["close"] for k, v in late.items()})
    res = Backtest(late, Dip, order_price=(close * 0.995).to_numpy(), **kw).run()
    assert calls == {"A": 0, "B": 0, "C": 100}
    assert (res.orders["status"] == "cancelled").any() and (res.orders["status"] == "filled").any()
    assert res.positions["C"].iloc[:101].eq(0).all()


def test_compiled_next_without_parameters_and_named_indicator(data):
    class Bare(Strategy):
        def init(self):
            keep = [self.I(lambda c: c.rolling(3).mean(), self.data.close, name="m3")]
            self.keep = keep

        @staticmethod
        @njit
        def next(ctx, i):
            if i == 10:
                for c in range(ctx.close.shape[1]):
                    if ctx.user.m3[i, c] > 0:
                        enter_long_nb(ctx, i, c)

    res = Backtest(data, Bare, size=0.3).run()
    assert len(res.trade_records) == 3 and res.params == {}
    with pytest.raises(ValueError, match="identifier"):
        class BadName(Bare):
            def init(self):
                self.I(lambda c: c, self.data.close, name="not valid")

        Backtest(data, BadName).run()


def test_python_next_cash_and_equity_per_account(data):
    seen = []

    class Half(Strategy):
        def init(self):
            pass

        def next(self):
            if self.i == 0:
                assert self.cash == self.equity == 1_000.0
                self.buy()
            elif self.i == 1:
                seen.append((self.symbol, self.cash, self.equity))

    res = Backtest(data, Half, cash_sharing=False, init_cash=1_000.0, size=0.5, fees=0.001).run()
    assert [s for s, _, _ in seen] == ["A", "B", "C"]
    for j, (sym, cash, equity) in enumerate(seen):
        assert 499.0 < cash < 500.0
        pos, close = res.positions[sym].iloc[1], data[sym]["close"].iloc[1]
        assert equity == pytest.approx(cash + pos * close, rel=1e-12)
    shared = []

    class Shared(Half):
        def next(self):
            if self.i == 0 and self.symbol == "A":
                self.buy()
            elif self.i == 1:
                shared.append(self.cash)

    Backtest(data, Shared, init_cash=1_000.0, size=0.5).run()
    assert shared[0] == shared[1] == shared[2] and 499.0 < shared[0] < 500.001


def test_ctx_user_field_names(data):
    from nbtrade.engine.classapi import _user_tuple

    class Names(Strategy):
        n = 3
        scale = 0.5
        label = "text"  # not numeric: not in params

        def init(self):
            self.params = self.I(ind.sma, self.data.close, self.n)
            self._hidden = self.I(ind.sma, self.data.close, 4)
            self.other = [self.I(ind.sma, self.data.close, 5)]
            self.ind2 = self.I(ind.sma, self.data.close, 6)
            self.again = self.params

        def next(self):
            pass

    user = _user_tuple(Backtest(data, Names).run(scale=2.0).strategy)
    assert user._fields == ("params_", "hidden", "ind2", "ind2_", "params")
    assert user.params._asdict() == {"n": 3, "scale": 2.0}
    assert user.hidden.shape == (480, 3) and np.isnan(user.hidden[2]).all() and not np.isnan(user.hidden[3]).any()


def test_engine_warnings_point_at_the_callers_line(data):
    from nbtrade.engine import RejectedOrdersWarning

    with pytest.warns(RejectedOrdersWarning) as rec:
        Backtest(data, PyCross, size=1.0).run()  # all-in on 3 symbols: later entries lack cash
    assert rec[0].filename == __file__


@pytest.mark.parametrize("seed,fill,extra", [(0, "next_open", {}), (1, "close", {}),
                                             (2, "next_open", {"cash_sharing": False, "tp_stop": 0.02}),
                                             (3, "next_open", {"size_type": "value", "size": 2_000.0})])
def test_python_and_compiled_next_agree_on_random_state_dependent_decisions(data, seed, fill, extra):
    kw = {"fees": 0.001, "size": 0.4, "sl_stop": 0.02, "fill": fill, "slippage": 0.0005, **extra}
    py = Backtest(data, PyRandom, **kw).run(seed=seed)
    nb = Backtest(data, NbRandom, **kw).run(seed=seed)
    assert len(py.trade_records) > 50 and (py.trades["direction"] == "short").any()
    assert py.order_records.tobytes() == nb.order_records.tobytes()
    assert py.trade_records.tobytes() == nb.trade_records.tobytes()
    np.testing.assert_array_equal(py.equity.to_numpy(), nb.equity.to_numpy())


class PyPartial(Strategy):
    """Python next with backtesting.py's ``position.close(portion)``: half now, the rest later."""

    def init(self):
        self.f = self.I(ind.sma, self.data.close, 5)
        self.s = self.I(ind.sma, self.data.close, 20)

    def next(self):
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.position.close(0.5)
        elif self.f[-1] < self.s[-1] * 0.99:
            self.position.close()


def test_python_next_partial_close_equals_the_signals_path():
    data = market(["A", "B"], "2024-01-01", "2024-01-20", "1h", seed=11)
    res = Backtest(data, PyPartial, size=0.4).run()
    close = pd.DataFrame({k: v.close for k, v in data.items()})
    f, s = close.rolling(5).mean(), close.rolling(20).mean()
    up = (f > s) & (f.shift(1) < s.shift(1))
    down = (s > f) & (s.shift(1) < f.shift(1))
    full = ~down & (f < s * 0.99)
    # the exits a flat symbol sends are dropped by the engine either way
    ref = backtest(data, entries=up, exits=down | full, exit_size=np.where(down, 0.5, 1.0), size=0.4)
    np.testing.assert_allclose(res.equity, ref.equity, rtol=1e-9)
    assert (res.trades.groupby(["symbol", "entry_time"]).size() > 1).any()  # some closed in parts
    with pytest.raises(ValueError, match="portion"):
        class Bad(PyPartial):
            def next(self):
                if self.position:
                    self.position.close(0.0)
                elif crossover(self.f, self.s):
                    self.buy()
        Backtest(data, Bad).run()


def test_a_run_leaves_no_reference_cycle():
    """A class-API run's strategy, indicators and per-order arrays are freed as soon as the result goes (no
    cycle through the position or the Python next's driver waiting for the garbage collector: meanwhile
    each run page-faulted fresh memory, ~2x slower)."""
    import gc

    data = market(["A", "B"], "2024-01-01", "2024-01-05", "1h", seed=3)

    class Cross(Strategy):
        def init(self):
            self.fast = self.I(ind.sma, self.data.close, 3)

        def next(self):
            if self.data.close[-1] > self.fast[-1] and not self.position:
                self.buy()
            elif self.data.close[-1] < self.fast[-1] and self.position:
                self.position.close()

    bt = Backtest(data, Cross)
    bt.run()
    gc.collect()
    gc.disable()
    try:
        gc.set_debug(gc.DEBUG_SAVEALL)
        res = bt.run()
        assert res.strategy.position.size == res.strategy.position.size  # the position still answers
        del res
        gc.collect()
        # (the Python next's ctypes callback keeps a small cycle of its own; the strategy is not in it)
        held = [type(o).__name__ for o in gc.garbage
                if type(o).__name__ in ("Cross", "_Indicator", "_Data", "_Cursor", "_Position", "Result")]
        assert not held, held
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
