import numpy as np
import pandas as pd
import pytest

from nbtrade.model.signals import predictions_to_signals, proba_to_signals, proba_to_weights

IDX = pd.date_range("2024-01-01", periods=5, freq="h", tz="UTC", name="time")


def proba2():
    up = [np.nan, 0.6, 0.52, 0.4, 0.7]
    return pd.DataFrame({-1.0: 1 - np.array(up), 1.0: up}, index=IDX)


def test_thresholds_and_hysteresis():
    s = proba_to_signals(proba2(), long_threshold=0.55, exit_threshold=0.5, symbol="BTC/USDT")
    assert list(s.entries.columns) == ["BTC/USDT"] and s.entries.index.equals(IDX)
    assert s.entries["BTC/USDT"].tolist() == [False, True, False, False, True]
    assert s.exits["BTC/USDT"].tolist() == [False, False, False, True, False]
    assert s.entries.dtypes.iloc[0] == bool and s.short_entries is None
    assert set(s.as_kwargs()) == {"entries", "exits"}
    sh = proba_to_signals(proba2(), short_threshold=0.55)
    assert sh.short_entries["asset"].tolist() == [False, False, False, True, False]
    assert sh.short_exits["asset"].tolist() == [False, True, True, False, True]


def test_three_classes_and_panel():
    idx = pd.MultiIndex.from_product([IDX[:2], ["A", "B"]], names=["time", "symbol"])
    p = pd.DataFrame({-1: [0.1, 0.6, 0.2, 0.3], 0: [0.2, 0.2, 0.2, 0.1], 1: [0.7, 0.2, 0.6, 0.6]}, index=idx)
    s = proba_to_signals(p, 0.65, short_threshold=0.55)
    assert list(s.entries.columns) == ["A", "B"] and s.entries.index.equals(IDX[:2])
    assert s.entries.to_numpy().tolist() == [[True, False], [False, False]]
    assert s.short_entries.to_numpy().tolist() == [[False, True], [False, False]]
    w = proba_to_weights(p)
    np.testing.assert_allclose(w.to_numpy(), [[0.6, -0.4], [0.4, 0.3]])
    half = proba_to_weights(p, gross=0.5)
    np.testing.assert_allclose(half.to_numpy(), [[0.3, -0.2], [0.4 * 0.5 / 0.7, 0.3 * 0.5 / 0.7]])
    lo = proba_to_weights(p, long_only=True, min_edge=0.35)
    np.testing.assert_allclose(lo.to_numpy(), [[0.6, 0.0], [0.4, 0.0]])


def test_predictions_to_signals():
    pred = pd.Series([np.nan, 1.0, -1.0, 0.0, 1.0], index=IDX)
    s = predictions_to_signals(pred, short_class=-1.0)
    assert s.entries["asset"].tolist() == [False, True, False, False, True]
    assert s.exits["asset"].tolist() == [False, False, True, True, False]
    assert s.short_entries["asset"].tolist() == [False, False, True, False, False]


def test_from_walk_forward_result():
    from sklearn.tree import DecisionTreeClassifier

    from nbtrade.model.labels import sign_label
    from nbtrade.model.walkforward import walk_forward
    from nbtrade.synthetic import planted_features, planted_market

    df = planted_market("BTC/USDT", "2024-01-01", "2024-01-20", "1h", seed=1)
    X = planted_features(df).iloc[48:]
    y = sign_label(df["close"], 1).iloc[48:]
    r = walk_forward(DecisionTreeClassifier(max_depth=3), X, y, 200, 50)
    s = r.signals(long_threshold=0.5)
    assert s.entries.index.equals(X.index) and not s.entries.iloc[:201].any().any()


def test_bad_input():
    with pytest.raises(TypeError, match="proba"):
        proba_to_signals(pd.Series([0.5]))
    with pytest.raises(ValueError, match="long_threshold"):
        proba_to_signals(proba2(), long_threshold=1.5)
    with pytest.raises(ValueError, match="exit_threshold"):
        proba_to_signals(proba2(), long_threshold=0.5, exit_threshold=0.6)
    with pytest.raises(ValueError, match="up_class"):
        proba_to_signals(proba2(), up_class=2)
    with pytest.raises(ValueError, match="min_edge"):
        proba_to_weights(proba2(), min_edge=1.0)
    with pytest.raises(TypeError, match="predictions"):
        predictions_to_signals([1, 0])
