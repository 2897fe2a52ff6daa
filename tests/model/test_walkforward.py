import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from nbtrade.model.forest import DriftPolicy
from nbtrade.model.labels import forward_return, sign_label
from nbtrade.model.walkforward import walk_forward
from nbtrade.synthetic import planted_features, planted_market


def small_rf(n=10, depth=4, n_jobs=1):
    return RandomForestClassifier(n_estimators=n, max_depth=depth, n_jobs=n_jobs)


def make(df, extra=4):
    X = planted_features(df, extra=extra)
    y = sign_label(df["close"], 1)
    return X, y


@pytest.fixture(scope="module")
def market():
    return planted_market("BTC/USDT", "2024-01-01", "2024-03-01", "1h", seed=11, strength=1.0)


@pytest.fixture(scope="module")
def data(market):
    X, y = make(market)
    return X.iloc[48:], y.iloc[48:]


KW = dict(train_window=300, test_window=60, seed=3)


# ----------------------------------------------------------------------------- structure

def test_predictions_cover_every_bar_after_first_window(data):
    X, y = data
    r = walk_forward(small_rf(), X, y, **KW)
    first = 300 + 1  # train_window + purge (horizon 1)
    assert r.predictions.iloc[:first].isna().all()
    assert r.predictions.iloc[first:].notna().all()
    assert r.proba.shape == (len(X), 2) and list(r.proba.columns) == [-1.0, 1.0]
    np.testing.assert_allclose(r.proba.iloc[first:].sum(axis=1), 1.0)
    assert r.predictions.index.equals(X.index)
    assert len(r.folds) == int(np.ceil((len(X) - first) / 60))
    f0 = r.folds.iloc[0]
    assert f0["n_train"] == 300 and f0["train_start"] == X.index[0] and f0["test_start"] == X.index[first]
    assert r.feature_importances.shape == (len(r.folds), X.shape[1])
    m = r.meta
    assert m["seed"] == 3 and m["horizon"] == 1 and m["purge"] == 1 and "sklearn" in m["versions"]
    assert len(m["data_hash"]) == 32
    assert 0.0 <= r.score <= 1.0 and r.summary()["folds"] == len(r.folds)


def test_train_rows_respect_purge_and_embargo(data):
    X, y = data
    y5 = sign_label(pd.Series(np.exp(np.cumsum(np.r_[0, np.diff(np.log(X.index.asi8 % 97 + 100.0))])), index=X.index), 5)
    r = walk_forward(small_rf(), X, y5, 200, 50, embargo=3, seed=0)
    pos = {t: i for i, t in enumerate(X.index)}
    for _, f in r.folds.iterrows():
        assert pos[f["train_end"]] + 5 + 3 < pos[f["test_start"]]   # label of last train row known before test
        assert pos[f["test_start"]] - pos[f["train_end"]] == 5 + 3 + 1


def test_expanding_window(data):
    X, y = data
    r = walk_forward(small_rf(), X, y, 300, 200, window="expanding", seed=0)
    assert (r.folds["train_start"] == X.index[0]).all()
    assert r.folds["n_train"].is_monotonic_increasing and r.folds["n_train"].iloc[-1] > 300


def test_durations_and_step(data):
    X, y = data
    a = walk_forward(small_rf(), X, y, "12D", "2D", seed=0)
    b = walk_forward(small_rf(), X, y, 288, 48, seed=0)
    pd.testing.assert_series_equal(a.predictions, b.predictions)
    c = walk_forward(small_rf(), X, y, 288, 48, step=96, seed=0)  # gaps between test segments
    assert c.predictions.notna().sum() < b.predictions.notna().sum()


