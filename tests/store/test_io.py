"""CSV import/export (compressed, chunked, atomic), .npy memory maps, dtype optimiser, memory monitor."""
from __future__ import annotations

import bz2
import gzip
import os

import lz4.frame
import numpy as np
import pandas as pd
import pytest

from nbtrade.data import io
from nbtrade.data.journal import journal_path
from nbtrade.data.memory import MemoryMonitor, rss
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

EX, SYM, TF = "binance", "BTC/USDT", "1m"
COLS = ("time", "open", "high", "low", "close", "volume")
EXTS = [".csv", ".csv.gz", ".csv.bz2", ".csv.lz4"]


@pytest.fixture(scope="module")
def data():
    return candles(SYM, "2024-01-01", "2024-01-03", TF, seed=5)  # 2,880 rows


def write_text(path, text: str) -> None:
    comp = io.compression_of(path)
    opener = {None: open, "gzip": gzip.open, "bz2": bz2.open, "lz4": lz4.frame.open}[comp]
    with opener(path, "wb") as fh:
        fh.write(text.encode())


def csv_text(data, lo=0, hi=None, iso=False) -> str:
    df = pd.DataFrame({c: data[c][lo:hi] for c in COLS})
    if iso:
        df["time"] = pd.to_datetime(df["time"], unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        df = df.rename(columns={"time": "timestamp_ms"})
    return df.to_csv(index=False)


def assert_same(a, b):
    for c in COLS:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)


@pytest.mark.parametrize("ext", EXTS)
@pytest.mark.parametrize("time_format", ["ms", "iso"])
def test_export_import_round_trip(tmp_path, data, ext, time_format):
    src = Store(tmp_path / "a", chunk_rows=512)
    src.append(EX, SYM, TF, data)
    path = tmp_path / f"binance_BTC_USDT_1m{ext}"
    res = io.export_series(src, EX, SYM, TF, path, time_format=time_format, chunk_rows=1000)
    assert res.rows == data["time"].size and res.bytes == path.stat().st_size
    assert io.compression_of(path) == {".csv": None, ".csv.gz": "gzip", ".csv.bz2": "bz2",
                                       ".csv.lz4": "lz4"}[ext]
    dst = Store(tmp_path / "b")
    imp = io.import_csv(path, dst, chunk_rows=700)  # names inferred from the file name
    assert (imp.exchange, imp.symbol, imp.timeframe) == (EX, SYM, TF)
    assert imp.rows == imp.added == data["time"].size and imp.chunks == 5
    assert_same(dst.read(EX, SYM, TF, as_arrays=True), data)
    assert dst.verify().ok


def test_export_range_and_frames(tmp_path, data):
    store = Store(tmp_path)
    store.append(EX, SYM, TF, data)
    io.export_series(store, EX, SYM, TF, tmp_path / "day.csv", "2024-01-02", "2024-01-03")
    day = io.read_csv(tmp_path / "day.csv")
    assert len(day) == 1440 and day.index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    frame = store.read(EX, SYM, TF)
    io.export_csv(frame, tmp_path / "frame.csv.gz", time_format="iso")
    pd.testing.assert_frame_equal(io.read_csv(tmp_path / "frame.csv.gz"), frame, check_freq=False,
                                  check_names=False)
    with pytest.raises(TypeError, match="data"):
        io.export_csv(42, tmp_path / "x.csv")
    with pytest.raises(ValueError, match="time_format"):
        io.export_csv(frame, tmp_path / "x.csv", time_format="unix")


