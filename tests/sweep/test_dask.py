"""Sweeps on a Dask LocalCluster (2 single-threaded worker processes): identical to the local run."""
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_array_equal

import nbtrade

from .conftest import cross

distributed = pytest.importorskip("distributed")

GRID = {"fast": [5, 10, 20], "slow": [30, 60]}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as c:
        yield c


@pytest.fixture(scope="module")
def client(cluster):
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def local(small_market):
    return nbtrade.sweep(small_market, cross, GRID, fees=0.001, n_jobs=1)


def test_identical_to_local(small_market, client, local):
    got = nbtrade.sweep(small_market, cross, GRID, fees=0.001, client=client, chunk_size=2)
    assert got.on_dask and got.n_workers == 2
    pd.testing.assert_frame_equal(got.table, local.table)
    assert_array_equal(got.blocks, local.blocks)
    assert_array_equal(got.moments, local.moments)
    # both workers got tasks (the market was scattered to each)
    assert all(v > 0 for v in client.run(lambda: 1).values())


def test_scheduler_address_and_env(small_market, cluster, local, monkeypatch):
    got = nbtrade.sweep(small_market, cross, GRID, fees=0.001, client=cluster.scheduler_address)
    pd.testing.assert_frame_equal(got.table, local.table)
    monkeypatch.setenv("NBTRADE_SCHEDULER", cluster.scheduler_address)
    got = nbtrade.sweep(small_market, cross, GRID, fees=0.001)
    assert got.on_dask
    pd.testing.assert_frame_equal(got.table, local.table)


def test_failing_combination_on_dask(small_market, client):
    def fn(market, fast, slow):
        if slow == 60:
            raise ValueError(f"slow {slow} refused")
        return cross(market, fast, slow)

    with pytest.warns(RuntimeWarning, match="3 of 6 combinations failed"):
        got = nbtrade.sweep(small_market, fn, GRID, client=client, chunk_size=1)
    assert list(got.errors["slow"]) == [60, 60, 60]
    assert got.errors["error"].str.contains("ValueError: slow 60 refused").all()


def test_unreachable_scheduler_fails_fast(small_market, monkeypatch):
    from nbtrade.sweep import distributed as dist

    assert dist.CONNECT_TIMEOUT <= 5
    monkeypatch.setattr(dist, "CONNECT_TIMEOUT", 1.0)
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=r"cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        nbtrade.sweep(small_market, cross, GRID, client="tcp://127.0.0.1:9")
    assert time.monotonic() - t0 < 10  # 1 s connect timeout, plus start-up on a busy machine


def test_bad_client(small_market):
    with pytest.raises(TypeError, match="client must be"):
        nbtrade.sweep(small_market, cross, GRID, client=42)


def _dies_once(marker):
    def fn(market, fast, slow):
        import os

        if fast == 10 and slow == 60 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)  # the worker process dies mid-sweep
        return cross(market, fast, slow)

    return fn


def test_worker_dying_mid_sweep_is_recomputed(small_market, client, local, tmp_path):
    marker = str(tmp_path / "died")
    got = nbtrade.sweep(small_market, _dies_once(marker), GRID, fees=0.001, client=client, chunk_size=1)
    assert (tmp_path / "died").exists() and len(got.errors) == 0
    pd.testing.assert_frame_equal(got.table, local.table)


def test_walk_forward_optimize_on_dask(small_market, client):
    args = (small_market, cross, {"fast": [5, 10], "slow": [30]}, 600, 400)
    local = nbtrade.walk_forward_optimize(*args, n_jobs=1, fees=0.001)
    got = nbtrade.walk_forward_optimize(*args, client=client, fees=0.001)
    pd.testing.assert_frame_equal(got.folds, local.folds)
    pd.testing.assert_series_equal(got.oos_equity, local.oos_equity)


def test_optimize_class_on_dask(small_market, client):
    from nbtrade.sweep.classopt import optimize_class

    from .conftest import NbCross

    bt = nbtrade.Backtest(small_market, NbCross, fees=0.001)
    grid = {"fast": [3, 5], "slow": [12, 20]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = bt.optimize(**grid)
        best, table = optimize_class(bt, client=client, chunk_size=1, **grid)
    pd.testing.assert_frame_equal(table, ref[1])
    assert best.params == ref[0].params
    got = nbtrade.sweep(bt, grid, client=client, chunk_size=1)
    assert got.on_dask and len(got.table) == 4 and got.best_params == {k: ref[0].params[k] for k in grid}



def test_walk_forward_folds_on_dask(client):
    from sklearn.ensemble import RandomForestClassifier

    from nbtrade.model.labels import sign_label
    from nbtrade.model.walkforward import walk_forward
    from nbtrade.synthetic import planted_features, planted_market

    df = planted_market("BTC/USDT", "2024-01-01", "2024-01-21", "1h", seed=11, strength=1.0)
    X, y = planted_features(df, extra=2).iloc[48:], sign_label(df["close"], 1).iloc[48:]
    rf = RandomForestClassifier(n_estimators=5, max_depth=3, n_jobs=1)
    kw = dict(train_window=200, test_window=40, seed=3)
    local = walk_forward(rf, X, y, **kw)
    got = walk_forward(rf, X, y, client=client, **kw)
    assert len(local.folds) >= 5
    pd.testing.assert_frame_equal(got.proba, local.proba)
    pd.testing.assert_series_equal(got.predictions, local.predictions)
    cols = ["fold", "train_start", "test_end", "n_train", "n_test", "score"]
    pd.testing.assert_frame_equal(got.folds[cols], local.folds[cols])
    # incremental folds depend on the previous one: they run here, and say so
    with pytest.warns(UserWarning, match="run sequentially"):
        inc = walk_forward(rf, X, y, retrain="incremental", refresh=2, client=client, **kw)
    pd.testing.assert_frame_equal(inc.proba, walk_forward(rf, X, y, retrain="incremental", refresh=2, **kw).proba)


def test_features_per_symbol_on_dask(small_market, client):
    from nbtrade.features import compute_features

    specs = [("ema", 12), ("sma", 20), ("sma", 50), ("rsi", 14), ("vol", 24),
             ("corr", {"window": 72, "to": "ETH/USDT"})]
    local = compute_features(small_market, specs)
    got = compute_features(small_market, specs, client=client)
    pd.testing.assert_frame_equal(got, local)
    pd.testing.assert_frame_equal(compute_features(small_market, specs, timeframe="1h", client=client),
                                  compute_features(small_market, specs, timeframe="1h"))


def test_optuna_on_dask_equals_local(small_market, client):
    pytest.importorskip("optuna")
    grid = {"fast": list(range(2, 30, 2)), "slow": list(range(30, 120, 10))}
    kw = dict(sampler="optuna", n_trials=10, seed=5, fees=0.001)
    local = nbtrade.sweep(small_market, cross, grid, n_jobs=1, **kw)
    got = nbtrade.sweep(small_market, cross, grid, client=client, **kw)
    pd.testing.assert_frame_equal(got.table, local.table)