def test_one_batched_predict_per_fold(data):
    X, y = data
    calls = []

    class Counting(LogisticRegression):
        def predict_proba(self, X):
            calls.append(len(X))
            return super().predict_proba(X)

        def predict(self, X):  # pragma: no cover - must not be used
            raise AssertionError("predict called: walk_forward should use one predict_proba per fold")

    r = walk_forward(Counting(), X, y, **KW)
    assert len(calls) == len(r.folds) and sum(calls) == r.predictions.notna().sum()
    # forests: every tree predicts each test segment once, in one batch
    from sklearn.tree import DecisionTreeClassifier as DT

    tree_calls = []
    orig = DT.predict_proba

    def counting(self, X, check_input=True):
        tree_calls.append(len(X))
        return orig(self, X, check_input)

    DT.predict_proba = counting
    try:
        rf = walk_forward(small_rf(5, 3), X, y, **KW)
    finally:
        DT.predict_proba = orig
    assert len(tree_calls) == 5 * len(rf.folds) and sum(tree_calls) == 5 * rf.predictions.notna().sum()


def test_panel_multiindex_counts_timestamps():
    m = planted_market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01", "1h", seed=2)
    frames = []
    for sym, df in m.items():
        X, y = make(df)
        X["label"] = y
        X["symbol"] = sym
        frames.append(X.iloc[48:])
    panel = pd.concat(frames).set_index("symbol", append=True).sort_index(level=0, sort_remaining=True)
    y = panel.pop("label")
    y.attrs["horizon"] = 1
    r = walk_forward(small_rf(), panel, y, 200, 48, seed=0)
    assert r.folds["n_train"].iloc[0] == 2 * 200
    assert r.folds["n_test"].iloc[0] == 2 * 48
    assert r.predictions.index.equals(panel.index)


def test_regressor_and_non_forest(data):
    X, y = data
    fr = forward_return(planted_market("BTC/USDT", "2024-01-01", "2024-03-01", "1h", seed=11)["close"], 1)
    fr = fr.iloc[48:]
    r = walk_forward(RandomForestRegressor(n_estimators=5, max_depth=3), X, fr, **KW)
    assert r.proba is None and r.meta["task"] == "regression" and np.isfinite(r.score)
    lr = walk_forward(LogisticRegression(), X, y, **KW)
    assert lr.feature_importances.isna().all().all() and lr.proba is not None


# ----------------------------------------------------------------------------- determinism

def test_deterministic_across_runs_and_n_jobs(data):
    X, y = data
    a = walk_forward(small_rf(n_jobs=1), X, y, **KW)
    b = walk_forward(small_rf(n_jobs=1), X, y, **KW)
    c = walk_forward(small_rf(n_jobs=2), X, y, **KW)
    pd.testing.assert_frame_equal(a.proba, b.proba)
    pd.testing.assert_frame_equal(a.proba, c.proba)
    ai = walk_forward(small_rf(n_jobs=1), X, y, retrain="incremental", refresh=3, **KW)
    ci = walk_forward(small_rf(n_jobs=2), X, y, retrain="incremental", refresh=3, **KW)
    pd.testing.assert_frame_equal(ai.proba, ci.proba)
    d = walk_forward(small_rf(), X, y, 300, 60, seed=4)
    assert not d.proba.equals(a.proba)


# ----------------------------------------------------------------------------- leakage

@pytest.mark.parametrize("retrain", ["full", "incremental"])
def test_no_lookahead_perturbing_the_future(market, retrain):
    """Changing prices after bar t leaves every prediction at or before t unchanged."""
    X, y = make(market)
    t = 700
    future = market.copy()
    rng = np.random.default_rng(0)
    future.iloc[t + 1:, :4] *= np.exp(rng.normal(0, 0.05, (len(market) - t - 1, 1)))
    future["high"] = future[["open", "high", "close"]].max(axis=1)
    future["low"] = future[["open", "low", "close"]].min(axis=1)
    future.iloc[t + 1:, 4] *= rng.uniform(0.5, 2.0, len(market) - t - 1)
    X2, y2 = make(future)
    assert not X2.iloc[t + 1:].equals(X.iloc[t + 1:]) and not y2.iloc[t:].equals(y.iloc[t:])
    kw = dict(train_window=200, test_window=37, retrain=retrain, refresh=3, impute="drop", seed=1)
    a = walk_forward(small_rf(), X, y, **kw)
    b = walk_forward(small_rf(), X2, y2, **kw)
    assert a.predictions.iloc[: t + 1].notna().sum() > 300
    pd.testing.assert_series_equal(a.predictions.iloc[: t + 1], b.predictions.iloc[: t + 1])
    pd.testing.assert_frame_equal(a.proba.iloc[: t + 1], b.proba.iloc[: t + 1])
    assert not a.proba.iloc[t + 1:].equals(b.proba.iloc[t + 1:])


