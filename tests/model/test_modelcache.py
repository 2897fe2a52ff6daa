import threading

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from nbtrade.cache import default_root
from nbtrade.model.modelcache import ModelCache
from nbtrade.model.labels import sign_label
from nbtrade.model.walkforward import walk_forward
from nbtrade.synthetic import planted_features, planted_market


@pytest.fixture(scope="module")
def data():
    df = planted_market("ETH/USDT", "2024-01-01", "2024-02-15", "1h", seed=4)
    X = planted_features(df, extra=4).iloc[48:]
    y = sign_label(df["close"], 1).iloc[48:]
    return X, y


def rf(**kw):
    return RandomForestClassifier(**{"n_estimators": 8, "max_depth": 4, "n_jobs": 1, **kw})


KW = dict(train_window=300, test_window=100, seed=1)


@pytest.mark.parametrize("retrain", ["full", "incremental"])
def test_warm_rerun_hits_and_is_identical_after_restart(tmp_path, data, retrain):
    X, y = data
    cold = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2, cache=ModelCache(tmp_path))
    assert not cold.folds["cache_hit"].any()
    mc = ModelCache(tmp_path)            # a restarted process: empty memory, same disk
    warm = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2, cache=mc)
    assert warm.folds["cache_hit"].all() and warm.folds["fit_s"].sum() == 0
    s = mc.outputs.stats()   # fold outputs come from disk: no model is even loaded
    assert s.disk_hits == len(warm.folds) and s.misses == 0 and s.hit_rate == 1.0 and s.time_saved > 0
    assert mc.stats().hits == mc.stats().misses == 0
    pd.testing.assert_frame_equal(cold.proba, warm.proba)
    pd.testing.assert_frame_equal(cold.feature_importances, warm.feature_importances)
    again = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2, cache=mc)   # memory hits now
    assert again.folds["cache_hit"].all() and mc.outputs.stats().memory_hits == len(again.folds)
    # models reload from disk after a restart when outputs are gone (e.g. new test data)
    mc2 = ModelCache(tmp_path)
    mc2.outputs.clear()
    models = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2, cache=mc2)
    assert models.folds["cache_hit"].all() and mc2.stats().disk_hits >= 1 and mc2.stats().misses == 0
    pd.testing.assert_frame_equal(cold.proba, models.proba)


def test_sliding_chain_replayed_when_a_parent_model_is_gone(tmp_path, data):
    X, y = data
    kw = dict(**KW, retrain="incremental", refresh=2)
    cold = walk_forward(rf(), X, y, **kw, cache=ModelCache(tmp_path))
    mc = ModelCache(tmp_path)
    mc.clear()                       # models and outputs gone...
    longer = walk_forward(rf(), X, y, **kw, cache=mc)
    pd.testing.assert_frame_equal(cold.proba, longer.proba)
    mc3 = ModelCache(tmp_path)
    mc3.outputs.clear()
    for f in sorted(tmp_path.glob("*.nbc"))[:3]:
        f.unlink()                   # some models of the chain evicted
    replay = walk_forward(rf(), X, y, **kw, cache=mc3)
    pd.testing.assert_frame_equal(cold.proba, replay.proba)


def test_no_cache_equals_cache(tmp_path, data):
    X, y = data
    a = walk_forward(rf(), X, y, **KW)
    b = walk_forward(rf(), X, y, **KW, cache=str(tmp_path))
    pd.testing.assert_frame_equal(a.proba, b.proba)


def test_changes_miss(tmp_path, data):
    X, y = data
    mc = ModelCache(tmp_path)
    walk_forward(rf(), X, y, **KW, cache=mc)
    other_params = walk_forward(rf(min_samples_leaf=3), X, y, **KW, cache=mc)
    assert not other_params.folds["cache_hit"].any()
    X2 = X.copy()
    X2.iloc[150, 0] += 1e-9     # one value in the first training window
    changed = walk_forward(rf(), X2, y, **KW, cache=mc)
    assert changed.folds["cache_hit"].tolist()[:2] == [False, False]
    renamed = walk_forward(rf(), X.rename(columns={"clv": "clv2"}), y, **KW, cache=mc)
    assert not renamed.folds["cache_hit"].any()
    other_seed = walk_forward(rf(), X, y, 300, 100, seed=2, cache=mc)
    assert not other_seed.folds["cache_hit"].any()
    jobs = walk_forward(RandomForestClassifier(n_estimators=8, max_depth=4, n_jobs=2), X, y, **KW, cache=mc)
    assert jobs.folds["cache_hit"].all()   # n_jobs does not change the model


