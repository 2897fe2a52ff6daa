"""HDF5 store: round trips, range reads, merge rules, validation, integrity, bad files."""
from __future__ import annotations

import os

import h5py
import numpy as np
import pandas as pd
import pytest

from nbtrade.data.journal import JournaledFile, journal_path
from nbtrade.data.layout import safe_symbol
from nbtrade.data.store import NotFound, Store
from nbtrade.synthetic import candles, market

EX, SYM, TF = "binance", "BTC/USDT", "1m"
COLS = ("time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def data():
    return candles(SYM, "2024-01-01", "2024-01-08", TF, seed=3)  # 10,080 rows


def part(a, lo, hi):
    return {k: v[lo:hi] for k, v in a.items()}


def small_store(tmp_path, **kw):
    return Store(tmp_path, chunk_rows=kw.pop("chunk_rows", 1024), **kw)


def raw_chunk(store, exchange, gpath, column, k):
    """Compressed bytes and file offset of chunk k of a column (proves chunks were not rewritten)."""
    with h5py.File(store.path(exchange), "r", locking=False) as f:
        ds = f[gpath][column]
        info = ds.id.get_chunk_info(k)
        return info.byte_offset, ds.id.read_direct_chunk((k * ds.chunks[0],))[1]


def assert_same(a, b):
    for c in COLS:
        np.testing.assert_array_equal(a[c], b[c], err_msg=c)


# --- round trips ------------------------------------------------------------------
def test_dataframe_round_trip(tmp_path):
    df = market(SYM, "2024-01-01", "2024-01-03", "5m", seed=1)
    store = Store(tmp_path)
    res = store.append(EX, SYM, "5m", df)
    assert res.added == len(df) and res.rows == len(df)
    got = store.read(EX, SYM, "5m")
    pd.testing.assert_frame_equal(got, df, check_freq=False)
    assert str(got.index.tz) == "UTC"
    assert (tmp_path / "binance.h5").exists()


def test_arrays_round_trip_columns_and_float32(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, data)
    assert_same(store.read(EX, SYM, TF, as_arrays=True), data)
    got = store.read(EX, SYM, TF, columns=["close"], as_arrays=True)
    assert set(got) == {"time", "close"}
    f32 = Store(tmp_path / "f32", dtype="float32")
    f32.append(EX, SYM, TF, data)
    got = f32.read(EX, SYM, TF, as_arrays=True)
    assert got["close"].dtype == np.float32
    np.testing.assert_allclose(got["close"], data["close"], rtol=1e-7)
    assert f32.verify().ok
    assert f32.info(EX, SYM, TF)["dtype"] == "float32"


def test_safe_group_names(tmp_path, data):
    assert safe_symbol("BTC/USDT") == "BTC-USDT"
    assert safe_symbol("BTC/USDT:USDT") == "BTC-USDT_USDT"
    store = small_store(tmp_path)
    store.append(EX, "BTC/USDT:USDT", TF, part(data, 0, 10))
    assert store.ls()[0]["symbol"] == "BTC/USDT:USDT"
    with h5py.File(store.path(EX), "r") as f:
        assert "BTC-USDT_USDT/1m/close" in f


# --- range reads ------------------------------------------------------------------
def test_range_reads_match_pandas_slicing(tmp_path, data, rng):
    store = small_store(tmp_path, chunk_rows=512)
    gappy = candles(SYM, "2024-01-01", "2024-01-08", TF, seed=3, gaps=0.1)
    store.append(EX, SYM, TF, gappy)
    t = gappy["time"]
    for _ in range(60):
        bounds = rng.integers(t[0] - 10 * 60_000, t[-1] + 10 * 60_000, 2)
        if rng.random() < 0.5:  # exact bar times too
            bounds[0] = t[rng.integers(0, t.size)]
        lo, hi = (int(x) for x in np.sort(bounds))
        got = store.read(EX, SYM, TF, lo, hi, as_arrays=True)
        mask = (t >= lo) & (t < hi)
        assert_same(got, {k: v[mask] for k, v in gappy.items()})
    assert store.read(EX, SYM, TF, start=int(t[-1]) + 1, as_arrays=True)["time"].size == 0
    assert store.read(EX, SYM, TF, end=int(t[0]), as_arrays=True)["time"].size == 0
    day = store.read(EX, SYM, TF, "2024-01-02", "2024-01-03")
    assert day.index[0] >= pd.Timestamp("2024-01-02", tz="UTC") and day.index[-1] < pd.Timestamp("2024-01-03",
                                                                                                    tz="UTC")


def test_range_read_bad_arguments(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    with pytest.raises(ValueError, match="end"):
        store.read(EX, SYM, TF, "2024-01-02", "2024-01-01")
    with pytest.raises(ValueError, match="columns"):
        store.read(EX, SYM, TF, columns=["price"])
    with pytest.raises(ValueError, match="start"):
        store.read(EX, SYM, TF, start="not a date")
    with pytest.raises(NotFound):
        store.read(EX, "ETH/USDT", TF)
    with pytest.raises(NotFound):
        store.read("okx", SYM, TF)
    with pytest.raises(ValueError, match="timeframe"):
        store.read(EX, SYM, "7m")


def test_iter_blocks(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, data)
    blocks = list(store.iter_blocks(EX, SYM, TF, rows=3000))
    assert [b["time"].size for b in blocks] == [3000, 3000, 3000, 1080]
    assert_same({c: np.concatenate([b[c] for b in blocks]) for c in COLS}, data)


# --- append and merge rules ---------------------------------------------------------
def test_append_does_not_rewrite_full_chunks(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3000))  # chunks 0, 1 full; 2 partial
    before = [raw_chunk(store, EX, "BTC-USDT/1m", "close", k) for k in (0, 1)]
    res = store.append(EX, SYM, TF, part(data, 3000, 4500))
    assert res.rewrite_from is None and res.added == 1500
    assert [raw_chunk(store, EX, "BTC-USDT/1m", "close", k) for k in (0, 1)] == before
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 4500))
    assert store.last_time(EX, SYM, TF) == data["time"][4499]


