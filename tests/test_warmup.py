"""Kernel warm-up: `nbtrade warmup`, and the demo's compile stage on a cold numba cache."""
import io

import pytest
from rich.console import Console

from nbtrade import warmup


def test_steps_are_known_and_unknown_steps_are_refused():
    assert set(warmup.DEMO_STEPS) <= set(warmup.STEPS)
    with pytest.raises(ValueError, match="unknown warm-up step.*nope.*known: backtests and perpetuals, features"):
        warmup.Warmup(["nope"], jobs=1)


def test_a_step_runs_in_a_worker_process_and_reports_progress():
    seen = []
    w = warmup.Warmup(["control market"], jobs=1)
    seconds = w.wait(lambda name, done, total, compiled: seen.append((name, done, total)))
    assert seen == [("control market", 1, 1)] and seconds > 0 and not w.errors


def test_a_failing_step_never_breaks_the_run(monkeypatch):
    seen = []
    w = warmup.Warmup(["control market"], jobs=0)  # a thread: the patched step is visible to it
    w._futures[0].result()  # let it finish, then fake a failure on the next run
    monkeypatch.setitem(warmup.STEPS, "control market", lambda: 1 / 0)
    w = warmup.Warmup(["control market"], jobs=0)
    w.wait(lambda name, done, total, compiled: seen.append(name))
    assert w.errors and "ZeroDivisionError" in seen[0]


def test_is_cold_on_an_empty_cache(tmp_path):
    """A fresh NUMBA_CACHE_DIR holds no kernel index: cold, and nothing compiles to find out."""
    import os
    import subprocess
    import sys

    code = "from nbtrade.warmup import is_cold; print(is_cold())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    assert out.stdout.strip() == "True"
    assert not any(tmp_path.rglob("*.nbi"))


def test_cold_demo_shows_a_compile_stage(tmp_path, monkeypatch):
    """On a cold cache the demo compiles in the background during the fetch, then shows the compile as a
    stage of its own (the walk-forward's folds and ETA then time folds, not compiles)."""
    import nbtrade.demo as demo

    monkeypatch.setattr(warmup, "is_cold", lambda: True)
    monkeypatch.setattr(warmup, "DEMO_STEPS", ("control market",))
    buf = io.StringIO()
    console = Console(file=buf, width=200, force_terminal=False)
    assert demo.run_demo(quick=True, home=str(tmp_path), report=str(tmp_path / "d.html"), live=False,
                         console=console) == 0
    out = buf.getvalue()
    assert "[compiling kernels (first run only)] steps: 1/1" in out and "later runs load them" in out
    assert "kernels compiled and cached in" in out
    assert out.index("compiling kernels") < out.index("[walk-forward, planted signal]")
    assert "compiling kernels (first run only)" in out.split("Where the time went")[1]  # a monitor stage


def test_warmup_command(tmp_path, monkeypatch, capsys):
    from nbtrade.cli import main

    monkeypatch.setattr(warmup, "DEMO_STEPS", ("control market",))
    assert main(["warmup", "--demo", "--jobs", "1"]) == 0
    out = capsys.readouterr().out
    assert "kernels compiled (1 steps, 1 processes)" in out and "cached in" in out
    assert main(["warmup", "--demo", "--jobs", "0"]) == 0
    assert "(1 steps, in this process)" in capsys.readouterr().out
    assert main(["warmup", "--jobs", "-1"]) == 1
    assert "--jobs must be 0 (compile in this process) or more" in capsys.readouterr().err


def test_idle_jobs_follow_the_idle_cores(monkeypatch):
    monkeypatch.setattr(warmup.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(warmup.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert warmup.idle_jobs(2) == 2  # an idle 2-core machine: two processes
    monkeypatch.setattr(warmup.os, "getloadavg", lambda: (0.9, 0.0, 0.0))
    assert warmup.idle_jobs(2) == 0  # one idle core: a thread
    monkeypatch.setattr(warmup.os, "cpu_count", lambda: 8)
    assert warmup.idle_jobs(2) == 2
    monkeypatch.setattr(warmup.os, "getloadavg", lambda: (7.5, 0.0, 0.0))
    assert warmup.idle_jobs(2) == 0
