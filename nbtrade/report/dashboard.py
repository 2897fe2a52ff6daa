"""Live terminal dashboards for long work (fetch, walk-forward, backtests, bench).

On a terminal a :class:`Dashboard` is a rich ``Live`` table with one row per
task (progress bar, counts, custom fields, rate, ETA). Off a terminal (CI,
pipes, files) it degrades to plain log lines, at most one per task every
``interval`` seconds plus a final line per task, so logs stay readable.

>>> with Dashboard("fetch", fields=("pages", "429s"), live=False, interval=0) as dash:
...     dash.add("BTC/USDT", total=10)
...     dash.update("BTC/USDT", advance=10, pages=1)   # doctest: +ELLIPSIS
[fetch] BTC/USDT: 10/10 (100%) pages=1 ...
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rich.console import Console, Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .. import format as F


@dataclass
class _Task:
    key: str
    total: float | None
    completed: float = 0.0
    fields: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    last_emit: float | None = None
    #: (time, completed) at the first progress: the rate is measured from there, as the time before
    #: it holds one-off start-up work (kernel compiles, connections) that later steps do not repeat
    first: tuple[float, float] | None = None

    def elapsed(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def progress(self, completed: float) -> None:
        if self.first is None and completed > 0:
            self.first = (time.monotonic(), completed)
        self.completed = completed

    def eta(self) -> float | None:
        """Seconds left at the rate since the first progress; None until two steps have been seen."""
        if self.total is None or self.first is None or self.finished is not None:
            return None
        t1, c1 = self.first
        if self.completed <= c1:
            return None
        rate = (self.completed - c1) / max(time.monotonic() - t1, 1e-9)
        return max(self.total - self.completed, 0.0) / rate

    def done(self) -> bool:
        return self.finished is not None


def _fmt_secs(s: float | None) -> str:
    return "-" if s is None else F.seconds(s)


def _fmt_num(x: Any) -> str:
    return F.number(x) if isinstance(x, (int, float)) else str(x)


def make_console(stderr: bool = False) -> Console:
    """A console for command output: the terminal's width on a terminal; off one (pipes, files,
    CI logs) the ``COLUMNS`` width or 200 columns, so tables are not wrapped into slivers."""
    import os
    import sys

    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    width = int(os.environ.get("COLUMNS", "0") or 0) or 200
    return Console(stderr=stderr, width=width)


class Dashboard:
    """A live table of tasks, or plain periodic log lines off a terminal.

    Parameters
    ----------
    title : str
        Shown above the table and in front of every plain line.
    fields : sequence of str
        Extra per-task columns, set with ``update(key, name=value)``.
    live : bool, optional
        Force rich live mode (True) or plain lines (False); default: live
        exactly when the console is an interactive terminal.
    interval : float
        Seconds between plain lines for one task (live mode refreshes 4 times/s).
    """

    def __init__(self, title: str, fields: Sequence[str] = (), console: Console | None = None,
                 live: bool | None = None, interval: float = 5.0) -> None:
        self.title = title
        self.fields = tuple(fields)
        self.console = console or make_console()
        self.live = self.console.is_terminal if live is None else live
        self.interval = interval
        self.notes: list[str] = []
        self._tasks: dict[str, _Task] = {}
        self._lock = threading.Lock()
        self._live = None

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self) -> "Dashboard":
        if self.live:
            from rich.live import Live

            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            pending = [t for t in self._tasks.values() if not t.done()]
            for task in pending:
                task.finished = time.monotonic()
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
        else:
            for task in pending:
                self._emit(task)

    # -- updates ---------------------------------------------------------------
    def add(self, key: str, total: float | None = None, **fields: Any) -> None:
        """Start a task (a symbol, a fold...). ``total`` is in the task's own units."""
        with self._lock:
            self._tasks[key] = _Task(key, total, fields=dict(fields))

    def update(self, key: str, advance: float = 0.0, completed: float | None = None,
               total: float | None = None, **fields: Any) -> None:
        """Advance a task and set its fields; emits a plain line when due."""
        with self._lock:
            task = self._tasks.get(key)
            if task is None:
                task = self._tasks[key] = _Task(key, total)
            if total is not None:
                task.total = total
            task.progress(completed if completed is not None else task.completed + advance)
            task.fields.update(fields)
            if task.total is not None and task.completed >= task.total:
                task.finished = task.finished or time.monotonic()
            due = not self.live and (task.done() or task.last_emit is None
                                      or time.monotonic() - task.last_emit >= self.interval)
        if due:
            self._emit(task)

    def finish(self, key: str, **fields: Any) -> None:
        """Mark a task done (e.g. it stopped early at the end of the data)."""
        with self._lock:
            task = self._tasks[key]
            task.fields.update(fields)
            already = task.done()
            task.finished = task.finished or time.monotonic()
        if not self.live and not already:
            self._emit(task)

    def note(self, text: str) -> None:
        """A footer line (live) or a log line (plain)."""
        with self._lock:
            self.notes = (self.notes + [text])[-3:]
        if not self.live:
            self.console.print(f"[{self.title}] {text}", markup=False, highlight=False)

    def tasks(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: {"completed": t.completed, "total": t.total, **t.fields} for k, t in self._tasks.items()}

    # -- rendering -------------------------------------------------------------
    def _line(self, task: _Task) -> str:
        parts = [f"[{self.title}] {task.key}:"]
        if task.total:
            parts.append(f"{_fmt_num(task.completed)}/{_fmt_num(task.total)} ({task.completed / task.total:.0%})")
        else:
            parts.append(_fmt_num(task.completed))
        parts += [f"{k}={_fmt_num(v)}" for k, v in task.fields.items()]
        parts.append(f"done in {_fmt_secs(task.elapsed())}" if task.done() else f"eta {_fmt_secs(task.eta())}")
        return " ".join(parts)

    def _emit(self, task: _Task) -> None:
        task.last_emit = time.monotonic()
        self.console.print(self._line(task), markup=False, highlight=False)

    def __rich__(self) -> Group:
        table = Table(title=self.title, expand=False)
        table.add_column("task")
        table.add_column("progress", width=24)
        table.add_column("done", justify="right")
        for name in self.fields:
            table.add_column(name, justify="right")
        table.add_column("eta", justify="right")
        with self._lock:
            tasks = list(self._tasks.values())
            notes = list(self.notes)
        for t in tasks:
            bar = ProgressBar(total=t.total or 1.0, completed=t.completed if t.total else 0, width=22)
            done = f"{_fmt_num(t.completed)}/{_fmt_num(t.total)}" if t.total else _fmt_num(t.completed)
            extra = [_fmt_num(t.fields.get(name, "")) for name in self.fields]
            eta = "✓ " + _fmt_secs(t.elapsed()) if t.done() else _fmt_secs(t.eta())
            table.add_row(t.key, bar, done, *extra, eta)
        return Group(table, *(Text(n, style="dim") for n in notes))
