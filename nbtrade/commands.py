"""What each ``nbtrade`` command does (the CLI only parses arguments and calls :func:`run`)."""
from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from typing import Any, Callable, Iterator

#: the CLI's backtest defaults (a flag beats a strategy file's BACKTEST, which beats these)
BACKTEST_DEFAULTS = {"fees": 0.001, "slippage": 0.0005, "fill": "next_open", "init_cash": 10_000.0}


def run(args: argparse.Namespace) -> int:
    handler: Callable[[argparse.Namespace], int] = _HANDLERS[args.command]
    return handler(args)


def _settings(args: argparse.Namespace) -> Any:
    from .config import load_settings

    return load_settings(flags={"home": getattr(args, "home", None)})


def _store_root(args: argparse.Namespace) -> str:
    return args.store or str(_settings(args).store)


def _symbols(text: str) -> list[str]:
    out = [s.strip() for s in text.split(",") if s.strip()]
    if not out:
        raise ValueError("no symbols given")
    return out


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(quick=args.quick, seed=args.seed, home=args.home, report=args.report)


def _fetch(args: argparse.Namespace) -> int:
    from .data.exchanges.base import ServerError
    from .data.fetch import run_fetch

    try:
        return run_fetch(args.exchange, _symbols(args.symbols), args.timeframe, args.start, args.end,
                         store=_store_root(args), base_url=args.base_url, funding=args.funding,
                         mark=getattr(args, "mark", False))
    except ServerError as exc:  # no network: say how to work offline
        if args.base_url is not None or "network error" not in str(exc):
            raise
        raise ServerError(f"{exc}. Offline? `nbtrade mock-exchange` serves the same API on 127.0.0.1 and prints "
                          f"the fetch command to use with it (--base-url URL)", exchange=exc.exchange,
                          symbol=exc.symbol, timeframe=exc.timeframe) from exc


def _mock(args: argparse.Namespace) -> int:
    """Serve the mock; its first line is the fetch command using it (see ``run_mock_exchange``)."""
    from .data.mock import run_mock_exchange

    return run_mock_exchange(port=args.port, host=args.host, seed=args.seed)


def _data(args: argparse.Namespace) -> int:
    """``nbtrade data ...``: tables or one line per result, never object reprs; errors exit 1."""
    from rich.table import Table

    from .data import store as st
    from .report.dashboard import make_console

    console = make_console()
    root = _store_root(args)
    action = args.data_command
    if action == "ls":
        rows = st.ls(root, args.exchange)
        table = Table(title=f"series in {root}")
        cols = ["exchange", "symbol", "timeframe", "kind", "rows", "first", "last"]
        for r in rows:  # mark_1h and funding sit beside the candles: say what each series holds
            r["kind"] = st.series_kind(str(r.get("timeframe")))
        if any(r.get("error") for r in rows):
            cols.append("error")
        for c in cols:
            table.add_column(c, justify="right" if c == "rows" else "left")
        for r in rows:
            table.add_row(*(_cell(c, r.get(c)) for c in cols))
        console.print(table)
        return 1 if any(r.get("error") for r in rows) else 0
    if action == "info":
        info = st.info(args.exchange, args.symbol, args.timeframe, root)
        table = Table(title=f"{info['exchange']} {info['symbol']} {info['timeframe']}", show_header=False)
        table.add_column("field")
        table.add_column("value")
        for k, v in info.items():
            if k == "ratio":
                table.add_row("compression ratio", _ratio_text(v))
            else:
                table.add_row(k, f"{v:.3f}" if isinstance(v, float) else _cell(k, v))
        console.print(table)
        return 0
    if action == "verify":
        report = st.verify(root, args.exchange, upgrade=args.upgrade)
        for line in report.summary():
            console.print(line, markup=False, highlight=False)
        return 0 if getattr(report, "ok", True) else 1
    if action == "import":
        from .data.imports import import_paths

        rows = import_paths(args.paths, st.Store(root), exchange=args.exchange, symbol=args.symbol,
                            timeframe=args.timeframe)
        table = Table(title=f"imported into {root}")
        cols = ["source", "exchange", "symbol", "timeframe", "rows", "added", "duplicates", "replaced"]
        for c in cols:
            table.add_column(c, justify="right" if c in ("rows", "added", "duplicates", "replaced") else "left")
        for r in rows:
            table.add_row(*(_cell(c, getattr(r, c)) for c in cols))
        console.print(table)
        ignored = sorted({c for r in rows for c in r.ignored_columns})
        if ignored:
            console.print(f"columns ignored: {', '.join(ignored)}", markup=False, highlight=False)
        return 0
    if action == "export":
        from .data.imports import export_path

        res = export_path(st.Store(root), args.exchange, args.symbol, args.timeframe, args.path,
                          start=args.start, end=args.end)
        console.print(f"exported {res.rows:,} rows to {res.path} ({res.bytes / 2**20:.1f} MiB, {res.seconds:.2f} s)",
                      markup=False, highlight=False)
        return 0
    if action == "resample":
        from .data.resample import resample_store

        res, _ = resample_store(st.Store(root), args.exchange, args.symbol, args.source, args.target,
                                args.start, args.end)
        console.print(f"{args.exchange} {res.symbol}: {res.rows:,} {res.target} candles from {res.source} "
                      f"({res.added:,} new; {res.partial} built with source candles missing; {res.dropped} "
                      f"unfinished at the ends left out)", markup=False, highlight=False)
        return 0
    raise AssertionError(action)


