"""parquet and feather import/export (pyarrow extra)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from nbtrade.data.store import Store
from nbtrade.synthetic import candles

pytest.importorskip("pyarrow")
from nbtrade.data.formats import export_table, import_table, read_table  # noqa: E402

EX, SYM, TF = "binance", "BTC/USDT", "1m"
COLS = ("time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def data():
    return candles(SYM, "2024-01-01", "2024-01-02", TF, seed=4)


def check(got, want):
    for c in COLS:
        np.testing.assert_array_equal(got[c], want[c], err_msg=c)


@pytest.mark.parametrize("ext", [".parquet", ".feather"])
def test_store_round_trip(tmp_path, data, ext):
    store = Store(tmp_path / "a")
    store.append(EX, SYM, TF, data)
    out = export_table(store.iter_blocks(EX, SYM, TF, rows=500), tmp_path / f"x{ext}")
    assert out.rows == data["time"].size and out.bytes > 0
    back = Store(tmp_path / "b")
    res = import_table(tmp_path / f"x{ext}", back, EX, SYM, TF)
    assert res.added == data["time"].size and res.ignored_columns == []
    check(back.read(EX, SYM, TF, as_arrays=True), data)


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_pandas_written_files_any_unit_zone_and_names(tmp_path, data, unit):
    idx = pd.to_datetime(data["time"], unit="ms", utc=True).as_unit(unit).tz_convert("Asia/Tokyo")
    df = pd.DataFrame({"Open": data["open"], "HIGH": data["high"], "low": data["low"], "Close": data["close"],
                       "Volume": data["volume"], "trades": 7}, index=pd.Index(idx, name="Date"))
    df.to_parquet(tmp_path / "x.parquet")
    ignored = []
    check(read_table(tmp_path / "x.parquet", TF, ignored), data)
    assert ignored == ["trades"]


def test_integer_epoch_column(tmp_path, data):
    pd.DataFrame({"timestamp": data["time"] // 1000, **{c: data[c] for c in COLS[1:]}}).to_feather(
        tmp_path / "x.feather")
    check(read_table(tmp_path / "x.feather"), data)


def test_bad_tables(tmp_path, data):
    with pytest.raises(ValueError, match="unknown table format"):
        read_table(tmp_path / "x.xlsx")
    with pytest.raises(FileNotFoundError):
        read_table(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"bad\.parquet': not a readable parquet"):
        read_table(tmp_path / "bad.parquet")
    pd.DataFrame({"time": data["time"], "open": data["open"]}).to_parquet(tmp_path / "cols.parquet")
    with pytest.raises(ValueError, match="missing"):
        read_table(tmp_path / "cols.parquet")
    bad = {c: v.copy() for c, v in data.items()}
    bad["high"][3] = bad["low"][3] / 2
    pd.DataFrame(bad).to_parquet(tmp_path / "hl.parquet")
    with pytest.raises(ValueError, match="high < low"):
        import_table(tmp_path / "hl.parquet", tmp_path / "s", EX, SYM, TF)
    with pytest.raises(ValueError, match="would not import back"):
        export_table(bad, tmp_path / "out.parquet")
    assert not os.path.exists(tmp_path / "out.parquet")
    with pytest.raises(ValueError, match="pass exchange, symbol and timeframe"):
        import_table(tmp_path / "hl.parquet", tmp_path / "s")