def test_key_is_deterministic():
    X = np.arange(20.0).reshape(10, 2)
    y = np.arange(10) % 2
    k1 = ModelCache.key(rf(), X, y, features=["a", "b"], window=(0, 10))
    assert k1 == ModelCache.key(rf(), X.copy(), y.copy(), features=["a", "b"], window=(0, 10))
    assert k1 != ModelCache.key(rf(), X, y, features=["a", "b"], window=(0, 11))
    assert k1 != ModelCache.key(rf(max_depth=5), X, y, features=["a", "b"], window=(0, 10))


def test_tampered_model_file_refused_deleted_and_rebuilt(tmp_path, data, monkeypatch):
    X, y = data
    cold = walk_forward(rf(), X, y, **KW, cache=ModelCache(tmp_path))
    files = sorted(tmp_path.glob("*.nbc"))
    assert len(files) == len(cold.folds)
    victim = files[0]
    raw = bytearray(victim.read_bytes())
    raw[-10] ^= 0x55
    victim.write_bytes(bytes(raw))
    import nbtrade.cache as cache_mod
    seen = []
    real_loads = cache_mod.pickle.loads
    monkeypatch.setattr(cache_mod.pickle, "loads", lambda b, **k: seen.append(len(b)) or real_loads(b, **k))
    mc = ModelCache(tmp_path)
    mc.outputs.clear()              # force the models to be read
    warm = walk_forward(rf(), X, y, **KW, cache=mc)
    assert mc.stats().corrupt == 1
    assert warm.folds["cache_hit"].sum() == len(warm.folds) - 1   # the tampered fold was refitted
    assert len(seen) == len(warm.folds) - 1                        # and never unpickled
    pd.testing.assert_frame_equal(cold.proba, warm.proba)
    assert len(list(tmp_path.glob("*.nbc"))) == len(cold.folds)    # rebuilt on disk


def test_tampered_output_file_refused_and_recomputed(tmp_path, data):
    X, y = data
    cold = walk_forward(rf(), X, y, **KW, cache=ModelCache(tmp_path))
    out_files = sorted((tmp_path / "outputs").glob("*.nbc"))
    assert len(out_files) == len(cold.folds)
    raw = bytearray(out_files[2].read_bytes())
    raw[60] ^= 0x01
    out_files[2].write_bytes(bytes(raw))
    mc = ModelCache(tmp_path)
    warm = walk_forward(rf(), X, y, **KW, cache=mc)
    assert mc.outputs.stats().corrupt == 1 and mc.stats().disk_hits == 1
    pd.testing.assert_frame_equal(cold.proba, warm.proba)


def test_lru_by_count_and_bytes(tmp_path, data):
    X, y = data
    mc = ModelCache(None, maxsize=2)
    r = walk_forward(rf(), X, y, **KW, cache=mc)
    s = mc.stats()
    assert s.entries == 2 and s.evictions == len(r.folds) - 2
    mb = ModelCache(None, maxsize=None, maxbytes=60_000)
    walk_forward(rf(), X, y, **KW, cache=mb)
    sb = mb.stats()
    assert 0 < sb.bytes <= 60_000 and sb.evictions > 0
    disk = ModelCache(tmp_path, maxsize=0, disk_maxsize=3)
    walk_forward(rf(), X, y, **KW, cache=disk)
    assert len(list(tmp_path.glob("*.nbc"))) == 3


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("NBTRADE_HOME", str(tmp_path))
    assert ModelCache().path == default_root() / "models" == tmp_path / "cache" / "models"


