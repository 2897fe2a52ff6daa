"""Per-chunk checksums: damaged chunks are refused on read; stores written before gain them."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from nbtrade.data.layout import BATCHES_NAME, INDEX_NAME, compression
from nbtrade.data.store import ChecksumError, Store
from nbtrade.synthetic import candles

EX, SYM, TF = "binance", "BTC/USDT", "1m"
COLS = ("time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def data():
    return candles(SYM, "2024-01-01", "2024-01-04", TF, seed=5)  # 4,320 rows


def part(a, lo, hi):
    return {k: v[lo:hi] for k, v in a.items()}


def flip_bytes(store, column, k, n=16):
    """Flip ``n`` bytes in the middle of compressed chunk ``k`` of ``column`` (as a bad disk would)."""
    with h5py.File(store.path(EX), "r") as f:
        info = f[f"BTC-USDT/{TF}/{column}"].id.get_chunk_info(k)
    with open(store.path(EX), "r+b") as fh:
        at = info.byte_offset + info.size // 2
        fh.seek(at)
        raw = bytearray(fh.read(n))
        fh.seek(at)
        fh.write(bytes(b ^ 0x5A for b in raw))


def test_flipped_bytes_in_a_chunk_are_refused_not_returned(tmp_path, data):
    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, data)
    flip_bytes(store, "close", 1)
    t = data["time"]
    with pytest.raises(ChecksumError, match=r"binance\.h5.*BTC/USDT 1m.*checksum.*nbtrade data verify"):
        store.read(EX, SYM, TF, t[1100], t[1200])
    with pytest.raises(ChecksumError):
        store.read(EX, SYM, TF)
    # chunks the read does not touch still read, and other columns of the damaged rows too
    np.testing.assert_array_equal(store.read(EX, SYM, TF, t[0], t[1000], as_arrays=True)["close"],
                                  data["close"][:1000])
    np.testing.assert_array_equal(store.read(EX, SYM, TF, t[1100], t[1200], columns=["open"], as_arrays=True)["open"],
                                  data["open"][1100:1200])
    report = store.verify()
    assert not report.ok and "checksum" in " ".join(report.series[0].problems)


def test_every_new_dataset_has_checksums(tmp_path, data):
    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, part(data, 0, 1500))
    with store.transaction(EX) as tx:  # several appends in one session: tails are re-read and rewritten
        tx.append(SYM, TF, part(data, 1500, 2000))
        tx.append(SYM, TF, part(data, 1900, 2600))
    with h5py.File(store.path(EX), "r") as f:
        grp = f["BTC-USDT/1m"]
        for name in COLS + (INDEX_NAME, BATCHES_NAME):
            assert grp[name].fletcher32, name
        for c in COLS:  # every chunk went through the filters (no raw tail without a checksum)
            ds = grp[c]
            for k in range(ds.id.get_num_chunks()):
                assert ds.id.get_chunk_info(k).filter_mask == 0
    got = store.read(EX, SYM, TF, as_arrays=True)
    for c in COLS:
        np.testing.assert_array_equal(got[c], data[c][:2600])


def make_legacy(store, symbol=SYM, timeframe=TF):
    """Rewrite a series as stores before per-chunk checksums held it (no fletcher32, no attribute)."""
    from nbtrade.data.layout import group_path

    with h5py.File(store.path(EX), "r+") as f:
        grp = f[group_path(symbol, timeframe)]
        comp = compression(str(grp.attrs["codec"]))[1]
        for name in COLS + (INDEX_NAME, BATCHES_NAME):
            old = grp[name]
            values = old[()]
            kw = comp if name in COLS else {}
            del grp[name]
            grp.create_dataset(name, data=values, maxshape=(None,), chunks=old.chunks, **kw)
        del grp.attrs["checksums"]


def test_store_written_before_checksums_opens_and_gains_them_on_next_write(tmp_path, data):
    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, part(data, 0, 3000))
    make_legacy(store)
    got = store.read(EX, SYM, TF, as_arrays=True)
    np.testing.assert_array_equal(got["close"], data["close"][:3000])
    report = store.verify()
    assert report.ok and not report.series[0].checksums
    assert any("verify --upgrade" in line for line in report.summary())
    store.append(EX, SYM, TF, part(data, 3000, 3500))
    with h5py.File(store.path(EX), "r") as f:
        assert all(f["BTC-USDT/1m"][c].fletcher32 for c in COLS)
    report = store.verify()
    assert report.ok and report.series[0].checksums
    got = store.read(EX, SYM, TF, as_arrays=True)
    for c in COLS:
        np.testing.assert_array_equal(got[c], data[c][:3500])


def test_verify_upgrade_adds_checksums(tmp_path, data):
    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, part(data, 0, 2000))
    store.append(EX, "ETH/USDT", TF, part(data, 0, 2000))
    make_legacy(store)
    make_legacy(store, "ETH/USDT")
    report = store.verify(upgrade=True)
    assert report.ok and sorted(report.upgraded) == ["binance BTC/USDT 1m", "binance ETH/USDT 1m"]
    assert store.verify().ok and all(s.checksums for s in store.verify().series)
    for sym in (SYM, "ETH/USDT"):
        np.testing.assert_array_equal(store.read(EX, sym, TF, as_arrays=True)["volume"], data["volume"][:2000])
    assert store.verify(upgrade=True).upgraded == []  # nothing left to do


def test_cli_verify_upgrade(tmp_path, data, capsys):
    from nbtrade.cli import main

    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, part(data, 0, 2000))
    make_legacy(store)
    assert main(["data", "verify", "--store", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "no per-chunk checksums yet" in out and "VerifyReport(" not in out
    assert main(["data", "verify", "--store", str(tmp_path), "--upgrade"]) == 0
    assert "added per-chunk checksums: binance BTC/USDT 1m" in capsys.readouterr().out
    flip_bytes(store, "close", 1)
    assert main(["data", "verify", "--store", str(tmp_path)]) == 1
    assert "FAILED" in capsys.readouterr().out
