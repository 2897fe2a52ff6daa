import json
import threading
import time

import numpy as np
from rich.console import Console

from nbtrade.monitor import Monitor


def test_stage_and_track_record_calls_and_time():
    mon = Monitor()

    @mon.track("work")
    def work(n):
        time.sleep(0.01)
        return n * 2

    assert work(2) == 4 and work(3) == 6
    with mon.stage("other"):
        time.sleep(0.002)
    st = mon.stats()
    assert st["work"].calls == 2 and st["work"].wall >= 0.02
    assert st["other"].calls == 1
    rows = mon.summary()
    assert rows[0]["stage"] == "work" and abs(sum(r["share"] for r in rows) - 1) < 1e-9
    assert rows[0]["p50_s"] <= rows[0]["p95_s"] <= rows[0]["max_s"]


def test_memory_peak_is_seen():
    mon = Monitor(interval=0.005)
    with mon.stage("alloc"):
        big = np.ones(40_000_000 // 8 * 8)  # ~320 MB touched
        time.sleep(0.05)
        del big
    st = mon.stats()["alloc"]
    assert st.peak_delta > 100 * 2**20
    assert mon.memory_timeline()


def test_tracemalloc_peak():
    mon = Monitor(memory=False, tracemalloc=True)
    with mon.stage("lists"):
        x = [0] * 1_000_000
        del x
    assert mon.stats()["lists"].py_peak >= 8_000_000


def test_bottlenecks_and_outputs(tmp_path):
    mon = Monitor(memory=False)
    for name, secs in (("slow", 0.2), ("fast", 0.001)):
        with mon.stage(name):
            time.sleep(secs)
    assert [r["stage"] for r in mon.bottlenecks(min_share=0.5)] == ["slow"]
    data = json.loads(mon.to_json(str(tmp_path / "m.json")))
    assert data["bottlenecks"][0] == "slow" and (tmp_path / "m.json").exists()
    console = Console(record=True, width=120)
    console.print(mon.table())
    assert "slow" in console.export_text()


def test_disabled_records_nothing():
    mon = Monitor(enabled=False)

    @mon.track()
    def f():
        return 1

    with mon.stage("x"):
        f()
    assert mon.stats() == {}


def test_thread_safe():
    mon = Monitor(memory=False)

    def worker():
        for _ in range(200):
            with mon.stage("t"):
                pass

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert mon.stats()["t"].calls == 800
