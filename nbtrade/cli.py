"""The ``nbtrade`` command line: argument parsing only.

Every command imports its implementation lazily, so ``nbtrade --help`` answers
without loading numba, pandas or any kernel.
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nbtrade",
        description="Numba-accelerated backtester and research pipeline for crypto trading.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="run the pipeline on the embedded synthetic market (no internet)")
    demo.add_argument("--quick", action="store_true", help="a smaller run")
    demo.add_argument("--seed", type=int, default=42, help="seed of the synthetic market (default 42)")

    bench = sub.add_parser("bench", help="benchmark kernels and pipeline against baselines")
    bench.add_argument("suite", nargs="?", default="kernels", choices=["kernels", "engine", "data", "ml", "all"])
    bench.add_argument("--n", type=int, default=None, help="values per series (default 10,000,000; --quick 1,000,000)")
    bench.add_argument("--repeat", type=int, default=5, help="timed runs per case; medians are reported (default 5)")
    bench.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    bench.add_argument("--json", metavar="FILE", default=None, help="also write the results as JSON")
    bench.add_argument("--only", metavar="NAME", default=None, help="run only cases whose name contains NAME")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from . import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 0
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
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(quick=args.quick, seed=args.seed)
    if args.command == "bench":
        from .bench import run_bench

        return run_bench(args.suite, n=args.n, repeat=args.repeat, quick=args.quick,
                         json_path=args.json, only=args.only)
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
