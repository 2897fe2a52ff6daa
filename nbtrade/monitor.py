"""Performance monitor: wall time, CPU time, calls and memory per named stage.

>>> from nbtrade.monitor import Monitor
>>> mon = Monitor()
>>> with mon.stage("features"):
...     _ = sum(range(1000))
>>> mon.stats()["features"].calls
1

CPU time is the whole process's (``time.process_time``), so numba's parallel
threads count. Use :meth:`Monitor.stage` as a context manager or :meth:`Monitor.track` as a
decorator. Memory is process RSS from psutil: the delta over a stage and the
peak seen by a background sampler while the stage ran (sampled every
``interval`` seconds, so very short spikes can be missed; ``tracemalloc=True``
adds exact Python-heap peaks at a cost). A disabled monitor costs one
attribute check per call.
"""
from __future__ import annotations

import functools
import json
import threading
import time
import tracemalloc as _tracemalloc
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, TypeVar

import psutil

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class StageStats:
    """Aggregated figures for one stage. Times in seconds, memory in bytes."""

    name: str
    calls: int = 0
    wall: float = 0.0
    cpu: float = 0.0
    walls: list[float] = field(default_factory=list, repr=False)
    rss_delta: int = 0
    peak_rss: int = 0
    peak_delta: int = 0
    py_peak: int = 0

    @property
    def mean(self) -> float:
        return self.wall / self.calls if self.calls else 0.0

    def quantile(self, q: float) -> float:
        if not self.walls:
            return 0.0
        ordered = sorted(self.walls)
        pos = q * (len(ordered) - 1)
        lo = int(pos)
        hi = min(lo + 1, len(ordered) - 1)
        return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)

    def summary(self, total_wall: float) -> dict[str, Any]:
        return {
            "stage": self.name, "calls": self.calls, "wall_s": self.wall, "cpu_s": self.cpu,
            "share": self.wall / total_wall if total_wall > 0 else 0.0, "mean_s": self.mean,
            "p50_s": self.quantile(0.5), "p95_s": self.quantile(0.95), "max_s": max(self.walls, default=0.0),
            "rss_delta_bytes": self.rss_delta, "peak_rss_bytes": self.peak_rss,
            "peak_delta_bytes": self.peak_delta, "py_peak_bytes": self.py_peak,
        }