def test_overlap_identical_rows_are_dropped(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 2000))
    res = store.append(EX, SYM, TF, part(data, 1500, 2500))
    assert (res.added, res.duplicates, res.replaced, res.rewrite_from) == (500, 500, 0, None)
    res = store.append(EX, SYM, TF, part(data, 100, 200))
    assert (res.added, res.duplicates, res.rows) == (0, 100, 2500)
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 2500))
    assert store.verify().ok


def test_gap_fill_rewrites_only_from_first_affected_chunk(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    store.append(EX, SYM, TF, part(data, 3500, 5000))  # leaves a gap 3000..3500
    assert store.info(EX, SYM, TF)["gaps"] == 1
    before = [raw_chunk(store, EX, "BTC-USDT/1m", c, k) for c in COLS for k in (0, 1)]
    res = store.append(EX, SYM, TF, part(data, 2900, 3600))
    assert (res.added, res.duplicates) == (500, 200)
    assert res.rewrite_from == 2048  # chunk holding row 3000 starts at 2 * 1024
    assert [raw_chunk(store, EX, "BTC-USDT/1m", c, k) for c in COLS for k in (0, 1)] == before
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 5000))
    rep = store.verify()
    assert rep.ok and rep.series[0].gaps == []


def test_prepend_older_history(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 5000, 6000))
    res = store.append(EX, SYM, TF, part(data, 0, 5000))
    assert res.added == 5000 and res.rewrite_from == 0
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 6000))
    info = store.info(EX, SYM, TF)
    assert info["first"] == data["time"][0] and info["last"] == data["time"][5999]
    assert store.verify().ok


