"""Fault stress of the HDF5 store (issue 14's goal figures); run from the repository root.

    python bench/stress_store.py [--kills 20] [--disk-full 10]

* SIGKILL x N: a writer process appends (in-order slices, gap fills that rewrite
  chunks, new symbols, two-symbol transactions) and is killed at a random moment,
  N times; after each kill every file must open and verify and no acknowledged row
  may be lost (the check of ``tests/store/test_crash.py``, more repetitions).
* disk full x M (root only): a writer appends to a 2 MiB tmpfs until it is full;
  it must survive with exactly one OSError (ENOSPC), and the store must verify
  and hold every acknowledged row.

Prints one line per figure; exit status 1 if any run failed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests" / "store"
sys.path.insert(0, str(TESTS))


def sigkill_runs(kills: int) -> tuple[int, int, int]:
    """(kills done, kills that hit an open transaction, failures)."""
    from _crash_child import make_data, schedule
    from test_crash import _check_store

    from nbtrade.data.journal import journal_path

    root = Path(tempfile.mkdtemp(prefix="nbtrade-stress-"))
    rng = np.random.default_rng(int(time.time()))
    n_steps = 400
    steps = schedule(n_steps)
    data = make_data(max(hi for _, _, hi in steps) + 100)
    acked, done, mid, failed = -1, 0, 0, 0
    try:
        while done < kills and acked < n_steps - 1:
            proc = subprocess.Popen([sys.executable, str(TESTS / "_crash_child.py"), str(root), str(acked + 1),
                                     str(n_steps)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = proc.stdout.readline()
            if line.startswith("ACK"):
                acked = max(acked, int(line.split()[1]))
            time.sleep(rng.uniform(0.0, 0.08))
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate()
            acked = max([acked] + [int(x.split()[1]) for x in out.splitlines() if x.startswith("ACK")])
            done += 1
            mid += os.path.exists(journal_path(str(root / "binance.h5")))
            try:
                _check_store(root, data, steps, acked)
            except AssertionError as exc:
                failed += 1
                print(f"  kill {done}: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return done, mid, failed


def disk_full_runs(runs: int) -> tuple[int, int, list[str]]:
    """(runs, failures, notes)."""
    from test_faults import check_disk_full, run_disk_full

    if os.geteuid() != 0:
        return 0, 0, ["skipped: mounting a tmpfs needs root"]
    failed, notes = 0, []
    for i in range(runs):
        mount = Path(tempfile.mkdtemp(prefix="nbtrade-full-"))
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
        try:
            out = run_disk_full(mount)
            try:
                check_disk_full(out)
                notes.append(f"run {i + 1}: {out['acked']:,} rows acknowledged, one ENOSPC, verified")
            except AssertionError as exc:
                failed += 1
                notes.append(f"run {i + 1}: FAILED rc={out['rc']} {str(exc)[:300]}")
        finally:
            subprocess.run(["umount", "-l", str(mount)])
            shutil.rmtree(mount, ignore_errors=True)
    return runs, failed, notes


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=20)
    p.add_argument("--disk-full", type=int, default=10)
    args = p.parse_args(argv)
    bad = 0
    if args.kills:
        done, mid, failed = sigkill_runs(args.kills)
        print(f"SIGKILL x {done} mid-append ({mid} inside an open transaction): {done - failed} of {done} stores "
              f"opened, verified and kept every acknowledged row")
        bad += failed
    if args.disk_full:
        runs, failed, notes = disk_full_runs(args.disk_full)
        for note in notes:
            print("  " + note)
        print(f"disk full x {runs}: {runs - failed} of {runs} writers survived with one OSError and a verified store")
        bad += failed
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
