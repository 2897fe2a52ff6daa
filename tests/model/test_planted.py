import numpy as np
import pandas as pd
import pytest

from nbtrade.synthetic import PLANTED_FEATURES, market, planted_features, planted_market

START, END = "2024-01-01", "2024-03-01"


def test_deterministic_and_valid():
    a = planted_market(["BTC/USDT", "ETH/USDT"], START, END, "1h", seed=3, strength=1.0)
    b = planted_market(["BTC/USDT", "ETH/USDT"], START, END, "1h", seed=3, strength=1.0)
    for sym, df in a.items():
        pd.testing.assert_frame_equal(df, b[sym])
        assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()
        assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
        assert (df["volume"] > 0).all()
        np.testing.assert_allclose(df["open"].to_numpy()[1:], df["close"].to_numpy()[:-1])


def test_strength_zero_is_the_plain_market():
    pd.testing.assert_frame_equal(planted_market("BTC/USDT", START, END, "1h", seed=2, strength=0.0),
                                  market("BTC/USDT", START, END, "1h", seed=2))


def test_info_signal_predicts_next_return():
    df, info = planted_market("BTC/USDT", "2024-01-01", "2024-07-01", "1h", seed=5, strength=1.0, return_info=True)
    assert info["features"] == PLANTED_FEATURES
    nxt = np.sign(np.log(df["close"] / df["open"]).shift(-1))
    hit = (np.sign(info["g"]) == nxt)[:-1].mean()
    assert hit > 0.58


def test_features_causal_and_shaped():
    df = planted_market("BTC/USDT", START, END, "1h", seed=1)
    X = planted_features(df, extra=26)
    assert X.shape == (len(df), 30) and list(X.columns[:4]) == list(PLANTED_FEATURES)
    assert X.iloc[:48].isna().all().all() and X.iloc[48:].notna().all().all()
    t = 700
    df2 = df.copy()
    df2.iloc[t + 1:, :4] *= 1.1
    df2.iloc[t + 1:, 4] *= 3.0
    X2 = planted_features(df2, extra=26)
    pd.testing.assert_frame_equal(X.iloc[:t + 1], X2.iloc[:t + 1])


def test_bad_arguments():
    with pytest.raises(ValueError, match="strength"):
        planted_market("BTC/USDT", START, END, "1h", strength=-1)
    with pytest.raises(ValueError, match="extra"):
        planted_features(market("BTC/USDT", START, END, "1h"), extra=-1)


# ----------------------------------------------------------------------------- the pipeline finds real signal

def _wf_score(strength, retrain="full", shuffle=False):
    from sklearn.ensemble import RandomForestClassifier

    from nbtrade.model.labels import sign_label
    from nbtrade.model.walkforward import walk_forward

    df = planted_market("SOL/USDT", "2024-01-01", "2024-05-01", "1h", seed=21, strength=strength)
    X = planted_features(df, extra=6).iloc[48:]
    y = sign_label(df["close"], 1).iloc[48:]
    if shuffle:
        y = pd.Series(np.random.default_rng(1).permutation(y.to_numpy()), index=y.index)
        y.attrs["horizon"] = 1
    rf = RandomForestClassifier(n_estimators=40, max_depth=6, n_jobs=1)
    return walk_forward(rf, X, y, 1200, 168, retrain=retrain, refresh=8, seed=0).score


@pytest.mark.parametrize("retrain", ["full", "incremental"])
def test_planted_signal_found_out_of_sample(retrain):
    assert _wf_score(1.0, retrain) > 0.56


def test_no_signal_at_strength_zero_or_shuffled():
    assert abs(_wf_score(0.0) - 0.5) < 0.035
    assert abs(_wf_score(1.0, shuffle=True) - 0.5) < 0.035
