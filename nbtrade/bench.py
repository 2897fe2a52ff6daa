"""Benchmark harness behind ``nbtrade bench``: ratios against baselines, medians, one run.

A suite is a module in ``bench/`` (installed as ``nbtrade.benchsuite``) holding
``CASES``, a list of :class:`Case`. Each case builds, from a seeded setup, the
nbtrade callable and its baselines (TA-Lib, bottleneck, pandas, numpy, a bare
loop...). The harness checks that outputs agree, times the first call of the
nbtrade callable apart (compilation or cache load), then reports the median of
``repeat`` timed runs as ns per unit and as a ratio to nbtrade. Absolute times
swing on shared machines; ratios from one run are what to read.
"""
from __future__ import annotations

import gc
import json
import statistics
import time
import warnings
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Callable

SUITES = {
    "kernels": ["bench_indicators", "bench_rolling"],
    "engine": ["bench_engine", "bench_weights", "bench_strategy", "bench_orders"],
    "data": ["bench_data", "bench_data_fetch"],
    "ml": ["bench_ml"],
    "sweep": ["bench_sweep"],
}


@dataclass
class Case:
    """One benchmark: ``setup(n)`` returns ``{impl_name: zero-arg callable}``.

    The key ``"nbtrade"`` is the subject; every other key is a baseline.
    ``check(a, b)`` compares a baseline's output with nbtrade's (skipped when None).
    ``target`` documents the goal as text, e.g. ``"<= 1.0x talib"``.
    """

    name: str
    setup: Callable[[int], dict[str, Callable[[], Any]]]
    unit: str = "value"
    units: Callable[[int], int] = lambda n: n
    check: Callable[[Any, Any], None] | None = None
    target: str = ""


@dataclass
class Timing:
    impl: str
    first_s: float
    median_s: float
    runs: list[float] = field(default_factory=list)


def time_callable(fn: Callable[[], Any], repeat: int) -> Timing:
    """First call timed apart, then the median of ``repeat`` calls."""
    gc.collect()
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return Timing("", first, statistics.median(runs), runs)


def run_case(case: Case, n: int, repeat: int) -> dict[str, Any]:
    from .engine import RejectedOrdersWarning

    with warnings.catch_warnings():
        # the engine cases trade all-in on shared cash: their rejected orders are part of the workload
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        return _run_case(case, n, repeat)


def _run_case(case: Case, n: int, repeat: int) -> dict[str, Any]:
    impls = case.setup(n)
    if "nbtrade" not in impls:
        raise ValueError(f"bench case {case.name} has no 'nbtrade' implementation")
    results: dict[str, Any] = {}
    reference = None
    if case.check is not None:
        reference = impls["nbtrade"]()
        for name, fn in impls.items():
            if name != "nbtrade":
                case.check(reference, fn())
    timings = {}
    for name, fn in impls.items():
        timing = time_callable(fn, repeat)
        timing.impl = name
        timings[name] = timing
    units = case.units(n)
    base = timings["nbtrade"].median_s
    for name, timing in timings.items():
        results[name] = {
            "median_s": timing.median_s,
            "first_s": timing.first_s,
            "ns_per_unit": timing.median_s / units * 1e9,
            "ratio": timing.median_s / base if base > 0 else float("nan"),
        }
    return {"case": case.name, "n": n, "unit": case.unit, "units": units, "target": case.target,
            "impls": results}