def _ratio_text(ratio: float) -> str:
    """``data info``'s compression ratio with what it means: stored / raw bytes."""
    import math

    if not math.isfinite(ratio) or ratio <= 0:
        return "– (no rows)"
    return f"{ratio:.3f} (bytes on disk / uncompressed bytes; the file is {1 / ratio:.1f}x smaller than raw)"


def _cell(column: str, value: Any) -> str:
    """Table text: open times (epoch ms) as UTC timestamps, missing values as blanks."""
    if value is None:
        return ""
    if column in ("first", "last") and isinstance(value, (int, float)):
        import pandas as pd

        return str(pd.Timestamp(int(value), unit="ms", tz="UTC"))
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def load_data(args: argparse.Namespace) -> dict[str, Any]:
    """Candles for backtest/check: from the store, or the synthetic market with ``--synthetic``."""
    symbols = _symbols(args.symbols)
    if args.synthetic:
        from .synthetic import market

        return market(symbols, args.start, args.end, args.timeframe, seed=args.seed)
    from .data.store import Store

    store = Store(_store_root(args))
    frames = {s: store.read(args.exchange, s, args.timeframe, args.start, args.end) for s in symbols}
    empty = [s for s, f in frames.items() if len(f) == 0]
    if empty:
        raise ValueError(f"no stored candles for {', '.join(empty)} in [{args.start}, {args.end}); "
                         f"run `nbtrade fetch` first or pass --synthetic")
    import sys

    import pandas as pd

    from .timeframes import timeframe_ms

    lo, hi = pd.Timestamp(args.start, tz="UTC"), pd.Timestamp(args.end, tz="UTC")
    step = pd.Timedelta(milliseconds=timeframe_ms(args.timeframe))
    for s, f in frames.items():
        if f.index[0] - lo >= step or hi - f.index[-1] > step:
            print(f"warning: {s} has candles only from {f.index[0]} to {f.index[-1]}, "
                  f"not the whole [{lo}, {hi}) asked for", file=sys.stderr)
    return frames


@contextmanager
def user_code(path: str | None) -> Iterator[None]:
    """Errors raised inside a user's strategy file name the file and line (the one-line CLI error
    otherwise hides where they came from); ``--debug`` still shows the whole traceback."""
    try:
        yield
    except Exception as exc:
        where = _user_frame(exc, path) if path else None
        if where is None:
            raise
        raise UserCodeError(f"{type(exc).__name__}: {exc} (at {where})") from exc


class UserCodeError(Exception):
    """An exception from a user's strategy file, with its file and line in the message."""


def _user_frame(exc: BaseException, path: str) -> str | None:
    import os
    import traceback

    target = os.path.realpath(path)
    if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == target:
        return f"{path}, line {exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == target]
    if not frames:
        return None
    f = frames[-1]
    return f"{path}, line {f.lineno}, in {f.name}: {(f.line or '').strip()}"


def _strategy(args: argparse.Namespace) -> tuple[Callable, dict[str, Any], str | None]:
    from .builtin_strategies import BUILTIN, load_strategy

    path = None if args.strategy in BUILTIN else args.strategy
    with user_code(path):
        strategy, kwargs = load_strategy(args.strategy)
    return strategy, kwargs, path


def backtest_params(args: argparse.Namespace, file_kwargs: dict[str, Any], n_symbols: int) -> dict[str, Any]:
    """Backtest keywords: flags given on the command line > the file's ``BACKTEST`` > the CLI defaults."""
    params = {**BACKTEST_DEFAULTS, "size": 1.0 / n_symbols, **file_kwargs}
    flags = {"fees": args.fees, "slippage": args.slippage, "fill": args.fill, "sl_stop": args.sl_stop,
             "tp_stop": args.tp_stop, "init_cash": args.cash}
    for key in ("instrument", "leverage", "margin"):  # perpetuals (backtest only)
        flags[key] = getattr(args, key, None)
    params.update({k: v for k, v in flags.items() if v is not None})
    return params


