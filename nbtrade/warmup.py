"""Compile numba kernels before they are needed: ``nbtrade warmup`` and the demo's cold start.

Every kernel is compiled on its first call and cached on disk (``cache=True``), so
only a process on a cold cache pays the compile. A *step* here calls the public
layer on a tiny synthetic market exactly as a real run does (same dtypes, layouts
and options), so the signatures compiled are the ones the run then loads.

Steps run in worker processes (``jobs``): numba compiles under one process-wide
lock, so threads compile one kernel at a time, while two processes compile on two
idle cores (:func:`idle_jobs`; on busy cores one background thread does as well).
The caller's process then loads each kernel from the cache in milliseconds.

>>> from nbtrade.warmup import STEPS, DEMO_STEPS
>>> set(DEMO_STEPS) <= set(STEPS)
True
"""
from __future__ import annotations

import os
import time
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Callable, Iterable, Sequence

__all__ = ["STEPS", "DEMO_STEPS", "warm", "is_cold", "idle_jobs", "Warmup"]

_SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")


def _market(n_symbols: int = 4):
    """480 hourly candles per symbol, float64 OHLCV frames on a UTC index as the demo's data, drawn with
    numpy: :func:`nbtrade.synthetic.market`'s kernels would compile again in every worker (~0.3 s
    each), and only the "control market" step needs them."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(1)
    hour = 3_600 * 10**9
    index = pd.to_datetime(1_704_067_200 * 10**9 + np.arange(480, dtype=np.int64) * hour, utc=True).rename("time")
    frames = {}
    for s in _SYMBOLS[:n_symbols]:
        close = 30_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, len(index))))
        open_ = np.concatenate([[30_000.0], close[:-1]])
        wick = 1.0 + 0.003 * rng.random((2, len(index)))
        frames[s] = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * wick[0],
                                  "low": np.minimum(open_, close) / wick[1], "close": close,
                                  "volume": rng.exponential(5.0, len(index))}, index=index)
    return frames


#: the demo's feature kinds in two halves of about equal compile time, one step each (two processes)
_FEATURES_A = ("ret", "vol", "rsi", "ema", "sma", "zscore", "atr", "stoch")


def _demo_features(first_half: bool) -> list:
    from .demo import FEATURES

    def kind(spec):
        return spec if isinstance(spec, str) else spec[0]

    return [f for f in FEATURES if (kind(f) in _FEATURES_A) == first_half]


def _features_a() -> None:
    """The demo's features: returns, volatility, moving averages, RSI, z-score, ATR, stochastic."""
    from .features import compute_features

    compute_features(_market(), _demo_features(True))


def _features_b() -> None:
    """The demo's other features (oscillators, ranges, volume ratios, correlation) and its labels."""
    from .features import compute_features
    from .pipeline import pooled_labels

    frames = _market()
    compute_features(frames, _demo_features(False))
    pooled_labels(frames, 1)


def _backtests_and_perpetuals() -> None:
    """The demo's backtests, through the demo's own calls and in its :func:`nbtrade.one_variant` block (one
    compiled variant of the bar loop for all of them, spot and perpetual): the forest's signals via
    ``research`` (with one cheap feature and a two-tree forest: the features are the other steps'), the
    indicator baselines (an EMA cross with a stop, buy-and-hold) and the perpetual run (mark candles,
    funding). The engine compiles one specialization per argument layout, read-only flags included: these
    are the demo's."""
    from sklearn.ensemble import RandomForestClassifier

    from .demo import FEES, SLIPPAGE, warm_perp
    from .demo import _baselines as demo_baselines
    from .engine.signals import one_variant
    from .monitor import Monitor
    from .pipeline import research

    frames = _market()
    with one_variant():
        run = research(frames, [("ret", 1)], horizon=1, train_window=200, test_window=100, retrain="incremental",
                       seed=0, estimator=RandomForestClassifier(n_estimators=2, max_depth=2, random_state=0),
                       fees=FEES, slippage=SLIPPAGE)
        demo_baselines(frames, run.first_oos, Monitor(enabled=False))
        warm_perp()


def _control_market() -> None:
    from .synthetic import planted_market

    planted_market(list(_SYMBOLS), "2024-01-01", "2024-01-03", "1h", seed=0, strength=0.0)


