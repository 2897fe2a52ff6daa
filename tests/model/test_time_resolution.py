"""Same instants, any resolution (s, ms, us, ns) and any time zone: identical results and cache keys.

pandas 2/3 build DatetimeIndexes in several units (``pd.to_datetime(ms, unit="ms", utc=True)``
gives ``datetime64[us, UTC]`` on pandas 3; parquet keeps its stored unit). Every public
function of the model package that takes a time index is run on each variant and compared
with the nanosecond-UTC run.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier

from nbtrade import indicators as ind
from nbtrade import rolling
from nbtrade.model.labels import ewm_volatility, forward_return, sign_label, triple_barrier
from nbtrade.model.modelcache import ModelCache
from nbtrade.model.signals import predictions_to_signals, proba_to_signals, proba_to_weights
from nbtrade.model.walkforward import walk_forward
from nbtrade.synthetic import planted_features, planted_market
from nbtrade.timeframes import index_to_ms, to_epoch_ms

UNITS = ["s", "ms", "us", "ns"]
ZONES = [None, "UTC", "Asia/Tokyo", "America/New_York"]


def variant(index: pd.DatetimeIndex, unit: str, tz: str | None) -> pd.DatetimeIndex:
    """The same instants as ``index`` (UTC), in ``unit`` and zone ``tz`` (None: naive UTC)."""
    out = index.as_unit(unit)
    return out.tz_localize(None) if tz is None else out.tz_convert(tz)


def relabel(obj, unit, tz):
    obj = obj.copy()
    if isinstance(obj.index, pd.MultiIndex):
        lv = obj.index.levels
        obj.index = obj.index.set_levels(variant(lv[0], unit, tz), level=0)
    else:
        obj.index = variant(obj.index, unit, tz)
    return obj


@pytest.fixture(scope="module")
def market():
    return planted_market("BTC/USDT", "2024-01-01", "2024-01-25", "1h", seed=5, strength=1.0)


@pytest.fixture(scope="module")
def xy(market):
    X = planted_features(market, extra=2).iloc[48:]
    y = sign_label(market["close"], 1).iloc[48:]
    return X, y


def same_instants(a: pd.Index, b: pd.Index) -> bool:
    return np.array_equal(to_epoch_ms(a), to_epoch_ms(b))


def test_market_index_is_utc(market):
    assert str(market.index.tz) == "UTC"


def rf():
    return RandomForestClassifier(n_estimators=5, max_depth=3, n_jobs=1)


WF = dict(train_window="8D", test_window="2D", seed=1)


@pytest.fixture(scope="module")
def reference(xy):
    X, y = xy
    cache = ModelCache(None)
    return walk_forward(rf(), relabel(X, "ns", "UTC"), relabel(y, "ns", "UTC"), cache=cache, **WF), cache


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("unit", UNITS)
def test_walk_forward_durations_and_cache_keys_ignore_resolution(xy, reference, unit, tz):
    X, y = xy
    ref, cache = reference
    Xv, yv = relabel(X, unit, tz), relabel(y, unit, tz)
    got = walk_forward(rf(), Xv, yv, **WF)
    assert got.meta["train_window"] == 8 * 24 and got.meta["test_window"] == 48
    np.testing.assert_array_equal(got.predictions.to_numpy(), ref.predictions.to_numpy())
    np.testing.assert_array_equal(got.proba.to_numpy(), ref.proba.to_numpy())
    assert same_instants(got.predictions.index, ref.predictions.index)
    for col in ("train_start", "train_end", "test_start", "test_end"):
        assert [to_epoch_ms(t) for t in got.folds[col]] == [to_epoch_ms(t) for t in ref.folds[col]]
    assert got.meta["data_hash"] == ref.meta["data_hash"]
    # model keys are content keys: the same instants in another unit or zone hit the cache
    warm = walk_forward(rf(), Xv, yv, cache=cache, **WF)
    assert warm.folds["cache_hit"].all()
    np.testing.assert_array_equal(warm.predictions.to_numpy(), ref.predictions.to_numpy())


@pytest.mark.parametrize("unit", UNITS)
def test_walk_forward_on_a_symbol_panel(xy, unit):
    X, y = xy
    Xp = pd.concat({"A": X, "B": X * 1.01}, names=["symbol", "time"]).swaplevel().sort_index()
    yp = pd.concat({"A": y, "B": y}, names=["symbol", "time"]).swaplevel().sort_index()
    ref = walk_forward(rf(), relabel(Xp, "ns", "UTC"), relabel(yp, "ns", "UTC"), **WF)
    got = walk_forward(rf(), relabel(Xp, unit, "Asia/Tokyo"), relabel(yp, unit, "Asia/Tokyo"), **WF)
    assert got.meta["train_window"] == 8 * 24
    np.testing.assert_array_equal(got.predictions.to_numpy(), ref.predictions.to_numpy())
    signals = proba_to_signals(got.proba)
    want = proba_to_signals(ref.proba)
    assert same_instants(signals.entries.index, want.entries.index)
    np.testing.assert_array_equal(signals.entries.to_numpy(), want.entries.to_numpy())


def test_x_and_y_in_different_zones_are_aligned_by_instant(xy):
    X, y = xy
    got = walk_forward(rf(), relabel(X, "us", "Asia/Tokyo"), relabel(y, "s", None), **WF)
    assert got.meta["train_window"] == 8 * 24


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("unit", UNITS)
def test_labels_signals_and_indicators_ignore_resolution(market, unit, tz):
    close = market["close"]
    moved = relabel(market, unit, tz)
    c = moved["close"]
    for fn in (lambda s: forward_return(s, 3), lambda s: sign_label(s, 2, 0.001), lambda s: ewm_volatility(s, 12),
               lambda s: triple_barrier(s, 6), lambda s: ind.ema(s, 10), lambda s: rolling.rolling_std(s, 10)):
        a, b = fn(close), fn(c)
        np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
        assert same_instants(a.index, b.index)
    proba = pd.DataFrame({-1.0: 0.3, 1.0: 0.7}, index=close.index)
    proba.iloc[::3] = [0.6, 0.4]
    for fn in (proba_to_signals, lambda p: proba_to_weights(p, long_only=True)):
        a, b = fn(proba), fn(relabel(proba, unit, tz))
        for x, z in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            if x is not None:
                np.testing.assert_array_equal(x.to_numpy(), z.to_numpy())
                assert same_instants(x.index, z.index)
    pred = pd.Series(np.where(np.arange(len(close)) % 2, 1.0, -1.0), index=close.index)
    a, b = predictions_to_signals(pred), predictions_to_signals(relabel(pred, unit, tz))
    np.testing.assert_array_equal(a.entries.to_numpy(), b.entries.to_numpy())


@pytest.mark.parametrize("tz", ZONES)
@pytest.mark.parametrize("unit", UNITS)
def test_epoch_ms_of_every_resolution_and_zone(unit, tz):
    ms = np.array([-1_500, 0, 1_704_067_200_123, 1_704_067_260_000], dtype=np.int64)
    utc = pd.to_datetime(ms, unit="ms", utc=True)
    idx = variant(utc, unit, tz)
    floor = {"s": (ms // 1000) * 1000, "ms": ms, "us": ms, "ns": ms}[unit]
    np.testing.assert_array_equal(to_epoch_ms(idx), floor)
    np.testing.assert_array_equal(index_to_ms(idx), floor)
    np.testing.assert_array_equal(to_epoch_ms(pd.Series(idx)), floor)
    assert to_epoch_ms(idx[2]) == floor[2]
    assert to_epoch_ms(idx[2].to_pydatetime()) == floor[2]
    assert to_epoch_ms(str(idx[2])) == floor[2]