@pytest.mark.parametrize("policy", ["replace", "keep", "raise"])
def test_conflict_policies(tmp_path, data, policy):
    store = small_store(tmp_path, on_conflict=policy)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    new = {k: v[1000:1100].copy() for k, v in data.items()}
    new["volume"] += 1.0
    if policy == "raise":
        with pytest.raises(ValueError, match="conflicts"):
            store.append(EX, SYM, TF, new)
        assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 3000))
        return
    res = store.append(EX, SYM, TF, new)
    got = store.read(EX, SYM, TF, as_arrays=True)
    if policy == "replace":
        assert res.replaced == 100 and res.rewrite_from == 0
        np.testing.assert_array_equal(got["volume"][1000:1100], new["volume"])
    else:
        assert res.kept == 100 and res.rows == 3000
        np.testing.assert_array_equal(got["volume"], data["volume"][:3000])
    assert store.verify().ok


def test_per_call_conflict_policy_overrides(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    new = {k: v[:10].copy() for k, v in data.items()}
    new["close"] = new["open"].copy()
    with pytest.raises(ValueError, match="conflicts"):
        store.append(EX, SYM, TF, new, on_conflict="raise")
    with pytest.raises(ValueError, match="on_conflict"):
        store.append(EX, SYM, TF, new, on_conflict="merge")


# --- validation: clear error, nothing written -------------------------------------------
def _bad_inputs(data):
    good = part(data, 0, 50)

    def mod(**changes):
        out = {k: v.copy() for k, v in good.items()}
        for k, fn in changes.items():
            fn(out[k]) if callable(fn) else out.__setitem__(k, fn)
        return out

    yield "unsorted", mod(time=lambda t: t.__setitem__(slice(10, 12), t[[11, 10]])), "not sorted"
    yield "duplicate", mod(time=lambda t: t.__setitem__(11, t[10])), "duplicate"
    yield "nan", mod(close=lambda x: x.__setitem__(5, np.nan)), "NaN"
    yield "negative", mod(low=lambda x: x.__setitem__(5, -1.0)), "non-positive"
    yield "high<low", mod(high=lambda x: x.__setitem__(5, good["low"][5] - 1)), "high < low"
    yield "open>high", mod(open=lambda x: x.__setitem__(5, good["high"][5] * 1.01)), "outside"
    yield "volume", mod(volume=lambda x: x.__setitem__(5, -1.0)), "negative volume"
    yield "offgrid", mod(time=lambda t: t.__setitem__(5, t[5] + 1)), "grid"
    missing = {k: v for k, v in good.items() if k != "volume"}
    yield "missing column", missing, "wrong columns"
    yield "extra column", {**good, "trades": good["volume"]}, "wrong columns"
    yield "float time", {**good, "time": good["time"].astype(float)}, "time"
    yield "short column", {**good, "close": good["close"][:-1]}, "shape"


@pytest.mark.parametrize("case", range(12))
def test_bad_input_raises_and_writes_nothing(tmp_path, data, case):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    before = (tmp_path / "binance.h5").read_bytes()
    name, bad, match = list(_bad_inputs(data))[case]
    with pytest.raises((ValueError, TypeError), match=match):
        store.append(EX, SYM, TF, bad)
    assert (tmp_path / "binance.h5").read_bytes() == before, name
    assert not os.path.exists(journal_path(str(tmp_path / "binance.h5")))


def test_bad_names_and_types(tmp_path, data):
    store = small_store(tmp_path)
    with pytest.raises(ValueError, match="exchange"):
        store.append("Binance Spot", SYM, TF, data)
    with pytest.raises(ValueError, match="symbol"):
        store.append(EX, "BTC USDT", TF, data)
    with pytest.raises(ValueError, match="timeframe"):
        store.append(EX, SYM, "2m", data)
    with pytest.raises(TypeError, match="data"):
        store.append(EX, SYM, TF, [1, 2, 3])
    with pytest.raises(ValueError, match="DatetimeIndex"):
        store.append(EX, SYM, TF, pd.DataFrame({c: data[c][:5] for c in COLS[1:]}))
    with pytest.raises(ValueError, match="dtype"):
        Store(tmp_path, dtype="float16")
    with pytest.raises(ValueError, match="on_conflict"):
        Store(tmp_path, on_conflict="merge")
    with pytest.raises(ValueError, match="codec"):
        Store(tmp_path, codec="snappy")
    assert not (tmp_path / "binance.h5").exists()


def test_empty_append_is_a_no_op(tmp_path, data):
    store = small_store(tmp_path)
    res = store.append(EX, SYM, TF, part(data, 0, 0))
    assert res.rows == 0 and store.last_time(EX, SYM, TF) is None


# --- transactions and the journal ------------------------------------------------------
def test_transaction_rolls_back_on_error(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 1000))
    before = (tmp_path / "binance.h5").read_bytes()
    with pytest.raises(RuntimeError):
        with store.transaction(EX) as tx:
            tx.append(SYM, TF, part(data, 1000, 3000))
            tx.append("ETH/USDT", TF, part(data, 0, 3000))
            assert tx.last_time(SYM, TF) == data["time"][2999]
            raise RuntimeError("boom")
    assert (tmp_path / "binance.h5").read_bytes() == before
    assert store.ls() == [{"exchange": EX, "symbol": SYM, "timeframe": TF, "rows": 1000,
                           "first": int(data["time"][0]), "last": int(data["time"][999]), "error": None}]


