"""One time -> epoch ms conversion (nbtrade.timeframes.to_epoch_ms) behind every data entry point."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.data.bulk import split_symbol
from nbtrade.data.fetch import _to_ms
from nbtrade.data.store import Store, to_ms
from nbtrade.report.html import _t_ns
from nbtrade.synthetic import candles, grid

T = pd.Timestamp("2024-03-01 09:00", tz="Asia/Tokyo")
MS = 1709251200000


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_bounds_any_resolution_and_zone(unit):
    t = T.as_unit(unit)
    assert to_ms(t, "start") == _to_ms(t, "start") == MS
    assert to_ms(t.to_datetime64(), "start") == MS  # naive datetime64 is UTC (09:00 Tokyo = 00:00 UTC)
    assert grid(t, t + pd.Timedelta("3h"), "1h").tolist() == [MS, MS + 3_600_000, MS + 7_200_000]
    idx = pd.date_range(T, periods=3, freq="h").as_unit(unit)
    np.testing.assert_array_equal(_t_ns(idx), (MS + np.arange(3) * 3_600_000) * 1_000_000)


def test_bound_refusals_name_the_argument():
    assert to_ms(None, "start") is None
    for conv in (to_ms, _to_ms):
        with pytest.raises(ValueError, match="end is NaT"):
            conv(pd.NaT, "end")
        with pytest.raises(ValueError, match="end must be a time"):
            conv([MS, MS + 1], "end")
        with pytest.raises(ValueError, match="end must be a time"):
            conv("soon", "end")
    with pytest.raises(ValueError, match="start is missing"):
        grid(None, MS, "1h")


def test_store_read_with_nat_bound_is_refused(tmp_path):
    s = Store(tmp_path)
    s.append("binance", "BTC/USDT", "1h", candles("BTC/USDT", "2024-01-01", "2024-01-02", "1h", seed=1))
    with pytest.raises(ValueError, match="start is NaT"):
        s.read("binance", "BTC/USDT", "1h", np.datetime64("NaT"))


def test_chart_times_of_an_integer_index_are_kept():
    np.testing.assert_array_equal(_t_ns(pd.RangeIndex(3)), [0, 1, 2])


def test_bulk_names_follow_the_one_symbol_rule():
    assert split_symbol("BTCUSDT") == "BTC/USDT"
    assert split_symbol("BTCUSDT", "binance_futures") == "BTC/USDT:USDT"
    with pytest.raises(ValueError, match="quote asset of 'FOOXYZ'.*--symbol"):
        split_symbol("FOOXYZ")
