"""Pages of a newest-first walk kept until they can be committed in time order.

Bybit and OKX hand out funding rates and candles newest first (Bybit ``endTime``,
OKX ``after``): a walk over ``[lo, hi)`` starts at ``hi`` and its first page is the
newest. A sink takes rows in time order only, so those pages cannot be appended as they
arrive. Here every page is recorded with the interval it covers (``[a, b)``: the
exchange has exactly these rows with a time in ``[a, b)``) in a :class:`PageJournal`
as soon as it arrives, and :class:`Walk` commits the journal to the sink in time order
as soon as the covered intervals join up with the commit point (the last stored time).

Why not walk forward instead: Bybit's ``/v5/market/funding/history`` refuses ``startTime`` alone
and answers ``endTime`` (with or without ``startTime``) with the newest rows before it (docs/v5/market/
history-fund-rate.mdx; the adapter sends ``endTime`` alone, tests/data/test_perp.py checks the mock
refuses ``startTime`` alone); OKX's ``before`` alone returns the latest data, not the rows after it
(/work/shared/EXCHANGES.md, [O]; ccxt sends ``before = since - 1`` with an ``after`` bound). A forward
walk would need windows small enough to hold at most one page whatever the funding interval
(1 h to 8 h): up to 8x the requests for 8-hourly funding. Journaling keeps the request count of
the backward walk.

An interrupted run (exception, cancellation, killed process with the on-disk journal)
loses no page already received: the next run loads the journal, fetches only the parts of
the range no journaled page covers (the same requests the first run would have made next),
commits everything in time order and clears the journal. Journal entries are facts about the
exchange's history (assumed immutable once the time is past), so they stay valid across runs
with other ``start``/``end`` values; entries already at or below the commit point are dropped.

:class:`FilePageJournal` (one ``.npz`` per page, written to a temporary name then renamed,
so a killed process leaves whole pages only) is what :meth:`nbtrade.data.store.Store.page_journal`
returns: ``<root>/<exchange>.pending/<symbol>/<timeframe>/``. :class:`PageJournal` keeps
pages in memory (a :class:`~nbtrade.data.fetch.MemorySink`, or a sink without a journal).
"""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import numpy as np

__all__ = ["PageJournal", "FilePageJournal", "Walk", "journal_dir"]

Page = dict[str, np.ndarray]


class PageJournal:
    """In-memory journal: ``entries[(a, b)]`` holds the rows the exchange has with time in ``[a, b)``."""

    def __init__(self) -> None:
        self.entries: dict[tuple[int, int], Page] = {}

    def load(self) -> dict[tuple[int, int], Page]:
        """Every journaled page by its covered interval ``(a, b)`` (ms, ``b`` exclusive)."""
        return dict(self.entries)

    def add(self, a: int, b: int, page: Page) -> None:
        """Record ``page`` as the exchange's rows with time in ``[a, b)``."""
        self.entries[(int(a), int(b))] = dict(page)  # the walk never changes a page's arrays: no copy

    def remove(self, a: int, b: int) -> None:
        self.entries.pop((int(a), int(b)), None)

    def clear(self) -> None:
        self.entries.clear()


def journal_dir(root: str | os.PathLike, exchange: str, symbol: str, timeframe: str) -> Path:
    """Folder of the on-disk journal of one series: ``<root>/<exchange>.pending/<symbol>/<timeframe>``."""
    return Path(root) / f"{exchange}.pending" / quote(symbol, safe="") / quote(timeframe, safe="")


class FilePageJournal(PageJournal):
    """On-disk journal: one ``<a>_<b>.npz`` per page in ``folder``; a page is there whole or not at all."""

    def __init__(self, folder: str | os.PathLike) -> None:
        super().__init__()
        self.folder = Path(folder)

    def load(self) -> dict[tuple[int, int], Page]:
        out: dict[tuple[int, int], Page] = {}
        if not self.folder.is_dir():
            return out
        for p in sorted(self.folder.glob("*.npz")):
            try:
                a, b = (int(x) for x in p.stem.split("_"))
                with np.load(p, allow_pickle=False) as z:
                    out[(a, b)] = {k: z[k] for k in z.files}
            except Exception:  # noqa: BLE001 (a torn or foreign file: zipfile, numpy or int() errors)
                p.unlink(missing_ok=True)  # not a page this module wrote whole: refetch its interval
        return out

    def add(self, a: int, b: int, page: Page) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"{int(a)}_{int(b)}.npz"
        tmp = self.folder / f".{int(a)}_{int(b)}.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in page.items()})
        os.replace(tmp, final)

    def remove(self, a: int, b: int) -> None:
        (self.folder / f"{int(a)}_{int(b)}.npz").unlink(missing_ok=True)

    def clear(self) -> None:
        if self.folder.is_dir():
            shutil.rmtree(self.folder, ignore_errors=True)
        # drop empty parents up to ``<exchange>.pending`` (never the store root)
        for parent in list(self.folder.parents)[:3]:
            try:
                parent.rmdir()
            except OSError:
                break


