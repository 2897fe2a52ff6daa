"""Faults under the store: disk full, read-only filesystems, values the storage dtype cannot hold."""
from __future__ import annotations

import errno
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from nbtrade.data.store import Store
from nbtrade.synthetic import candles

HERE = Path(__file__).parent
EX, SYM, TF = "binance", "BTC/USDT", "1m"
T0 = 1_704_067_200_000


def part(a, lo, hi):
    return {k: v[lo:hi] for k, v in a.items()}


@contextmanager
def tmpfs(where: Path, size: str = "2m"):
    """A small tmpfs mounted at ``where`` (root only); skips the test otherwise."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def run_disk_full(mount: Path) -> dict:
    """Run the disk-full child on ``mount``; parse what it printed."""
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, str(HERE / "_diskfull_child.py"), str(mount / "store")],
                          capture_output=True, text=True, timeout=300, env=env)
    lines = proc.stdout.splitlines()
    acked = [int(x.split()[1]) for x in lines if x.startswith("ACK")]
    errors = [x for x in lines if x.startswith("ERROR")]
    verify = [x for x in lines if x.startswith("VERIFY")]
    return {"rc": proc.returncode, "stderr": proc.stderr, "acked": max(acked, default=0), "errors": errors,
            "verify": verify}


def check_disk_full(out: dict) -> None:
    assert out["rc"] == 0, f"writer died with {out['rc']}: {out['stderr'][-2000:]}"
    assert "SystemError" not in out["stderr"] and "Traceback" not in out["stderr"], out["stderr"][-2000:]
    assert len(out["errors"]) == 1, out
    assert out["errors"][0].split()[1] == str(errno.ENOSPC)
    assert "rolled back" in out["errors"][0] and "free some space" in out["errors"][0]
    ok, last = out["verify"][0].split()[1:]
    assert ok == "True"
    assert int(last) == T0 + (out["acked"] - 1) * 60_000  # every acknowledged row, nothing more


def test_disk_full_during_append_raises_one_oserror_and_keeps_the_file(tmp_path):
    with tmpfs(tmp_path / "mnt") as mount:
        check_disk_full(run_disk_full(mount))


def test_failed_write_inside_the_driver_rolls_back(tmp_path, monkeypatch):
    """The same path without root: the journal's file write fails with ENOSPC mid-transaction."""
    import nbtrade.data.journal as journal

    a = candles(SYM, "2024-01-01", "2024-01-03", TF, seed=1)
    store = Store(tmp_path, chunk_rows=1024)
    store.append(EX, SYM, TF, part(a, 0, 1000))
    before = Path(store.path(EX)).read_bytes()
    real = journal._write_all
    calls = []

    def full(fd, data):
        calls.append(len(data))
        if len(calls) > 1:  # the journal header goes through; the first saved page does not
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(journal, "_write_all", full)
    with pytest.raises(OSError, match="rolled back") as info:
        store.append(EX, SYM, TF, part(a, 1000, 2000))
    assert info.value.errno == errno.ENOSPC and len(calls) == 2
    monkeypatch.setattr(journal, "_write_all", real)
    assert Path(store.path(EX)).read_bytes() == before
    assert not os.path.exists(str(store.path(EX)) + ".journal")
    assert store.verify().ok
    assert store.append(EX, SYM, TF, part(a, 1000, 2000)).added == 1000


def test_read_only_filesystem_still_reads(tmp_path, monkeypatch):
    import nbtrade.data.journal as journal

    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=1)
    store = Store(tmp_path)
    store.append(EX, SYM, TF, a)
    os.remove(str(store.path(EX)) + ".lock")
    real_open = os.open

    def erofs(path, flags, *args):
        if flags & (os.O_CREAT | os.O_WRONLY | os.O_RDWR):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(journal.os, "open", erofs)
    assert store.read(EX, SYM, TF, as_arrays=True)["time"].size == a["time"].size
    assert store.verify().ok
    with pytest.raises(OSError, match="read-only") as info:
        store.append(EX, SYM, TF, candles(SYM, "2024-01-02", "2024-01-03", TF, seed=1))
    assert info.value.errno == errno.EROFS


def test_read_only_mount_reads(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=1)
    with tmpfs(tmp_path / "mnt", "8m") as mount:
        Store(mount).append(EX, SYM, TF, a)
        os.remove(str(Store(mount).path(EX)) + ".lock")
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        store = Store(mount)
        np.testing.assert_array_equal(store.read(EX, SYM, TF, as_arrays=True)["close"], a["close"])
        with pytest.raises(OSError, match="read-only"):
            store.append(EX, SYM, TF, candles(SYM, "2024-01-02", "2024-01-03", TF, seed=1))


@pytest.mark.parametrize("value,column", [(1e300, "volume"), (1e-50, "volume"), (1e39, "high")])
def test_float32_refuses_values_it_cannot_hold(tmp_path, value, column):
    a = candles(SYM, "2024-01-01", "2024-01-01 01:00", TF, seed=1)
    a[column] = a[column].copy()
    a[column][7] = value
    if column == "high":
        a["high"][7] = value
    store = Store(tmp_path, dtype="float32")
    with pytest.raises(ValueError, match=r"float32 cannot store.*dtype='float64'") as info:
        store.append(EX, SYM, TF, a)
    assert column in str(info.value) and "2024-01-01T00:07" in str(info.value)
    assert not store.path(EX).exists()
    Store(tmp_path).append(EX, SYM, TF, a)  # float64 holds it


def test_disk_full_on_the_first_write_leaves_no_file(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-02", TF, seed=1)
    with tmpfs(tmp_path / "mnt", "64k") as mount:
        filler = mount / "filler"
        with open(filler, "wb") as fh:  # leave almost nothing free
            try:
                fh.write(b"\0" * (64 * 1024))
            except OSError:
                pass
        store = Store(mount / "s")
        with pytest.raises(OSError, match="rolled back|No space") as info:
            store.append(EX, SYM, TF, a)
        assert info.value.errno == errno.ENOSPC
        assert not store.path(EX).exists()
        assert not [p for p in os.listdir(mount / "s") if p.endswith(".h5") or ".tmp-" in p]


def test_unsigned_times_past_int64_are_refused_not_wrapped(tmp_path):
    a = candles(SYM, "2024-01-01", "2024-01-01 00:02", TF, seed=1)
    a["time"] = np.array([2**63 + 60_000, 2**63 + 120_000], dtype=np.uint64)
    store = Store(tmp_path)
    with pytest.raises(ValueError, match=r"beyond int64 epoch milliseconds"):
        store.append(EX, SYM, TF, a)
    assert not store.path(EX).exists()
