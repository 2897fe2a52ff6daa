"""Fetcher throughput against the mock exchange at its configured weight budget.

``run_fetch_bench(days=365, symbols=5)`` fetches ``days`` of 1m candles for
``symbols`` symbols from the mock (server and client in one event loop, one
process) and reports how much of the weight budget was used and how many 429s
came back. Target (issue 5): >= 95 % of the budget with zero 429s.

Run it: ``python -m nbtrade.benchsuite.bench_data_fetch [--quick]``, or through
``nbtrade bench data`` (the Case below; ``n`` = candles to fetch).
"""
from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import numpy as np

from nbtrade.bench import Case
from nbtrade.timeframes import DAY_MS

SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "LTC/USDT")
NOW = "2025-01-01 00:00:30"


class _CountingSink:
    """Counts appended rows, keeps only the last time (resumable, no memory growth)."""

    def __init__(self) -> None:
        self.rows = 0
        self.last: dict[tuple[str, str, str], int] = {}

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        return self.last.get((exchange, symbol, timeframe))

    def append(self, exchange: str, symbol: str, timeframe: str, arrays: dict[str, np.ndarray]) -> None:
        self.rows += int(arrays["time"].shape[0])
        self.last[(exchange, symbol, timeframe)] = int(arrays["time"][-1])


async def _run(days: float, n_symbols: int, weight_limit: int, window_s: float, concurrency: int) -> dict[str, Any]:
    from nbtrade.data.fetch import fetch_ohlcv
    from nbtrade.data.metacache import MetaCache
    from nbtrade.data.mock import serve
    from nbtrade.synthetic import _to_ms

    import tempfile

    symbols = SYMBOLS[:n_symbols]
    now = _to_ms(NOW)
    end = now // 60_000 * 60_000
    start = end - int(days * DAY_MS)
    async with serve(symbols=symbols, origin=start - DAY_MS, now=NOW, window_s=window_s,
                     weight_limit=weight_limit, horizon_s=3600) as mock:
        for s in symbols:  # generate the data before the clock starts
            mock.candles(s, "1m", "spot")
        with tempfile.TemporaryDirectory() as tmp:
            sink = _CountingSink()
            t0 = time.perf_counter()
            res = await fetch_ohlcv("binance", symbols, "1m", start, end, base_url=mock.url, sink=sink, keep=False,
                                    concurrency=concurrency, cache=MetaCache(tmp))
            elapsed = time.perf_counter() - t0
    windows = sorted((w, used) for (m, w), used in mock.stats.window_weight.items() if m == "api")
    full = [used for _, used in windows[1:-1]]  # first and last windows are partial
    expected_rows = n_symbols * int(days * 1440)
    return {
        "symbols": n_symbols, "days": days, "rows": sink.rows, "rows_expected": expected_rows,
        "requests": res.report.requests, "elapsed_s": elapsed, "candles_per_s": sink.rows / elapsed,
        "budget": f"{weight_limit} weight / {window_s:g} s",
        "utilisation_full_windows": (float(np.mean(full)) / weight_limit) if full else float("nan"),
        "n429": mock.stats.n429, "n418": mock.stats.n418, "windows": len(windows),
        "max_window_weight": max((u for _, u in windows), default=0),
        "window_weights": [u for _, u in windows],
    }


def run_fetch_bench(days: float = 365, symbols: int = 5, weight_limit: int = 120, window_s: float = 1.0,
                    concurrency: int = 8) -> dict[str, Any]:
    """Fetch ``days`` of 1m candles for ``symbols`` symbols from the mock; budget use and 429s.

    The default budget (120 weight per 1 s window = 60 spot kline pages/s) is
    below what the mock and client can do on one core, so the budget binds,
    as with Binance's 6000 per minute.
    """
    return asyncio.run(_run(days, symbols, weight_limit, window_s, concurrency))


def _case_days(n: int) -> int:
    # the harness repeats the call: keep it to at most 30 days (the year is `python -m ...`)
    return int(max(1, min(30, n // (5 * 1440))))


def _case_setup(n: int) -> dict[str, Any]:
    days = _case_days(n)

    def fetch() -> dict[str, Any]:
        return run_fetch_bench(days=days, symbols=5)

    return {"nbtrade": fetch}


CASES = [
    Case("fetch 1m x5 symbols from mock (budget-bound)", _case_setup, unit="candle",
         units=lambda n: 5 * 1440 * _case_days(n),
         target=">= 95 % of the weight budget, zero 429"),
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="30 days instead of 365")
    parser.add_argument("--days", type=float, default=None)
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--limit", type=int, default=120, help="weight per window")
    parser.add_argument("--window", type=float, default=1.0, help="window seconds")
    args = parser.parse_args(argv)
    days = args.days if args.days is not None else (30 if args.quick else 365)
    out = run_fetch_bench(days=days, symbols=args.symbols, weight_limit=args.limit, window_s=args.window)
    for key, value in out.items():
        print(f"{key:>26}: {value:.3f}" if isinstance(value, float) else f"{key:>26}: {value}")


if __name__ == "__main__":
    main()