def test_threads_share_a_cache(data):
    X, y = data
    mc = ModelCache(None)
    ref = walk_forward(rf(), X, y, **KW)
    out, errors = [], []

    def run():
        try:
            out.append(walk_forward(rf(), X, y, **KW, cache=mc))
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for r in out:
        pd.testing.assert_frame_equal(r.proba, ref.proba)


@pytest.mark.parametrize("retrain", ["full", "incremental"])
def test_appended_data_fits_only_new_folds(tmp_path, data, retrain):
    X, y = data
    mc = ModelCache(tmp_path)
    short = walk_forward(rf(), X.iloc[:750], y.iloc[:750], **KW, retrain=retrain, refresh=2, cache=mc)
    longer = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2, cache=mc)
    n_old = len(short.folds)
    assert longer.folds["cache_hit"].iloc[:n_old].all() and not longer.folds["cache_hit"].iloc[n_old:].any()
    ref = walk_forward(rf(), X, y, **KW, retrain=retrain, refresh=2)
    pd.testing.assert_frame_equal(longer.proba, ref.proba)


def test_sliding_updates_store_only_their_new_trees(tmp_path, data):
    """A sliding forest's steps are cached as ModelStep (new trees + parent key), not whole forests."""
    from nbtrade.model.forest import ForestDelta
    from nbtrade.model.modelcache import ModelStep

    X, y = data
    kw = dict(**KW, retrain="incremental", refresh=2)
    inc = ModelCache(tmp_path / "inc")
    cold = walk_forward(rf(n_estimators=16), X, y, **kw, cache=inc)
    entries = [inc.cache.get(k) for k in inc.cache.keys()]
    steps = [e for e in entries if isinstance(e, ModelStep)]
    assert len(steps) == len(cold.folds) - 1 and len(entries) == len(cold.folds)
    assert all(isinstance(s.delta, ForestDelta) and len(s.delta.trees) == 2 for s in steps)
    full = ModelCache(tmp_path / "full")
    walk_forward(rf(n_estimators=16), X, y, **{**kw, "retrain": "full"}, cache=full)
    assert inc.stats().disk_bytes < 0.5 * full.stats().disk_bytes
    # restart without fold outputs: every model rebuilt from its parent and steps, same predictions
    mc = ModelCache(tmp_path / "inc")
    mc.outputs.clear()
    warm = walk_forward(rf(n_estimators=16), X, y, **kw, cache=mc)
    assert warm.folds["cache_hit"].all() and mc.stats().misses == 0
    pd.testing.assert_frame_equal(cold.proba, warm.proba)
    pd.testing.assert_frame_equal(cold.feature_importances, warm.feature_importances)


def test_a_step_without_its_parent_replays_the_parent(tmp_path, data):
    from nbtrade.model.modelcache import ModelStep

    X, y = data
    kw = dict(**KW, retrain="incremental", refresh=2)
    cold = walk_forward(rf(), X, y, **kw, cache=ModelCache(tmp_path))
    mc = ModelCache(tmp_path)
    mc.outputs.clear()
    first = [k for k in mc.cache.keys() if not isinstance(mc.cache.get(k), ModelStep)]
    assert len(first) == 1 and mc.cache.delete(first[0])  # the full forest every step builds on is gone
    mc = ModelCache(tmp_path)
    warm = walk_forward(rf(), X, y, **kw, cache=mc)
    pd.testing.assert_frame_equal(cold.proba, warm.proba)


def test_a_step_refuses_the_wrong_parent(data):
    from nbtrade.model.forest import SlidingForest

    X, y = (a.to_numpy() for a in data)
    a = SlidingForest(rf(), refresh=2, seed=1).fit(X[:200], y[:200])
    b = a.update(X[200:400], y[200:400])
    assert b.delta_ is not None and len(b.delta_.trees) == 2
    np.testing.assert_array_equal(a.apply(b.delta_).predict_proba(X[:50]), b.predict_proba(X[:50]))
    with pytest.raises(ValueError, match="made for a parent with 1 batches"):
        b.apply(b.delta_)  # b already holds that step: applying it twice would be wrong
    import pickle

    assert pickle.loads(pickle.dumps(b)).delta_ is None  # a pickled forest holds its trees once
