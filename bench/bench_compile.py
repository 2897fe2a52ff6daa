"""Cold compile of the signals engine: the first ``nbtrade.backtest`` of a fresh process on a cold cache.

Each case runs in a fresh subprocess with a fresh ``NUMBA_CACHE_DIR`` (nothing cached) on a tiny
market (2 symbols x 200 bars: the run itself takes microseconds, so the first call is its compile):

* ``plain``: long-only market orders, no stops (the fused loop);
* ``sl_stop``: the same with a 2 % stop-loss (the phased loop);
* ``options``: accumulate, reenter, per-order sizes, an indicator stop, ROI table, time stop,
  borrow, finalize;
* ``perp``: a perpetual (isolated margin, liquidation, funding).

For each case: the process CPU seconds of the first call (``cpu``), the seconds numba spent
compiling (``compile``: top-level ``numba:compile`` events, nested ones are part of their caller),
how many top-level compiles, and the slowest functions. A warm second process (same cache) is
timed too (``warm``: the first call loading from the cache)::

    python bench/bench_compile.py                 # all cases
    python bench/bench_compile.py plain sl_stop   # some of them
    python bench/bench_compile.py --steps         # the demo's warm-up steps, each cold (nbtrade.warmup)
    python bench/bench_compile.py --steps indicators sweep   # some steps (nbtrade.warmup.STEPS)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

CASES = ("plain", "sl_stop", "options", "perp")

_LISTENER = r"""
class L(event.Listener):
    def __init__(self):
        self.depth = 0; self.t0 = 0.0; self.total = 0.0; self.n = 0; self.per = {}
    def on_start(self, ev):
        if self.depth == 0:
            self.t0 = time.process_time()
        self.depth += 1
    def on_end(self, ev):
        self.depth -= 1
        if self.depth == 0:
            dt = time.process_time() - self.t0
            self.total += dt; self.n += 1
            d = ev.data.get("dispatcher")
            name = getattr(getattr(d, "py_func", None), "__qualname__", str(d))
            self.per[name] = self.per.get(name, 0.0) + dt
"""

_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
import numpy as np, pandas as pd
import nbtrade
from numba.core import event

case = sys.argv[1]

__LISTENER__

n, syms = 200, ["BTC/USDT", "ETH/USDT"]
frames = nbtrade.market(syms, "2024-01-01", "2024-01-09 08:00", "1h", seed=1)
close = pd.DataFrame({s: f["close"] for s, f in frames.items()})
fast, slow = close.rolling(5).mean(), close.rolling(12).mean()
up = fast > slow
entries = up & ~up.shift(1, fill_value=False)
exits = ~up & up.shift(1, fill_value=False)
kw = dict(fees=0.001, init_cash=10_000.0)
if case == "sl_stop":
    kw.update(sl_stop=0.02)
elif case == "options":
    kw.update(accumulate=True, reenter=True, entry_size=close * 0 + 0.3, ind_stop=close * 0.97, td_stop=20,
              min_roi={0: 0.05, 10: 0.01}, finalize_trades=True, sl_stop=0.05)
    kw["size"] = 0.3
elif case == "perp":
    kw.update(instrument="perp", leverage=3.0, short_entries=exits, short_exits=entries)
listener = L()
event.register("numba:compile", listener)
t0 = time.process_time(); w0 = time.perf_counter()
res = nbtrade.backtest(frames, entries, exits, **kw)
cpu = time.process_time() - t0; wall = time.perf_counter() - w0
event.unregister("numba:compile", listener)
top = sorted(listener.per.items(), key=lambda kv: -kv[1])[:6]
print(json.dumps({"case": case, "cpu": cpu, "wall": wall, "compile": listener.total, "n": listener.n,
                  "top": top, "equity": float(res.equity.iloc[-1])}))
"""


_STEP_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from numba.core import event
from nbtrade import warmup

__LISTENER__

listener = L()
event.register("numba:compile", listener)
t0 = time.process_time()
warmup.STEPS[sys.argv[1]]()
cpu = time.process_time() - t0
top = sorted(listener.per.items(), key=lambda kv: -kv[1])[:8]
print(json.dumps({"case": sys.argv[1], "cpu": cpu, "compile": listener.total, "n": listener.n, "top": top}))
"""
_CHILD, _STEP_CHILD = (c.replace("__LISTENER__", _LISTENER) for c in (_CHILD, _STEP_CHILD))  # one listener


def run_step(step: str, cache_dir: str) -> dict:
    """One ``nbtrade.warmup`` step in a fresh process on ``cache_dir``; returns the child's JSON line."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _STEP_CHILD, step], env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"step {step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main_steps(steps: list[str]) -> int:
    """The demo's warm-up steps (``nbtrade.warmup.DEMO_STEPS``), each cold in a fresh process and cache:
    CPU seconds of the step and of its top-level compiles."""
    from nbtrade.warmup import DEMO_STEPS

    steps = steps or list(DEMO_STEPS)
    total_cpu = total_compile = 0.0
    print(f"{'step':<40}{'cpu s':>8}{'compile s':>11}{'compiles':>9}   slowest compiles")
    for step in steps:
        with tempfile.TemporaryDirectory(prefix="nbcompile-") as d:
            r = run_step(step, d)
        total_cpu += r["cpu"]
        total_compile += r["compile"]
        top = ", ".join(f"{k} {v:.1f}" for k, v in r["top"][:5])
        print(f"{step:<40}{r['cpu']:>8.2f}{r['compile']:>11.2f}{r['n']:>9d}   {top}", flush=True)
    print(f"{'total':<40}{total_cpu:>8.2f}{total_compile:>11.2f}")
    return 0


def run_case(case: str, cache_dir: str) -> dict:
    """One fresh process on ``cache_dir``; returns the child's JSON line."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _CHILD, case], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"case {case} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Print cold (fresh cache) and warm (cache filled by the cold run) first-call figures per case."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--steps" in args:
        return main_steps([a for a in args if a != "--steps"])
    cases = [a for a in args if a in CASES] or list(CASES)
    print(f"{'case':<10}{'cold cpu s':>11}{'compile s':>11}{'compiles':>9}{'warm cpu s':>11}   slowest compiles")
    for case in cases:
        with tempfile.TemporaryDirectory(prefix="nbcompile-") as d:
            cold = run_case(case, d)
            warm = run_case(case, d)
        top = ", ".join(f"{k} {v:.1f}" for k, v in cold["top"][:4])
        print(f"{case:<10}{cold['cpu']:>11.2f}{cold['compile']:>11.2f}{cold['n']:>9d}{warm['cpu']:>11.2f}   {top}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
