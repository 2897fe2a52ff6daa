"""Run a parameter sweep: chunks of combinations on local threads or Dask workers, one metrics row each.

Each combination calls the signal function, runs the engine (:func:`_evaluate`, the
one place that calls it) and reduces the run to a row of metrics in a compiled kernel
(``kernels/sweep.py``); the run's records and equity are dropped at once. Chunks of
combinations are the unit of work: a thread (or a Dask task) runs one chunk with its
own indicator memo (:mod:`nbtrade.sweep.memo`), so peak memory is the inputs plus,
per worker thread, one chunk's indicators and one run's arrays.

Parallelism: the engine and metrics kernels release the GIL (``nogil``), numpy's
comparisons too; Python threads therefore run combinations side by side. The first
combination runs alone first (it compiles or loads the kernels: ``timings["warmup_s"]``).
"""
from __future__ import annotations

import math
import os
import time
import uuid
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from .grid import check_names, grid
from .memo import MAX_BYTES, chunk_memo, release

#: Contiguous blocks of bars kept per combination for the PBO (CSCV) statistic.
N_BLOCKS = 16
#: With ``n_jobs=-1``, combinations of fewer bar-steps (bars x symbols) run on one thread: measured on
#: 2 shared cores (medians), 100k bar-steps per combination ran 0.8x as fast on two threads as on one
#: (the Python between kernels holds the GIL), 1M bar-steps 1.59x.
THREADS_MIN_STEPS = 500_000
#: Labels of ``Result.stats()`` that are times, not numbers (cannot be maximised).
TIME_LABELS = ("Start", "End", "Duration", "Max. Drawdown Duration", "Avg. Drawdown Duration",
               "Max. Trade Duration", "Avg. Trade Duration")


@dataclass
class Spec:
    """What a chunk needs besides the market and the combinations (picklable for Dask)."""

    options: dict
    extra: Any  # None, a stats label computed in Python, or a callable(Result) -> float
    init_cash: float
    bpy: float
    years: float
    n_cols: int
    n_blocks: int = N_BLOCKS
    token: str | None = None  # the sweep's shared indicator memo in each process
    fast: bool = True  # use the validated-once engine call when the options allow
    memo_bytes: int = MAX_BYTES  # indicator memo budget per process


@dataclass
class ChunkOut:
    start: int
    rows: np.ndarray      # (k, len(METRICS))
    moments: np.ndarray   # (k, 4)
    blocks: np.ndarray    # (k, n_blocks, 3)
    extra: np.ndarray     # (k,) the Python-side objective (NaN when none)
    errors: list          # [(combination number, message)]
    seconds: float


def _evaluate(market: Any, options: Mapping[str, Any], signals: Mapping[str, Any]) -> Any:
    """Run the engine on one combination's signals: the only call into the engine's front ends here.

    ``market`` is a prepared :class:`~nbtrade.Market`; ``options`` the backtest options
    (fees, sizing...); ``signals`` ``entries``/``exits`` (and short ones) for
    :func:`nbtrade.backtest`, or ``weights`` for :func:`nbtrade.backtest_weights`. Returns a
    :class:`~nbtrade.Result` (its frames are built lazily and never touched here)."""
    from ..backtesting import backtest, backtest_weights

    if "weights" in signals:
        return backtest_weights(market, signals["weights"], **options)
    return backtest(market, **signals, **options)


def _is_result(x: Any) -> bool:
    from ..result import Result

    return isinstance(x, Result)


def run_combo(market: Any, fn: Callable, options: Mapping[str, Any], p: Mapping[str, Any]) -> Any:
    """One combination's Result: ``fn`` returns signals (run here) or, for the class API, a Result."""
    got = fn(market, **p)
    return got if _is_result(got) else _evaluate(market, options, as_signals(got))


