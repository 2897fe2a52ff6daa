"""``nbtrade sweep STRATEGY --param fast=5:50:5 --param slow=60:240:20``: a sweep from the command line.

Built-in ``sma_cross`` and ``ema_cross`` run as sweep-native signal functions (indicators
memoised per chunk, arrays in); a strategy file's ``strategy(data, **params)`` runs as it is
(its parameters are keyword arguments). A live line shows combinations done, rate, ETA and
the best value so far; then the top combinations, the heat map of the first two
parameters, the deflated Sharpe ratio and PBO; ``--csv`` writes the whole table.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as np


def _crossings(f: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The built-in strategies' rule: enter when fast crosses above slow (both defined), exit below
    (one compiled pass, ``kernels.sweep.crossings_nb``; GIL released)."""
    from ..kernels.sweep import crossings_nb

    f2, s2 = (f, s) if f.ndim == 2 else (f[:, None], s[:, None])
    entries, exits = np.empty(f2.shape, dtype=np.bool_), np.empty(f2.shape, dtype=np.bool_)
    crossings_nb(np.ascontiguousarray(f2), np.ascontiguousarray(s2), entries, exits)
    return (entries, exits) if f.ndim == 2 else (entries[:, 0], exits[:, 0])


def sma_cross(market: Any, fast: int = 10, slow: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``nbtrade.strategies.sma_cross`` as a sweep signal function (same signals)."""
    from .memo import sma

    return _crossings(sma(market, fast), sma(market, slow))


def ema_cross(market: Any, fast: int = 12, slow: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """``nbtrade.strategies.ema_cross`` as a sweep signal function (same signals)."""
    from .memo import ema

    return _crossings(ema(market, fast), ema(market, slow))


NATIVE: dict[str, Callable] = {"sma_cross": sma_cross, "ema_cross": ema_cross}


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


def add_parser(sub: Any) -> None:
    """The ``sweep`` subcommand's arguments (called by ``nbtrade.cli``)."""
    from ..cli import _data_args

    sw = sub.add_parser("sweep", help="parameter sweep of a strategy on every core or a Dask cluster",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("strategy", help="sma_cross, ema_cross, rsi_reversion, or a strategy file (strategy(data, **params))")
    sw.add_argument("--param", action="append", default=[], metavar="NAME=SPEC", required=True,
                    help="a parameter's values: START:STOP[:STEP] (inclusive) or V1,V2,...; repeat per parameter")
    _data_args(sw)
    sw.add_argument("--maximize", default="Sharpe Ratio", help="stats label to rank by (default %(default)s)")
    sw.add_argument("--top", type=int, default=10, help="rows shown (default %(default)s)")
    sw.add_argument("--max-tries", type=int, default=None, help="sample this many combinations at random")
    sw.add_argument("--jobs", type=int, default=-1, help="threads (default: every core)")
    sw.add_argument("--chunk-size", type=int, default=None, help="combinations per task")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:8786 (or NBTRADE_SCHEDULER)")
    sw.add_argument("--fees", type=float, default=None, help="fee per order, fraction (default 0.001)")
    sw.add_argument("--slippage", type=float, default=None, help="adverse fraction per fill (default 0.0005)")
    sw.add_argument("--fill", choices=["next_open", "close"], default=None)
    sw.add_argument("--sl-stop", type=float, default=None)
    sw.add_argument("--tp-stop", type=float, default=None)
    sw.add_argument("--cash", type=float, default=None)
    sw.add_argument("--csv", default=None, metavar="FILE", help="write the whole table as CSV")
    sw.add_argument("--report", default=None, metavar="FILE.html", help="write the heat map and top rows as HTML")


def run_sweep_command(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from ..commands import _strategy, backtest_params, load_data, user_code
    from ..panel import Market
    from ..report.dashboard import make_console
    from .grid import parse_param
    from .run import sweep

    params = dict(parse_param(p) for p in args.param)
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
                        **opts)
    head = res.head(args.top)
    cols = [*res.params, res.maximize, *[c for c in ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]",
                                                     "# Trades", "Win Rate [%]") if c != res.maximize]]
    import os

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