def test_iso_and_second_timestamps(tmp_path, data):
    p = tmp_path / "iso.csv"
    write_text(p, csv_text(data, 0, 100, iso=True))
    got = io.read_csv(p, timeframe=TF)
    np.testing.assert_array_equal(got["close"].to_numpy(), data["close"][:100])
    assert got.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    secs = pd.DataFrame({"timestamp": data["time"][:50] // 1000, **{c: data[c][:50] for c in COLS[1:]}})
    secs.to_csv(tmp_path / "s.csv", index=False)
    out = io.import_csv(tmp_path / "s.csv", Store(tmp_path / "st"), EX, SYM, TF)
    assert out.added == 50
    assert_same(Store(tmp_path / "st").read(EX, SYM, TF, as_arrays=True), {k: v[:50] for k, v in data.items()})


def test_chunked_import_of_real_layout_streams(tmp_path, data):
    p = tmp_path / "big.csv.gz"
    write_text(p, csv_text(data))
    store = Store(tmp_path / "s")
    res = io.import_csv(p, store, EX, SYM, TF, chunk_rows=100)
    assert res.chunks == 29 and res.rows == 2880
    assert res.peak_rss_growth_mb >= 0.0 and res.seconds > 0
    assert store.info(EX, SYM, TF)["batches"] == 29


def _prefilled(tmp_path, data):
    store = Store(tmp_path / "store", chunk_rows=512)
    store.append(EX, SYM, TF, {k: v[:1000] for k, v in data.items()})
    path = store.path(EX)
    return store, path, path.read_bytes()


def _poke(text: str, line: int, field: int, value: str) -> str:
    lines = text.split("\n")
    cells = lines[line].split(",")
    cells[field] = value
    lines[line] = ",".join(cells)
    return "\n".join(lines)


BAD_FILES = {
    "extra field": lambda d: csv_text(d, 1000, 1500) + "1704157200000,1,2,0.5,1,3,99\n",
    "malformed value": lambda d: _poke(csv_text(d, 1000, 1500), 450, 2, "abc"),
    "wrong columns": lambda d: csv_text(d, 1000, 1500).replace("volume", "vol", 1),
    "unsorted": lambda d: csv_text(d, 1000, 1500) + csv_text(d, 1200, 1201).split("\n", 1)[1],
    "duplicate across chunks": lambda d: csv_text(d, 1000, 1400) + csv_text(d, 1399, 1400).split("\n", 1)[1],
    "missing field": lambda d: csv_text(d, 1000, 1500) + "1704157200000,1,2,0.5,1\n",
    "bad candle late": lambda d: csv_text(d, 1000, 1500) + "1704157200000,1,0.5,2,1,3\n",
    "bad time": lambda d: csv_text(d, 1000, 1500) + "yesterday,1,2,0.5,1,3\n",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_csv_raises_and_changes_nothing(tmp_path, data, case):
    store, path, before = _prefilled(tmp_path, data)
    p = tmp_path / "bad.csv.gz"
    write_text(p, BAD_FILES[case](data))
    with pytest.raises(ValueError, match="bad.csv.gz"):
        io.import_csv(p, store, EX, SYM, TF, chunk_rows=200)  # errors land after earlier chunks were written
    assert path.read_bytes() == before
    assert not os.path.exists(journal_path(str(path)))
    assert store.verify().ok


def test_unknown_compression_missing_and_corrupt_files(tmp_path, data):
    store = Store(tmp_path / "s")
    for name in ("x.csv.zst", "x.txt", "x.parquet"):
        with pytest.raises(ValueError, match="unknown compression"):
            io.import_csv(tmp_path / name, store, EX, SYM, TF)
        with pytest.raises(ValueError, match="unknown compression"):
            io.export_csv({k: v[:3] for k, v in data.items()}, tmp_path / name)
    with pytest.raises(FileNotFoundError):
        io.import_csv(tmp_path / "absent.csv", store, EX, SYM, TF)
    gz = tmp_path / "trunc.csv.gz"
    write_text(gz, csv_text(data))
    gz.write_bytes(gz.read_bytes()[:2000])
    with pytest.raises(ValueError, match="trunc.csv.gz"):
        io.import_csv(gz, store, EX, SYM, TF)
    fake = tmp_path / "fake.csv.lz4"
    fake.write_bytes(b"not an lz4 frame at all")
    with pytest.raises(ValueError, match="fake.csv.lz4"):
        io.import_csv(fake, store, EX, SYM, TF)
    assert store.ls() == [] and not store.path(EX).exists()
    gzbad = tmp_path / "late.csv"
    write_text(gzbad, csv_text(data) + "1,2,3\n")
    with pytest.raises(ValueError, match="late.csv"):
        io.import_csv(gzbad, store, EX, SYM, TF, chunk_rows=500)  # fails after 5 chunks were appended
    assert store.exchanges() == []
    with pytest.raises(ValueError, match="infer"):
        io.import_csv(tmp_path / "candles.csv", store)


def test_export_failure_leaves_no_file(tmp_path, data):
    def blocks():
        yield {k: v[:10] for k, v in data.items()}
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        io.export_csv(blocks(), tmp_path / "out.csv")
    assert os.listdir(tmp_path) == []


def test_import_many_concurrently(tmp_path, data):
    paths = []
    for sym in ("BTC_USDT", "ETH_USDT", "SOL_USDT"):
        p = tmp_path / f"binance_{sym}_1m.csv.bz2"
        write_text(p, csv_text(data))
        paths.append(p)
    bad = tmp_path / "okx_XRP_USDT_1m.csv"
    write_text(bad, csv_text(data, 0, 100).replace("open", "opn"))
    store = Store(tmp_path / "s")
    results = io.import_many(paths + [bad], store, threads=3, chunk_rows=1000)
    assert [r.error is None for r in results] == [True, True, True, False]
    assert "wrong columns" in results[-1].error
    assert [(d["symbol"], d["rows"]) for d in store.ls()] == [("BTC/USDT", 2880), ("ETH/USDT", 2880),
                                                              ("SOL/USDT", 2880)]
    assert store.verify().ok
    with pytest.raises(ValueError, match="wrong columns"):
        io.import_many([bad], store, raise_errors=True)


def test_parse_name():
    assert io.parse_name("/x/binance_BTC_USDT_1m.csv.gz") == {"exchange": "binance", "symbol": "BTC/USDT",
                                                             "timeframe": "1m"}
    with pytest.raises(ValueError):
        io.parse_name("BTCUSDT.csv")


# --- npy ----------------------------------------------------------------------------
def test_npy_memory_map_round_trip(tmp_path):
    arr = np.arange(1_000_000, dtype=np.float64).reshape(-1, 4)
    p = io.save_npy(tmp_path / "a.npy", arr)
    m = io.load_npy(p)
    assert isinstance(m, np.memmap) and not m.flags.writeable
    np.testing.assert_array_equal(m[1000:1010], arr[1000:1010])
    assert isinstance(io.load_npy(p, mmap=False), np.ndarray)
    assert [f for f in os.listdir(tmp_path)] == ["a.npy"]


def test_npy_bad_input(tmp_path):
    with pytest.raises(ValueError, match=".npy"):
        io.save_npy(tmp_path / "a.bin", np.zeros(3))
    with pytest.raises(TypeError, match="objects"):
        io.save_npy(tmp_path / "a.npy", np.array([object()]))
    (tmp_path / "junk.npy").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a valid .npy"):
        io.load_npy(tmp_path / "junk.npy")
    with pytest.raises(FileNotFoundError):
        io.load_npy(tmp_path / "none.npy")


# --- dtype optimiser -------------------------------------------------------------------
def test_optimize_dtypes():
    n = 1000
    df = pd.DataFrame({
        "exact": np.arange(n) * 0.5,  # representable in float32
        "fine": np.linspace(0, 1, n) + 1e-12,  # not exactly
        "small_int": np.arange(n, dtype=np.int64) % 100,
        "neg_int": -np.arange(n, dtype=np.int64),
        "side": np.where(np.arange(n) % 2, "buy", "sell"),
        "ids": [f"id{i}" for i in range(n)],
    })
    out, saved = io.optimize_dtypes(df)
    assert out["exact"].dtype == np.float32 and out["fine"].dtype == np.float64
    assert out["small_int"].dtype == np.uint8 and out["neg_int"].dtype == np.int16
    assert isinstance(out["side"].dtype, pd.CategoricalDtype) and out["ids"].dtype == df["ids"].dtype
    assert saved == df.memory_usage(deep=True).sum() - out.memory_usage(deep=True).sum() > 0
    assert df["exact"].dtype == np.float64  # input untouched
    for c in ("exact", "small_int", "neg_int", "side"):
        assert (out[c].astype(df[c].dtype) == df[c]).all()
    lossy, _ = io.optimize_dtypes(df, lossy=True)
    assert lossy["fine"].dtype == np.float32
    with pytest.raises(TypeError, match="df"):
        io.optimize_dtypes(np.zeros(3))
    with pytest.raises(ValueError, match="categorical_ratio"):
        io.optimize_dtypes(df, categorical_ratio=2)


def test_optimize_dtypes_keeps_nan_and_inf():
    df = pd.DataFrame({"x": [1.5, np.nan, np.inf, -2.0], "y": [1e300, 1.0, 2.0, 3.0]})
    out, _ = io.optimize_dtypes(df, lossy=True)
    assert out["x"].dtype == np.float32 and np.isnan(out["x"][1]) and np.isinf(out["x"][2])
    assert out["y"].dtype == np.float64  # 1e300 overflows float32


# --- memory monitor ------------------------------------------------------------------
def test_memory_monitor_tracks_peak():
    with MemoryMonitor(interval=0.005) as mem:
        block = np.ones(40 * 2**20 // 8)  # 40 MiB touched
        mem.sample()
        del block
    assert mem.peak_growth_mb >= 30 and mem.peak_rss >= mem.start_rss and mem.samples >= 2
    assert rss() > 0


def test_memory_monitor_limit_and_bad_interval():
    mem = MemoryMonitor(interval=None, limit_mb=1).start()
    block = np.ones(20 * 2**20 // 8)
    with pytest.raises(MemoryError, match="limit"):
        mem.sample()
    mem.stop()
    del block
    with pytest.raises(ValueError, match="interval"):
        MemoryMonitor(interval=0)


def test_chunked_import_memory_stays_bounded(tmp_path):
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from _crash_child import make_data

    n = 500_000  # 24 MB as arrays, ~35 MB of CSV text
    a = make_data(n)
    path = tmp_path / "binance_BTC_USDT_1m.csv.lz4"
    io.export_csv(a, path)
    io.export_csv({k: v[:30_000] for k, v in a.items()}, tmp_path / "warm_BTC_USDT_1m.csv.lz4")
    store = Store(tmp_path / "s")
    io.import_csv(tmp_path / "warm_BTC_USDT_1m.csv.lz4", store, chunk_rows=10_000)  # imports, allocator pools
    res = io.import_csv(path, store, chunk_rows=10_000)
    assert res.rows == n and res.chunks == 50
    assert res.peak_rss_growth_mb < 12, res.peak_rss_growth_mb  # the whole file would need > 24 MB
    np.testing.assert_array_equal(store.read(EX, SYM, TF, columns=["close"], as_arrays=True)["close"], a["close"])


def test_export_npy_streams_and_memory_maps(tmp_path, data):
    store = Store(tmp_path / "s", chunk_rows=512)
    store.append(EX, SYM, TF, data)
    assert store.count(EX, SYM, TF, "2024-01-02", "2024-01-03") == 1440
    paths = io.export_npy(store, EX, SYM, TF, tmp_path / "npy", chunk_rows=1000)
    assert sorted(paths) == sorted(COLS)
    cols = io.load_npy_columns(tmp_path / "npy")
    assert all(isinstance(v, np.memmap) for v in cols.values())
    assert_same(cols, data)
    day = io.export_npy(store, EX, SYM, TF, tmp_path / "day", "2024-01-02", "2024-01-03")
    assert np.load(day["close"]).shape == (1440,)
    empty = io.export_npy(store, EX, SYM, TF, tmp_path / "none", "2030-01-01")
    assert np.load(empty["time"]).shape == (0,)
    assert sorted(os.listdir(tmp_path / "npy")) == sorted(c + ".npy" for c in COLS)
    with pytest.raises(ValueError, match="no .npy"):
        io.load_npy_columns(tmp_path / "s")


def test_export_npy_failing_midway_leaves_the_old_files(tmp_path, data, monkeypatch):
    store = Store(tmp_path / "s", chunk_rows=512)
    store.append(EX, SYM, TF, data)
    io.export_npy(store, EX, SYM, TF, tmp_path / "npy", "2024-01-02", "2024-01-03")
    real = Store.iter_blocks

    def broken(self, *a, **kw):
        it = real(self, *a, **kw)
        yield next(it)
        raise OSError("disk gone")

    monkeypatch.setattr(Store, "iter_blocks", broken)
    with pytest.raises(OSError, match="disk gone"):
        io.export_npy(store, EX, SYM, TF, tmp_path / "npy", chunk_rows=100)
    assert sorted(os.listdir(tmp_path / "npy")) == sorted(c + ".npy" for c in COLS)  # no temporary left
    assert np.load(tmp_path / "npy" / "close.npy").shape == (1440,)


def test_binance_headerless_kline_dump(tmp_path, data):
    n = 300
    rows = []
    for i in range(n):
        t_us = int(data["time"][i]) * 1000  # Binance spot dumps switched to microseconds in 2025
        ohlcv = ",".join(repr(float(data[c][i])) for c in COLS[1:])
        rows.append(f"{t_us},{ohlcv},{t_us + 59_999_999},123.4,42,1.5,2.5,0")
    p = tmp_path / "BTCUSDT-1m-2024-01.csv"
    write_text(p, "\n".join(rows) + "\n")
    store = Store(tmp_path / "s")
    res = io.import_csv(p, store, EX, SYM, TF, chunk_rows=128)
    assert res.rows == n
    assert_same(store.read(EX, SYM, TF, as_arrays=True), {k: v[:n] for k, v in data.items()})
