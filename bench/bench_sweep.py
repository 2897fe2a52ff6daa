"""Sweep benchmark: a 10 x 10 SMA-cross grid (fast 5..50, slow 60..240) over 20 symbols sharing cash.

``n`` counts the bar-steps of the whole sweep: ``n // 2000`` one-minute bars of 20 symbols for each
of the 100 combinations (the default 10,000,000 is 5,000 bars; the issue's 50,000 bars is
``--n 100000000``). vectorbt is left out above 2,000,000 bar-steps per combination (its
broadcast holds every combination's arrays at once: 2.8 GB at the issue's size). Long-only, all-in (``size=1``), 0.1 % fee,
fills at the close on close prices, entries/exits where SMA(fast) crosses SMA(slow):

* ``nbtrade``: ``nbtrade.sweep`` on 2 threads (every core here), the built-in ``sma_cross`` (both SMAs as
  running sums inside its crossing pass, no indicator array stored),
  one metrics row per combination;
* ``sweep_1thread``: the same on one thread (parallel efficiency = its time / nbtrade's);
* ``loop_prepared``: today's loop: ``prepare`` once, then per combination pandas signal
  logic (SMA frames, crossings) and ``nbtrade.backtest``, final equity kept;
* ``loop_prepared_stats``: the same plus ``Result.stats()`` (what ranking needs);
* ``vectorbt`` (when importable): signals for the 100 combinations broadcast to 2,000
  columns and one ``Portfolio.from_signals(..., cash_sharing=True, group_by=combination)``.

Outputs (final equity per combination, grid order) must agree to 1e-9 relative. Run directly
for the table, peak traced memory of each implementation against the inputs, and a Dask
LocalCluster comparison (2 single-threaded workers vs 1)::

    python bench/bench_sweep.py --n 10000000          # 5,000 bars x 20 symbols x 100 combinations
    NBTRADE_BENCH_VECTORBT=0 python bench/bench_sweep.py --n 100000000 --repeat 5   # 50,000 bars
    NBTRADE_BENCH_VECTORBT=all python bench/bench_sweep.py --n 100000000 --repeat 1  # with vectorbt (~40 s, 2.8 GB)
    python bench/bench_sweep.py --n 100000000 --dask  # only: LocalCluster 2 vs 1 worker
    python bench/bench_sweep.py --n 100000000 --dask --long  # the same on 4,000 combinations (~30 s/worker)
    python bench/bench_sweep.py --big 5000            # 10,000 combinations: time and peak RSS
    python bench/bench_sweep.py --n 100000000 --memory  # peak extra RSS / traced memory vs the inputs
    python bench/bench_sweep.py --n 100000000 --memo  # peak memory vs inputs per indicator-memo budget
    nbtrade bench sweep --repeat 3
"""
from __future__ import annotations

import os
import sys
import time
import tracemalloc
import warnings

import numpy as np

from nbtrade.bench import Case

N_SYMBOLS = 20
FEE = 0.001
INIT_CASH = 100_000.0
FAST = list(range(5, 55, 5))
SLOW = list(range(60, 260, 20))
N_COMBOS = len(FAST) * len(SLOW)
#: vectorbt runs only up to this many bar-steps per combination (its broadcast holds them all at once)
VBT_MAX = 2_000_000
OPTS = dict(size=1.0, size_type="percent", fees=FEE, init_cash=INIT_CASH, fill="close", freq="1m", on_gap="skip")


