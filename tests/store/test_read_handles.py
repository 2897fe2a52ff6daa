"""Read handles kept between range reads: reused only while nothing can have changed the file."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import h5py
import numpy as np

from nbtrade.data.journal import lock_path
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

EX, SYM, TF = "binance", "BTC/USDT", "1m"


def part(a, lo, hi):
    return {k: v[lo:hi] for k, v in a.items()}


def generation(store):
    raw = open(lock_path(str(store.path(EX))), "rb").read(8)
    return int.from_bytes(raw, "little")


def test_writes_from_another_store_and_process_are_seen(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-03", TF, seed=1)
    reader, writer = Store(tmp_path, chunk_rows=512), Store(tmp_path, chunk_rows=512)
    writer.append(EX, SYM, TF, part(a, 0, 1000))
    g0 = generation(writer)
    assert reader.read(EX, SYM, TF, as_arrays=True)["time"].size == 1000
    assert reader._handles  # kept
    kept = next(iter(reader._handles.values()))[1]
    assert reader.read(EX, SYM, TF, as_arrays=True)["time"].size == 1000
    assert next(iter(reader._handles.values()))[1] is kept  # reused: nothing changed
    writer.append(EX, SYM, TF, part(a, 1000, 1500))  # same process, other Store
    assert generation(writer) == g0 + 1
    np.testing.assert_array_equal(reader.read(EX, SYM, TF, as_arrays=True)["close"], a["close"][:1500])
    code = textwrap.dedent(f"""
        import numpy as np
        from nbtrade.data.store import Store
        from nbtrade.synthetic import candles
        a = candles("{SYM}", "2024-01-01", "2024-01-03", "{TF}", seed=1)
        Store(r"{tmp_path}", chunk_rows=512).append("{EX}", "{SYM}", "{TF}", {{k: v[500:2000] for k, v in a.items()}},
                                                    on_conflict="replace")
    """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    got = reader.read(EX, SYM, TF, as_arrays=True)
    np.testing.assert_array_equal(got["close"], a["close"][:2000])


def test_kept_handle_does_not_block_other_h5py_opens(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=2)
    store = Store(tmp_path)
    store.append(EX, SYM, TF, a)
    store.read(EX, SYM, TF)
    for kw in ({}, {"locking": False}, {"locking": True}):
        with h5py.File(store.path(EX), "r", **kw) as f:
            assert f["BTC-USDT/1m/close"].shape == (a["time"].size,)
    with h5py.File(store.path(EX), "r+") as f:
        f.attrs["touched"] = 1
    assert store.read(EX, SYM, TF, as_arrays=True)["time"].size == a["time"].size


def test_replaced_file_is_reopened(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=3)
    b = candles(SYM, "2024-02-01", "2024-02-02", TF, seed=4)
    store = Store(tmp_path / "s")
    store.append(EX, SYM, TF, a)
    other = Store(tmp_path / "t")
    other.append(EX, SYM, TF, b)
    assert store.read(EX, SYM, TF, as_arrays=True)["time"][0] == a["time"][0]
    shutil.copy(other.path(EX), store.path(EX))  # by hand, no lock: identity (size, mtime) differs
    os.utime(store.path(EX), ns=(1, 1))
    assert store.read(EX, SYM, TF, as_arrays=True)["time"][0] == b["time"][0]
    store.close()
    assert not store._handles


def test_store_pickles_without_its_handles(tmp_path):
    import pickle

    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=5)
    store = Store(tmp_path)
    store.append(EX, SYM, TF, a)
    store.read(EX, SYM, TF)
    copy = pickle.loads(pickle.dumps(store))
    assert copy.root == store.root and not copy._handles
    assert copy.read(EX, SYM, TF, as_arrays=True)["time"].size == a["time"].size


def test_threads_share_a_kept_handle(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    a = candles(SYM, "2024-01-01", "2024-01-08", TF, seed=6)
    store = Store(tmp_path, chunk_rows=512)
    store.append(EX, SYM, TF, a)
    rng = np.random.default_rng(0)
    spans = [tuple(sorted(rng.integers(0, a["time"].size, 2))) for _ in range(200)]

    def one(span):
        lo, hi = span
        got = store.read(EX, SYM, TF, a["time"][lo], a["time"][hi], as_arrays=True)
        return np.array_equal(got["close"], a["close"][lo:hi]) and np.array_equal(got["time"], a["time"][lo:hi])

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(one, spans))


def test_kept_series_are_bounded(tmp_path, monkeypatch):
    import nbtrade.data.store as store_mod

    monkeypatch.setattr(store_mod, "KEPT_SERIES", 3)
    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=7)
    store = Store(tmp_path)
    names = [f"C{i}/USDT" for i in range(6)]
    with store.transaction(EX) as tx:
        for n in names:
            tx.append(n, TF, a)
    for n in names + names[:2]:
        np.testing.assert_array_equal(store.read(EX, n, TF, as_arrays=True)["close"], a["close"])
    cache = next(iter(store._handles.values()))[2]
    assert sum(isinstance(k, tuple) for k in cache) == 3