def as_signals(out: Any) -> dict[str, Any]:
    """A signal function's output -> ``{"entries": ..., "exits": ..., ...}`` (a tuple of 2 or 4, or a
    dict of them), or ``{"weights": ...}`` (target weights: a DataFrame or array, or that dict)."""
    keys = ("entries", "exits", "short_entries", "short_exits")
    if isinstance(out, Mapping):
        if set(out) == {"weights"}:
            return dict(out)
        bad = [k for k in out if k not in keys]
        if bad:
            raise ValueError(f"signals_fn returned a dict with unknown key {bad[0]!r}; keys are {', '.join(keys)} "
                             "(or weights alone)")
        return dict(out)
    if isinstance(out, tuple) and len(out) in (2, 4):
        return dict(zip(keys, out))
    if hasattr(out, "shape") and not isinstance(out, tuple):  # target weights, bars x symbols
        return {"weights": out}
    raise TypeError("signals_fn must return (entries, exits), (entries, exits, short_entries, short_exits), "
                    f"target weights (bars x symbols) or a dict of them, got {type(out).__name__}")


def _empty(k: int, spec: Spec) -> ChunkOut:
    from ..kernels.sweep import METRICS

    return ChunkOut(0, np.full((k, len(METRICS)), np.nan), np.full((k, 4), np.nan),
                    np.full((k, spec.n_blocks, 3), np.nan), np.full(k, np.nan), [], 0.0)


def _reduce(res: Any, spec: Spec, out: ChunkOut, j: int) -> None:
    """Row ``j`` of ``out`` from one run (the compiled reduction, plus the Python-side objective)."""
    from ..kernels.sweep import sweep_metrics_nb

    sweep_metrics_nb(res.equity.to_numpy(), spec.init_cash, spec.bpy, spec.years, res.order_records,
                     res.trade_records, spec.n_cols, out.rows[j], out.moments[j], out.blocks[j])
    if spec.extra is not None:
        out.extra[j] = objective(res, spec.extra)


def run_chunk(market: Any, fn: Callable, combos: Sequence[dict], start: int, spec: Spec,
              quiet: bool = False) -> ChunkOut:
    """Evaluate ``combos`` (numbered from ``start``) on this thread; a combination that raises is
    recorded with its message and leaves NaN in its row. ``quiet``: silence rejected-order warnings
    here (a Dask task; local threads are silenced once by the caller: ``catch_warnings`` is
    process-wide, not thread-safe)."""
    from ..backtesting import RejectedOrdersWarning

    t0 = time.perf_counter()
    out = _empty(len(combos), spec)
    out.start = start
    with chunk_memo(spec.token, spec.memo_bytes), (warnings.catch_warnings() if quiet else _nothing()):
        if quiet:
            warnings.simplefilter("ignore", RejectedOrdersWarning)  # counted in "# Rejected Orders"
        engine = _fast_engine(market, spec)
        bufs = _signal_buffers(market, fn, engine)
        for j, p in enumerate(combos):
            try:
                _run_one(market, fn, p, engine, spec, out, j, bufs)
                _trim()
            except Exception as e:  # noqa: BLE001 - reported with the combination's parameters
                out.rows[j] = np.nan
                out.errors.append((start + j, f"{type(e).__name__}: {e}"))
    out.seconds = time.perf_counter() - t0
    return out


def _trim() -> None:
    """Return the freed heap of the last combination to the system (glibc ``malloc_trim``): per-thread
    malloc arenas otherwise keep a run's freed arrays resident, one run's worth per thread."""
    f = _TRIM[0]
    if f is None:
        try:
            import ctypes

            f = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            f = False
        _TRIM[0] = f
    if f:
        f(0)


_TRIM: list = [None]