def test_leftover_journal_is_rolled_back_on_next_access(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 1000))
    path = str(tmp_path / "binance.h5")
    before = open(path, "rb").read()
    jf = JournaledFile(path)  # a writer that dies mid-transaction:
    jf.seek(0)
    jf.write(b"\xff" * 6000)  # clobbers the superblock and more
    jf.seek(len(before) + 10_000)
    jf.write(b"tail")  # grows the file
    jf._close_handles()  # ... and never commits
    assert open(path, "rb").read() != before
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 1000))
    assert open(path, "rb").read() == before
    assert not os.path.exists(journal_path(path))


def test_torn_journal_header_is_discarded(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    path = str(tmp_path / "binance.h5")
    with open(journal_path(path), "wb") as fh:
        fh.write(b"NBTJ")  # died while writing the header: the file was never touched
    assert store.verify().ok
    assert not os.path.exists(journal_path(path))


# --- metadata, verify ---------------------------------------------------------------
def test_ls_info_last_time(tmp_path, data):
    store = small_store(tmp_path)
    assert store.ls() == [] and store.last_time(EX, SYM, TF) is None
    store.append(EX, SYM, TF, part(data, 0, 2000))
    store.append(EX, "ETH/USDT", "1m", part(data, 0, 10))
    store.append("okx", SYM, TF, part(data, 0, 10))
    assert [(d["exchange"], d["symbol"]) for d in store.ls()] == [(EX, SYM), (EX, "ETH/USDT"), ("okx", SYM)]
    assert [d["exchange"] for d in store.ls("okx")] == ["okx"]
    info = store.info(EX, SYM, TF)
    assert info["rows"] == 2000 and info["schema_version"] == 1 and info["batches"] == 1
    assert info["first_iso"] == "2024-01-01T00:00:00.000Z"
    assert 0 < info["ratio"] < 1
    assert store.last_time(EX, SYM, TF) == data["time"][1999]


def test_verify_lists_gaps(tmp_path):
    gappy = candles(SYM, "2024-01-01", "2024-01-03", TF, seed=4, gaps=0.05)
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, gappy)
    rep = store.verify()
    assert rep.ok
    gaps = rep.series[0].gaps
    t = gappy["time"]
    assert gaps and sum(g[2] for g in gaps) == (t[-1] - t[0]) // 60_000 + 1 - t.size
    assert all(g[0] not in set(t.tolist()) and g[1] in set(t.tolist()) for g in gaps)


