"""SIGKILL during appends, repeatedly; a reader process-safe against a live writer."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from nbtrade.data.journal import journal_path
from nbtrade.data.store import Store

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from _crash_child import make_data, schedule  # noqa: E402

CHILD = str(HERE / "_crash_child.py")


def _spawn(root: Path, first: int, n_steps: int = 400) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, CHILD, str(root), str(first), str(n_steps)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _acked_rows(steps, acked: int) -> dict[str, set[int]]:
    rows: dict[str, set[int]] = {}
    for sym, lo, hi in steps[:acked + 1]:
        for name in (("SOL/USDT", "XRP/USDT") if sym == "TX" else (sym,)):
            rows.setdefault(name, set()).update(range(lo, hi))
    return rows


def _check_store(root: Path, data, steps, acked: int) -> None:
    store = Store(root)
    report = store.verify()
    assert report.ok, (report.file_problems, [s.problems for s in report.series])
    for sym, rows in _acked_rows(steps, acked).items():
        got = store.read("binance", sym, "1m", as_arrays=True)
        idx = (got["time"] - data["time"][0]) // 60_000
        # everything stored is genuine data ...
        for c in data:
            np.testing.assert_array_equal(got[c], data[c][idx])
        # ... and nothing acknowledged is lost
        missing = rows - set(idx.tolist())
        assert not missing, f"{sym}: {len(missing)} acknowledged rows lost"
    # a transaction is atomic: SOL and XRP always hold the same rows
    present = {s: store.read("binance", s, "1m", columns="close", as_arrays=True)["time"]
               if store.last_time("binance", s, "1m") is not None else np.empty(0, np.int64)
               for s in ("SOL/USDT", "XRP/USDT")}
    np.testing.assert_array_equal(present["SOL/USDT"], present["XRP/USDT"])


def test_sigkill_during_appends_loses_nothing(tmp_path):
    rng = np.random.default_rng(0)
    n_steps = 400
    steps = schedule(n_steps)
    data = make_data(max(hi for _, _, hi in steps) + 100)
    acked = -1
    kills_mid_write = 0
    kills = 0
    deadline = time.monotonic() + 60  # room for slow starts on a busy machine; ends at 20 kills
    while kills < 20 and acked < n_steps - 1 and time.monotonic() < deadline:
        proc = _spawn(tmp_path, acked + 1, n_steps)
        line = proc.stdout.readline()  # wait until it is appending
        if line.startswith("ACK"):
            acked = max(acked, int(line.split()[1]))
        time.sleep(rng.uniform(0.0, 0.06))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode in (-signal.SIGKILL, 0), err
        for line in out.splitlines():
            if line.startswith("ACK"):
                acked = max(acked, int(line.split()[1]))
        kills += 1
        kills_mid_write += os.path.exists(journal_path(str(tmp_path / "binance.h5")))
        _check_store(tmp_path, data, steps, acked)
    print("kills", kills, "mid-write", kills_mid_write, "acked", acked)
    assert kills >= 10
    assert acked > 20
    assert kills_mid_write >= 1  # some kills did land inside a transaction and were rolled back


def test_reader_sees_consistent_data_while_writer_appends(tmp_path):
    steps = schedule(300)
    data = make_data(max(hi for _, _, hi in steps) + 100)
    Store(tmp_path).append("binance", "BTC/USDT", "1m", {k: v[:500] for k, v in data.items()})
    proc = _spawn(tmp_path, 0, 300)
    try:
        proc.stdout.readline()
        store = Store(tmp_path)
        sizes = []
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end and proc.poll() is None:
            got = store.read("binance", "BTC/USDT", "1m", as_arrays=True)
            assert np.all(np.diff(got["time"]) > 0)
            idx = (got["time"] - data["time"][0]) // 60_000
            for c in data:
                np.testing.assert_array_equal(got[c], data[c][idx])
            tail = store.read("binance", "BTC/USDT", "1m", start=int(got["time"][-1]) - 3_600_000,
                              as_arrays=True)
            assert tail["time"][0] >= got["time"][-1] - 3_600_000
            sizes.append(got["time"].shape[0])
    finally:
        proc.kill()
        proc.communicate()
    assert len(sizes) > 5
    assert sizes[-1] > sizes[0]  # the writer made progress while we read
    assert Store(tmp_path).verify().ok


def test_threads_of_one_process_read_while_another_writes(tmp_path):
    import threading

    data = make_data(60 * 500)
    store = Store(tmp_path, chunk_rows=1024)
    store.append("binance", "BTC/USDT", "1m", {k: v[:500] for k, v in data.items()})
    errors: list[BaseException] = []
    done = threading.Event()

    def writer():
        try:
            for i in range(1, 60):
                store.append("binance", "BTC/USDT", "1m", {k: v[i * 500:(i + 1) * 500] for k, v in data.items()})
                time.sleep(0.001)  # let the reader in (flock is not fair)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while not done.is_set():
        got = store.read("binance", "BTC/USDT", "1m", as_arrays=True)
        n = got["time"].size
        assert n % 500 == 0  # whole batches only
        np.testing.assert_array_equal(got["close"], data["close"][:n])
        seen.append(n)
    thread.join()
    assert not errors
    assert store.read("binance", "BTC/USDT", "1m", as_arrays=True)["time"].size == 30_000
    assert len(set(seen)) > 1