def _indicators() -> None:
    """Every public indicator and rolling statistic, on a Series and on a DataFrame (one symbol's
    1-D kernels, several symbols' column loops)."""
    import pandas as pd

    from . import indicators as ind

    frames = _market(2)
    one = frames["BTC/USDT"]
    many = {k: pd.DataFrame({s: f[k] for s, f in frames.items()}) for k in ("high", "low", "close", "volume")}
    for d in (one, many):
        h, lo, c, v = d["high"], d["low"], d["close"], d["volume"]
        for f in (ind.sma, ind.ema, ind.wma, ind.dema, ind.tema, ind.kama, ind.rsi, ind.macd, ind.bbands):
            f(c)
        for f in (ind.trange, ind.atr, ind.stoch, ind.adx):
            f(h, lo, c)
        ind.obv(c, v)
        for f in (ind.rolling_sum, ind.rolling_mean, ind.rolling_var, ind.rolling_std, ind.rolling_min,
                  ind.rolling_max, ind.rolling_zscore):
            f(c, 5)
        for f in (ind.rolling_corr, ind.rolling_beta, ind.rolling_cov, ind.rolling_vwap):
            f(c, v, 5)
        ind.ret(c, 1)
        ind.ret(c, 1, log=True)
        ind.ema_many(c, [5, 10])
        ind.sma_many(c, [5, 10])


def _engine() -> None:
    """The backtest engine's variants outside the demo's shared one (``nbtrade.one_variant``): plain runs, a
    stop, shorts with both stops, close fills, fixed sizes, a perpetual run."""
    import pandas as pd

    from .backtesting import backtest
    from .demo import warm_perp

    warm_perp()  # outside one_variant: the margin variant a user's perpetual run takes

    frames = _market(2)
    close = pd.DataFrame({s: f["close"] for s, f in frames.items()})
    up = close > close.rolling(5).mean()
    backtest(frames, up, ~up, short_entries=~up, short_exits=up, sl_stop=0.02, tp_stop=0.03, fill="close",
             fees=0.001, slippage=0.0005, size=0.4)
    backtest(frames, up, ~up, fees=0.001, size=0.5, size_type="target_percent")
    backtest(frames, up, ~up, fees=0.001, sl_stop=0.02)


def _sweep() -> None:
    """The sweep kernels (``kernels/sweep.py``): memoised SMA/EMA, the crossing pass, the metrics row."""
    from . import sweep
    from .sweep.native import ema_cross, sma_cross

    market = _market(2)
    sweep(market, sma_cross, {"fast": [3], "slow": [8, 12]}, n_jobs=1, fees=0.001)
    sweep(market, ema_cross, {"fast": [3], "slow": [8]}, n_jobs=1)


#: name -> a step compiling the kernels one part of a run uses (``nbtrade warmup`` runs them all). Steps may
#: share kernels (a shared one compiles in each process running it, harmless, only slower; cache saves are
#: serialized across the worker processes: :func:`_serialize_cache_saves`)
STEPS: dict[str, Callable[[], None]] = {
    "backtests and perpetuals": _backtests_and_perpetuals,
    "features (averages, volatility)": _features_a, "features (oscillators, correlation)": _features_b,
    "control market": _control_market, "indicators": _indicators, "engine paths": _engine, "sweep": _sweep,
}
#: what ``nbtrade demo`` calls, in the order two workers take them: one takes the backtests (one compiled
#: variant for the spot and perpetual runs: :func:`nbtrade.one_variant`), the other the two halves of the
#: features, then the first free one the control market. Measured cold, one step per fresh process
#: (``python bench/bench_compile.py --steps``, shared 2-core machine): see the README's cold-start lines
DEMO_STEPS: tuple[str, ...] = ("backtests and perpetuals", "features (averages, volatility)",
                               "features (oscillators, correlation)", "control market")

#: kernels the demo always calls: when one has no cache entry, the cache is cold
_PROBES = ("nbtrade.kernels.engine", "nbtrade.kernels.rolling", "nbtrade.kernels.moving")


def is_cold() -> bool:
    """True when the numba cache holds no entry for any kernel of the engine's or the features' files
    (a fresh machine, a new ``NUMBA_CACHE_DIR``): a warm-up is worth it. Stale entries (edited
    kernel files) count as warm: those kernels recompile where they are used."""
    import importlib

    from numba.core.registry import CPUDispatcher

    for module_name in _PROBES:
        module = importlib.import_module(module_name)
        dispatchers = [v for v in vars(module).values() if isinstance(v, CPUDispatcher) and v._cache is not None]
        if not dispatchers:
            continue
        for d in dispatchers:
            index = d._cache._cache_file._index_path  # numba's per-function index of cached signatures
            if os.path.exists(index):
                break
        else:
            return True
    return False


def idle_jobs(most: int) -> int:
    """Worker processes worth starting: up to ``most``, one per idle core (cores minus the 1-minute
    load average); 0 (one background thread in this process) when fewer than two cores are idle.

    Measured for the demo's steps on 2 busy cores (load 5): a thread 100 s, two processes 115 s
    (the same 46 s of CPU, plus each worker's imports): processes pay only when cores are free."""
    cores = os.cpu_count() or 1
    try:
        idle = cores - os.getloadavg()[0]
    except OSError:  # no load average on this platform
        idle = cores
    n = min(most, round(idle))
    return n if n >= 2 else 0


