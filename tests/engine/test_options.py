"""nbtrade/engine/options.py (RunConfig): options validated once, frozen, kernel records and assumptions;
the front ends and the class API run from it; old module paths are aliases."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from numba import njit

import nbtrade
from nbtrade import indicators as ind
from nbtrade.engine import Backtest, RunConfig, Strategy, backtest, backtest_callback, backtest_weights
from nbtrade.engine.options import MODE_OPTIONS, PER_SYMBOL
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.kernels.records import param_dt
from nbtrade.panel import Market
from nbtrade.synthetic import market

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


@pytest.fixture(scope="module")
def data():
    return Market(market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-05", "1h", seed=3))


@pytest.fixture(scope="module")
def signals(data):
    close = data.close
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    return fast > slow, fast < slow


def test_config_is_frozen_and_holds_kernel_records(data):
    cfg = RunConfig.build(data, "signals", fees={"BTC/USDT": 0.001, "ETH/USDT": 0.002}, sl_stop=0.05,
                          size=0.4, fill="close", cash_sharing=False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fees = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.fill = "next_open"  # type: ignore[misc]
    assert cfg.params.dtype == param_dt and cfg.params.flags.writeable  # one numba specialization
    np.testing.assert_array_equal(cfg.params["fees"], [0.001, 0.002])
    np.testing.assert_array_equal(cfg.params["sl"], [0.05, 0.05])
    assert np.isnan(cfg.params["tp"]).all() and (cfg.params["size"] == 0.4).all()
    assert cfg.n_groups == 2 and cfg.groups.tolist() == [0, 1]
    assert cfg.freq_ms == 3_600_000.0
    assert cfg.kernel_config(False, False).fill_mode == cfg.fill_id
    a = cfg.assumptions(gaps=0, delayed=0)
    assert a["fees"] == {"BTC/USDT": 0.001, "ETH/USDT": 0.002} and a["size"] == 0.4
    assert a["cash_sharing"] is False and a["exit_size"] == "all" and a["fill"] == "close"


def test_every_per_symbol_option_reaches_its_kernel_field():
    assert {spec.field for spec in PER_SYMBOL.values()} <= set(param_dt.names)
    for mode, keys in MODE_OPTIONS.items():
        assert set(keys) <= set(MODE_OPTIONS["signals"]), mode


def test_run_from_config_equals_backtest(data, signals):
    from nbtrade.engine import run_signals

    entries, exits = signals
    kw = dict(fees=0.001, sl_stop=0.03, size=0.5)
    cfg = RunConfig.build(data, "signals", **kw)
    a = run_signals(data, cfg, entries, exits)
    b = backtest(data, entries, exits, **kw)
    assert a.order_records.tobytes() == b.order_records.tobytes()
    assert a.assumptions == b.assumptions
    # the same config serves a second run with other signals
    c = run_signals(data, cfg, exits, entries)
    assert c.order_records.tobytes() == backtest(data, exits, entries, **kw).order_records.tobytes()


@pytest.mark.parametrize("mode, kwargs, match", [
    ("signals", {"fees": 1.5}, "fees must be < 1"),
    ("signals", {"fill": "open"}, "unknown fill 'open'"),
    ("signals", {"size": 2.0}, "size must be <= 1 with size_type='percent'"),
    ("signals", {"order_type": "limit"}, "order_type='limit' needs order_price"),
    ("callback", {"order_type": "stop_limit"}, "not supported by backtest_callback"),
    ("callback", {"exit_size": 0.5}, "exit_size is not supported by backtest_callback"),
    ("weights", {"leverage": 0}, "leverage must be a finite number > 0"),
    ("signals", {"tif": -1}, "tif must be an integer >= 0"),
    ("signals", {"cash_sharing": ["a"]}, "cash_sharing has 1 group labels for 2 symbols"),
])
def test_build_refuses_bad_options_naming_them(data, mode, kwargs, match):
    with pytest.raises(ValueError, match=match):
        RunConfig.build(data, mode, **kwargs)


def test_build_refuses_unknown_mode_and_options(data):
    with pytest.raises(ValueError, match="unknown mode 'vectors'"):
        RunConfig.build(data, "vectors")
    with pytest.raises(TypeError, match="did you mean fees=?"):
        RunConfig.build(data, "signals", fee=0.001)
    with pytest.raises(TypeError, match="unexpected keyword argument 'sl_stop'"):
        RunConfig.build(data, "weights", sl_stop=0.1)  # weights take no stops


def test_signal_dependent_checks_stay_in_the_run(data, signals):
    entries, exits = signals
    cfg = RunConfig.build(data, "signals", sl_stop=1.5)  # fine for shorts...
    from nbtrade.engine import run_signals

    run_signals(data, cfg, short_entries=entries, short_exits=exits)
    with pytest.raises(ValueError, match="sl_stop must be < 1 for long positions"):
        run_signals(data, cfg, entries, exits)  # ...not for longs only


class SmaCross(Strategy):
    fast, slow = 5, 20

    def init(self):
        self.f = self.I(ind.sma, self.data.close, self.fast)
        self.s = self.I(ind.sma, self.data.close, self.slow)

    @staticmethod
    @njit
    def next(ctx, i):
        f, s, params = ctx.user
        for c in range(f.shape[1]):
            if ctx.position[c] == 0.0 and f[i, c] > s[i, c]:
                enter_long_nb(ctx, i, c)
            elif ctx.position[c] > 0.0 and f[i, c] < s[i, c]:
                exit_long_nb(ctx, i, c)


def test_backtest_builds_the_config_once(data, monkeypatch):
    calls = []
    build = RunConfig.build.__func__

    def counting(cls, *a, **k):
        calls.append(a[1] if len(a) > 1 else k.get("mode"))
        return build(cls, *a, **k)

    monkeypatch.setattr(RunConfig, "build", classmethod(counting))
    bt = Backtest(data, SmaCross, commission=0.001, size=0.4)
    assert calls == ["callback"]
    best, table = bt.optimize(fast=[3, 5], slow=[10, 20])
    assert calls == ["callback"] and len(table) == 4  # optimize re-validates nothing
    assert bt.config.values["fees"].tolist() == [0.001, 0.001]
    direct = backtest_callback(data, SmaCross.next, user=_user(bt, fast=3, slow=10), fees=0.001, size=0.4)
    assert bt.run(fast=3, slow=10).order_records.tobytes() == direct.order_records.tobytes()


def _user(bt, **params):
    from nbtrade.engine.classapi import _Cursor, _Data, _user_tuple

    inp = bt._inputs
    cur = _Cursor()
    arrays = {"open": inp.open, "high": inp.high, "low": inp.low, "close": inp.close, "volume": None}
    strat = SmaCross(_Data(arrays, inp.index, list(inp.symbols), cur, bt._market), cur,
                     {**{"fast": 5, "slow": 20}, **params})
    strat.init()
    return _user_tuple(strat)


def test_weights_front_end(data):
    import pandas as pd

    w = pd.DataFrame(0.4, index=data.index, columns=data.symbols)
    res = backtest_weights(data, w, rebalance_every=24, fees=0.001)
    assert res.assumptions["delayed_orders"] == 0 and res.assumptions["fees"] == 0.001


def test_old_paths_are_aliases(monkeypatch):
    import nbtrade.backtesting as old
    import nbtrade.engine.callback as cb
    import nbtrade.engine.signals as sig
    import nbtrade.strategy as old_class

    assert old.backtest is backtest and old.backtest_weights is backtest_weights
    assert old_class.Backtest is Backtest and old_class.Strategy is Strategy
    assert old.prepare is nbtrade.prepare and old.RejectedOrdersWarning is nbtrade.RejectedOrdersWarning
    assert old._PARALLEL_CHECK > 0  # private names too
    monkeypatch.setattr(old, "_SIGNAL_BUFFER", 4)  # a test's monkeypatch reaches the engine
    assert sig._SIGNAL_BUFFER == 4
    monkeypatch.setattr(old, "_CALLBACK_BUFFER", 8)
    assert cb._CALLBACK_BUFFER == 8
    monkeypatch.undo()  # deleting a forwarded name (pytest >= 9.1's undo) gives the engine its value back
    assert sig._SIGNAL_BUFFER > 4 and cb._CALLBACK_BUFFER > 8
    assert callable(nbtrade.backtest) and nbtrade.backtest is backtest  # not shadowed by the package
    assert "backtest" in dir(old)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        old.nope  # noqa: B018


def test_python_next_bridge_kept_its_old_name():
    import nbtrade.kernels.python_next as bridge
    import nbtrade.kernels.strategy as old

    assert old.python_next_nb is bridge.python_next_nb


def test_defaults_are_the_front_ends_defaults():
    """RunConfig.build's defaults (options not given) equal the public signatures' defaults."""
    import inspect

    from nbtrade.engine.options import DEFAULTS

    for fn, mode in ((backtest, "signals"), (backtest_weights, "weights")):
        params = inspect.signature(fn).parameters
        for key in MODE_OPTIONS[mode]:
            assert params[key].default == DEFAULTS[key] or (params[key].default is None and DEFAULTS[key] is None), key
    assert set(MODE_OPTIONS["callback"]) <= set(inspect.signature(backtest).parameters)


def test_a_config_runs_only_on_its_market_and_mode(data, signals):
    from nbtrade.engine import run_signals, run_weights

    entries, exits = signals
    cfg = RunConfig.build(data, "signals")
    with pytest.raises(ValueError, match="built for symbols"):
        run_signals(data["BTC/USDT"], cfg, entries[["BTC/USDT"]], exits[["BTC/USDT"]])
    with pytest.raises(ValueError, match="built for mode 'signals', not 'weights'"):
        run_weights(data, cfg, entries.astype(float) * 0.1)
    limit = RunConfig.build(data, "signals", order_type="limit", order_price=data.close * 0.99)
    with pytest.raises(ValueError, match="price levels have 96 bars, the market 48"):
        run_signals(data[:48], limit, entries.iloc[:48], exits.iloc[:48])