@pytest.mark.parametrize("damage", ["value", "time", "rows-attr", "index"])
def test_verify_detects_damage(tmp_path, data, damage):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    with h5py.File(store.path(EX), "r+") as f:
        g = f["BTC-USDT/1m"]
        if damage == "value":
            g["volume"][10] = g["volume"][10] + 1.0
        elif damage == "time":
            g["time"][10] = g["time"][9]
        elif damage == "rows-attr":
            g.attrs["rows"] = 2999
        else:
            g["_chunk_first"][1] = 0
    rep = store.verify()
    assert not rep.ok
    assert rep.series[0].problems


def test_not_hdf5_and_truncated_files(tmp_path, data):
    store = small_store(tmp_path)
    path = tmp_path / "binance.h5"
    path.write_bytes(b"timestamp_ms,open\n1,2\n" * 100)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="not a readable HDF5"):
        store.read(EX, SYM, TF)
    with pytest.raises(ValueError, match="not a readable HDF5"):
        store.append(EX, SYM, TF, part(data, 0, 10))
    assert path.read_bytes() == before
    assert not store.verify().ok
    listing = store.ls()
    assert len(listing) == 1 and "not a readable HDF5" in listing[0]["error"]

    good = small_store(tmp_path / "t")
    good.append(EX, SYM, TF, part(data, 0, 5000))
    p2 = good.path(EX)
    blob = p2.read_bytes()
    p2.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable HDF5"):
        good.read(EX, SYM, TF)
    assert not good.verify().ok


def test_hdf5_file_that_is_not_a_store(tmp_path):
    with h5py.File(tmp_path / "binance.h5", "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(ValueError, match="not an nbtrade candle store"):
        Store(tmp_path).read(EX, SYM, TF)


def test_delete(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    store.delete(EX, SYM, TF)
    assert store.ls() == []
    with pytest.raises(NotFound):
        store.delete(EX, SYM, TF)


def test_durable_mode(tmp_path, data):
    store = small_store(tmp_path, durable=True)
    store.append(EX, SYM, TF, part(data, 0, 2000))
    store.append(EX, SYM, TF, part(data, 1500, 2500))
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 2500))
    assert store.verify().ok


def test_bench_cases_run_small():
    from nbtrade.bench import run_case
    from nbtrade.benchsuite.bench_data import CASES

    for case in CASES:
        row = run_case(case, 5_000, 1)
        assert row["impls"]["nbtrade"]["median_s"] > 0


def test_reader_session(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, data)
    with store.reader(EX) as r:
        for lo in range(0, 10_000, 1440):
            day = r.read(SYM, TF, int(data["time"][lo]), int(data["time"][lo]) + 86_400_000, as_arrays=True)
            assert_same(day, part(data, lo, lo + 1440))
        assert r.last_time(SYM, TF) == data["time"][-1]
        assert list(r.read(SYM, TF, columns="close").columns) == ["close"]
        with pytest.raises(NotFound):
            r.read("ETH/USDT", TF)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 900), st.integers(0, 2)), min_size=1,
                    max_size=7))
