"""The ``nbtrade`` command line: argument parsing only.

Every command imports its implementation lazily, so ``nbtrade --help`` answers
without loading numba, pandas or any kernel. Exit codes: 0 success, 1 failure
(one clear line; ``--debug`` shows the traceback), 2 usage error.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .commands import BACKTEST_DEFAULTS


def _run_args(p: argparse.ArgumentParser) -> None:
    """Costs, fills, stops and cash of a run (backtest, sweep). Defaults None: a flag given on the command
    line beats a strategy file's BACKTEST, which beats BACKTEST_DEFAULTS."""
    d = BACKTEST_DEFAULTS
    p.add_argument("--fees", type=float, default=None, help=f"fee per order, fraction (default {d['fees']})")
    p.add_argument("--slippage", type=float, default=None, help=f"adverse fraction per fill (default {d['slippage']})")
    p.add_argument("--fill", choices=["next_open", "close"], default=None, help=f"default {d['fill']}")
    p.add_argument("--sl-stop", type=float, default=None, help="stop-loss, fraction of entry")
    p.add_argument("--tp-stop", type=float, default=None, help="take-profit, fraction of entry")
    p.add_argument("--cash", type=float, default=None, help=f"initial cash (default {d['init_cash']:,.0f})")


def _leverage(value: str) -> float:
    """``--leverage``: a number > 0 (its tier maximum is checked by the run, naming the symbol)."""
    try:
        lev = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"leverage must be a number > 0, got {value!r}") from None
    if not lev > 0 or lev == float("inf"):
        raise argparse.ArgumentTypeError(f"leverage must be a number > 0, got {value!r}")
    return lev


def _perp_args(p: argparse.ArgumentParser) -> None:
    """Perpetual futures options of ``backtest`` (nbtrade.backtest's instrument, leverage, margin)."""
    p.add_argument("--instrument", choices=["spot", "perp"], default=None,
                   help="spot (default) or perp: USD-margined linear perpetuals (margin, liquidation, funding)")
    p.add_argument("--leverage", type=_leverage, default=None,
                   help="leverage of every symbol (default 1; at most the first maintenance tier's maximum)")
    p.add_argument("--margin", choices=["isolated", "cross"], default=None,
                   help="margin mode of perpetuals (default isolated; cross: one wallet backs every position)")


def _data_args(p: argparse.ArgumentParser, symbols_default: str = "BTC/USDT,ETH/USDT") -> None:
    """Where a command's candles come from: the HDF5 store, or the synthetic market."""
    p.add_argument("--symbols", default=symbols_default, help="comma-separated symbols (default %(default)s)")
    p.add_argument("--timeframe", default="1h", help="candle timeframe (default %(default)s)")
    p.add_argument("--start", default="2024-01-01", help="first open time, UTC (default %(default)s)")
    p.add_argument("--end", default="2024-04-01", help="end (exclusive), UTC (default %(default)s)")
    p.add_argument("--exchange", default="binance", help="exchange in the store (default %(default)s)")
    p.add_argument("--store", default=None, help="store folder (default $NBTRADE_HOME/data)")
    p.add_argument("--synthetic", action="store_true", help="use the synthetic market instead of the store")
    p.add_argument("--seed", type=int, default=42, help="seed of the synthetic market (default %(default)s)")


#: the exchanges with a native adapter (others through ``ccxt:<id>``)
NATIVE_EXCHANGES = ("binance", "binance_futures", "bybit", "bybit_linear", "okx", "okx_swap")


def _exchange(value: str) -> str:
    """The fetch command's exchange: a native adapter's name or ``ccxt:<id>``."""
    if value in NATIVE_EXCHANGES or (value.startswith("ccxt:") and len(value) > 5):
        return value
    raise argparse.ArgumentTypeError(f"unknown exchange {value!r}: use one of {', '.join(NATIVE_EXCHANGES)}, "
                                     "or ccxt:<id> (e.g. ccxt:kraken) for an exchange ccxt supports")


