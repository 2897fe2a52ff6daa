"""CSV, bulk and parquet import results read back as one Market panel."""
from __future__ import annotations

import numpy as np
import pytest

import nbtrade
from nbtrade.data import io
from nbtrade.data.bulk import BulkResult, import_bulk, write_bulk_file
from nbtrade.data.imports import import_paths
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

EX, TF = "binance", "1h"


def rounded(symbol, seed):
    a = candles(symbol, "2024-01-01", "2024-01-03", TF, seed=seed)
    for c in ("open", "high", "low", "close", "volume"):
        a[c] = np.round(a[c], 4)
    return a


def test_csv_import_to_market(tmp_path):
    src = Store(tmp_path / "src")
    src.append(EX, "BTC/USDT", TF, rounded("BTC/USDT", 1))
    path = tmp_path / "binance_BTC_USDT_1h.csv"
    io.export_series(src, EX, "BTC/USDT", TF, path)
    dst = Store(tmp_path / "dst")
    res = io.import_csv(path, dst)
    m = res.to_market()
    assert isinstance(m, nbtrade.Market) and m.symbols == ["BTC/USDT"] and m.shape == (48, 1)
    np.testing.assert_array_equal(m.array("close")[:, 0], dst.read(EX, "BTC/USDT", TF)["close"].to_numpy())
    assert res.to_market("2024-01-02").shape == (24, 1)
    with pytest.raises(ValueError, match="import failed"):
        io.ImportResult("x.csv", error="bad columns").to_market()
    with pytest.raises(ValueError, match="read_market"):
        io.ImportResult("x.csv", EX, "BTC/USDT", TF).to_market()


def test_bulk_import_to_market(tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    for sid, seed in (("BTCUSDT", 1), ("ETHUSDT", 2)):
        write_bulk_file(folder / f"{sid}-1h-2024-01.zip", rounded(sid, seed), TF)
    store = Store(tmp_path / "s")
    m = import_bulk(folder, store).to_market()
    assert sorted(m.symbols) == ["BTC/USDT", "ETH/USDT"] and m.shape == (48, 2) and m.n_missing == 0
    with pytest.raises(ValueError, match="pass timeframe="):
        BulkResult(EX, series=[_series("A", "1h"), _series("A", "1d")]).to_market()


def _series(symbol, tf):
    from nbtrade.data.bulk import BulkSeries

    return BulkSeries(symbol, tf, files=1, rows=1)


def test_parquet_import_rows_to_market(tmp_path):
    pytest.importorskip("pyarrow")
    from nbtrade.data.formats import export_table

    src = Store(tmp_path / "src")
    src.append(EX, "ETH/USDT", TF, rounded("ETH/USDT", 3))
    export_table(src.iter_blocks(EX, "ETH/USDT", TF), tmp_path / "eth.parquet")
    rows = import_paths([str(tmp_path / "eth.parquet")], Store(tmp_path / "dst"), exchange=EX,
                        symbol="ETH/USDT", timeframe=TF)
    m = rows[0].to_market()
    np.testing.assert_array_equal(m.array("close")[:, 0], src.read(EX, "ETH/USDT", TF)["close"].to_numpy())