def _backtest(args: argparse.Namespace) -> int:
    import os

    from rich.table import Table

    from .engine import backtest
    from .monitor import Monitor
    from .report.dashboard import make_console
    from .builtin_strategies import ClassStrategy

    as_json = args.json == "-"
    console = make_console(stderr=as_json)  # stdout carries only the JSON then
    mon = Monitor(enabled=True)
    strategy, file_kwargs, path = _strategy(args)
    with mon.stage("load data"):
        data = load_data(args)
    params = backtest_params(args, file_kwargs, len(data))
    if isinstance(strategy, ClassStrategy):  # orders from its next(): signals and engine in one run
        with mon.stage("backtest"), user_code(path):
            result = strategy.backtest(data, **params)
    else:
        with mon.stage("signals"), user_code(path):
            signals = strategy(data)
        with mon.stage("backtest"):
            result = backtest(data, **signals, **params)
    stats = result.stats()
    if args.json:
        text = json.dumps({"strategy": args.strategy, "symbols": list(data), "timeframe": args.timeframe,
                           "params": params, "stats": stats.to_json_dict()}, indent=1, default=str)
        if as_json:
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    if not as_json:
        table = Table(title=f"{args.strategy} on {', '.join(data)} ({args.timeframe})")
        table.add_column("metric", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        for k, v in stats.formatted().items():
            table.add_row(str(k), v)
        console.print(table)
        if result.is_margined:  # perpetuals, leverage or shorts: funding, liquidations, margin usage
            from .report.perp import perp_table

            console.print(perp_table(result))
    report = args.report or str(_settings(args).reports / "backtest.html")
    os.makedirs(os.path.dirname(os.path.abspath(report)), exist_ok=True)
    result.report(report, title=f"nbtrade backtest: {args.strategy}", monitor=mon.summary(),
                  reproducibility={"command": "nbtrade backtest " + args.strategy, "seed": args.seed})
    if args.save:
        console.print(f"saved: {result.save(args.save)}")
    if args.profile:
        console.print(mon.table())
    console.print(f"report: {report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .saved import load_result

    result = load_result(args.path)
    out = args.out or str(Path(args.path).with_suffix(".html"))
    result.report(out, title=args.title)
    print(f"report: {out}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    return run_bench(args.suite, n=args.n, repeat=args.repeat, quick=args.quick, json_path=args.json,
                     only=args.only, compare=args.compare)


def _cache(args: argparse.Namespace) -> int:
    from .config import load_settings
    from . import cache

    root = load_settings(flags={"home": args.home}).cache
    if args.cache_command == "stats":
        return cache.print_summary(root)
    removed = cache.clear_disk(root)
    print(f"removed {removed} cache file(s) under {root}")
    return 0


def _warmup(args: argparse.Namespace) -> int:
    """``nbtrade warmup``: compile and cache the kernels, one progress row per step."""
    import os

    from . import warmup
    from .report.dashboard import Dashboard, make_console

    steps = list(warmup.DEMO_STEPS if args.demo else warmup.STEPS)
    jobs = args.jobs if args.jobs is not None else warmup.idle_jobs(len(steps))
    if jobs < 0:
        raise ValueError(f"--jobs must be 0 (compile in this process) or more worker processes, got {jobs}")
    console = make_console()
    with Dashboard("compiling kernels", fields=("kernels",), console=console, interval=5.0) as dash:
        dash.add("steps", total=len(steps), kernels=0)
        w = warmup.Warmup(steps, jobs=jobs)
        seconds = w.wait(lambda name, done, total, compiled: dash.update("steps", completed=done, kernels=compiled))
    where = os.environ.get("NUMBA_CACHE_DIR") or "the package's __pycache__ folders"
    how = f"{w.jobs} processes" if w.jobs else "in this process"
    console.print(f"{w.compiled} kernels compiled ({len(steps)} steps, {how}) in {seconds:.1f} s "
                  f"({w.cpu:.1f} s of CPU); "
                  f"cached in {where}", markup=False, highlight=False)
    for err in w.errors:
        console.print(f"warning: a step {err}; its kernels compile on first use", markup=False, highlight=False)
    return 0


def _check(args: argparse.Namespace) -> int:
    from .lookahead import check_lookahead, check_recursive

    strategy, _, path = _strategy(args)
    data = load_data(args)
    with user_code(path):
        if args.kind == "lookahead":
            report = check_lookahead(strategy, data, cuts=args.cuts)
        else:
            report = check_recursive(strategy, data, max_warmup=args.max_warmup)
    print(report)
    return 0 if report.ok else 1


_HANDLERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "demo": _demo, "fetch": _fetch, "mock-exchange": _mock, "data": _data, "backtest": _backtest,
    "bench": _bench, "cache": _cache, "check": _check, "report": _report, "warmup": _warmup,
}


def _sweep(args: argparse.Namespace) -> int:
    from .sweep.command import run_sweep_command

    return run_sweep_command(args)


_HANDLERS["sweep"] = _sweep
