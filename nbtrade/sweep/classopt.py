"""The class API (``Backtest`` / ``Strategy``) in a sweep: threads over the compiled engine, or Dask.

Two entry points:

* ``nbtrade.sweep(bt, {"fast": [...], "slow": [...]})`` (or ``nbtrade.sweep(data, StrategyClass,
  params, **backtest_options)``): the sweep machinery (chunks on threads or Dask workers, one row of
  kernel metrics per combination, heat map, DSR/PBO), each combination run by the Backtest.
* :func:`optimize_class` ``(bt, maximize=, constraint=, max_tries=, random_state=, n_jobs=, client=,
  **grid)``: ``Backtest.optimize``'s contract (``(best Result, table of every statistic)``, equal to the
  serial optimize) with the combinations on threads or a Dask cluster.

A compiled ``next`` runs inside the engine kernel, which releases the GIL (``nogil``): threads run
combinations side by side. A Python ``next`` holds the GIL: threads do not speed it up (Dask worker
processes do). On Dask the Backtest (its panel and validated configuration) is scattered once to each
worker; each worker process compiles the engine around ``next`` on its first task (numba cannot cache
a kernel taking a function argument across processes).
"""
from __future__ import annotations

import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd


def is_backtest(x: Any) -> bool:
    from ..engine.classapi import Backtest

    return isinstance(x, Backtest)


def is_strategy_class(x: Any) -> bool:
    from ..engine.classapi import Strategy

    return isinstance(x, type) and issubclass(x, Strategy)


def run_params(bt: Any, params: Mapping[str, Any]) -> Any:
    """``bt.run(**params)`` without its ``warnings.catch_warnings`` (process-wide, not thread-safe: the
    caller silences rejected-order warnings once). Uses ``Backtest._run_core`` when the class API has it."""
    core = getattr(bt, "_run_core", None)
    if core is not None:
        return core(dict(params))
    from ..engine.callback import run_callback
    from ..engine.classapi import _Cursor, _Data, _user_tuple

    bt._check_params(params)
    inp = bt._inputs
    cur = _Cursor()
    arrays = {"open": inp.open, "high": inp.high, "low": inp.low, "close": inp.close, "volume": bt._volume}
    data = _Data(arrays, inp.index, list(inp.symbols), cur, bt._market, bt._frames)
    used = {**bt._defaults, **params}
    strat = bt.strategy(data, cur, used)
    strat.init()
    if bt.mode == "compiled":
        res = run_callback(bt._market, bt.config, bt._next, _user_tuple(strat), per_order=bool(bt._per_order))
        note = "compiled next (numba, engine speed)"
    else:
        res = bt._run_python(strat, inp)
        note = "Python next (bar by bar, Python speed)"
    cur.i = None
    res.strategy = strat
    res.params = used
    res.assumptions["strategy"] = f"{strat!r}: {note}"
    return res


class ClassRunner:
    """A sweep's "signal function" for the class API: ``runner(bt, **params) -> Result`` (the sweep hands
    it the Backtest as its market: on Dask that is what is scattered once per worker)."""

    __name__ = "Backtest.run"

    def __call__(self, bt: Any, **params: Any) -> Any:
        return run_params(bt, params)


def _combos(bt: Any, grid: Mapping[str, Any], constraint: Any, max_tries: Any, random_state: Any) -> list[dict]:
    """The combinations exactly as ``Backtest.optimize`` lists them (its own method)."""
    if not grid:
        raise ValueError("optimize needs a parameter grid, e.g. optimize(fast=[5, 10], slow=[20, 50])")
    bt._check_params(grid)
    return bt._combinations(grid, constraint, max_tries, random_state)


def _score(res: Any, stats: pd.Series, maximize: Any) -> float:
    if isinstance(maximize, str):
        if maximize not in stats.index:
            raise ValueError(f"maximize={maximize!r} is not a statistic; one of: {', '.join(stats.index)}")
        return float(stats[maximize])
    return float(maximize(res))


