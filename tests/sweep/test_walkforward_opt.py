"""walk_forward_optimize: fold windows, choices equal an in-sample sweep, stitched OOS equity, no look-ahead."""
import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nbtrade
from nbtrade.sweep import walk_forward_optimize

from .conftest import cross

SYMS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
GRID = {"fast": [4, 8, 16], "slow": [24, 48]}
OPTS = dict(fees=0.001)


def _frames(t_perturb=None):
    frames = nbtrade.market(SYMS, "2024-01-01", "2024-01-06", "5m", seed=5)
    if t_perturb is not None:
        rng = np.random.default_rng(9)
        for s, df in frames.items():
            k = np.ones(len(df))
            k[t_perturb:] = np.exp(np.cumsum(rng.normal(0, 0.01, len(df) - t_perturb)))
            for c in ("open", "high", "low", "close"):
                df[c] = df[c] * k
    return frames


@pytest.fixture(scope="module")
def market():
    return nbtrade.prepare(_frames())


@pytest.fixture(scope="module")
def wfo(market):
    return walk_forward_optimize(market, cross, GRID, 400, 200, purge=10, embargo=5, n_jobs=2, **OPTS)


def test_folds_and_windows(market, wfo):
    idx = market.index
    starts = [415, 615, 815, 1015, 1215, 1415]  # the last one is short (25 bars)
    f = wfo.folds
    assert list(f.index) == list(range(6))
    for k, s in enumerate(starts):
        b = s - 15
        assert f.loc[k, "oos_start"] == idx[s] and f.loc[k, "oos_end"] == idx[min(s + 200, 1440) - 1]
        assert f.loc[k, "is_end"] == idx[b - 1] and f.loc[k, "is_start"] == idx[b - 400]
    assert list(wfo.chosen.columns) == ["fast", "slow"]
    assert {"IS Sharpe Ratio", "OOS Sharpe Ratio", "deflated_sharpe", "pbo", "trials"} <= set(f.columns)
    assert (f["trials"] == 6).all()


def test_choice_and_oos_run_equal_direct_calls(market, wfo):
    s, a, b, e = 615, 200, 600, 815
    sw = nbtrade.sweep(market[a:b], cross, GRID, n_jobs=1, **OPTS)
    assert wfo.folds.loc[1, ["fast", "slow"]].to_dict() == sw.best_params
    ent, ex = cross(market[a:e], **sw.best_params)
    res = nbtrade.backtest(market[s:e], ent[s - a:], ex[s - a:], **OPTS)
    assert_array_equal(wfo.results[1].equity.to_numpy(), res.equity.to_numpy())
    assert_allclose(wfo.folds.loc[1, "OOS Sharpe Ratio"], res.stats()["Sharpe Ratio"])


def test_stitched_equity_compounds_folds(wfo):
    eq = wfo.oos_equity
    assert len(eq) == sum(len(r.equity) for r in wfo.results) and eq.index.is_monotonic_increasing
    level = 10_000.0
    for r in wfo.results:
        seg = eq.loc[r.index]
        assert_allclose(seg.to_numpy(), level * r.equity.to_numpy() / r.init_cash, rtol=1e-12)
        level = seg.iloc[-1]


def test_no_look_ahead(wfo):
    t = 900  # prices from bar 900 on are changed
    other = walk_forward_optimize(nbtrade.prepare(_frames(t)), cross, GRID, 400, 200, purge=10, embargo=5,
                                  n_jobs=1, **OPTS)
    for k, s in enumerate([415, 615, 815]):  # folds trading before t: same choice, same fills up to t
        assert wfo.folds.loc[k, ["fast", "slow"]].equals(other.folds.loc[k, ["fast", "slow"]])
        n = min(t, s + 200) - s
        assert_array_equal(wfo.results[k].equity.to_numpy()[:n], other.results[k].equity.to_numpy()[:n])
        o1, o2 = wfo.results[k].order_records, other.results[k].order_records
        assert_array_equal(o1[o1["idx"] < n], o2[o2["idx"] < n])
    assert not np.array_equal(wfo.oos_equity.to_numpy(), other.oos_equity.to_numpy())


@pytest.mark.parametrize("kwargs, match", [
    (dict(train_window=2000, test_window=10), "windows larger than the data"),
    (dict(train_window=100, test_window=50, step=20), "would overlap"),
    (dict(train_window=100, test_window=0), "test_window must be at least one bar"),
    (dict(train_window=100, test_window=50, window="sliding"), "window must be"),
    (dict(train_window=100, test_window=50, purge=-1), "purge"),
])
def test_bad_input(market, kwargs, match):
    with pytest.raises(ValueError, match=match):
        walk_forward_optimize(market, cross, GRID, **kwargs)


def test_durations(market):
    r = walk_forward_optimize(market, cross, {"fast": [4, 8], "slow": [24]}, "2D", "1D", n_jobs=1)
    assert len(r.folds) == 3 and r.folds.loc[0, "oos_start"] == market.index[576]