def test_no_lookahead_with_policy_and_median_impute(market):
    X, y = make(market)
    t = 650
    X2 = X.copy()
    X2.iloc[t + 1:] = X2.iloc[t + 1:] * -3.0
    y2 = y.copy()
    y2.iloc[t:] = -y2.iloc[t:]
    pol = DriftPolicy(psi_threshold=0.2, acc_drop=0.02, perf_window=20)
    kw = dict(train_window=200, test_window=37, impute="median", policy=pol, seed=1)
    a = walk_forward(small_rf(), X, y, **kw)
    b = walk_forward(small_rf(), X2, y2, **kw)
    pd.testing.assert_frame_equal(a.proba.iloc[: t + 1], b.proba.iloc[: t + 1])


def _leaky_setup(n=2400, h=48):
    rng = np.random.default_rng(5)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), index=idx)
    y = sign_label(close, h)          # overlapping 48-bar labels, horizon recorded
    X = pd.DataFrame({"t": np.arange(n, dtype=float)}, index=idx)  # a trend feature: the model memorises the recent past
    return X, y


def test_purge_shorter_than_horizon_is_an_error():
    X, y = _leaky_setup()
    with pytest.raises(ValueError, match=r"purge \(5\) < label horizon \(48\)"):
        walk_forward(DecisionTreeClassifier(max_depth=3), X, y, 200, 24, purge=5)


def test_leaky_label_caught_by_purge():
    """Without the purge, the last training labels overlap the test bars and inflate accuracy."""
    X, y = _leaky_setup()
    with pytest.warns(UserWarning, match="look-ahead"):
        leaky = walk_forward(DecisionTreeClassifier(max_depth=3), X, y, 200, 24, purge=0, on_short_purge="warn")
    honest = walk_forward(DecisionTreeClassifier(max_depth=3), X, y, 200, 24)
    assert honest.meta["purge"] == 48
    assert leaky.score > 0.65
    assert abs(honest.score - 0.5) < 0.07
    assert leaky.score - honest.score > 0.12


def test_shuffled_labels_score_at_chance(data):
    X, y = data
    ys = pd.Series(np.random.default_rng(0).permutation(y.to_numpy()), index=y.index)
    ys.attrs["horizon"] = 1
    r = walk_forward(small_rf(20, 6), X, ys, **KW)
    assert abs(r.score - 0.5) < 0.05


# ----------------------------------------------------------------------------- policy

def test_drift_policy_reuses_models_until_triggered(data):
    X, y = data
    never = DriftPolicy(psi_threshold=1e9, acc_drop=1.0)
    r = walk_forward(small_rf(), X, y, 300, 60, policy=never, seed=0)
    assert r.folds["retrained"].tolist() == [True] + [False] * (len(r.folds) - 1)
    assert (r.feature_importances.iloc[1:] == r.feature_importances.iloc[0]).all().all()
    aged = walk_forward(small_rf(), X, y, 300, 60, policy=DriftPolicy(psi_threshold=1e9, acc_drop=1.0, max_age=2), seed=0)
    assert aged.folds["retrained"].tolist()[:5] == [True, False, True, False, True]
    Xs = X.copy()
    Xs.iloc[500:, 0] += 5.0  # a feature shifts: PSI fires once the training window sees it
    drift = walk_forward(small_rf(), Xs, y, 300, 60, policy=DriftPolicy(psi_threshold=0.5, acc_drop=1.0), seed=0)
    assert drift.folds["retrained"].iloc[1:].any()
    assert drift.folds["reason"].str.startswith("psi").any()


