"""Interrupted perpetual fetches resume with nothing lost and nothing fetched twice but the page in
flight (issue 17): Bybit and OKX hand out funding and mark candles newest first, so pages are journaled
as they arrive (nbtrade.data.pending) and committed in time order. Real mock server on 127.0.0.1,
real HDF5 store (its on-disk journal) and the in-memory sink."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nbtrade.data.fetch import MemorySink, fetch_funding_rates, fetch_mark_ohlcv
from nbtrade.data.pending import FilePageJournal, PageJournal, Walk, journal_dir
from nbtrade.data.store import Store

from .test_perp import FAST, FUNDING_PATH, MARK_PATH, PERPS, VENUE, limiter, same

SYM = "BTC/USDT:USDT"


async def interrupted(mock, path: str, after: int, coro) -> None:
    """Run ``coro`` and cancel it once the mock has answered ``after`` more requests on ``path``."""
    base = mock.stats.by_path.get(path, 0)
    task = asyncio.ensure_future(coro)
    while not task.done() and mock.stats.by_path.get(path, 0) - base < after:
        await asyncio.sleep(0.0005)
    assert not task.done(), "the walk ended before the interruption: make the range longer"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def requests(mock, path: str) -> int:
    return mock.stats.by_path.get(path, 0)


def make_sink(kind: str, tmp_path):
    return Store(tmp_path / "store") if kind == "store" else MemorySink()


def read(sink, exchange: str, timeframe: str) -> dict:
    if isinstance(sink, Store):
        return sink.read(exchange, SYM, timeframe, as_arrays=True)
    return sink.read(exchange, SYM, timeframe)


@pytest.mark.parametrize("kind", ["store", "memory"])
@pytest.mark.parametrize("exchange", PERPS)
async def test_interrupted_funding_walk_resumes_exactly(mock_factory, tmp_path, exchange, kind):
    # at least three funding pages on every venue (Binance 1000, Bybit 200, OKX 100 of three months)
    start, end = ("2021-03-01" if exchange == "binance_futures" else "2023-06-01"), "2024-02-20"
    m = await mock_factory(origin=start, **FAST)
    path = FUNDING_PATH[exchange]

    def kw():  # a new run, a new limiter (as a new process)
        return dict(exchange=exchange, base_url=m.url, limiter=limiter(exchange, m))

    # the uninterrupted walk: its page count is the budget
    full = (await fetch_funding_rates(SYM, start, end, sink=MemorySink(), **kw())).report.symbols[SYM].requests
    assert full >= 3

    sink = make_sink(kind, tmp_path)
    n0 = requests(m, path)
    await interrupted(m, path, 2, fetch_funding_rates(SYM, start, end, sink=sink, **kw()))
    first = requests(m, path) - n0  # pages asked for before the interruption, the one in flight included
    if exchange != "binance_futures" and kind == "store":
        # newest first: nothing joins the (empty) store yet, the pages wait in the journal on disk
        assert sink.last_time(exchange, SYM, "funding") is None
        assert list(journal_dir(sink.root, exchange, SYM, "funding").glob("*.npz"))
    res = await fetch_funding_rates(SYM, start, end, sink=sink, **kw())
    made = first + res.report.symbols[SYM].requests
    assert full <= made <= full + 1  # at most the page in flight again
    want = m.expected_funding("BTC/USDT", start, end, VENUE[exchange])
    same({k: np.asarray(v) for k, v in read(sink, exchange, "funding").items() if k in want}, want)
    rep = res.report.symbols[SYM]
    if exchange != "binance_futures":
        assert rep.journaled_pages >= 1 and rep.resumed_from is None
        if kind == "store":
            assert not (sink.root / f"{exchange}.pending").exists()  # the journal is gone once committed
    else:
        assert rep.resumed_from is not None  # oldest first: appended as it came, resumed from the store


@pytest.mark.parametrize("exchange", PERPS)
async def test_interrupted_mark_walk_resumes_exactly(mock_factory, tmp_path, exchange):
    m = await mock_factory(maintenance=(), **FAST)
    start, end = "2024-02-05", "2024-02-09"  # 5,760 1m candles: 12+ pages on every venue
    path = MARK_PATH[exchange]

    def fetch(sink):
        return fetch_mark_ohlcv(exchange, SYM, "1m", start, end, sink=sink, base_url=m.url,
                                limiter=limiter(exchange, m), parallel=2)

    full = (await fetch(MemorySink())).report.symbols[SYM].requests
    store = Store(tmp_path / "store")
    n0 = requests(m, path)
    await interrupted(m, path, 3, fetch(store))
    first = requests(m, path) - n0
    res = await fetch(store)
    made = first + res.report.symbols[SYM].requests
    assert full <= made <= full + 2  # the page in flight of each of the two segments
    df = store.read(exchange, SYM, "mark_1m")
    want = m.expected_mark("BTC/USDT", "1m", start, end)
    np.testing.assert_array_equal(df.index.asi8 // 1_000_000, want["time"])
    for c in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(df[c].to_numpy(), want[c], err_msg=c)
    assert res.report.symbols[SYM].gaps == []
    assert not (store.root / f"{exchange}.pending").exists()


# -- the walk itself ----------------------------------------------------------------------------------
def page(*times):
    t = np.array(times, dtype=np.int64)
    return {"time": t, "rate": t / 1e6}


async def test_walk_commits_in_time_order_as_pages_join():
    got = []
    j = PageJournal()
    w = Walk(j, [(0, 100)], got.append)
    assert w.gaps() == [(0, 100)]
    await w.add(60, 100, page(60, 80))
    await w.add(30, 60, page(30, 50))
    assert got == [] and len(j.load()) == 2  # nothing joins 0 yet
    await w.add(0, 30, page(10))
    assert [p["time"].tolist() for p in got] == [[10], [30, 50], [60, 80]]
    assert j.load() == {}
    await w.finish()


async def test_walk_resumes_from_the_journal_and_fetches_only_the_rest(tmp_path):
    j = FilePageJournal(tmp_path / "x.pending" / "S" / "funding")
    j.add(60, 100, page(60, 80))
    j.add(150, 200, page(150))  # beyond a hole: fetched again later, never committed past the hole
    got = []
    w = Walk(FilePageJournal(j.folder), [(0, 120)], got.append)
    assert w.loaded == 2
    assert w.gaps() == [(0, 60), (100, 120)]
    await w.add(0, 60, page(5))
    assert [p["time"].tolist() for p in got] == [[5], [60, 80]]
    await w.finish()  # (100, 120) never came: the walk stops at 100, the journal is cleared
    assert not j.folder.exists() and not (tmp_path / "x.pending").exists()


def test_a_torn_journal_page_is_dropped(tmp_path):
    j = FilePageJournal(tmp_path / "p")
    j.add(0, 10, page(1))
    (j.folder / "10_20.npz").write_bytes(b"PK\x03\x04 torn")
    assert list(j.load()) == [(0, 10)]
    assert not (j.folder / "10_20.npz").exists()


@pytest.mark.parametrize("exchange", ["bybit_linear", "okx_swap"])
async def test_killed_process_resumes_from_the_journal_on_disk(mock_factory, tmp_path, exchange):
    """SIGKILL a fetching process mid-walk: the pages it received are on disk, the resumed run asks only
    for the rest (and the page in flight) and the store ends up identical to an uninterrupted fetch."""
    import os
    import sys

    from nbtrade.data.mock import Faults

    start, end = "2023-06-01", "2024-02-20"
    # every reply 0.3 s late: the kill lands while the second page is in flight, however busy the machine
    m = await mock_factory(origin=start, faults=Faults(p_slow=1.0, slow_s=0.3), **FAST)
    path = FUNDING_PATH[exchange]
    full = (await fetch_funding_rates(SYM, start, end, exchange=exchange, base_url=m.url,
                                      limiter=limiter(exchange, m), sink=MemorySink())).report.symbols[SYM].requests
    root = tmp_path / "store"
    child = os.path.join(os.path.dirname(__file__), "_fetch_child.py")
    n0 = requests(m, path)
    proc = await asyncio.create_subprocess_exec(sys.executable, child, m.url, str(root), exchange, start, end,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        while requests(m, path) - n0 < 2 and proc.returncode is None:
            await asyncio.sleep(0.001)
        assert proc.returncode is None, (await proc.communicate())
        proc.kill()
    finally:
        await proc.wait()
    first = requests(m, path) - n0
    assert first < full
    store = Store(root)
    assert store.last_time(exchange, SYM, "funding") is None  # newest first: nothing joined yet
    res = await fetch_funding_rates(SYM, start, end, exchange=exchange, base_url=m.url,
                                    limiter=limiter(exchange, m), sink=store)
    rep = res.report.symbols[SYM]
    assert rep.journaled_pages >= 1
    assert full <= first + rep.requests <= full + 1
    same(store.read(exchange, SYM, "funding", as_arrays=True), m.expected_funding("BTC/USDT", start, end,
                                                                                VENUE[exchange]))
    assert not (root / f"{exchange}.pending").exists()


async def test_resume_with_a_later_end_and_the_store_listings_ignore_the_journal(mock_factory, tmp_path):
    """The journal holds facts about the history, not about one call: a resumed run over a longer range
    uses them and fetches the rest; ls and verify never see the journal folder."""
    exchange = "bybit_linear"
    start = "2023-06-01"
    m = await mock_factory(origin=start, **FAST)
    path = FUNDING_PATH[exchange]
    store = Store(tmp_path / "store")
    await interrupted(m, path, 2, fetch_funding_rates(SYM, start, "2024-01-20", exchange=exchange, base_url=m.url,
                                                      limiter=limiter(exchange, m), sink=store))
    assert (store.root / f"{exchange}.pending").is_dir()
    assert store.ls() == [] and store.verify().ok
    res = await fetch_funding_rates(SYM, start, "2024-02-20", exchange=exchange, base_url=m.url,
                                    limiter=limiter(exchange, m), sink=store)
    assert res.report.symbols[SYM].journaled_pages >= 1
    same(store.read(exchange, SYM, "funding", as_arrays=True),
         m.expected_funding("BTC/USDT", start, "2024-02-20", VENUE[exchange]))
    assert [r["timeframe"] for r in store.ls()] == ["funding"]
