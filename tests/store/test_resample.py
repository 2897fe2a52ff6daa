"""Resampling stored candles to higher timeframes: pandas' resample on gap-free data, gaps kept."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.data.resample import resample, resample_store
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

COLS = ("time", "open", "high", "low", "close", "volume")
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def frame(a):
    return pd.DataFrame({c: a[c] for c in COLS[1:]}, index=pd.to_datetime(a["time"], unit="ms", utc=True))


@pytest.mark.parametrize("source,target,rule,start,end", [
    ("1m", "5m", "5min", "2024-01-01", "2024-01-03"),
    ("1m", "1h", "1h", "2024-01-01", "2024-01-04"),
    ("5m", "4h", "4h", "2024-01-01", "2024-01-08"),
    ("1h", "1d", "1D", "2024-01-01", "2024-02-01"),
    ("1h", "1w", "W-MON", "2024-01-01", "2024-03-04"),  # 2024-01-01 and 2024-03-04 are Mondays
    ("1d", "1M", "MS", "2023-01-01", "2024-01-01"),
])
def test_equals_pandas_resample_on_gap_free_data(source, target, rule, start, end):
    a = candles("BTC/USDT", start, end, source, seed=6)
    got, partial, dropped = resample(a, source, target)
    want = frame(a).resample(rule, label="left", closed="left").agg(AGG)
    assert (partial, dropped) == (0, 0)
    np.testing.assert_array_equal(got["time"], want.index.as_unit("ms").asi8)
    for c in COLS[1:]:
        np.testing.assert_allclose(got[c], want[c].to_numpy(), rtol=1e-12, err_msg=c)


def test_gaps_stay_gaps_and_unfinished_ends_are_left_out():
    a = candles("BTC/USDT", "2024-01-01", "2024-01-01 06:00", "1m", seed=2)
    keep = np.ones(a["time"].size, bool)
    keep[60:120] = False          # the whole 01:00 hour missing: no 01:00 candle
    keep[130:140] = False         # part of 02:00 missing: built from what there is, counted as partial
    cut = {c: v[keep][5:-3] for c, v in a.items()}  # starts inside 00:00, ends inside 05:00
    got, partial, dropped = resample(cut, "1m", "1h")
    hours = pd.to_datetime(got["time"], unit="ms", utc=True).hour.tolist()
    assert hours == [2, 3, 4] and partial == 1 and dropped == 2
    h2 = slice(120, 180)
    assert got["high"][0] == max(a["high"][h2][np.r_[0:10, 20:60]])
    assert got["volume"][0] == pytest.approx(a["volume"][h2][np.r_[0:10, 20:60]].sum())


def test_resample_store_writes_a_series(tmp_path):
    a = candles("BTC/USDT", "2024-01-01", "2024-01-03", "1m", seed=3)
    store = Store(tmp_path)
    store.append("binance", "BTC/USDT", "1m", a)
    res, out = resample_store(store, "binance", "BTC/USDT", "1m", "15m")
    assert res.rows == res.added == 192 and store.count("binance", "BTC/USDT", "15m") == 192
    got = store.read("binance", "BTC/USDT", "15m")
    pd.testing.assert_frame_equal(got, frame(a).resample("15min").agg(AGG).rename_axis("time"), check_freq=False,
                                  check_index_type=False)
    assert (got.index == frame(a).resample("15min").agg(AGG).index).all()
    assert store.verify().ok


@pytest.mark.parametrize("source,target,match", [
    ("5m", "3m", "whole multiple"), ("3m", "5m", "whole multiple"), ("1h", "1h", "whole multiple"),
    ("1M", "1d", "cannot be resampled"), ("7m", "1h", "timeframe"),
])
def test_bad_pairs(source, target, match):
    a = {c: np.empty(0) for c in COLS}
    with pytest.raises(ValueError, match=match):
        resample(a, source, target)