# ----------------------------------------------------------------------------- bad input

def test_bad_input(data):
    X, y = data
    rf = small_rf()
    with pytest.raises(ValueError, match="misaligned: 1392 rows vs 1391"):
        walk_forward(rf, X, y.iloc[:-1], **KW)
    with pytest.raises(ValueError, match="indexes differ"):
        walk_forward(rf, X, y.shift(1, freq="h"), **KW)
    with pytest.raises(ValueError, match="misaligned"):
        walk_forward(rf, X.to_numpy(), y.to_numpy()[:-2], horizon=1, **KW)
    with pytest.raises(ValueError, match="windows larger than the data"):
        walk_forward(rf, X, y, len(X), 10)
    with pytest.raises(ValueError, match="horizon is unknown"):
        walk_forward(rf, X, y.to_numpy(), **KW)
    with pytest.raises(ValueError, match="step"):
        walk_forward(rf, X, y, 300, 60, step=30)
    with pytest.raises(ValueError, match="window must be"):
        walk_forward(rf, X, y, **KW, window="sliding")
    with pytest.raises(ValueError, match="retrain must be"):
        walk_forward(rf, X, y, **KW, retrain="partial")
    with pytest.raises(ValueError, match="incremental"):
        walk_forward(LogisticRegression(), X, y, **KW, retrain="incremental")
    with pytest.raises(ValueError, match="refresh"):
        walk_forward(rf, X, y, **KW, retrain="incremental", refresh=50)
    with pytest.raises(TypeError, match="estimator"):
        walk_forward(object(), X, y, **KW)
    with pytest.raises(ValueError, match="impute"):
        walk_forward(rf, X, y, **KW, impute="mean")
    with pytest.raises(ValueError, match="embargo"):
        walk_forward(rf, X, y, **KW, embargo=-1)
    with pytest.raises(ValueError, match="single class"):
        walk_forward(rf, X, pd.Series(1.0, index=y.index), horizon=1, **KW)
    with pytest.raises(ValueError, match="train_window"):
        walk_forward(rf, X, y, "12X", 60)
    with pytest.raises(ValueError, match="increasing"):
        walk_forward(rf, X.iloc[::-1], y.iloc[::-1], **KW)


def test_nan_features_error_or_explicit_impute(market):
    X, y = make(market)   # first 48 rows are warm-up NaN
    with pytest.raises(ValueError, match="NaN features.*impute"):
        walk_forward(small_rf(), X, y, **KW)
    X2 = X.copy()
    X2.iloc[500:510, 1] = np.nan
    d = walk_forward(small_rf(), X2, y, **KW, impute="drop")
    assert d.predictions.iloc[500:510].isna().all() and d.predictions.iloc[511:].notna().all()
    f = walk_forward(small_rf(), X2, y, **KW, impute="ffill")
    assert f.predictions.iloc[349:].notna().all()
    m = walk_forward(small_rf(), X2, y, **KW, impute="median")
    assert m.predictions.iloc[301:].notna().all()


# ----------------------------------------------------------------------------- sliding forest

def test_sliding_forest_replaces_oldest_trees(data):
    from nbtrade.model.forest import SlidingForest

    X, y = data
    Xa, ya = X.to_numpy()[:300], y.to_numpy()[:300]
    Xb, yb = X.to_numpy()[300:600], y.to_numpy()[300:600]
    sf = SlidingForest(small_rf(10), refresh=0.3, seed=2).fit(Xa, ya)
    assert sf.refresh == 3 and len(sf.forest_.estimators_) == 10
    before = list(sf.forest_.estimators_)
    up = sf.update(Xb, yb)
    assert sf.forest_.estimators_ == before                       # the old object is untouched
    assert up.forest_.estimators_[:7] == before[3:]               # oldest 3 dropped
    assert all(t not in before for t in up.forest_.estimators_[7:])
    assert up.tree_batches_ == [0] * 7 + [1] * 3 and up.full_refits_ == 1
    p = up.predict_proba(Xb)
    assert p.shape == (300, 2) and np.allclose(p.sum(axis=1), 1)
    # same seed, same data -> same trees; classes changing -> full refit fallback
    again = SlidingForest(small_rf(10), refresh=3, seed=2).fit(Xa, ya).update(Xb, yb)
    np.testing.assert_array_equal(again.predict_proba(Xb), p)
    y3 = np.where(np.arange(300) % 3 == 0, 0.0, yb)
    three = up.update(Xb, y3)
    assert three.full_refits_ == 2 and len(three.classes_) == 3


