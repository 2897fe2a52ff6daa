"""Binance public bulk kline files: names, zips, ms/us times, folders and globs in one transaction."""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from nbtrade.data.bulk import import_bulk, parse_bulk_name, read_bulk_file, split_symbol, write_bulk_file
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

COLS = ("time", "open", "high", "low", "close", "volume")


def month(symbol, start, end, tf="1m", seed=1):
    a = candles(symbol, start, end, tf, seed=seed)
    for c in ("open", "high", "low", "close"):
        a[c] = np.round(a[c], 2)
    a["volume"] = np.round(a["volume"], 5)
    return a


def check(got, want):
    for c in COLS:
        np.testing.assert_array_equal(got[c], want[c], err_msg=c)


def test_names_parse_and_refuse():
    f = parse_bulk_name("/x/BTCUSDT-1m-2024-01.zip")
    assert (f.symbol, f.timeframe, f.period) == ("BTC/USDT", "1m", "2024-01")
    assert parse_bulk_name("ETHFDUSD-1h-2025-03-02.csv").symbol == "ETH/FDUSD"
    assert split_symbol("ETHBTC") == "ETH/BTC"
    with pytest.raises(ValueError, match=r"prices\.zip.*SYMBOL-INTERVAL-YYYY-MM.*--symbol/--timeframe"):
        parse_bulk_name("prices.zip")
    assert parse_bulk_name("prices.zip", "BTC/USDT", "1h").timeframe == "1h"
    with pytest.raises(ValueError, match="quote asset of 'FOOXYZ'.*--symbol"):
        parse_bulk_name("FOOXYZ-1m-2024-01.zip")
    with pytest.raises(ValueError, match="timeframe"):
        parse_bulk_name("BTCUSDT-7m-2024-01.zip")


@pytest.mark.parametrize("unit,header", [("ms", False), ("us", False), ("ms", True)])
def test_zip_round_trip_ms_us_and_header(tmp_path, unit, header):
    a = month("BTC/USDT", "2024-01-01", "2024-01-03")
    p = write_bulk_file(tmp_path / "BTCUSDT-1m-2024-01.zip", a, "1m", time_unit=unit, header=header)
    layout = []
    check(read_bulk_file(p, "1m", layout), a)
    assert layout[0].ignored[0] == "close_time"


def test_folder_and_glob_import_in_one_transaction(tmp_path):
    folder = tmp_path / "dl"
    folder.mkdir()
    want = {}
    for sym, sid in (("BTC/USDT", "BTCUSDT"), ("ETH/USDT", "ETHUSDT")):
        parts = [month(sym, "2024-01-01", "2024-02-01", seed=2), month(sym, "2024-02-01", "2024-03-01", seed=3)]
        want[sym] = {c: np.concatenate([p[c] for p in parts]) for c in COLS}
        write_bulk_file(folder / f"{sid}-1m-2024-02.zip", parts[1], "1m", time_unit="us")  # 2025-style times
        write_bulk_file(folder / f"{sid}-1m-2024-01.zip", parts[0], "1m")
    store = Store(tmp_path / "s")
    res = import_bulk(folder, store, threads=2)
    assert res.files == 4 and res.rows == 2 * want["BTC/USDT"]["time"].size
    assert {s.symbol for s in res.series} == {"BTC/USDT", "ETH/USDT"} and all(s.files == 2 for s in res.series)
    assert store.info("binance", "BTC/USDT", "1m")["batches"] == 2  # appended in time order, one per file
    for sym, a in want.items():
        check(store.read("binance", sym, "1m", as_arrays=True), a)
    again = import_bulk(str(folder / "BTC*.zip"), store)  # a glob; overlapping files are duplicates
    assert again.series[0].duplicates == want["BTC/USDT"]["time"].size and again.series[0].added == 0


def _folder_with(tmp_path, name, content: bytes | None = None):
    folder = tmp_path / "dl"
    folder.mkdir()
    a = month("BTC/USDT", "2024-01-01", "2024-01-02")
    write_bulk_file(folder / "BTCUSDT-1m-2024-01-01.zip", a, "1m")
    bad = folder / name
    if content is not None:
        bad.write_bytes(content)
    return folder, bad


BAD = {
    "malformed zip": ("BTCUSDT-1m-2024-01-02.zip", b"PK\x03\x04 this is not a zip"),
    "name that does not parse": ("candles.zip", None),
    "mixed units": ("BTCUSDT-1m-2024-01-02.csv", None),
    "corrupt member": ("BTCUSDT-1m-2024-01-03.zip", None),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_files_change_nothing_and_name_the_file(tmp_path, case):
    name, content = BAD[case]
    folder, bad = _folder_with(tmp_path, name, content)
    b = month("BTC/USDT", "2024-01-02", "2024-01-03")
    if case == "name that does not parse":
        write_bulk_file(bad, b, "1m")
    elif case == "mixed units":
        write_bulk_file(bad, b, "1m")
        lines = bad.read_text().splitlines()
        cells = lines[10].split(",")
        cells[0] = str(int(cells[0]) * 1000)  # one row in microseconds
        lines[10] = ",".join(cells)
        bad.write_text("\n".join(lines) + "\n")
    elif case == "corrupt member":
        write_bulk_file(bad, b, "1m")
        raw = bytearray(bad.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        bad.write_bytes(bytes(raw))
    store = Store(tmp_path / "s")
    store.append("binance", "BTC/USDT", "1m", month("BTC/USDT", "2023-12-31", "2024-01-01"))
    before = store.path("binance").read_bytes()
    with pytest.raises(ValueError, match=os.path.basename(bad)):
        import_bulk(folder, store)
    assert store.path("binance").read_bytes() == before


def test_missing_paths_and_empty_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_bulk(tmp_path / "nope.zip", tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no .zip"):
        import_bulk(tmp_path / "empty", tmp_path / "s")
    with pytest.raises(ValueError, match="matches no file"):
        import_bulk(str(tmp_path / "*.zip"), tmp_path / "s")
    z = tmp_path / "BTCUSDT-1m-2024-01.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("a.csv", "1,2,3,1,2,5\n")
        zf.writestr("b.csv", "1,2,3,1,2,5\n")
    with pytest.raises(ValueError, match="2 .csv members"):
        import_bulk(z, tmp_path / "s")