def _serialize_cache_saves() -> None:
    """Make numba's cache saves in this process take an exclusive lock (``fcntl.flock``) on a file of the
    kernel module's cache folder, so worker processes save one entry at a time.

    ``numba.core.caching.IndexDataCacheFile.save`` reads the function's index, picks the first free data
    file name, writes the data, then the index (each through a temporary file and ``os.replace``): two
    processes saving *different* signatures of one kernel within those milliseconds could leave the index
    pointing one signature at the other's data. The same signature twice is harmless (same key). No-op
    where ``fcntl`` is missing (Windows)."""
    try:
        import fcntl
    except ImportError:
        return
    from numba.core import caching

    cls = caching.IndexDataCacheFile
    if getattr(cls.save, "_nbtrade_locked", False):
        return
    save = cls.save

    def locked_save(self, key, data):
        with open(os.path.join(self._cache_path, "nbtrade-save.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return save(self, key, data)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    locked_save._nbtrade_locked = True
    cls.save = locked_save


def _run_step(name: str) -> tuple[str, float, int]:
    """Run one step (in a worker process); returns its name, CPU seconds and kernels compiled."""
    import warnings

    _serialize_cache_saves()

    from numba.core import event

    counter = _CompileCounter()
    event.register("numba:compile", counter)
    t0 = time.process_time()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            STEPS[name]()
    finally:
        event.unregister("numba:compile", counter)
    return name, time.process_time() - t0, counter.compiled


def _listener_base():
    from numba.core.event import Listener

    return Listener


class _CompileCounter(_listener_base()):
    """A numba event listener counting top-level compiles (nested ones are part of their caller)."""

    def __init__(self) -> None:
        self.depth = 0
        self.compiled = 0

    def on_start(self, ev) -> None:
        self.depth += 1

    def on_end(self, ev) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.compiled += 1


class Warmup:
    """Steps running in ``jobs`` worker processes in the background (``jobs=0``: one thread in this
    process); :meth:`wait` reports progress.

    >>> w = Warmup(["control market"], jobs=1)     # doctest: +SKIP
    >>> w.wait(lambda name, done, total, compiled: print(done, total))   # doctest: +SKIP
    """

    def __init__(self, steps: Sequence[str], jobs: int = 2) -> None:
        import multiprocessing

        unknown = [s for s in steps if s not in STEPS]
        if unknown:
            raise ValueError(f"unknown warm-up step(s) {unknown}; known: {', '.join(STEPS)}")
        self.steps = list(steps)
        self.jobs = max(0, min(jobs, len(self.steps)))
        self.started = time.perf_counter()
        if jobs <= 0:  # one background thread in this process (measured slower: see the module docstring)
            self._pool = ThreadPoolExecutor(max_workers=1)
        else:  # spawn: a forked child would inherit the caller's threads (the mock exchange, rich's refresher)
            self._pool = ProcessPoolExecutor(max_workers=max(1, min(jobs, len(self.steps))),
                                             mp_context=multiprocessing.get_context("spawn"))
        self._futures: list[Future] = [self._pool.submit(_run_step, s) for s in self.steps]
        self.compiled = 0
        self.cpu = 0.0  # CPU seconds of the steps (in worker processes, beside this one's)
        self.errors: list[str] = []

    def wait(self, on_step: Callable[[str, int, int, int], None] | None = None) -> float:
        """Block until every step ran; ``on_step(name, done, total, compiled)`` after each.
        Returns the seconds since the warm-up started. A failed step is ignored (its kernels then
        compile on first use), so a warm-up never breaks a run."""
        from concurrent.futures import as_completed

        done = 0
        for fut in as_completed(self._futures):
            done += 1
            try:
                name, cpu, compiled = fut.result()
            except Exception as exc:
                name, cpu, compiled = f"failed: {type(exc).__name__}: {exc}", 0.0, 0
                self.errors.append(name)
            self.compiled += compiled
            self.cpu += cpu
            if on_step is not None:
                on_step(name, done, len(self._futures), self.compiled)
        self._pool.shutdown()
        return time.perf_counter() - self.started


def warm(steps: Iterable[str] | None = None, jobs: int | None = None,
         on_step: Callable[[str, int, int, int], None] | None = None) -> tuple[float, int]:
    """Compile and cache the kernels of ``steps`` (default: all). Returns (seconds, kernels compiled)."""
    steps = list(STEPS if steps is None else steps)
    jobs = idle_jobs(len(steps)) if jobs is None else jobs
    w = Warmup(steps, jobs=jobs)
    seconds = w.wait(on_step)
    return seconds, w.compiled
