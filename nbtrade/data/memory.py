"""Resident-memory monitor (psutil RSS) for the chunked I/O paths.

>>> with MemoryMonitor() as mem:          # doctest: +SKIP
...     for chunk in chunks:
...         work(chunk)
...         mem.sample()                  # cheap; also sampled in a background thread
>>> mem.peak_growth_mb                    # doctest: +SKIP
"""
from __future__ import annotations

import threading

import psutil

_PROCESS = psutil.Process()


def rss() -> int:
    """Resident set size of this process, bytes."""
    return int(_PROCESS.memory_info().rss)


class MemoryMonitor:
    """Track the peak RSS between ``start`` and ``stop`` (a context manager).

    Peaks are caught by ``sample()`` calls (once per chunk in the I/O paths) and,
    when ``interval`` is set, by a daemon thread sampling every ``interval`` seconds.
    ``limit_mb`` (optional) makes ``sample`` raise ``MemoryError`` when RSS growth
    since start exceeds it, so a runaway import stops instead of swapping.
    """

    def __init__(self, interval: float | None = 0.05, limit_mb: float | None = None):
        if interval is not None and interval <= 0:
            raise ValueError(f"interval must be > 0 seconds or None, got {interval!r}")
        self.interval = interval
        self.limit_mb = limit_mb
        self.start_rss = 0
        self.peak_rss = 0
        self.end_rss = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "MemoryMonitor":
        self.start_rss = self.peak_rss = rss()
        self._stop.clear()
        if self.interval is not None:
            self._thread = threading.Thread(target=self._run, name="nbtrade-memory-monitor", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._observe(rss())

    def _observe(self, value: int) -> int:
        self.samples += 1
        if value > self.peak_rss:
            self.peak_rss = value
        return value

    def sample(self) -> int:
        """Current RSS (bytes); updates the peak and enforces ``limit_mb``."""
        value = self._observe(rss())
        if self.limit_mb is not None and value - self.start_rss > self.limit_mb * 2**20:
            raise MemoryError(f"memory grew by {(value - self.start_rss) / 2**20:.0f} MiB, "
                              f"over the limit of {self.limit_mb:.0f} MiB")
        return value

    def stop(self) -> "MemoryMonitor":
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.end_rss = self._observe(rss())
        return self

    def __enter__(self) -> "MemoryMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def peak_mb(self) -> float:
        return self.peak_rss / 2**20

    @property
    def peak_growth_mb(self) -> float:
        """Peak RSS minus RSS at start, MiB."""
        return (self.peak_rss - self.start_rss) / 2**20
