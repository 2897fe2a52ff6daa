"""``nbtrade sweep STRATEGY --param fast=5:50:5 --param slow=60:240:20``: what the command does
(its arguments are parsed in ``nbtrade.cli``).

Built-in ``sma_cross`` and ``ema_cross`` run as sweep-native signal functions (indicators
memoised per chunk, arrays in); a strategy file's ``strategy(data, **params)`` runs as it is
(its parameters are keyword arguments). A live line shows combinations done, rate, ETA and
the best value so far (``--sampler optuna --trials N``: a Bayesian search of N combinations of
the grid instead of all of them); then the top combinations, the heat map of the first two
parameters, the deflated Sharpe ratio and PBO; ``--csv`` writes the whole table.
"""
from __future__ import annotations

import argparse
import os
from typing import Any, Callable

from .native import NATIVE


class FileStrategy:
    """A strategy file's ``strategy(data, **params)`` as a signal function (``data`` the frames)."""

    def __init__(self, fn: Callable, frames: dict):
        self.fn, self.frames = fn, frames
        self.__name__ = getattr(fn, "__name__", "strategy")
        import inspect

        try:
            self.__signature__ = inspect.signature(fn)
        except (TypeError, ValueError):
            pass

    def __call__(self, market: Any, **params: Any) -> dict:
        return self.fn(self.frames, **params)


def _sampler_kwargs(args: argparse.Namespace) -> dict:
    """``--sampler``/``--trials`` as :func:`nbtrade.sweep` arguments (checked before any data is loaded)."""
    sampler, trials = getattr(args, "sampler", "grid"), getattr(args, "trials", None)
    if sampler == "optuna":
        if trials is None or trials < 1:
            raise ValueError(f"--sampler optuna needs --trials N (N >= 1), got {trials!r}")
        if args.max_tries is not None:
            raise ValueError("--max-tries is for --sampler grid; with --sampler optuna give --trials")
        return {"sampler": "optuna", "n_trials": trials}
    if trials is not None:
        raise ValueError("--trials is for --sampler optuna (with the grid sampler use --max-tries)")
    return {}


def run_sweep_command(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ..commands import _strategy, backtest_params, load_data, user_code
    from ..panel import Market
    from ..report.dashboard import make_console
    from .grid import parse_param
    from .run import sweep

    params = dict(parse_param(p) for p in args.param)
    sampler = _sampler_kwargs(args)
    data = load_data(args)
    if args.strategy in NATIVE:
        fn, file_kwargs, path = NATIVE[args.strategy], {}, None
    else:
        strategy, file_kwargs, path = _strategy(args)
        if not callable(strategy) or hasattr(strategy, "backtest"):
            raise ValueError("nbtrade sweep runs signal strategies (strategy(data, **params)); for a class-API "
                             "strategy use Backtest.optimize")
        fn = FileStrategy(strategy, data)
    opts = backtest_params(args, file_kwargs, len(data))
    market = Market(data)
    console = make_console()
    with Progress(TextColumn("sweep {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.percentage:>3.0f}%"),
                  TimeRemainingColumn(), TextColumn("best {task.fields[best]}"), console=console,
                  transient=True) as bar:
        task = bar.add_task(args.strategy, total=None, best="-")

        def progress(done: int, total: int, best: float) -> None:
            bar.update(task, completed=done, total=total, best=f"{best:.4g}")

        with user_code(path):
            res = sweep(market, fn, params, maximize=args.maximize, top=args.top, max_tries=args.max_tries,
                        n_jobs=args.jobs, client=args.scheduler, chunk_size=args.chunk_size, progress=progress,
                        **sampler, **opts)
    head = res.head(args.top)
    cols = [*res.params, res.maximize, *[c for c in ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]",
                                                     "# Trades", "Win Rate [%]") if c != res.maximize]]
    table = Table(title=f"{os.path.basename(args.strategy)}: top {len(head)} of {len(res)} combinations by {res.maximize}")
    for c in ["rank", *cols]:
        table.add_column(str(c), justify="right")
    for rank, (_, row) in enumerate(head.iterrows()):
        table.add_row(str(rank + 1), *(f"{row[c]:.4g}" if isinstance(row[c], float) else str(row[c]) for c in cols))
    console.print(table)
    if len(res.params) >= 2:
        console.print(res.heatmap_table())
    s = res.summary()
    console.print(f"{len(res)} combinations in {s['warmup_s'] + s['run_s']:.2f} s (warm-up {s['warmup_s']:.2f} s, "
                  f"{s['combinations_per_s']:.1f} combinations/s after), "
                  f"{res.n_workers} {'Dask worker thread(s)' if res.on_dask else 'thread(s)'}; "
                  f"deflated Sharpe ratio of the best {s['deflated_sharpe']:.3f}, PBO {s['pbo'] if s['pbo'] is None else round(s['pbo'], 3)}",
                  markup=False, highlight=False)
    if len(res.errors):
        console.print(f"{len(res.errors)} combinations failed, first: {res.errors.iloc[0].to_dict()}",
                      markup=False, highlight=False)
    if args.csv:
        res.table.to_csv(args.csv)
        console.print(f"table: {args.csv}")
    if args.report:
        res.report(args.report, title=f"nbtrade sweep: {os.path.basename(args.strategy)}")
        console.print(f"report: {args.report}")
    return 0
