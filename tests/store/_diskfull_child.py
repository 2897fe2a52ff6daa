"""Writer process for the disk-full test: appends until the disk is full, then checks the store.

Usage: python _diskfull_child.py ROOT
Prints ``ACK <rows>`` after each append returned, ``ERROR <errno> <message>`` for the one
OSError, then ``VERIFY <ok> <last row time>`` after releasing every object (a crash there
was the bug), and exits 0.
"""
from __future__ import annotations

import gc
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _crash_child import make_data  # noqa: E402

STEP = 5_000


def main() -> None:
    from nbtrade.data.store import Store

    root = sys.argv[1]
    store = Store(root, chunk_rows=1024)
    data = make_data(600_000)
    try:
        for lo in range(0, 600_000, STEP):
            store.append("binance", "BTC/USDT", "1m", {k: v[lo:lo + STEP] for k, v in data.items()})
            print("ACK", lo + STEP, flush=True)
    except OSError as exc:
        print("ERROR", exc.errno, str(exc).replace("\n", " "), flush=True)
        del exc
    gc.collect()
    report = store.verify()
    last = store.last_time("binance", "BTC/USDT", "1m")
    print("VERIFY", report.ok, last, flush=True)


if __name__ == "__main__":
    main()
