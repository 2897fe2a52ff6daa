"""Store.read_market / read_many(as_market=True): HDF5 straight into one Market panel."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.data.store import NotFound, Store
from nbtrade.synthetic import candles

EX, TF = "binance", "1h"


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path)
    s.append(EX, "BTC/USDT", TF, candles("BTC/USDT", "2024-01-01", "2024-01-03", TF, seed=1))
    eth = candles("ETH/USDT", "2024-01-01 06:00", "2024-01-03", TF, seed=2)
    keep = np.ones(eth["time"].shape[0], dtype=bool)
    keep[[3, 4, 10]] = False  # a gap in ETH
    s.append(EX, "ETH/USDT", TF, {k: v[keep] for k, v in eth.items()})
    return s


def test_read_market_matches_the_frames_on_the_union_grid(store):
    m = store.read_market(EX, ["BTC/USDT", "ETH/USDT"], TF)
    assert isinstance(m, nbtrade.Market)
    assert m.symbols == ["BTC/USDT", "ETH/USDT"] and m.timeframe == TF and m.shape == (48, 2)
    assert list(m.meta["exchange"]) == [EX, EX]
    frames = store.read_many(EX, ["BTC/USDT", "ETH/USDT"], TF)
    for field in ("open", "high", "low", "close", "volume"):
        want = pd.DataFrame({s: f[field] for s, f in frames.items()})  # pandas' union join
        pd.testing.assert_frame_equal(getattr(m, field), want, check_names=False, check_freq=False)
    # ETH: 6 bars before its first candle and 3 gap bars have no candle, nothing filled
    assert m.n_missing == 6 + 3
    assert np.isnan(m.array("close")[:6, 1]).all() and np.isfinite(m.array("close")[:, 0]).all()


def test_read_many_as_market_and_range_and_columns(store):
    m = store.read_many(EX, ["ETH/USDT", "BTC/USDT"], TF, "2024-01-02", "2024-01-02 12:00", as_market=True)
    assert m.symbols == ["ETH/USDT", "BTC/USDT"] and m.shape == (12, 2)
    assert m.index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    direct = store.read(EX, "BTC/USDT", TF, "2024-01-02", "2024-01-02 12:00")
    np.testing.assert_array_equal(m.array("close")[:, 1], direct["close"].to_numpy())
    closes = store.read_market(EX, "BTC/USDT", TF, columns=["close"])
    assert closes.close_only and closes.shape == (48, 1)


def test_one_symbol_spelling_reads_the_unified_series(store):
    m = store.read_market(EX, ["BTCUSDT"], TF)
    np.testing.assert_array_equal(m.array("close")[:, 0], store.read(EX, "BTC/USDT", TF)["close"].to_numpy())


def test_read_market_refusals_name_the_fault(store):
    with pytest.raises(ValueError, match=r"store binance 1h \[2024-01-01, 2024-01-01 03:00\): no candles for ETH/USDT"):
        store.read_market(EX, ["BTC/USDT", "ETH/USDT"], TF, "2024-01-01", "2024-01-01 03:00")
    with pytest.raises(ValueError, match="names 'BTC/USDT' twice"):
        store.read_market(EX, ["BTC/USDT", "BTC/USDT"], TF)
    with pytest.raises(ValueError, match="close column"):
        store.read_market(EX, ["BTC/USDT"], TF, columns=["volume"])
    with pytest.raises(ValueError, match="no symbols"):
        store.read_market(EX, [], TF)
    with pytest.raises(ValueError, match="subset of"):
        store.read_market(EX, ["BTC/USDT"], TF, columns=["closes"])
    with pytest.raises(KeyError, match="SOL/USDT"):
        store.read_market(EX, ["BTC/USDT", "SOL/USDT"], TF)
    with pytest.raises(NotFound):
        store.read_market("okx", ["BTC/USDT"], TF)


def test_float32_store_gives_float64_panel(tmp_path):
    s = Store(tmp_path, dtype="float32")
    a = candles("BTC/USDT", "2024-01-01", "2024-01-02", TF, seed=5)
    s.append(EX, "BTC/USDT", TF, a)
    m = s.read_market(EX, ["BTC/USDT"], TF)
    assert m.array("close").dtype == np.float64 and m.array("close").flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(m.array("close")[:, 0], a["close"].astype(np.float32).astype(np.float64))
    with pytest.raises(KeyError):
        s.read_market(EX, ["BTC/USDT"], "4h")
