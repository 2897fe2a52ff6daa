import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.strategies import ema_cross


@pytest.fixture(scope="module")
def result():
    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-02-01", "1h", seed=1)
    return nbtrade.backtest(data, **ema_cross(data), size=0.5, fees=0.001, sl_stop=0.03)


def test_save_and_load_round_trip(result, tmp_path):
    path = result.save(str(tmp_path / "run.npz"))
    back = nbtrade.load_result(path)
    pd.testing.assert_series_equal(back.equity, result.equity)
    pd.testing.assert_frame_equal(back.trades, result.trades)
    pd.testing.assert_frame_equal(back.orders, result.orders)
    pd.testing.assert_frame_equal(back.positions, result.positions)
    pd.testing.assert_series_equal(back.stats().full(), result.stats().full())
    pd.testing.assert_series_equal(back.stats("ETH/USDT").full(), result.stats("ETH/USDT").full())
    assert back.symbols == result.symbols and back.assumptions["fill"] == result.assumptions["fill"]
    assert len(back.gaps) == len(result.gaps)
    # the report is rebuilt from the file alone
    html = back.to_html(title="reloaded")
    assert "reloaded" in html and "nbtrade-chart" in html and "ETH/USDT" in html


def test_file_holds_no_pickles(result, tmp_path):
    path = result.save(str(tmp_path / "run.npz"))
    with np.load(path, allow_pickle=False) as npz:  # would raise on any object array
        for name in npz.files:
            assert npz[name].dtype != object, name


def test_bad_paths_and_files_say_what_is_wrong(result, tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.npz"):
        result.save(str(tmp_path / "run.h5"))
    with pytest.raises(FileNotFoundError, match="no saved result"):
        nbtrade.load_result(tmp_path / "missing.npz")
    other = tmp_path / "other.npz"
    np.savez(other, a=np.arange(3))
    with pytest.raises(ValueError, match="not an nbtrade result file"):
        nbtrade.load_result(other)
    text = tmp_path / "text.npz"
    text.write_text("hello")
    with pytest.raises(ValueError, match="not an nbtrade result file"):
        nbtrade.load_result(text)


def test_gaps_and_missing_candles_survive(tmp_path):
    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-20", "1h", seed=1)
    data["ETH/USDT"] = data["ETH/USDT"].drop(data["ETH/USDT"].index[100:110])
    with pytest.warns(UserWarning):
        res = nbtrade.backtest(data, **ema_cross(data), size=0.5)
    back = nbtrade.load_result(res.save(str(tmp_path / "g.npz")))
    pd.testing.assert_frame_equal(back.gaps, res.gaps, check_dtype=False)
    assert np.isnan(back._candles()["ETH/USDT"]["close"].iloc[100:110]).all()
    pd.testing.assert_series_equal(back.stats().full(), res.stats().full())