class MemorySampler:
    """Background thread sampling process RSS every ``interval`` seconds."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self._proc = psutil.Process()
        self._lock = threading.Lock()
        self._watchers: dict[int, int] = {}  # watcher id -> peak RSS seen while watching
        self._next_id = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.samples: list[tuple[float, int]] = []  # (monotonic time, rss) timeline

    def rss(self) -> int:
        return self._proc.memory_info().rss

    def watch(self) -> int:
        rss = self.rss()
        with self._lock:
            wid = self._next_id
            self._next_id += 1
            self._watchers[wid] = rss
            if self._thread is None:
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="nbtrade-memory-sampler", daemon=True)
                self._thread.start()
        return wid

    def unwatch(self, wid: int) -> int:
        rss = self.rss()
        with self._lock:
            peak = max(self._watchers.pop(wid, rss), rss)
            thread = self._thread if not self._watchers else None
            if thread is not None:
                self._thread = None
                self._stop.set()
        if thread is not None:
            thread.join()
        return peak

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = self.rss()
            with self._lock:
                self.samples.append((time.monotonic(), rss))
                for wid, peak in self._watchers.items():
                    if rss > peak:
                        self._watchers[wid] = rss


class Monitor:
    """Records timings and memory per named stage; thread-safe."""

    def __init__(self, enabled: bool = True, memory: bool = True, tracemalloc: bool = False,
                 interval: float = 0.02) -> None:
        self.enabled = enabled
        self.memory = memory
        self.tracemalloc = tracemalloc
        self._sampler = MemorySampler(interval) if memory else None
        self._stats: dict[str, StageStats] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the body as one call of stage ``name``."""
        if not self.enabled:
            yield
            return
        sampler = self._sampler
        wid = sampler.watch() if sampler else None
        rss0 = sampler.rss() if sampler else 0
        started_tm = False
        if self.tracemalloc:
            started_tm = not _tracemalloc.is_tracing()
            if started_tm:
                _tracemalloc.start()
            _tracemalloc.reset_peak()
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            py_peak = 0
            if self.tracemalloc:
                py_peak = _tracemalloc.get_traced_memory()[1]
                if started_tm:
                    _tracemalloc.stop()
            peak = sampler.unwatch(wid) if sampler else 0
            rss1 = sampler.rss() if sampler else 0
            with self._lock:
                st = self._stats.setdefault(name, StageStats(name))
                st.calls += 1
                st.wall += wall
                st.cpu += cpu
                st.walls.append(wall)
                st.rss_delta += rss1 - rss0
                st.peak_rss = max(st.peak_rss, peak)
                st.peak_delta = max(st.peak_delta, peak - rss0)
                st.py_peak = max(st.py_peak, py_peak)

    def track(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator: each call of the function is one call of stage ``name`` (default: its qualname)."""

        def decorate(func: F) -> F:
            label = name or func.__qualname__

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                if not self.enabled:
                    return func(*args, **kwargs)
                with self.stage(label):
                    return func(*args, **kwargs)

            return wrapper  # type: ignore[return-value]

        return decorate

    def stats(self) -> dict[str, StageStats]:
        with self._lock:
            return dict(self._stats)

    def reset(self) -> None:
        with self._lock:
            self._stats.clear()
        self._t0 = time.perf_counter()

    def summary(self) -> list[dict[str, Any]]:
        """One dict per stage, largest share of wall time first."""
        stats = self.stats()
        total = sum(s.wall for s in stats.values())
        return sorted((s.summary(total) for s in stats.values()), key=lambda r: -r["wall_s"])

    def bottlenecks(self, top: int = 3, min_share: float = 0.1) -> list[dict[str, Any]]:
        """Stages taking the largest share of the recorded time (at least ``min_share``)."""
        return [r for r in self.summary()[:top] if r["share"] >= min_share]

    def memory_timeline(self) -> list[tuple[float, int]]:
        """(seconds since the monitor started, RSS bytes) samples taken while stages ran."""
        if not self._sampler:
            return []
        base = time.monotonic() - (time.perf_counter() - self._t0)
        return [(t - base, rss) for t, rss in self._sampler.samples]

    def to_json(self, path: str | None = None) -> str:
        text = json.dumps({"stages": self.summary(), "bottlenecks": [r["stage"] for r in self.bottlenecks()]},
                          indent=1)
        if path:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    def table(self, title: str = "Performance monitor"):
        """A rich Table of the stages, bottlenecks marked."""
        from rich.table import Table

        hot = {r["stage"] for r in self.bottlenecks()}
        table = Table(title=title)
        for col in ("stage", "calls", "wall", "share", "cpu", "p95", "peak mem"):
            table.add_column(col, justify="left" if col == "stage" else "right", no_wrap=True)
        for r in self.summary():
            table.add_row(
                ("[bold red]" if r["stage"] in hot else "") + r["stage"], str(r["calls"]), _secs(r["wall_s"]),
                f"{r['share']:.0%}", _secs(r["cpu_s"]), _secs(r["p95_s"]), "+" + _bytes(r["peak_delta_bytes"]),
            )
        return table


def _secs(s: float) -> str:
    from .format import seconds

    return seconds(s)


def _bytes(b: int) -> str:
    sign = "-" if b < 0 else ""
    b = abs(b)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if b < 1024 or unit == "GiB":
            return f"{sign}{b:.0f}{unit[0]}" if unit == "B" else f"{sign}{b:.1f}{unit[0]}"
        b /= 1024
    return f"{b}"


#: The process-wide monitor used by nbtrade's own stages; disabled until a caller enables it.
monitor = Monitor(enabled=False)


def stage(name: str):
    """``with stage("fetch"):`` on the process-wide monitor."""
    return monitor.stage(name)


def track(name: str | None = None) -> Callable[[F], F]:
    """Decorator on the process-wide monitor."""
    return monitor.track(name)