def test_random_append_sequences_equal_last_write_wins(ops):
    import tempfile

    base = candles(SYM, "2024-01-01", "2024-01-04", TF, seed=9)
    expected_version = np.full(base["time"].size, -1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(tmp, chunk_rows=256)
        for lo, length, version in ops:
            hi = min(base["time"].size, lo + length)
            batch = part(base, lo, hi)
            batch["volume"] = batch["volume"] + version
            store.append(EX, SYM, TF, batch)
            expected_version[lo:hi] = version
        keep = expected_version >= 0
        exp = {k: v[keep] for k, v in base.items()}
        exp["volume"] = exp["volume"] + expected_version[keep]
        assert_same(store.read(EX, SYM, TF, as_arrays=True), exp)
        rep = store.verify()
        assert rep.ok, rep.series[0].problems


def test_symbol_name_collision_and_summary(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, "BTC/USDT", TF, part(data, 0, 10))
    # the one symbol rule (data/symbols.py): BTC-USDT is BTC/USDT, one series, not a refused alias
    assert store.append(EX, "BTC-USDT", TF, part(data, 0, 10)).duplicates == 10
    assert [d["symbol"] for d in store.ls()] == ["BTC/USDT"]
    path = str(store.path(EX))
    jf = JournaledFile(path)
    jf.seek(0)
    jf.write(b"\0" * 100)
    jf._close_handles()  # killed writer
    open(path + ".tmp-999", "wb").close()  # killed creator
    rep = store.verify()
    assert rep.ok and rep.recovered == [path]
    lines = rep.summary()
    assert lines[-1] == "OK" and "rolled back" in lines[0] and "10 rows" in lines[1]
    store.append(EX, SYM, TF, part(data, 10, 20))
    assert not os.path.exists(path + ".tmp-999")


def test_big_batches_get_several_checksum_records(tmp_path, data, monkeypatch):
    import nbtrade.data.store as store_mod

    monkeypatch.setattr(store_mod, "BATCH_MAX_ROWS", 1000)
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3500))
    store.append(EX, SYM, TF, part(data, 4000, 6000))
    assert store.info(EX, SYM, TF)["batches"] == 6
    res = store.append(EX, SYM, TF, part(data, 3000, 4500))
    assert res.rewrite_from == 3072
    rep = store.verify()
    assert rep.ok and rep.series[0].batches == 7  # 3 kept + [3000, 3072) cut + 3 new
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 6000))