STRATEGY_FILE_HELP = """\
Backtest a built-in strategy or your own strategy file; print the statistics, write an HTML report.

A strategy file is a Python file defining

    def strategy(data):   # data: {symbol: OHLCV DataFrame, UTC open-time index}
        ...
        return {"entries": ..., "exits": ...}

returning boolean DataFrames (bars x symbols) under any of entries, exits, short_entries,
short_exits. A signal at bar t may use bars up to t only; it fills at bar t+1's open
(--fill close: at t's close). Or it defines a class-API strategy, run by nbtrade.Backtest:

    class MyStrategy(nbtrade.Strategy):   # with several subclasses: strategy = MyStrategy
        def init(self): ...                # indicators: self.I(...)
        def next(self): ...                # self.buy(), self.sell(), self.position.close()

Optionally the file sets

    BACKTEST = {"sl_stop": 0.05, "size": 0.5}   # keyword arguments of nbtrade.backtest
    BACKTEST = {"instrument": "perp", "leverage": 10, "margin": "cross"}   # perpetuals

as its defaults. Precedence: flags given here > the file's BACKTEST > nbtrade's defaults.
An error in the file is reported with its file name and line.
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrade",
        description="Numba-accelerated backtester and research pipeline for crypto trading.",
        epilog="Settings: flags > NBTRADE_* environment variables > $NBTRADE_HOME/config.toml.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--home", default=None, help="data, cache and reports folder (default $NBTRADE_HOME)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the whole pipeline on the embedded synthetic market (no internet)")
    demo.add_argument("--quick", action="store_true", help="a smaller run")
    demo.add_argument("--seed", type=int, default=42, help="seed of the synthetic market (default 42)")
    demo.add_argument("--report", default=None, help="HTML report path (default $NBTRADE_HOME/reports/demo.html)")

    fetch = sub.add_parser("fetch", help="download OHLCV candles (rate-limited, resumable) into the store")
    fetch.add_argument("exchange", type=_exchange, metavar="EXCHANGE",
                       help=f"one of {', '.join(NATIVE_EXCHANGES)}, or ccxt:<id> for any exchange ccxt supports "
                            "(pip install -e '.[ccxt]')")
    fetch.add_argument("symbols", help="comma-separated unified symbols, e.g. BTC/USDT,ETH/USDT")
    fetch.add_argument("--timeframe", default="1h")
    fetch.add_argument("--start", default=None, help="first open time (UTC); default: the exchange's first")
    fetch.add_argument("--end", default=None, help="end (exclusive, UTC); default: the last closed candle")
    fetch.add_argument("--store", default=None, help="store folder (default $NBTRADE_HOME/data)")
    fetch.add_argument("--base-url", default=None, help="another server with the same API (e.g. the mock)")
    fetch.add_argument("--funding", action="store_true",
                       help="also fetch funding-rate history (perpetuals: binance_futures, bybit_linear, okx_swap)")
    fetch.add_argument("--mark", action="store_true",
                       help="also fetch mark-price candles (perpetuals), stored beside the candles")

    mock = sub.add_parser("mock-exchange", help="serve the local mock exchange (Binance, Bybit, OKX APIs) on 127.0.0.1")
    mock.add_argument("--port", type=int, default=8080)
    mock.add_argument("--host", default="127.0.0.1")
    mock.add_argument("--seed", type=int, default=0)

    data = sub.add_parser("data", help="inspect, verify, import and export the HDF5 store")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    for name, text in (("ls", "list stored series"), ("verify", "check integrity (sorted, unique, OHLC, checksums)")):
        d = dsub.add_parser(name, help=text)
        d.add_argument("--store", default=None)
        d.add_argument("--exchange", default=None)
    d.add_argument("--upgrade", action="store_true", help="add per-chunk checksums to series written before them")
    d = dsub.add_parser("info", help="metadata of one series")
    d.add_argument("exchange")
    d.add_argument("symbol")
    d.add_argument("timeframe")
    d.add_argument("--store", default=None)
    d = dsub.add_parser("import", help="import files, folders or globs: CSV (.csv[.gz|.bz2|.lz4]), Binance bulk "
                                       "kline files (.zip), parquet, feather")
    d.add_argument("paths", nargs="+")
    d.add_argument("--store", default=None)
    d.add_argument("--exchange", default=None, help="default: from names like binance_BTC_USDT_1m.csv; "
                                                    "binance for bulk files")
    d.add_argument("--symbol", default=None, help="default: from the file name")
    d.add_argument("--timeframe", default=None, help="default: from the file name")
    d = dsub.add_parser("resample", help="build a higher timeframe from a stored lower one")
    d.add_argument("exchange")
    d.add_argument("symbol")
    d.add_argument("--from", dest="source", required=True, help="stored timeframe, e.g. 1m")
    d.add_argument("--to", dest="target", required=True, help="timeframe to build, e.g. 1h")
    d.add_argument("--start", default=None)
    d.add_argument("--end", default=None)
    d.add_argument("--store", default=None)
    d = dsub.add_parser("export", help="export one series to CSV (compression by extension), parquet or feather")
    d.add_argument("exchange")
    d.add_argument("symbol")
    d.add_argument("timeframe")
    d.add_argument("path")
    d.add_argument("--start", default=None)
    d.add_argument("--end", default=None)
    d.add_argument("--store", default=None)

    bt = sub.add_parser("backtest", help="backtest a built-in strategy or a strategy file; print stats, write a report",
                        description=STRATEGY_FILE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    bt.add_argument("strategy", help="ema_cross, sma_cross, rsi_reversion, or a .py file defining strategy(data) or a "
                                    "Strategy subclass")
    _data_args(bt)
    _run_args(bt)
    _perp_args(bt)
    bt.add_argument("--report", default=None, help="HTML report path (default $NBTRADE_HOME/reports/backtest.html)")
    bt.add_argument("--save", default=None, metavar="FILE.npz", help="also save the result (nbtrade.load_result)")
    bt.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                    help="statistics as JSON: to FILE, or to stdout instead of the table")
    bt.add_argument("--profile", action="store_true", help="show the performance monitor")

    rep = sub.add_parser("report", help="rebuild the HTML report of a saved result (backtest --save)")
    rep.add_argument("path", help="a .npz file written by Result.save or backtest --save")
    rep.add_argument("--out", default=None, help="HTML path (default: the saved file's name with .html)")
    rep.add_argument("--title", default="nbtrade backtest")

    bench = sub.add_parser("bench", help="benchmark kernels and pipeline against baselines (ratios, medians)")
    bench.add_argument("suite", nargs="?", default="kernels", choices=["kernels", "engine", "data", "ml", "sweep", "all"])
    bench.add_argument("--n", type=int, default=None, help="values per series (default 10,000,000; --quick 1,000,000)")
    bench.add_argument("--repeat", type=int, default=5, help="timed runs per case; medians are reported (default 5)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    bench.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                       help="also write the results as JSON to FILE; without FILE, print JSON instead of the table")
    bench.add_argument("--compare", metavar="FILE", default=None,
                       help="compare with a previous --json file and flag regressions")
    bench.add_argument("--only", metavar="NAME", default=None, help="run only cases whose name contains NAME")

    warm = sub.add_parser("warmup", help="compile and cache the numba kernels now, so first runs start fast",
                          description="Compile every kernel nbtrade's commands and demo use and cache it on disk "
                                      "($NUMBA_CACHE_DIR, else next to the package). Numba otherwise compiles "
                                      "each kernel on its first call (about a minute for a first demo on 2 "
                                      "cores); afterwards runs load them in milliseconds. Run it again after "
                                      "upgrading nbtrade.")
    warm.add_argument("--jobs", type=int, default=None,
                      help="worker processes, 0 to compile in this process (default: one per idle core when "
                           "two or more are idle, else 0)")
    warm.add_argument("--demo", action="store_true", help="only the kernels `nbtrade demo` uses")

    cache = sub.add_parser("cache", help="result and model caches")
    cache.add_argument("cache_command", choices=["stats", "clear"])

    check = sub.add_parser("check", help="look-ahead and warm-up-dependence checks of a strategy")
    check.add_argument("kind", choices=["lookahead", "recursive"])
    check.add_argument("strategy", help="built-in name or strategy file (as for backtest)")
    _data_args(check)
    check.add_argument("--cuts", type=int, default=20, help="cut points for lookahead (default %(default)s)")
    check.add_argument("--max-warmup", type=int, default=500, help="recursive: allowed warm-up bars")

    _sweep_parser(sub)
    return parser


SWEEP_HELP = """\
Parameter sweep of a strategy: every combination of the --param values, on every core (threads)
or a Dask cluster (--scheduler tcp://host:8786, or NBTRADE_SCHEDULER).

Built-in sma_cross and ema_cross run as sweep-native signal functions (indicators computed once per
value); a strategy file's strategy(data, **params) gets each combination as keyword arguments.
A live line shows combinations done, ETA and the best value so far; then the top combinations,
the heat map of the first two parameters, the deflated Sharpe ratio and PBO.
"""


def _sweep_parser(sub: argparse._SubParsersAction) -> None:
    """``nbtrade sweep STRATEGY --param fast=5:50:5 --param slow=60:240:20`` (run by ``nbtrade.sweep.command``)."""
    sw = sub.add_parser("sweep", help="parameter sweep of a strategy on every core or a Dask cluster",
                        description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("strategy", help="sma_cross, ema_cross, rsi_reversion, or a file defining strategy(data, **params)")
    sw.add_argument("--param", action="append", default=[], metavar="NAME=SPEC", required=True,
                    help="a parameter's values: START:STOP[:STEP] (inclusive) or V1,V2,...; repeat per parameter")
    _data_args(sw)
    sw.add_argument("--maximize", default="Sharpe Ratio", help="stats label to rank by (default %(default)s)")
    sw.add_argument("--top", type=int, default=10, help="rows shown (default %(default)s)")
    sw.add_argument("--max-tries", type=int, default=None, help="sample this many combinations at random")
    sw.add_argument("--sampler", choices=["grid", "optuna"], default="grid",
                    help="grid: every combination (or --max-tries at random); optuna: Bayesian search (TPE) of "
                         "--trials combinations of the grid (the [optuna] extra)")
    sw.add_argument("--trials", type=int, default=None, help="combinations tried with --sampler optuna")
    sw.add_argument("--jobs", type=int, default=-1, help="threads (default -1: every core)")
    sw.add_argument("--chunk-size", type=int, default=None, help="combinations per task")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://host:8786 (or NBTRADE_SCHEDULER)")
    _run_args(sw)
    _perp_args(sw)
    sw.add_argument("--csv", default=None, metavar="FILE", help="write the whole table as CSV")
    sw.add_argument("--report", default=None, metavar="FILE.html", help="write the heat map and top rows as HTML")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if args.command is None:  # a usage error: say what the commands are
        parser.print_help(sys.stderr)
        return 2
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"nbtrade {args.command}: error: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    from . import commands

    return commands.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