def _signal_buffers(market: Any, fn: Callable, engine: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """One chunk's ``(entries, exits)`` arrays for the built-in ``sma_cross`` (written in place per
    combination, read by the engine, dropped with the run), or None for any other signal function (its
    arrays may be kept by the user's code: each combination allocates its own)."""
    from .native import sma_cross

    if engine is None or fn is not sma_cross:
        return None
    shape = market.shape
    return np.empty(shape, dtype=np.bool_), np.empty(shape, dtype=np.bool_)


def _run_one(market: Any, fn: Callable, p: Mapping[str, Any], engine: Any, spec: Spec, out: ChunkOut,
             j: int, bufs: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Row ``j`` of ``out`` from combination ``p``. A function of its own so that the combination's
    signals, equity and record buffers are freed when it returns, before the next combination
    allocates its own (in the loop's scope they lived on until reassigned: two combinations' arrays
    per thread at the peak)."""
    from ..kernels.sweep import sweep_metrics_nb

    if bufs is not None:  # the built-in sma_cross, into this chunk's arrays
        from .native import sma_cross_into

        got = sma_cross_into(market, **p, out=bufs)
    else:
        got = fn(market, **p)
    if _is_result(got):  # the class API: the Backtest ran the combination
        _reduce(got, spec, out, j)
        return
    signals = as_signals(got)
    del got
    if engine is not None and "weights" not in signals:  # validated once: signals and kernels only
        equity, orders, trades = engine.run(signals)
        del signals
        sweep_metrics_nb(equity, spec.init_cash, spec.bpy, spec.years, orders, trades, spec.n_cols,
                         out.rows[j], out.moments[j], out.blocks[j])
    else:
        _reduce(_evaluate(market, spec.options, signals), spec, out, j)


def _fast_engine(market: Any, spec: Spec) -> Any:
    """The validated-once engine call (:class:`nbtrade.sweep.engine.ConfigEngine`), or None: the
    options are refused (``nbtrade.backtest`` reports it per combination), or a Python-side
    objective needs each Result."""
    from .engine import ConfigEngine

    if spec.extra is not None or not spec.fast:
        return None
    from .memo import shared

    holder = shared(spec.token, spec.memo_bytes) if spec.token is not None else None
    key = ("engine", id(market))
    if holder is not None and key in holder.extras and holder.extras[key][0] is market:
        return holder.extras[key][1]  # built once per sweep and process, shared by its chunks
    try:
        engine = ConfigEngine(market, spec.options)
    except Exception:  # noqa: BLE001 - backtest() itself reports the problem per combination
        engine = None
    if holder is not None:
        holder.extras[key] = (market, engine)
    return engine


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def objective(res: Any, extra: Any) -> float:
    """A stats label's value (``Result.stats()``) or ``extra(res)`` as a float."""
    if callable(extra):
        return float(extra(res))
    return float(res.stats()[extra])


def _annualisation(res: Any) -> tuple[float, float]:
    """``(bars per 365-day year, elapsed years)`` as ``compute_stats`` reckons them."""
    from ..metrics import YEAR_MS

    freq_ms, index, n = res.freq_ms, res.index, len(res.index)
    bpy = YEAR_MS / freq_ms if freq_ms else np.nan
    if isinstance(index, pd.DatetimeIndex) and n and freq_ms:
        years = (index[-1] - index[0] + pd.Timedelta(milliseconds=freq_ms)) / pd.Timedelta(milliseconds=YEAR_MS)
    else:
        years = n / bpy if freq_ms else np.nan
    return float(bpy), float(years)


def _check_maximize(maximize: Any) -> tuple[str, Any]:
    """``(column name, what to compute in Python or None)`` for a label or callable."""
    from ..kernels.sweep import METRICS
    from ..metrics import ORDER

    if callable(maximize):
        return getattr(maximize, "__name__", "objective").replace("<lambda>", "objective"), maximize
    if not isinstance(maximize, str):
        raise TypeError(f"maximize must be a stats label or a callable(Result) -> float, got {maximize!r}")
    if maximize in METRICS:
        return maximize, None
    labels = [k for k in ORDER if k not in TIME_LABELS]
    if maximize not in labels:
        raise ValueError(f"maximize={maximize!r} is not a statistic; one of: {', '.join(labels)}")
    return maximize, maximize


def _n_jobs(n_jobs: Any) -> int:
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1:
        raise ValueError(f"n_jobs must be -1 (every core) or an integer >= 1, got {n_jobs!r}")
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def sweep(market: Any, signals_fn: Callable, params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None, *,
          constraint: Callable[[Any], bool] | None = None, max_tries: int | None = None, seed: int | None = 0,
          maximize: str | Callable[[Any], float] = "Sharpe Ratio", top: int = 10, n_jobs: int = -1,
          client: Any = None, chunk_size: int | None = None, progress: Callable | None = None,
          memo_bytes: int | None = None, sampler: str = "grid", n_trials: int | None = None,
          **backtest_options: Any) -> "SweepResult":
    """Backtest every combination of a parameter grid; one row of metrics per combination.

    Parameters
    ----------
    market : Market or anything :func:`nbtrade.prepare` takes
        Prepared once (converted and checked) and shared by every combination.
    signals_fn : callable
        ``signals_fn(market, **params) -> (entries, exits)`` or ``(entries, exits,
        short_entries, short_exits)`` (or a dict of them); bars x symbols bool arrays
        or DataFrames, as :func:`nbtrade.backtest` takes. Or target weights (bars x
        symbols, a DataFrame or array), run by :func:`nbtrade.backtest_weights`. Use ``nbtrade.sweep.sma`` /
        ``ema`` inside for indicators computed once per distinct value in a chunk.
        Must be picklable (cloudpickle) with ``client``.
        The class API: ``sweep(bt, params)`` with a :class:`nbtrade.Backtest` (its engine settings),
        or ``sweep(data, StrategyClass, params, **backtest_options)``; each combination is
        ``bt.run(**combination)`` reduced to the metrics row (a compiled ``next`` runs in the
        ``nogil`` kernel: threads run side by side). See also
        :func:`nbtrade.sweep.optimize_class` (``Backtest.optimize``'s full-statistics table).
    params : dict of value lists, or list of dicts
        The grid (:func:`nbtrade.sweep.grid`): ``{"fast": range(5, 55, 5), "slow": [60, 120]}``.
    constraint, max_tries, seed
        Filter and random sampling of the grid (see :func:`grid`). Over a million
        combinations without ``max_tries`` is refused.
    maximize : str or callable
        The ranking column, highest first: a ``Result.stats()`` label, or
        ``maximize(result) -> float``. Labels the kernel computes (``METRICS``) cost
        nothing extra; any other label or a callable is computed in Python from each
        combination's Result, at its cost (listed in ``SweepResult.python_columns``).
    top : int
        Rows shown first and Results rebuilt on demand (``SweepResult.results``).
    n_jobs : int
        Threads (-1: every core, or one when a combination is under ``THREADS_MIN_STEPS``
        bar-steps, where the per-combination Python work between kernels outweighs a second
        core; 1: this thread only).
    client : dask.distributed.Client or str, optional
        Run the chunks on a Dask cluster (a Client, or a scheduler address
        ``"tcp://host:8786"``; the ``NBTRADE_SCHEDULER`` environment variable when
        None). The market is scattered once to every worker. Results are identical to
        a local run.
    chunk_size : int, optional
        Combinations per task (default: the grid split in about 4 tasks per worker).
    sampler : "grid" or "optuna"
        ``"grid"``: every combination (or ``max_tries`` drawn at random). ``"optuna"``: Bayesian
        search (optuna's TPE sampler, seeded by ``seed``; the ``[optuna]`` extra) of ``n_trials``
        distinct combinations of the grid, asked in batches of ``chunk_size`` (default
        :data:`nbtrade.sweep.bayes.BATCH`) and run on the threads or workers: reproducible, the same
        on any number of them (:mod:`nbtrade.sweep.bayes`). The table lists the combinations tried.
    n_trials : int
        Combinations tried with ``sampler="optuna"``.
    progress : callable, optional
        ``progress(done, total, best_so_far)`` after each chunk.
    memo_bytes : int, optional
        Budget of the indicator memo per process (bytes; once full, further indicators are
        computed on demand). Default: the size of one float64 price panel (``n_bars x n_symbols x
        8``, the close), so peak memory is about the inputs, plus this, plus per thread one run's
        arrays. A larger budget trades memory for fewer recomputed indicators. (The built-in
        ``sma_cross`` stores no indicator: ``nbtrade.sweep.native``.)
    **backtest_options
        Passed to :func:`nbtrade.backtest` (``fees=0.001``, ``init_cash``, ``size``...), or to
        :func:`nbtrade.backtest_weights` (``rebalance_every``...) for target weights.

    Returns
    -------
    SweepResult
        ``.table``: one row per combination (parameters, then metrics), sorted by
        ``maximize``; ``.best_params``; ``.best`` (a full Result); ``.heatmap()``;
        ``.deflated_sharpe()``, ``.pbo()``; ``.errors``.

    Examples
    --------
    >>> import nbtrade
    >>> m = nbtrade.prepare(nbtrade.market(["BTC", "ETH"], "2024-01-01", "2024-01-05", "15m", seed=2))
    >>> def cross(market, fast, slow):
    ...     f, s = nbtrade.sweep.sma(market, fast), nbtrade.sweep.sma(market, slow)
    ...     return f > s, f < s
    >>> res = nbtrade.sweep(m, cross, {"fast": [5, 10], "slow": [20, 40]}, fees=0.001, n_jobs=1)
    >>> res.table.shape
    (4, 15)
    """
    from ..backtesting import RejectedOrdersWarning, prepare
    from ..kernels.sweep import METRICS
    from .distributed import resolve_client
    from .result import SweepResult

    from .classopt import ClassRunner, is_backtest, is_strategy_class

    classapi = False
    if is_backtest(market) or is_strategy_class(signals_fn):
        # the class API: nbtrade.sweep(bt, params) or nbtrade.sweep(data, StrategyClass, params, **options)
        if is_backtest(market):
            if params is not None:
                raise TypeError("nbtrade.sweep(bt, params): a Backtest takes the grid second (its engine settings "
                                "are the Backtest's)")
            bt, params = market, signals_fn
            if backtest_options:
                raise TypeError(f"nbtrade.sweep(bt, ...) takes no engine settings ({', '.join(backtest_options)}): "
                                "give them to Backtest(data, strategy, ...)")
        else:
            from ..engine.classapi import Backtest

            bt = Backtest(market, signals_fn, **backtest_options)
            backtest_options = {}
        market, signals_fn, classapi = bt, ClassRunner(), True
    if params is None:
        raise TypeError("sweep() missing the parameter grid: sweep(market, signals_fn, params)")
    if not callable(signals_fn):
        raise TypeError(f"signals_fn must be a callable signals_fn(market, **params), got {signals_fn!r}")
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise ValueError(f"top must be an integer >= 1, got {top!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    jobs = _n_jobs(n_jobs)
    if memo_bytes is not None and (isinstance(memo_bytes, bool) or not isinstance(memo_bytes, (int, np.integer))
                                   or memo_bytes < 0):
        raise ValueError(f"memo_bytes must be an integer >= 0 (bytes) or None, got {memo_bytes!r}")
    col, extra = _check_maximize(maximize)
    if classapi:
        n_bars, n_cols = market._market.shape
    else:
        market = prepare(market)
        n_bars, n_cols = market.shape
    if memo_bytes is None:  # one float64 panel: the memo holds about as much as the close prices
        memo_bytes = int(n_bars) * int(n_cols) * 8
    if n_jobs == -1 and n_bars * n_cols < THREADS_MIN_STEPS:
        jobs = 1

    def estimate(count: int) -> str:
        secs = count * n_bars * n_cols / 3e8 / max(jobs, 1)
        return (f"about {secs / 3600:,.1f} h of engine time at 300 M bar-steps/s on {jobs} core(s), "
                f"{count * (len(METRICS) + 4 + 3 * N_BLOCKS) * 8 / 2**30:,.1f} GiB of result rows")

    search = None
    if sampler == "optuna":
        from .bayes import BATCH, OptunaSearch

        if isinstance(n_trials, bool) or not isinstance(n_trials, (int, np.integer)) or n_trials < 1:
            raise ValueError(f"sampler='optuna' needs n_trials, an integer >= 1, got {n_trials!r}")
        if max_tries is not None:
            raise ValueError("max_tries is for sampler='grid'; with sampler='optuna' give n_trials")
        search = OptunaSearch(params, constraint, seed, int(n_trials), chunk_size or BATCH)
        combos = search.next_batch()
        if not combos:
            raise ValueError("constraint rejects every combination optuna drew from the grid")
    elif sampler != "grid":
        raise ValueError(f"sampler must be 'grid' or 'optuna', got {sampler!r}")
    else:
        if n_trials is not None:
            raise ValueError("n_trials is for sampler='optuna' (with sampler='grid' use max_tries)")
        combos = grid(params, constraint=constraint, max_tries=max_tries, seed=seed, estimate=estimate)
    names = list(dict.fromkeys(k for p in combos for k in p))
    if classapi:
        market._check_params(dict.fromkeys(names))
    else:
        check_names(signals_fn, names)
        market.validate()  # convert and check once, before threads or workers share it

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # warm-up: the first combinations run alone until one succeeds (compiles or loads the kernels)
    errors: list = []
    probe = None
    client_obj, owned = resolve_client(client)  # first: an unreachable scheduler fails before any work
    token = uuid.uuid4().hex
    try:  # the sweep's indicator memo is released (and a client we opened closed) however it ends
        with chunk_memo(token, memo_bytes), warnings.catch_warnings():
            warnings.simplefilter("ignore", RejectedOrdersWarning)
            for i, p in enumerate(combos):
                try:
                    probe = (i, run_combo(market, signals_fn, backtest_options, p))
                    break
                except Exception as e:  # noqa: BLE001
                    errors.append((i, f"{type(e).__name__}: {e}"))
                    if i >= 9 and len(errors) == i + 1:
                        break
            if probe is None:
                raise RuntimeError(f"the first {len(errors)} combinations all failed (the sweep stops there); first: "
                                   f"{combos[errors[0][0]]} -> {errors[0][1]}")
            first, res0 = probe
            bpy, years = _annualisation(res0)
            spec = Spec(dict(backtest_options), extra, float(res0.init_cash), bpy, years, n_cols, token=token,
                        memo_bytes=memo_bytes, fast=not classapi)
            head = _empty(1, spec)
            head.start = first
            try:
                _reduce(res0, spec, head, 0)
            except Exception as e:  # noqa: BLE001 - the Python-side objective failed
                head.rows[0] = np.nan
                head.errors.append((first, f"{type(e).__name__}: {e}"))
            del res0, probe
        timings["warmup_s"] = time.perf_counter() - t0

        total = len(combos) if search is None else search.n_trials
        outs = [head]
        rest = list(range(first + 1, len(combos)))
        workers = jobs if client_obj is None else max(1, sum(client_obj.nthreads().values()))
        size = chunk_size or max(1, math.ceil(len(rest) / (4 * workers)))
        if search is not None:  # a batch of trials split over the workers
            size = max(1, math.ceil(len(rest) / workers))
        chunks = [(rest[a], combos[rest[a]:rest[a] + size]) for a in range(0, len(rest), size)]
        best = [np.nan]
        done = [1 + first]

        def collect(out: ChunkOut) -> None:
            outs.append(out)
            if search is not None:
                vals = out.extra if extra is not None else out.rows[:, METRICS.index(col)]
                values.update({out.start + j: float(v) for j, v in enumerate(vals)})
            done[0] += len(out.rows)
            if progress is not None:
                vals = out.extra if extra is not None else out.rows[:, METRICS.index(col)]
                if np.isfinite(vals).any():
                    best[0] = np.nanmax(np.r_[best[0], vals]) if np.isfinite(best[0]) else np.nanmax(vals)
                progress(done[0], total, best[0])

        t1 = time.perf_counter()
        # rejected orders are counted in the table: silenced here, for the worker threads too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RejectedOrdersWarning)
            def execute(chunks: list) -> None:
                if client_obj is not None:
                    from .distributed import run_on_dask

                    run_on_dask(client_obj, market, signals_fn, chunks, spec, collect)
                elif jobs == 1 or len(chunks) <= 1:
                    for start, chunk in chunks:
                        collect(run_chunk(market, signals_fn, chunk, start, spec))
                else:
                    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nbtrade-sweep") as pool:
                        futs = [pool.submit(run_chunk, market, signals_fn, chunk, start, spec)
                                for start, chunk in chunks]
                        for f in futs:
                            collect(f.result())

            values: dict[int, float] = {}
            if search is None:
                execute(chunks)
            else:  # ask a batch, run it, tell its values; until n_trials combinations ran
                values.update({first: float(head.extra[0] if extra is not None else head.rows[0, METRICS.index(col)])})
                while True:
                    execute(chunks)
                    search.tell(values)
                    new = search.next_batch()
                    if not new:
                        break
                    a = len(combos)
                    combos.extend(new)
                    size = max(1, math.ceil(len(new) / workers))
                    chunks = [(a + k, combos[a + k:a + k + size]) for k in range(0, len(new), size)]
                total = len(combos)
    finally:
        release(token)
        if owned:
            client_obj.close()
    timings["run_s"] = time.perf_counter() - t1
    timings["combinations_per_s"] = (total - first - 1) / timings["run_s"] if timings["run_s"] > 0 else np.nan
    return SweepResult.assemble(market, signals_fn, combos, outs, errors, spec, col, maximize, top, timings,
                                n_workers=workers, on_dask=client_obj is not None)