def _funding(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = 1_704_067_200_000 + 8 * 3_600_000 * np.arange(n, dtype=np.int64) + rng.integers(0, 9, n)  # ms strays
    mark = 30_000 + rng.normal(0, 100, n)
    mark[::7] = np.nan  # unknown on old rows
    return {"time": t, "rate": rng.normal(1e-4, 2e-4, n), "mark_price": mark}


def test_funding_rate_series(tmp_path):
    """The fetcher's sink writes funding history under the pseudo-timeframe 'funding'."""
    fr = _funding(500)
    store = small_store(tmp_path, dtype="float32")  # funding stays float64 regardless
    assert store.last_time("binance_futures", SYM, "funding") is None
    store.append("binance_futures", SYM, "funding", {k: v[:300] for k, v in fr.items()})
    res = store.append("binance_futures", SYM, "funding", {k: v[250:] for k, v in fr.items()})
    assert (res.added, res.duplicates) == (200, 50)
    got = store.read("binance_futures", SYM, "funding", as_arrays=True)
    for c in fr:
        np.testing.assert_array_equal(got[c], fr[c])
    assert store.last_time("binance_futures", SYM, "funding") == fr["time"][-1]
    df = store.read("binance_futures", SYM, "funding", columns=["rate"])
    assert list(df.columns) == ["rate"] and len(df) == 500
    rep = store.verify()
    assert rep.ok and rep.series[0].gaps == []
    assert store.info("binance_futures", SYM, "funding")["dtype"] == "float64"
    bad = {k: v[:5].copy() for k, v in fr.items()}
    bad["rate"][2] = np.nan
    with pytest.raises(ValueError, match="rate"):
        store.append("binance_futures", SYM, "funding", bad)
    with pytest.raises(ValueError, match="wrong columns"):
        store.append("binance_futures", SYM, "funding", part(candles(SYM, "2024-01-01", "2024-01-02", TF), 0, 5))
    with pytest.raises(ValueError, match="columns"):
        store.read("binance_futures", SYM, "funding", columns=["close"])


def test_time_bounds_forms(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    t = int(data["time"][100])
    ref = store.read(EX, SYM, TF, t, t + 600_000, as_arrays=True)["time"]
    for lo, hi in [(float(t), float(t + 600_000)), (np.int64(t), np.int64(t + 600_000)),
                   (pd.Timestamp(t, unit="ms", tz="UTC"), pd.Timestamp(t + 600_000, unit="ms", tz="UTC")),
                   (np.datetime64(t, "ms"), np.datetime64(t + 600_000, "ms")),
                   (str(np.datetime64(t, "ms")), str(np.datetime64(t + 600_000, "ms")))]:
        np.testing.assert_array_equal(store.read(EX, SYM, TF, lo, hi, as_arrays=True)["time"], ref)
    with pytest.raises(ValueError, match="whole epoch"):
        store.read(EX, SYM, TF, 1.5)
    with pytest.raises(TypeError, match="start"):
        store.read(EX, SYM, TF, True)


def test_read_only_folder(tmp_path, data, monkeypatch):
    import nbtrade.data.journal as journal

    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    real_open = os.open

    def no_create(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(journal.os, "open", no_create)
    assert store.read(EX, SYM, TF, as_arrays=True)["time"].size == 100  # locks the existing lock file
    os.remove(str(store.path(EX)) + ".lock")
    assert store.read(EX, SYM, TF, as_arrays=True)["time"].size == 100  # no lock file: reads unlocked
    with pytest.raises(PermissionError):
        store.append(EX, SYM, TF, part(data, 100, 110))


def test_verify_reports_a_corrupted_chunk_and_checks_other_series(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    store.append(EX, "ETH/USDT", TF, part(data, 0, 3000))
    with h5py.File(store.path(EX), "r") as f:
        info = f["BTC-USDT/1m/close"].id.get_chunk_info(1)
    with open(store.path(EX), "r+b") as fh:
        fh.seek(info.byte_offset + 16)
        fh.write(os.urandom(info.size - 32))
    rep = store.verify()
    assert not rep.ok
    by_symbol = {s.symbol: s for s in rep.series}
    assert by_symbol["BTC/USDT"].problems and by_symbol["ETH/USDT"].ok


def test_read_many(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    store.append(EX, "ETH/USDT", TF, part(data, 50, 100))
    got = store.read_many(EX, [SYM, "ETH/USDT"], TF, start=int(data["time"][60]))
    assert list(got) == [SYM, "ETH/USDT"] and len(got[SYM]) == len(got["ETH/USDT"]) == 40
    assert list(store.read_many(EX, SYM, TF)) == [SYM]


@pytest.mark.parametrize("codec", ["blosc-lz4", "blosc2-lz4", "bitshuffle-lz4", "gzip"])
def test_every_codec_appends_merges_and_verifies(tmp_path, data, codec):
    store = small_store(tmp_path, codec=codec, chunk_rows=512)
    for lo, hi in [(0, 700), (700, 1000), (1500, 2100), (1000, 1600), (2100, 2200)]:
        store.append(EX, SYM, TF, part(data, lo, hi))
    assert_same(store.read(EX, SYM, TF, as_arrays=True), part(data, 0, 2200))
    assert store.info(EX, SYM, TF)["codec"] == codec
    assert store.verify().ok


def test_write_inside_own_read_session_raises_instead_of_deadlocking(tmp_path, data):
    store = small_store(tmp_path)
    store.append(EX, SYM, TF, part(data, 0, 100))
    with store.reader(EX) as r:
        r.read(SYM, TF)
        with pytest.raises(RuntimeError, match="deadlock"):
            store.append(EX, SYM, TF, part(data, 100, 200))
        assert store.read(EX, SYM, TF, as_arrays=True)["time"].size == 100  # nested shared reads are fine
    with store.transaction(EX) as tx:
        with pytest.raises(RuntimeError, match="deadlock"):
            store.append(EX, SYM, TF, part(data, 100, 200))
        with pytest.raises(RuntimeError, match="deadlock"):
            store.read(EX, SYM, TF)
        tx.append(SYM, TF, part(data, 100, 200))
    assert store.append(EX, SYM, TF, part(data, 200, 300)).added == 100
