"""nbtrade.timeframes: timeframe lengths and the one time -> epoch ms conversion."""
import numpy as np
import pandas as pd
import pytest

from nbtrade.timeframes import bars_per_year, index_to_ms, ms_to_index, timeframe_ms


def test_timeframes():
    assert timeframe_ms("1h") == 3_600_000 and bars_per_year("1d") == 365
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_ms("2m")
    with pytest.raises(ValueError, match="calendar month"):
        timeframe_ms("1M")
    ms = np.array([0, 60_000], dtype=np.int64)
    idx = ms_to_index(ms)
    assert str(idx.tz) == "UTC" and np.array_equal(index_to_ms(idx), ms)
    assert np.array_equal(index_to_ms(pd.to_datetime(ms, unit="ms")), ms)


def test_to_epoch_ms_scalars_and_errors():
    import datetime as dt
    import doctest

    import nbtrade.timeframes as T
    from nbtrade.timeframes import to_epoch_ms

    assert doctest.testmod(T, extraglobs={"pd": pd}).failed == 0
    for value in (1_704_067_200_000, np.int64(1_704_067_200_000), 1_704_067_200_000.0, "2024-01-01",
                  "2024-01-01T09:00:00+09:00", pd.Timestamp("2024-01-01", tz="UTC").as_unit("s"),
                  dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
                  np.datetime64("2024-01-01T00:00:00", "s"), dt.date(2024, 1, 1)):
        assert to_epoch_ms(value) == 1_704_067_200_000, value
    assert to_epoch_ms(np.array(["2024-01-01", "2024-01-01T00:00:00.001Z"])).tolist() == [1_704_067_200_000,
                                                                                          1_704_067_200_001]
    assert to_epoch_ms(np.array([1, 2], dtype=np.int32)).dtype == np.int64
    for bad, err, msg in [(None, ValueError, "start is missing"), (True, TypeError, "start must be a time"),
                          (2 ** 70, ValueError, "outside int64"), (1.5, ValueError, "whole epoch milliseconds"),
                          (float("nan"), ValueError, "whole epoch"), ("soon", ValueError, "start must be a time"),
                          (pd.NaT, ValueError, "NaT"), (pd.DatetimeIndex(["2024-01-01", None]), ValueError,
                                                         "NaT at position 1"),
                          (np.array([1.5, 2.5]), TypeError, "start must be a time or times")]:
        with pytest.raises(err, match=msg):
            to_epoch_ms(bad, "start")