def make_close(n_bars: int, n_symbols: int = N_SYMBOLS, seed: int = 0) -> np.ndarray:
    """Random-walk closes ``(n_bars, n_symbols)``."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, (n_bars, n_symbols)), axis=0))


from nbtrade.sweep.native import sma_cross  # noqa: E402 - both SMAs as running sums in the crossing pass


def sma_cross_memo(market, fast, slow):
    """The same signals from two memoised SMA arrays (``nbtrade.sweep.sma``: what a user's signal
    function does); the ``--memo`` mode measures its memory per memo budget."""
    import nbtrade
    from nbtrade.sweep.native import _crossings

    return _crossings(nbtrade.sweep.sma(market, fast), nbtrade.sweep.sma(market, slow))


def _market(close: np.ndarray):
    import pandas as pd

    import nbtrade

    idx = pd.date_range("2024-01-01", periods=close.shape[0], freq="1min", tz="UTC")
    return nbtrade.prepare(pd.DataFrame(close, index=idx, columns=[f"S{i}" for i in range(close.shape[1])]))


def _run_sweep(market, n_jobs: int, client=None) -> np.ndarray:
    import nbtrade

    res = nbtrade.sweep(market, sma_cross, {"fast": FAST, "slow": SLOW}, n_jobs=n_jobs, client=client, **OPTS)
    return res.table.sort_index()["Equity Final [$]"].to_numpy()


def _run_loop(market, stats: bool = False) -> np.ndarray:
    import nbtrade
    from nbtrade.indicators import sma

    close = market.close
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fast in FAST:
            for slow in SLOW:
                f, s = sma(close, fast), sma(close, slow)
                above = f > s
                was = above.shift(1, fill_value=False)
                res = nbtrade.backtest(market, entries=above & ~was & s.notna(), exits=~above & was, **OPTS)
                if stats:
                    res.stats()
                out.append(res.equity.iloc[-1])
    return np.array(out)


def _vectorbt(close: np.ndarray):
    try:
        import vectorbt as vbt
    except ImportError:
        return None
    from nbtrade.rolling import sma_many

    def run() -> np.ndarray:
        # the grid broadcast: combination k owns columns [20k, 20k + 20)
        smas = {w: sma_many(close, [w])[..., 0] for w in sorted(set(FAST) | set(SLOW))}
        ent, ex = [], []
        for fast in FAST:
            for slow in SLOW:
                e, x = sma_cross_arrays(smas[fast], smas[slow])
                ent.append(e)
                ex.append(x)
        ent, ex = np.hstack(ent), np.hstack(ex)
        wide = np.tile(close, (1, len(ent[0]) // close.shape[1]))
        groups = np.repeat(np.arange(len(FAST) * len(SLOW)), close.shape[1])
        pf = vbt.Portfolio.from_signals(wide, ent, ex, size=np.inf, fees=FEE, init_cash=INIT_CASH,
                                        cash_sharing=True, group_by=groups, freq="1min")
        return pf.value().to_numpy()[-1]

    return run


def sma_cross_arrays(f: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from nbtrade.sweep.native import _crossings

    return _crossings(f, s)


def n_bars(n: int) -> int:
    """Bars per symbol for ``n`` bar-steps over the whole sweep (100 combinations x 20 symbols)."""
    return max(n // (N_SYMBOLS * N_COMBOS), 300)


def _setup(n: int, with_vbt: bool | None = None):
    if with_vbt is None:  # NBTRADE_BENCH_VECTORBT=0 leaves vectorbt out (its broadcast is the slow part)
        flag = os.environ.get("NBTRADE_BENCH_VECTORBT", "1")  # "0": never, "all": at any size
        with_vbt = flag == "all" or (flag != "0" and n_bars(n) * N_SYMBOLS <= VBT_MAX)
    close = make_close(n_bars(n))
    market = _market(close)
    market.validate()
    impls = {
        "nbtrade": lambda: _run_sweep(market, -1),
        "sweep_1thread": lambda: _run_sweep(market, 1),
        "loop_prepared": lambda: _run_loop(market),
        "loop_prepared_stats": lambda: _run_loop(market, stats=True),
    }
    vbt = _vectorbt(close) if with_vbt else None
    if vbt is not None:
        impls["vectorbt"] = vbt
    return impls


def _check(ref, other):
    np.testing.assert_allclose(np.asarray(other).ravel(), ref, rtol=1e-9, atol=1e-9 * INIT_CASH)


CASES = [
    Case("sweep_sma_cross_10x10_20sym", _setup, unit="bar-step", units=lambda n: n_bars(n) * N_SYMBOLS * N_COMBOS,
         check=_check, target=">= 5x loop_prepared, >= 100x vectorbt, >= 1.7x sweep_1thread"),
]


def _peak(fn) -> float:
    """Peak traced allocation (MiB) of one call."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


#: ``--dask --long``: 40 x 100 = 4,000 combinations (fast 2..80 step 2, slow 60..258 step 2), about 30 s
#: of engine work on one worker at the issue's 50,000 bars x 20 symbols.
LONG_GRID = {"fast": list(range(2, 82, 2)), "slow": list(range(60, 260, 2))}