def load_cases(suite: str) -> list[Case]:
    names = [m for s in SUITES for m in SUITES[s]] if suite == "all" else SUITES[suite]
    cases: list[Case] = []
    for module in names:
        try:
            mod = import_module(f"nbtrade.benchsuite.{module}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(module):
                continue  # suite not written yet
            raise
        cases.extend(mod.CASES)
    return cases


def render(rows: list[dict[str, Any]], title: str, console: Any = None) -> None:
    """Print results as a rich table: one row per implementation, ratio to nbtrade.

    Off a terminal the table keeps its width (see :func:`nbtrade.report.dashboard.make_console`)."""
    from rich.table import Table

    from .format import number
    from .report.dashboard import make_console

    table = Table(title=title, show_lines=False)
    for col in ("case", "impl", "median", "ns/unit", "x nbtrade", "first call", "target"):
        table.add_column(col, justify="right" if col not in ("case", "impl", "target") else "left",
                         no_wrap=col != "target")
    for row in rows:
        first = True
        for impl, r in sorted(row["impls"].items(), key=lambda kv: (kv[0] != "nbtrade", kv[1]["median_s"])):
            table.add_row(
                row["case"] if first else "", impl, f"{number(r['median_s'] * 1e3, 4)} ms",
                number(r["ns_per_unit"], 4), number(r["ratio"], 3), f"{number(r['first_s'] * 1e3, 4)} ms",
                row["target"] if first else "",
            )
            first = False
        table.add_section()
    (console or make_console()).print(table)


def script_main(cases: list[Case], title: str, description: str, argv: list[str] | None = None,
                default_n: int = 20_000_000, quick_n: int = 1_000_000) -> tuple[list[dict[str, Any]], int]:
    """``python bench/bench_X.py [--n N] [--quick] [--repeat R]``: run ``cases``, print the table
    and each implementation's throughput against nbtrade's; returns the rows and ``n``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=None,
                        help=f"units of work (default {default_n:,}; --quick {quick_n:,})")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    n = args.n or (quick_n if args.quick else default_n)
    rows = [run_case(case, n, args.repeat) for case in cases]
    render(rows, f"{title}: n={n:,}, median of {args.repeat}")
    for row in rows:
        base = row["impls"]["nbtrade"]["median_s"]
        for name, r in row["impls"].items():
            print(f"{name:>12}: {row['units'] / r['median_s'] / 1e6:9.3f} M {row['unit']}s/s "
                  f"(nbtrade speed = {r['median_s'] / base:.2f}x {name}'s)")
    return rows, n


def compare_runs(rows: list[dict[str, Any]], previous: dict[str, Any], tolerance: float = 1.25
                 ) -> list[dict[str, Any]]:
    """Per case, nbtrade's median now vs in ``previous`` (a ``--json`` file's content).

    Absolute times move with machine load, so each case's time is first taken
    relative to its fastest baseline in the same run when one exists; a case
    is flagged as a regression when that figure grew by more than ``tolerance``.
    """
    before = {r["case"]: r for r in previous.get("rows", [])}
    out = []
    for row in rows:
        old = before.get(row["case"])
        if old is None:
            continue

        def rel(r: dict[str, Any]) -> float:
            impls = r["impls"]
            base = [v["median_s"] for k, v in impls.items() if k != "nbtrade"]
            return impls["nbtrade"]["median_s"] / (min(base) if base else 1.0)

        change = rel(row) / rel(old) if rel(old) > 0 else float("nan")
        out.append({"case": row["case"], "change": change, "regression": change > tolerance,
                    "relative": any(k != "nbtrade" for k in row["impls"])})
    return out


def run_bench(suite: str = "kernels", n: int | None = None, repeat: int = 5, quick: bool = False,
              json_path: str | None = None, only: str | None = None, compare: str | None = None) -> int:
    """Run a suite, print the table, optionally write JSON. Returns a process exit code."""
    if n is None:
        n = 1_000_000 if quick else 10_000_000
    repeat = max(1, min(repeat, 3) if quick else repeat)
    cases = [c for c in load_cases(suite) if only is None or only in c.name]
    if not cases:
        print(f"no bench cases for suite {suite!r}" + (f" matching {only!r}" if only else ""))
        return 1
    from .report.dashboard import Dashboard, make_console

    to_stdout = json_path == "-"  # --json without a file: stdout is the JSON alone
    console = make_console(stderr=to_stdout)
    rows = []
    with Dashboard(f"bench {suite}", fields=("nbtrade",), interval=0, console=console) as dash:
        dash.add("cases", total=len(cases))
        for case in cases:
            dash.update("cases", case=case.name)
            row = run_case(case, n, repeat)
            rows.append(row)
            dash.update("cases", advance=1, nbtrade=f"{row['impls']['nbtrade']['median_s'] * 1e3:.2f} ms")
    payload = {"suite": suite, "n": n, "repeat": repeat, "rows": rows}
    if to_stdout:
        print(json.dumps(payload, indent=1))
    else:
        render(rows, f"nbtrade bench {suite}: n={n:,}, median of {repeat} (ratio = time / nbtrade's time)", console)
        if json_path:
            with open(json_path, "w") as fh:
                json.dump(payload, fh, indent=1)
    if compare:
        with open(compare) as fh:
            changes = compare_runs(rows, json.load(fh))
        for c in changes:
            flag = "[bold red]REGRESSION[/]" if c["regression"] else "ok"
            basis = "vs baselines" if c["relative"] else "absolute"
            console.print(f"{c['case']}: {c['change']:.2f}x the previous time ({basis}) {flag}")
        if any(c["regression"] for c in changes):
            return 1
    return 0
