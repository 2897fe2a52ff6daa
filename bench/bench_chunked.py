"""Peak memory and time of chunked backtests against chunk size (``python bench/bench_chunked.py``).

Data: ``--symbols`` (20) random-walk 1m OHLCV series of ``--bars`` (1M) candles each, written to a
store in a temporary folder (float64, the store's default codec). Strategy: SMA(20)/SMA(100) cross on
the close (pandas rolling means; lookback 99), long only, fees 0.1 %, 2 % stop-loss, one shared cash
balance. Each case runs in a fresh process (peak RSS is a process's lifetime high: ``ru_maxrss``) after
a small warm-up run that loads the compiled kernels; "extra" is the peak minus the RSS after warm-up.

* ``chunked <k>``: ``nbtrade.backtest_chunked(store, ..., chunk_bars=k)``;
* ``in memory``: ``store.read_market(...)`` of the whole range, then ``nbtrade.backtest``.

Every run must end on the same final equity (checked). ``--quick``: 20 x 100k bars, chunks 5k/20k/100k.

Figures of this session (shared 2-core machine, see ``uptime`` printed with them) are in the README,
section "Larger than memory".
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

EXCHANGE = "bench"
LOOKBACK = 99


def signals(market):
    """SMA(20) / SMA(100) crossover of the close (lookback 99 bars)."""
    c = market.close
    f, s = c.rolling(20).mean(), c.rolling(100).mean()
    return (f > s) & s.notna(), f < s


signals.lookback = LOOKBACK


def write_store(root: str, n_symbols: int, n_bars: int, seed: int = 7) -> list[str]:
    """Random-walk 1m candles, written in blocks (bounded memory)."""
    from nbtrade.data.store import Store

    store = Store(root)
    rng = np.random.default_rng(seed)
    t0 = 1_577_836_800_000  # 2020-01-01
    names = [f"S{i:02d}/USDT" for i in range(n_symbols)]
    block = 500_000
    for name in names:
        last = 100.0
        for a in range(0, n_bars, block):
            k = min(block, n_bars - a)
            r = rng.normal(0.0, 0.001, k)
            close = last * np.exp(np.cumsum(r))
            open_ = np.concatenate([[last], close[:-1]])
            spread = np.abs(rng.normal(0.0, 0.0005, k))
            high = np.maximum(open_, close) * (1 + spread)
            low = np.minimum(open_, close) * (1 - spread)
            vol = rng.gamma(2.0, 5.0, k)
            time_ms = t0 + 60_000 * np.arange(a, a + k, dtype=np.int64)
            store.append(EXCHANGE, name, "1m", {"time": time_ms, "open": open_, "high": high, "low": low,
                                               "close": close, "volume": vol})
            last = float(close[-1])
    return names


def child(root: str, symbols: list[str], chunk: int) -> dict:
    """One case in this process: warm-up, then the run; peak RSS and time."""
    import warnings

    import nbtrade
    from nbtrade.data.store import Store

    warnings.simplefilter("ignore")
    store = Store(root)
    opts = dict(fees=0.001, sl_stop=0.02, on_gap="skip")
    warm_end = 1_577_836_800_000 + 60_000 * 3_000
    nbtrade.backtest_chunked(store, symbols, signals, timeframe="1m", end=warm_end, chunk_bars=1_000, **opts)
    m = store.read_market(EXCHANGE, symbols, "1m", end=warm_end)
    nbtrade.backtest(m, *signals(m), **opts)
    del m
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if chunk > 0:
        res = nbtrade.backtest_chunked(store, symbols, signals, timeframe="1m", chunk_bars=chunk, **opts)
    else:
        market = store.read_market(EXCHANGE, symbols, "1m")
        res = nbtrade.backtest(market, *signals(market), **opts)
    dt = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"chunk": chunk, "seconds": dt, "peak_mb": peak / 1024, "extra_mb": (peak - base) / 1024,
            "final_equity": float(res.equity.iloc[-1]), "trades": int(len(res.trade_records))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--symbols", type=int, default=20)
    p.add_argument("--bars", type=int, default=1_000_000)
    p.add_argument("--chunks", default="50000,200000,1000000")
    p.add_argument("--quick", action="store_true", help="20 x 100k bars, chunks 5k/20k/100k")
    p.add_argument("--repeat", type=int, default=1, help="runs per case (medians)")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        root, syms, chunk = a.child
        print(json.dumps(child(root, syms.split(","), int(chunk))))
        return
    if a.quick:
        a.bars, a.chunks = 100_000, "5000,20000,100000"
    chunks = [int(c) for c in a.chunks.split(",")]
    root = tempfile.mkdtemp(prefix="nbtrade-bench-chunked-")
    try:
        t = time.perf_counter()
        names = write_store(root, a.symbols, a.bars)
        size = sum(os.path.getsize(os.path.join(root, f)) for f in os.listdir(root))
        raw = a.symbols * a.bars * 48
        print(f"store: {a.symbols} symbols x {a.bars:,} 1m bars, {size / 2**20:.0f} MB on disk "
              f"({raw / 2**20:.0f} MB raw OHLCV+time), written in {time.perf_counter() - t:.1f} s")
        rows = []
        for chunk in chunks + [0]:
            runs = []
            for _ in range(a.repeat):
                out = subprocess.run([sys.executable, __file__, "--child", root, ",".join(names), str(chunk)],
                                     capture_output=True, text=True, check=True)
                runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            med = {k: float(np.median([r[k] for r in runs])) for k in ("seconds", "peak_mb", "extra_mb")}
            rows.append({**runs[0], **med})
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'run':<22}{'time [s]':>10}{'peak RSS [MB]':>15}{'extra [MB]':>12}{'trades':>9}  final equity")
        for r in rows:
            name = f"chunked {r['chunk']:,}" if r["chunk"] else "in memory"
            print(f"{name:<22}{r['seconds']:>10.2f}{r['peak_mb']:>15.0f}{r['extra_mb']:>12.0f}{r['trades']:>9}  "
                  f"{r['final_equity']:.6f}")
        eq = {r["final_equity"] for r in rows}
        if len(eq) != 1:
            raise SystemExit(f"final equities differ: {eq}")
        print("final equity identical in every run")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