def clip(page: Page, lo: int, hi: int) -> Page:
    """Rows of ``page`` with time in ``[lo, hi)`` (``_raw_times``, a candle page's raw open times, too)."""
    t = page["time"]
    m = (t >= lo) & (t < hi)
    out = {k: (v[m] if k != "_raw_times" else v) for k, v in page.items()}
    if "_raw_times" in page:
        r = page["_raw_times"]
        out["_raw_times"] = r[(r >= lo) & (r < hi)]
    return out


class Walk:
    """Commit journaled newest-first pages over ``ranges`` to ``emit`` in time order.

    ``ranges`` are ``[lo, hi)`` pairs in time order (a backfill has two); ``emit(page)`` takes one
    page's rows (sync or async) and is called in time order, each row once. :meth:`gaps` lists the
    parts no journaled page covers: fetch those (newest first) and :meth:`add` each page as it
    arrives; pages are committed as soon as they join the commit point. :meth:`finish` commits
    what joins up and clears the journal (pages beyond a hole are dropped and fetched next time).
    """

    def __init__(self, journal: PageJournal, ranges: list[tuple[int, int]],
                 emit: Callable[[Page], Any]) -> None:
        self.journal = journal
        self.ranges = [(int(a), int(b)) for a, b in ranges if a < b]
        self.emit = emit
        self.lock = asyncio.Lock()
        self.entries = journal.load()
        self.loaded = len(self.entries)
        self.ri = 0
        self.pos = self.ranges[0][0] if self.ranges else 0
        for (a, b) in list(self.entries):
            if self.ranges and b <= self.ranges[0][0]:  # at or below the commit point: stored already
                self.entries.pop((a, b))
                journal.remove(a, b)

    def gaps(self) -> list[tuple[int, int]]:
        """Parts of the ranges (from the commit point on) that no journaled page covers, in time order."""
        out = []
        spans = sorted(self.entries)
        for i, (lo, hi) in enumerate(self.ranges):
            if i < self.ri:
                continue
            cur = max(lo, self.pos) if i == self.ri else lo
            for a, b in spans:
                if b <= cur or a >= hi:
                    continue
                if a > cur:
                    out.append((cur, min(a, hi)))
                cur = max(cur, b)
                if cur >= hi:
                    break
            if cur < hi:
                out.append((cur, hi))
        return out

    async def add(self, a: int, b: int, page: Page) -> None:
        """Journal ``page`` (the rows with time in ``[a, b)``), then commit whatever joins up."""
        if a >= b:
            return
        if not (a <= self.pos < b and self.ri < len(self.ranges)):
            self.journal.add(a, b, page)  # a page that joins the commit point goes straight to the sink
        self.entries[(int(a), int(b))] = page
        await self.drain()

    async def drain(self) -> None:
        async with self.lock:
            while self.ri < len(self.ranges):
                lo, hi = self.ranges[self.ri]
                if self.pos >= hi:
                    self.ri += 1
                    if self.ri < len(self.ranges):
                        self.pos = max(self.pos, self.ranges[self.ri][0])
                    continue
                hit = [(a, b) for (a, b) in self.entries if a <= self.pos < b]
                if not hit:
                    return
                a, b = max(hit, key=lambda ab: ab[1])
                page = self.entries.pop((a, b))
                result = self.emit(clip(page, self.pos, min(b, hi)))
                if inspect.isawaitable(result):
                    await result
                self.journal.remove(a, b)
                self.pos = min(b, hi)

    async def finish(self) -> None:
        """Commit what joins up, then forget the journal."""
        await self.drain()
        self.journal.clear()
        self.entries.clear()
