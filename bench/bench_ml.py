"""ML pipeline bench: walk-forward random forest, full refits vs a sliding forest, cold vs warm model cache.

Workload (issue 6): hourly planted-signal candles (``nbtrade.synthetic.planted_market``,
strength 1), 30 causal features (``planted_features``), next-bar direction labels,
RandomForestClassifier(100 trees, depth 8), a 6-month rolling window, weekly steps.

- ``python bench/bench_ml.py`` runs the full workload once per mode and prints the
  table (10 symbols x 1 year; about 3 minutes on 2 shared cores); ``--quick`` runs
  a small version in seconds; ``--json FILE`` writes the rows.
- ``nbtrade bench ml`` runs :data:`CASES` through the harness (``--quick`` for the
  small size; the full size times each mode 1 + repeat times, so it is slow).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd

from nbtrade.bench import Case

SYMBOLS = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "LTC/USDT",
           "DOT/USDT", "AVAX/USDT"]
FULL = {"start": "2024-01-01", "end": "2025-01-01", "train": "182D", "test": "7D"}
QUICK = {"start": "2024-01-01", "end": "2024-03-01", "train": "30D", "test": "7D"}


def make_data(symbols: list[str], size: dict[str, str], seed: int = 7) -> tuple[dict[str, Any], float]:
    """{symbol: (X, y)} with 30 features and sign labels, and the feature time in seconds."""
    from nbtrade.model.labels import sign_label
    from nbtrade.synthetic import planted_features, planted_market

    candles = planted_market(symbols, size["start"], size["end"], "1h", seed=seed, strength=1.0)
    t0 = time.perf_counter()
    out = {}
    for sym, df in candles.items():
        X = planted_features(df, extra=26)
        y = sign_label(df["close"], 1)
        out[sym] = (X.iloc[48:], y.iloc[48:])
    return out, time.perf_counter() - t0


def forest(n_jobs: int = -1) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, max_depth=8, n_jobs=n_jobs)


def run(data: dict[str, Any], size: dict[str, str], retrain: str = "full", cache: Any = None,
        policy: Any = None) -> dict[str, Any]:
    """Walk-forward every symbol; total seconds and bar-weighted OOS accuracy."""
    from nbtrade.model.walkforward import walk_forward

    t0, c0 = time.perf_counter(), time.process_time()
    hits = total = folds = cache_hits = retrained = 0
    for X, y in data.values():
        r = walk_forward(forest(), X, y, size["train"], size["test"], retrain=retrain, refresh=20, seed=0,
                         cache=cache, policy=policy)
        mask = r.predictions.notna() & r.y.notna()
        hits += int((r.predictions[mask] == r.y[mask]).sum())
        total += int(mask.sum())
        folds += len(r.folds)
        cache_hits += int(r.folds["cache_hit"].sum())
        retrained += int(r.folds["retrained"].sum())
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "accuracy": hits / total if total else float("nan"),
            "folds": folds, "cache_hits": cache_hits, "retrained": retrained, "bars": total}


def _size_for(n: int) -> dict[str, str]:
    if n >= 10_000_000:
        return FULL
    if n >= 1_000_000:
        return QUICK
    end = pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(hours=int(n))
    return {**QUICK, "end": str(end)}


# ----------------------------------------------------------------------------- harness cases

def _setup_modes(n: int) -> dict[str, Any]:
    size = _size_for(n)
    data, _ = make_data(SYMBOLS[:1], size)
    return {"nbtrade": lambda: run(data, size, "incremental"), "full refit": lambda: run(data, size, "full")}


def _setup_cache(n: int) -> dict[str, Any]:
    from nbtrade.model.modelcache import ModelCache

    size = _size_for(n)
    data, _ = make_data(SYMBOLS[:1], size)
    tmp = tempfile.mkdtemp(prefix="nbtrade-bench-ml-")
    run(data, size, "incremental", cache=ModelCache(tmp))  # fill the disk cache
    return {"nbtrade": lambda: run(data, size, "incremental", cache=ModelCache(tmp)),  # restart: disk hits
            "cold (no cache)": lambda: run(data, size, "incremental")}


def _bars(n: int) -> int:
    size = _size_for(n)
    hours = (pd.Timestamp(size["end"]) - pd.Timestamp(size["start"])) // pd.Timedelta("1h")
    return int(hours - 48 - pd.Timedelta(size["train"]) // pd.Timedelta("1h"))


CASES = [
    Case("walk-forward RF100 d8, sliding 20/100 vs full refits", _setup_modes, unit="bar", units=_bars,
         target="<= 0.25x full refit, accuracy within 1 pp"),
    Case("walk-forward warm (model cache, disk) vs cold", _setup_cache, unit="bar", units=_bars,
         target="warm <= 3 s for 10 symbols"),
]


# ----------------------------------------------------------------------------- standalone report

def main(argv: list[str] | None = None) -> int:
    from nbtrade.model.forest import DriftPolicy
    from nbtrade.model.modelcache import ModelCache

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 symbols x 2 months, 30-day window")
    ap.add_argument("--symbols", type=int, default=None, help="symbols for the cold/warm runs (default 10; quick 2)")
    ap.add_argument("--json", default=None, help="write the rows as JSON")
    ap.add_argument("--part", choices=["all", "modes", "cache"], default="all",
                    help="modes: full vs incremental on 1 symbol; cache: cold vs warm on all symbols")
    args = ap.parse_args(argv)
    size = QUICK if args.quick else FULL
    n_sym = args.symbols or (2 if args.quick else 10)
    data, feat_s = make_data(SYMBOLS[:n_sym], size)
    one = dict(list(data.items())[:1])
    rows: list[dict[str, Any]] = []

    def add(name: str, res: dict[str, Any], symbols: int) -> None:
        rows.append({"run": name, "symbols": symbols, **res})
        print(f"{name:<44} {symbols:>2} sym  {res['seconds']:7.2f} s  cpu {res['cpu_seconds']:7.2f} s  "
              f"acc {res['accuracy']:.4f}  "
              f"folds {res['folds']}  cache hits {res['cache_hits']}  model updates {res['retrained']}", flush=True)

    print(f"features (pandas, {n_sym} symbols x {len(next(iter(data.values()))[0])} bars x 30): {feat_s:.2f} s")
    full = inc = cold = warm_disk = None
    disk_mb = float("nan")
    if args.part in ("all", "modes"):
        full = run(one, size, "full")
        add("full refit each week (1 symbol)", full, 1)
        inc = run(one, size, "incremental")
        add("sliding forest 20/100 trees (1 symbol)", inc, 1)
        drift = run(one, size, "incremental", policy=DriftPolicy(psi_threshold=0.1, acc_drop=0.03, perf_window=168))
        add("sliding + retrain on drift only (1 symbol)", drift, 1)
    if args.part in ("all", "cache"):
        with tempfile.TemporaryDirectory(prefix="nbtrade-bench-ml-") as tmp:
            cold = run(data, size, "incremental", cache=ModelCache(tmp))
            add("cold: sliding forest, empty model cache", cold, n_sym)
            warm_disk = run(data, size, "incremental", cache=ModelCache(tmp))
            add("warm: restart, fold outputs from disk cache", warm_disk, n_sym)
            mc = ModelCache(tmp)
            mc.outputs.clear()
            models = run(data, size, "incremental", cache=mc)
            add("warm: restart, new outputs, models from disk", models, n_sym)
            disk_mb = mc.stats().disk_bytes / 1e6
    speed = cpu_speed = float("nan")
    if full and inc:
        speed = full["seconds"] / inc["seconds"]
        cpu_speed = full["cpu_seconds"] / inc["cpu_seconds"]
        print(f"\nincremental speed-up {speed:.2f}x wall, {cpu_speed:.2f}x cpu (target >= 4x), "
              f"accuracy {100 * (inc['accuracy'] - full['accuracy']):+.2f} pp (target within 1 pp)")
    if cold and warm_disk:
        print(f"cold {cold['seconds']:.1f} s (target <= 60 s), warm {warm_disk['seconds']:.2f} s (target <= 3 s); "
              f"model cache on disk {disk_mb:.0f} MB")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"size": size, "symbols": n_sym, "features_s": feat_s, "rows": rows,
                       "speedup": speed, "cpu_speedup": cpu_speed}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