def test_sliding_forest_bad_args():
    from nbtrade.model.forest import DriftPolicy, SlidingForest

    with pytest.raises(TypeError, match="forest"):
        SlidingForest(LogisticRegression())
    with pytest.raises(ValueError, match="refresh"):
        SlidingForest(small_rf(10), refresh=11)
    with pytest.raises(ValueError, match="refresh"):
        SlidingForest(small_rf(10), refresh=1.5)
    with pytest.raises(ValueError, match="DriftPolicy"):
        DriftPolicy(psi_threshold=0)


def test_psi():
    from nbtrade.model.forest import psi

    rng = np.random.default_rng(0)
    a = rng.normal(size=(5000, 2))
    b = np.c_[rng.normal(size=5000), rng.normal(1.0, 1.0, 5000)]
    v = psi(a, b)
    assert v[0] < 0.02 and v[1] > 0.5
    with pytest.raises(ValueError, match="columns"):
        psi(a, b[:, :1])


def test_sliding_forest_importances_match_sklearn(data):
    from nbtrade.model.forest import SlidingForest

    X, y = data
    sf = SlidingForest(small_rf(10), refresh=4, seed=0).fit(X.to_numpy()[:300], y.to_numpy()[:300])
    sf = sf.update(X.to_numpy()[300:600], y.to_numpy()[300:600])
    np.testing.assert_allclose(sf.feature_importances_, sf.forest_.feature_importances_)


def test_fast_paths_equal_sklearn(data):
    from nbtrade.model.forest import SlidingForest, fast_importances, fast_predict_proba

    X, y = data
    Xa, ya = X.to_numpy()[:300], y.to_numpy()[:300]
    m = small_rf(10, n_jobs=2).fit(Xa, ya)
    np.testing.assert_allclose(fast_predict_proba(m, X.to_numpy()[300:]), m.predict_proba(X.to_numpy()[300:]), atol=1e-12)
    np.testing.assert_allclose(fast_importances(m), m.feature_importances_)
    sf = SlidingForest(small_rf(10), refresh=2).fit(Xa, ya)
    np.testing.assert_allclose(fast_predict_proba(sf, Xa), sf.predict_proba(Xa), atol=1e-12)
    assert fast_predict_proba(LogisticRegression().fit(Xa, ya), Xa) is None
    assert fast_importances(LogisticRegression().fit(Xa, ya)) is None


def test_progress_string_labels_and_barrier_horizon(market, data):
    from nbtrade.model.labels import triple_barrier

    X, y = data
    seen = []
    r = walk_forward(small_rf(), X, y, **KW, progress=seen.append)
    assert [d["fold"] for d in seen] == list(range(len(r.folds))) and seen[0]["folds"] == len(r.folds)
    ys = pd.Series(np.where(y > 0, "up", "down"), index=y.index).where(y.notna())
    rs = walk_forward(small_rf(), X, ys, **KW, horizon=1)
    assert list(rs.proba.columns) == ["down", "up"]
    assert set(rs.predictions.dropna()) <= {"down", "up"} and 0.3 < rs.score < 0.8
    tb = triple_barrier(market["close"], 12, high=market["high"], low=market["low"]).iloc[48:]
    rb = walk_forward(small_rf(), X, tb, 300, 60)
    assert rb.meta["purge"] == 12 and list(rb.proba.columns) == [-1.0, 0.0, 1.0]