def _dask(n: int, repeat: int, grid: dict | None = None) -> None:
    """LocalCluster of 1 vs 2 single-threaded worker processes; warm-up (first sweep) apart. ``grid``
    (default the 10 x 10 one) is swept over ``n_bars(n)`` bars x 20 symbols; results must be identical
    to the local run. Prints each cluster's medians and the ratio."""
    import distributed

    import nbtrade

    grid = grid or {"fast": FAST, "slow": SLOW}
    close = make_close(n_bars(n))
    market = _market(close)
    market.validate()

    def run(client=None, n_jobs=1) -> tuple[np.ndarray, float]:
        t0 = time.perf_counter()
        res = nbtrade.sweep(market, sma_cross, grid, n_jobs=n_jobs, client=client, **OPTS)
        return res.table.sort_index()["Equity Final [$]"].to_numpy(), time.perf_counter() - t0

    ref, local_s = run()
    combos = len(ref)
    print(f"{combos:,} combinations x {close.shape[0]:,} bars x {close.shape[1]} symbols "
          f"({combos * close.size / 1e9:.1f} G bar-steps); local, 1 thread: {local_s:.1f} s")
    # both clusters up at once, runs alternated (1, 2, 1, 2...): on a shared machine both see the same load
    clusters = {w: distributed.LocalCluster(n_workers=w, threads_per_worker=1, processes=True,
                                            dashboard_address=None, silence_logs=40) for w in (1, 2)}
    clients = {w: distributed.Client(cl, set_as_default=False) for w, cl in clusters.items()}
    runs: dict[int, list] = {1: [], 2: []}
    cpu: dict[int, list] = {1: [], 2: []}  # worker CPU seconds per run: the work split, and the CPU the machine gave
    try:
        for w, client in clients.items():
            got, warm = run(client)
            assert np.array_equal(got, ref), "Dask sweep differs from the local one"
            print(f"dask LocalCluster {w} worker(s): first sweep {warm:.2f} s (warm-up: workers load the kernels)")
        for _ in range(repeat):
            for w, client in clients.items():
                c0 = client.run(time.process_time)
                got, secs = run(client)
                c1 = client.run(time.process_time)
                assert np.array_equal(got, ref), "Dask sweep differs from the local one"
                runs[w].append(secs)
                cpu[w].append(sum(c1[k] - c0[k] for k in c0))
    finally:
        for w in clients:
            clients[w].close()
            clusters[w].close()
    medians = {w: float(np.median(r)) for w, r in runs.items()}
    for w, r in runs.items():
        share = float(np.median(np.array(cpu[w]) / np.array(r)))
        print(f"dask LocalCluster {w} worker(s): median {medians[w]:.2f} s of {repeat} {[round(x, 2) for x in r]}; "
              f"identical to local: yes; workers' CPU {float(np.median(cpu[w])):.2f} s, i.e. {share:.2f} of a core "
              "on average during the sweep (the rest: waiting for a core on a shared machine, the client's own work)")
    print(f"2 workers vs 1: {medians[1] / medians[2]:.2f}x (load {os.getloadavg()[0]:.1f})")


def _memo(n: int, repeat: int = 3) -> None:
    """Peak traced memory above the inputs (the close array) and median time of the 100-combination
    sweep on one thread, at the default indicator-memo budget and at budgets relative to the inputs."""
    import nbtrade

    close = make_close(n_bars(n))
    market = _market(close)
    market.validate()
    _run_sweep(market, 1)  # warm-up
    for label, budget in (("native sma_cross", None), ("default (1x inputs)", None), ("20x inputs", 20),
                          ("4x inputs", 4), ("0 (no memo)", 0)):
        kw = {} if budget is None else {"memo_bytes": int(budget * close.nbytes)}
        fn = sma_cross if label.startswith("native") else sma_cross_memo

        def run() -> None:
            nbtrade.sweep(market, fn, {"fast": FAST, "slow": SLOW}, n_jobs=1, **OPTS, **kw)

        ts = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            run()
            ts.append(time.perf_counter() - t0)
        peak = _peak(run) * 2**20
        print(f"memo {label:>16}: median {float(np.median(ts)):.3f} s, peak extra {peak / 2**20:.1f} MiB = "
              f"{peak / close.nbytes:.1f}x the inputs ({close.nbytes / 2**20:.1f} MiB)")


_RSS_CHILD = r"""
import os, sys, time, tracemalloc
sys.path.insert(0, {here!r})
import bench_sweep as b
import nbtrade

def rss():
    d = {{}}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            d[k] = int(v.split()[0]) * 1024
    return d

jobs, traced = {jobs}, {traced}
close = b.make_close(b.n_bars({n}))
market = b._market(close)
market.validate()
small = b._market(b.make_close(2000))  # warm-up: loads the kernels (on as many threads) without growing the heap
small.validate()
nbtrade.sweep(small, b.sma_cross, {{"fast": b.FAST, "slow": b.SLOW}}, n_jobs=jobs if jobs > 0 else os.cpu_count(),
              **b.OPTS)
if traced:
    tracemalloc.start()
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
base = rss()["VmRSS"]
nbtrade.sweep(market, b.sma_cross, {{"fast": b.FAST, "slow": b.SLOW}}, n_jobs=jobs, **b.OPTS)
peak = rss()["VmHWM"] - base
traced_peak = tracemalloc.get_traced_memory()[1] if traced else float("nan")
print(peak, traced_peak, close.nbytes)
"""