def optimize_chunk(bt: Any, combos: list[dict], start: int, maximize: Any,
                   keep_best: bool = False) -> tuple[int, list[dict], int | None, Any]:
    """Run ``combos`` (numbered from ``start``): ``(start, rows, index of the chunk's best or None, its
    Result when keep_best)``; a row is ``{**params, **stats, "_score": score}`` as in ``optimize``."""
    from ..backtesting import RejectedOrdersWarning

    rows, best, best_res, best_score = [], None, None, -np.inf
    with warnings.catch_warnings() if not keep_best else _nothing():
        if not keep_best:  # a Dask task (its own process); local threads are silenced by the caller
            warnings.simplefilter("ignore", RejectedOrdersWarning)
        for j, p in enumerate(combos):
            res = run_params(bt, p)
            stats = res.stats()
            score = _score(res, stats, maximize)
            rows.append({**p, **stats.to_dict(), "_score": score})
            if best is None or (score == score and score > best_score):
                best, best_score = j, (score if score == score else -np.inf)
                best_res = res if keep_best else None
    return start, rows, best, best_res


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None


def optimize_class(bt: Any, *, maximize: str | Callable[[Any], float] = "Sharpe Ratio",
                   constraint: Callable[[Any], bool] | None = None, max_tries: int | None = None,
                   random_state: int | None = None, n_jobs: int = -1, client: Any = None,
                   chunk_size: int | None = None, **grid: Any) -> tuple[Any, pd.DataFrame]:
    """``Backtest.optimize`` on threads or a Dask cluster: the same ``(best Result, table)`` as the serial one.

    Parameters
    ----------
    bt : nbtrade.Backtest
    maximize, constraint, max_tries, random_state, **grid
        As ``Backtest.optimize`` (a stats label or ``callable(Result) -> float``; NaN ranks last).
    n_jobs : int
        Threads (-1: every core; 1: this thread). A compiled ``next`` runs in the ``nogil`` engine
        kernel, so threads run side by side; ``Result.stats()`` of each run is Python (holds the GIL).
    client : dask.distributed.Client or str, optional
        Run chunks of combinations on a Dask cluster (a Client, or a scheduler address; the
        ``NBTRADE_SCHEDULER`` environment variable when None). The Backtest is scattered once to each
        worker; the best Result is rebuilt here (one more run).
    chunk_size : int, optional
        Combinations per task (default: about 4 tasks per worker).

    Returns
    -------
    (Result, DataFrame)
        The best run and one row per combination (parameters, then every statistic), best first:
        equal to ``bt.optimize(...)`` with the same arguments. For grids too large for a full
        ``stats()`` per combination use ``nbtrade.sweep(bt, params)`` (kernel metrics, bounded memory).
    """
    from ..backtesting import RejectedOrdersWarning
    from .distributed import map_on_dask, resolve_client
    from .run import _n_jobs

    if not is_backtest(bt):
        raise TypeError(f"bt must be an nbtrade.Backtest, got {type(bt).__name__}")
    if not (isinstance(maximize, str) or callable(maximize)):
        raise TypeError(f"maximize must be a stats label or a callable, got {maximize!r}")
    if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer))
                                   or chunk_size < 1):
        raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
    jobs = _n_jobs(n_jobs)
    combos = _combos(bt, grid, constraint, max_tries, random_state)
    client_obj, owned = resolve_client(client)
    try:
        workers = jobs if client_obj is None else max(1, sum(client_obj.nthreads().values()))
        size = chunk_size or max(1, math.ceil(len(combos) / (4 * workers)))
        chunks = [(a, combos[a:a + size]) for a in range(0, len(combos), size)]
        outs: list = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RejectedOrdersWarning)
            if client_obj is not None:
                map_on_dask(client_obj, bt, optimize_chunk, [(c, s, maximize) for s, c in chunks], outs.append)
            elif jobs == 1 or len(chunks) <= 1:
                outs = [optimize_chunk(bt, c, s, maximize, True) for s, c in chunks]
            else:
                with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nbtrade-optimize") as pool:
                    outs = list(pool.map(lambda sc: optimize_chunk(bt, sc[1], sc[0], maximize, True), chunks))
    finally:
        if owned:
            client_obj.close()
    outs.sort(key=lambda o: o[0])
    rows = [r for o in outs for r in o[1]]
    # the first best in grid order, as the serial loop keeps it
    best_i, best_score, best_res = None, -np.inf, None
    for start, chunk_rows, b, res in outs:
        if b is None:
            continue
        s = chunk_rows[b]["_score"]
        s = s if s == s else -np.inf
        if best_i is None or s > best_score:
            best_i, best_score, best_res = start + b, s, res
    if best_res is None:
        best_res = bt.run(**combos[best_i])
    table = pd.DataFrame(rows)
    table = table.sort_values("_score", ascending=False, na_position="last", kind="stable")
    table = table.drop(columns="_score").reset_index(drop=True)
    return best_res, table
