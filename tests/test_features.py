import numpy as np
import pandas as pd
import pytest

from nbtrade import indicators as ind
from nbtrade.checks import check_lookahead
from nbtrade.features import FeatureCache, FeatureSet, compute_features, parse_spec, stack, to_panel
from nbtrade.synthetic import market

SPECS = [("ema", 20), ("ema", 50), ("sma", 10), ("sma", 30), ("rsi", 14), "macd", "bbands", ("atr", 14),
         ("adx", 14), "stoch", ("ret", 1), ("ret", {"n": 24, "log": True}), ("vol", 24),
         ("zscore", {"window": 48}), ("volume_ratio", 24), ("corr", {"window": 72, "to": "BTC/USDT"}), "range"]


@pytest.fixture(scope="module")
def data():
    return market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-02-01", "1h", seed=11)


def test_values_match_direct_indicator_calls(data):
    X = compute_features(data, SPECS)
    eth = data["ETH/USDT"]
    close = eth["close"].to_numpy()
    np.testing.assert_allclose(X[("ETH/USDT", "ema_20")], close / ind.ema(close, 20) - 1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(X[("ETH/USDT", "sma_30")], close / ind.sma(close, 30) - 1, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(X[("ETH/USDT", "rsi_14")], ind.rsi(close, 14), rtol=1e-12)
    natr = ind.atr(eth["high"].to_numpy(), eth["low"].to_numpy(), close, 14) / close
    np.testing.assert_allclose(X[("ETH/USDT", "natr_14")], natr, rtol=1e-12)
    r = np.log(eth["close"]).diff()
    np.testing.assert_allclose(X[("ETH/USDT", "vol_24")], r.rolling(24).std(), rtol=1e-9)
    rb = np.log(data["BTC/USDT"]["close"]).diff()
    np.testing.assert_allclose(X[("ETH/USDT", "corr_btc_72")], r.rolling(72).corr(rb), rtol=1e-7, atol=1e-12)
    assert X.columns.names == ["symbol", "feature"] and X.shape[1] == 3 * len(FeatureSet(SPECS).names())


def test_single_frame_float32_and_array(data):
    X = compute_features(data["BTC/USDT"], [("rsi", 14), ("ema", 10)], dtype=np.float32)
    assert X.dtypes.unique().tolist() == [np.float32] and X.columns.levels[0].tolist() == ["data"]
    A = compute_features(data, [("rsi", 14), ("ema", 10)], as_array=True)
    assert A.shape == (len(data["BTC/USDT"]), 3, 2)
    assert stack(compute_features(data, [("rsi", 14)])).shape == (3 * len(data["BTC/USDT"]), 1)


def test_no_lookahead(data):
    report = check_lookahead(lambda d: compute_features(d, SPECS), data, cuts=6, min_bars=100)
    assert report.ok, str(report)


def test_missing_candles_stay_missing(data):
    gappy = dict(data)
    gappy["SOL/USDT"] = data["SOL/USDT"].drop(data["SOL/USDT"].index[300:310])
    index, symbols, panel = to_panel(gappy)
    assert np.isnan(panel["close"][300:310, 2]).all() and not np.isnan(panel["close"][300:310, 0]).any()
    X = compute_features(gappy, [("ret", 1)])
    assert X[("SOL/USDT", "ret_1")].iloc[300:311].isna().all()


def test_tail_recompute_equals_full(data, tmp_path):
    cache = FeatureCache(path=tmp_path)
    specs = [("ema", 12), ("ema", 26), ("rsi", 14), ("zscore", {"window": 48}), ("vol", 24), "bbands"]
    head = {s: f.iloc[:500] for s, f in data.items()}
    first = compute_features(head, specs, cache=cache)
    assert cache.stats == {"hit": 0, "tail": 0, "full": 1}
    again = compute_features(head, specs, cache=cache)
    assert cache.stats["hit"] == 1
    pd.testing.assert_frame_equal(first, again)
    grown = compute_features(data, specs, cache=cache)
    assert cache.stats["tail"] == 1
    full = compute_features(data, specs)
    # running sums round differently from another start: equal to ~1e-11 relative, not bit for bit
    np.testing.assert_allclose(grown.to_numpy(), full.to_numpy(), rtol=1e-9, atol=1e-12)
    assert grown.index.equals(full.index)
    changed = {s: f.copy() for s, f in data.items()}
    changed["BTC/USDT"].iloc[10, 3] *= 1.01  # history rewritten: full recompute, not a stale tail
    compute_features(changed, specs, cache=cache)
    assert cache.stats["full"] == 2


@pytest.mark.parametrize("spec, err, match", [
    (("nope", 3), ValueError, "unknown feature kind"),
    (("rsi", 0), ValueError, "timeperiod"),
    (("rsi", {"period": 3}), ValueError, "unknown parameters"),
    (("corr", 20), ValueError, "reference symbol"),
    (("range", 3), ValueError, "takes no period"),
    (("zscore", {"field": "vwap"}), ValueError, "field"),
    (42, TypeError, "spec"),
])
def test_bad_specs(spec, err, match):
    with pytest.raises(err, match=match):
        parse_spec(spec)


def test_bad_data(data):
    with pytest.raises(ValueError, match="not in the data"):
        compute_features(data, [("corr", {"window": 10, "to": "XRP/USDT"})])
    no_volume = {"A": data["BTC/USDT"].drop(columns="volume")}
    with pytest.raises(AttributeError, match="no field 'volume'"):  # volume is needed by volume features only
        compute_features(no_volume, ["volume_ratio"])
    assert compute_features(no_volume, ["rsi"]).shape == (len(data["BTC/USDT"]), 1)
    with pytest.raises(ValueError, match="sorted"):
        compute_features({"A": data["BTC/USDT"].iloc[::-1]}, ["rsi"])
    with pytest.raises(ValueError, match="at least one"):
        FeatureSet([])