def _memory(n: int, repeat: int = 3) -> None:
    """Peak extra memory of the 100-combination sweep against its inputs (the close prices, float64):
    in a fresh process per run (warm-up on a small market first, so the kernels are loaded and the
    heap is not grown by an earlier big run), the peak RSS above the RSS before the sweep (Linux
    ``VmHWM`` reset through ``/proc/self/clear_refs``), and separately numpy's traced peak
    (``tracemalloc``: reserved buffers count in full, touched or not)."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    for jobs in (1, -1):
        for traced in (False, True):
            got = []
            for _ in range(repeat):
                code = _RSS_CHILD.format(here=here, jobs=jobs, traced=traced, n=n)
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
                rss, tm, inputs = (float(v) for v in out.stdout.split()[-3:])
                got.append(tm if traced else rss)
            what = "tracemalloc peak" if traced else "peak RSS above the start"
            med = float(np.median(got))
            print(f"n_jobs={jobs:>2}: {what}: median {med / 2**20:.1f} MiB = {med / inputs:.2f}x the inputs "
                  f"({inputs / 2**20:.1f} MiB) over {repeat} fresh processes")


def _big(n_bars: int, n_jobs: int = -1) -> None:
    """A 10,000-combination sweep (fast 1..100 x slow 101..200) over 20 symbols x ``n_bars``:
    time and peak RSS of the process (inputs, then after)."""
    import resource

    import nbtrade

    close = make_close(n_bars)
    market = _market(close)
    market.validate()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    t0 = time.perf_counter()
    res = nbtrade.sweep(market, sma_cross, {"fast": list(range(1, 101)), "slow": list(range(101, 201))},
                        n_jobs=n_jobs, **OPTS)
    secs = time.perf_counter() - t0
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    steps = 10_000 * n_bars * N_SYMBOLS
    print(f"10,000 combinations x {n_bars:,} bars x {N_SYMBOLS} symbols: {secs:.1f} s "
          f"(warm-up {res.timings['warmup_s']:.2f} s, {steps / secs / 1e6:.0f} M bar-steps/s), peak RSS "
          f"{rss1:.0f} MiB (after loading the inputs: {rss0:.0f} MiB; close {close.nbytes / 2**20:.1f} MiB); "
          f"best {res.best_params}, DSR {res.deflated_sharpe():.3f}")


if __name__ == "__main__":
    from nbtrade.bench import script_main

    if "--big" in sys.argv:
        _big(int(sys.argv[sys.argv.index("--big") + 1]))
        sys.exit(0)
    if "--memo" in sys.argv:  # only the memory of the indicator memo budgets
        _memo(int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 10_000_000)
        sys.exit(0)
    if "--memory" in sys.argv:  # only the peak extra memory of the 100-combination sweep
        _memory(int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 10_000_000)
        sys.exit(0)
    if "--dask" in sys.argv:  # only the LocalCluster comparison
        n_dask = int(sys.argv[sys.argv.index("--n") + 1]) if "--n" in sys.argv else 10_000_000
        reps = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 3
        _dask(n_dask, reps, LONG_GRID if "--long" in sys.argv else None)
        sys.exit(0)
    argv = [a for a in sys.argv[1:] if a not in ("--dask", "--traced")]
    rows, n = script_main(CASES, "nbtrade.sweep vs loops and vectorbt", __doc__, argv=argv, default_n=10_000_000,
                          quick_n=2_000_000)
    row = rows[0]["impls"]
    print(f"parallel efficiency (sweep_1thread / nbtrade on {os.cpu_count()} cores): "
          f"{row['sweep_1thread']['median_s'] / row['nbtrade']['median_s']:.2f}x")
    if "--traced" in sys.argv:
        impls = _setup(n)
        inputs = n_bars(n) * N_SYMBOLS * 8 / 2**20
        for name, fn in impls.items():
            print(f"peak traced memory {name}: {_peak(fn):.1f} MiB (close input {inputs:.1f} MiB)")
