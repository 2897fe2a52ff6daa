"""``nbtrade demo``: the whole pipeline on the embedded default market, no internet.

1. start the mock exchange on a free 127.0.0.1 port (deterministic synthetic
   markets with the Binance API, weights and limits; the candles carry a weak,
   planted, learnable component, so the model has something to find);
2. fetch the candles through the real fetcher and rate limiter (live
   dashboard) into an HDF5 store;
3. compute features on all symbols at once;
4. train a walk-forward random forest (purged, incremental, model cache);
5. train the same forest on the same market without the planted component
   (the same noise, drift off): what the forest earns where there is nothing
   to learn;
6. backtest both, a classic indicator strategy and buy-and-hold with fees and
   slippage, fills at the next open;
7. the same indicator strategy long/short on the symbols' USD-M perpetuals at 3x
   (candles, funding history and mark-price candles fetched from the mock's
   Binance futures endpoints): isolated margin, funding paid or received every
   8 hours, liquidation checked on the mark candles;
8. print a comparison table, the perpetual run's funding, liquidations and margin
   usage, and the performance monitor; write an HTML report (the perpetual run's
   own report beside it).

The forest's figures on the planted market are not what to expect on real
candles: the table, the report and the README say so, and the control column
stands beside them.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from . import format as F
from .pipeline import DEFAULT_FEATURES

SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT", "BNB/USDT")
FEATURES = [*DEFAULT_FEATURES, ("corr", {"window": 72, "to": "BTC/USDT"})]
FEES, SLIPPAGE = 0.001, 0.0005
MAIN = "random forest (planted signal)"
CONTROL = "same forest, no planted signal"
PERP = "ema cross, 3x perp"
PERP_LEVERAGE = 3.0
HONESTY = ("The demo market carries a planted, learnable signal (strength {strength}): the forest's figures "
           "show the pipeline finds it, not what to expect on real candles. The column '" + CONTROL + "' is "
           "the same forest on the same noise with the planted component off.")


@dataclass
class DemoConfig:
    symbols: tuple[str, ...] = SYMBOLS
    timeframe: str = "1h"
    origin: str = "2023-09-01"  # 4 months: two walk-forwards (planted, control) in the time of one 6-month run
    now: str = "2024-01-01 00:00:30"
    train_window: str = "60D"
    test_window: str = "7D"
    seed: int = 42
    strength: float = 0.6  # the mock's planted, weak predictable component (0 = pure noise)

    @classmethod
    def quick(cls, seed: int = 42) -> "DemoConfig":
        return cls(symbols=SYMBOLS[:3], origin="2023-11-01", train_window="30D", test_window="7D", seed=seed)


def run_demo(quick: bool = False, seed: int = 42, home: str | None = None, report: str | None = None,
             live: bool | None = None, console: Any = None) -> int:
    """Run the demo; returns a process exit code. ``home`` overrides ``NBTRADE_HOME``."""
    from .engine import RejectedOrdersWarning
    from .engine.signals import one_variant
    from .config import load_settings
    from .monitor import Monitor
    from .report.dashboard import make_console

    console = console or make_console()
    settings = load_settings(flags={"home": home})
    cfg = DemoConfig.quick(seed) if quick else DemoConfig(seed=seed)
    work = settings.home / "demo"
    work.mkdir(parents=True, exist_ok=True)
    mon = Monitor()
    t0 = time.perf_counter()
    console.rule("[bold]nbtrade demo[/bold]: mock exchange → HDF5 → features → walk-forward forest → backtest")

    warm = _start_warmup()  # compiles in other processes while this one fetches
    frames, perps, fetch_summary = _fetch(cfg, work, mon, console, live)
    if warm is not None:
        _finish_warmup(warm, mon, console, live)
    with warnings.catch_warnings(), one_variant():
        # rejected orders (an entry that cash no longer covers once other positions gained) are
        # counted in the comparison table instead. All backtests, spot and perpetual, take one compiled
        # variant of the engine (a first run compiles it once; identical results)
        warnings.simplefilter("ignore", RejectedOrdersWarning)
        run = _research(cfg, frames, settings, mon, console, live)
        with mon.stage("control: no planted signal"):
            control = _research(cfg, _without_signal(cfg, frames), settings, None, console, live,
                                label="no planted signal")
        results = {MAIN: run.backtest, CONTROL: control.backtest, **_baselines(frames, run.first_oos, mon)}
        results[PERP] = _perp_run(perps, run.first_oos, mon)
    wf = run.walk_forward
    elapsed = time.perf_counter() - t0

    table = _comparison(results, cfg.strength)
    console.print(table)
    from .report.perp import perp_table

    console.print(perp_table(results[PERP], title=f"{PERP}: funding, liquidations, margin (USD-M perpetuals, "
                                                  f"isolated margin, funding every 8h)"))
    console.print(mon.table("Where the time went"))
    out = Path(report) if report else settings.reports / "demo.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    perp_out = out.with_name(out.stem + "-perp" + out.suffix)
    _report(out, cfg, results, frames, wf, mon, fetch_summary, perp_out.name)
    results[PERP].report(str(perp_out), title=f"nbtrade demo: {PERP}",
                         subtitle=PERP_NOTE + " " + HONESTY.format(strength=cfg.strength))
    console.print(f"report: [bold]{out}[/bold] (perpetuals: {perp_out.name})   total {F.seconds(elapsed)}")
    return 0


def perp_symbol(symbol: str) -> str:
    """The unified symbol of a spot pair's linear (USD-M) perpetual: ``BTC/USDT`` -> ``BTC/USDT:USDT``."""
    return f"{symbol}:{symbol.split('/')[1]}"


def _fetch(cfg: DemoConfig, work: Path, mon: Any, console: Any, live: bool | None) -> tuple[dict, Any, str]:
    """Spot candles (frames per symbol) and the same symbols' perpetuals (a Market with funding and
    mark-price candles), both fetched from the mock through the real fetcher into the HDF5 store."""
    from concurrent.futures import ThreadPoolExecutor

    from .data.fetch import fetch_ohlcv_sync
    from .data.mock import serve_in_thread
    from .data.store import Store
    from .report.dashboard import Dashboard
    from .timeframes import timeframe_ms

    store_root = work / "store"
    start = pd.Timestamp(cfg.origin, tz="UTC")
    end = pd.Timestamp(cfg.now, tz="UTC").floor(cfg.timeframe.replace("m", "min"))
    expected = int((end - start).value // 1_000_000 // timeframe_ms(cfg.timeframe))
    store = Store(store_root)
    perps = [perp_symbol(s) for s in cfg.symbols]
    with serve_in_thread(symbols=list(cfg.symbols), origin=cfg.origin, now=cfg.now, seed=cfg.seed,
                         strength=cfg.strength) as mock, \
            Dashboard("fetch", fields=("candles",), console=console, live=live, interval=2.0) as dash:
        console.print(f"mock exchange: {mock.url}  store: {store_root}")
        for s in [*cfg.symbols, *perps]:
            dash.add(s, total=expected)

        def on_page(exchange: str) -> Any:
            def update(symbol: str, rows: int, last_open: int) -> None:
                have = store.last_time(exchange, symbol, cfg.timeframe)
                done = 0 if have is None else int((have - start.value // 1_000_000) // timeframe_ms(cfg.timeframe)) + 1
                dash.update(symbol, completed=max(done, rows), candles=rows)
            return update

        with mon.stage("fetch"), ThreadPoolExecutor(1) as pool:
            # the perpetuals meanwhile (their own rate limits): candles, the funding-rate history and the
            # mark-price candles from the USD-M endpoints
            futures = pool.submit(fetch_ohlcv_sync, "binance_futures", perps, cfg.timeframe, start, end,
                                  base_url=mock.url, sink=store, keep=False, on_page=on_page("binance_futures"),
                                  cache=False, funding=True, mark=True)
            result = fetch_ohlcv_sync("binance", list(cfg.symbols), cfg.timeframe, start, end, base_url=mock.url,
                                      sink=store, keep=False, on_page=on_page("binance"), cache=False)
            futures.result()
        for s in [*cfg.symbols, *perps]:
            dash.finish(s)
        summary = result.report.summary()
        dash.note(summary.splitlines()[0] if summary else "")
        with mon.stage("store read"):
            frames = {s: store.read("binance", s, cfg.timeframe, start, end) for s in cfg.symbols}
            perp_market = store.read_market("binance_futures", perps, cfg.timeframe, start, end, funding=True,
                                            mark=True)
    return frames, perp_market, summary


def _start_warmup() -> Any:
    """On a cold numba cache (a first run), start compiling the demo's kernels in the background."""
    from . import warmup

    if not warmup.is_cold():
        return None
    return warmup.Warmup(warmup.DEMO_STEPS, jobs=warmup.idle_jobs(2))


def _finish_warmup(warm: Any, mon: Any, console: Any, live: bool | None) -> None:
    """Wait for the background compile, with its progress: a stage of its own, so the walk-forward's
    folds and ETA measure the folds."""
    from .report.dashboard import Dashboard

    title = "compiling kernels (first run only)"
    with mon.stage(title), Dashboard(title, fields=("kernels",), console=console, live=live, interval=5.0) as dash:
        dash.add("steps", total=len(warm.steps), kernels=0)
        where = f"in {warm.jobs} processes" if warm.jobs else "in a background thread"
        dash.note(f"numba compiles each kernel on first use, here {where} since the fetch began; later runs "
                  "load them from the cache (`nbtrade warmup` compiles every kernel ahead)")
        seconds = warm.wait(lambda name, done, total, compiled: dash.update("steps", completed=done,
                                                                            kernels=compiled))
        dash.note(f"{warm.compiled} kernels compiled and cached in {F.seconds(seconds)} "
                  f"({F.seconds(warm.cpu)} of CPU)")


def _without_signal(cfg: DemoConfig, frames: dict) -> dict:
    """The demo market with the planted component off: the mock's generator, seed and bars, drift 0."""
    from .synthetic import planted_market

    index = next(iter(frames.values())).index
    end = index[-1] + (index[-1] - index[-2])
    plain = planted_market(list(cfg.symbols), cfg.origin, end, cfg.timeframe, seed=cfg.seed, strength=0.0)
    plain = {cfg.symbols[0]: plain} if not isinstance(plain, dict) else plain
    return {s: plain[s].reindex(frames[s].index) for s in frames}


def _research(cfg: DemoConfig, frames: dict, settings: Any, mon: Any, console: Any, live: bool | None,
              label: str = "planted signal") -> Any:
    from .format import number, seconds
    from .model.modelcache import ModelCache
    from .pipeline import research
    from .report.dashboard import Dashboard

    with Dashboard(f"walk-forward, {label}", fields=("fit", "cache", "score"), console=console, live=live,
                   interval=5.0) as dash:
        dash.add("folds")

        def progress(ev: dict) -> None:
            dash.update("folds", completed=ev.get("fold", 0) + 1, total=ev.get("folds"),
                        fit=seconds(ev.get("fit_s", 0.0)), cache="hit" if ev.get("cache_hit") else "miss",
                        score=number(ev.get("score", float("nan"))))

        models = ModelCache(settings.cache / "models")
        run = research(frames, FEATURES, horizon=1, train_window=cfg.train_window, test_window=cfg.test_window,
                       retrain="incremental", seed=cfg.seed, cache=models,
                       progress=progress, monitor=mon, fees=FEES, slippage=SLIPPAGE)
    # counters to disk now (the cache may be collected before the exit hook): `nbtrade cache stats`
    models.cache.save_stats()
    models.outputs.save_stats()
    n_feat = run.features.shape[1] // len(frames)
    s = run.walk_forward.summary()
    console.print(f"features: {n_feat} per symbol x {len(frames)} symbols, {len(run.features):,} bars")
    console.print(f"walk-forward ({label}): {s['folds']} folds, out-of-sample accuracy {number(s['score'])}, "
                  f"fit {seconds(s['fit_s'])}, {s['cache_hits']} cache hits")
    return run


def _baselines(frames: dict, first_oos: pd.Timestamp, mon: Any) -> dict[str, Any]:
    """A classic indicator strategy and buy-and-hold on the same out-of-sample period and sizing.

    Signals are computed on the full history (indicators need their warm-up; all
    are causal), then cut to ``[first out-of-sample bar, end)``.
    """
    import numpy as np

    from . import indicators as ind
    from .engine import backtest

    close = pd.DataFrame({s: f["close"] for s, f in frames.items()})
    # 0.5 % of equity stays in cash so the last symbol's entry can pay fees and slippage
    common = dict(fees=FEES, slippage=SLIPPAGE, fill="next_open", size=0.995 / len(frames),
                  size_type="target_percent")
    oos = {s: f.loc[first_oos:] for s, f in frames.items()}
    results = {}
    with mon.stage("backtest"):
        fast, slow = ind.ema(close, 12), ind.ema(close, 48)
        cross_up = ((fast > slow) & (fast.shift(1) <= slow.shift(1))).loc[first_oos:]
        cross_dn = ((fast < slow) & (fast.shift(1) >= slow.shift(1))).loc[first_oos:]
        # row-major bars x symbols, as the forest's signals: numba compiles the engine once per array
        # layout and read-only flag, so a cold first run then compiles it once for all three backtests
        cross_up, cross_dn = (pd.DataFrame(np.ascontiguousarray(x.to_numpy()), index=x.index, columns=x.columns,
                                           copy=False) for x in (cross_up, cross_dn))
        results["ema 12/48 cross"] = backtest(oos, cross_up, cross_dn, sl_stop=0.05, **common)
        first = pd.DataFrame(False, index=close.index, columns=close.columns).loc[first_oos:]
        first.iloc[0] = True
        # exits as a frame like the entries (None would pass a writable stand-in: another compile)
        results["buy & hold"] = backtest(oos, first, first & False, **common)
    return results


PERP_NOTE = (f"'{PERP}': the ema 12/48 cross long and short on the same symbols' USD-M perpetuals (the mock's "
             f"futures candles, not the spot ones), {PERP_LEVERAGE:g}x isolated margin, funding every 8 hours, "
             "liquidation on the mark-price candles.")


def _perp_run(perps: Any, first_oos: pd.Timestamp, mon: Any) -> Any:
    """The ema 12/48 cross long/short on the perpetuals over the out-of-sample period: 3x, isolated,
    funding from the fetched history, liquidation checked on the fetched mark candles; each symbol's
    margin 0.8 / n of equity (a flip from long to short needs free margin while the other positions
    may have grown: 0.9 / n had some rejected), so notionals are 3x that."""
    import numpy as np

    from . import indicators as ind
    from .engine import backtest

    close = perps.close
    with mon.stage("backtest"):
        fast, slow = ind.ema(close, 12), ind.ema(close, 48)
        up = ((fast > slow) & (fast.shift(1) <= slow.shift(1))).loc[first_oos:]
        down = ((fast < slow) & (fast.shift(1) >= slow.shift(1))).loc[first_oos:]
        up, down = (pd.DataFrame(np.ascontiguousarray(x.to_numpy()), index=x.index, columns=x.columns, copy=False)
                    for x in (up, down))
        return backtest(perps[first_oos:], up, down, down, up, fees=FEES, slippage=SLIPPAGE, fill="next_open",
                        size=0.8 * PERP_LEVERAGE / close.shape[1], size_type="target_percent", instrument="perp",
                        leverage=PERP_LEVERAGE)


def warm_perp() -> None:
    """Run :func:`_perp_run` (the engine with mark candles and funding) on a small synthetic market shaped like
    the demo's perpetuals, compiling what it uses; for ``nbtrade.warmup``: inside the demo's
    :func:`nbtrade.one_variant` block (the demo's variant) and outside it (the one a user's perpetual run takes)."""
    from .engine.run import prepare_data
    from .monitor import Monitor
    from .synthetic import market

    frames = market(["BTC/USDT:USDT", "ETH/USDT:USDT"], "2024-01-01", "2024-01-21", "1h", seed=1)
    for f in frames.values():
        for k in ("open", "high", "low", "close"):
            f["mark_" + k] = f[k]
    perps = prepare_data(frames)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _perp_run(perps, perps.index[100], Monitor(enabled=False))


def _comparison(results: dict[str, Any], strength: float) -> Any:
    from rich.table import Table

    from .format import stat

    rows = ["Total Return [%]", "CAGR [%]", "Sharpe Ratio", "Sortino Ratio", "Max. Drawdown [%]", "Win Rate [%]",
            "Profit Factor", "# Trades", "# Rejected Orders", "Exposure Time [%]", "Fees Paid [$]",
            "Funding Paid [$]", "# Liquidations"]
    stats = {name: r.stats() for name, r in results.items()}
    table = Table(title="Strategies on the out-of-sample period (fees 10 bp, slippage 5 bp, next-open fills)",
                  caption=HONESTY.format(strength=strength) + " " + PERP_NOTE, caption_justify="left")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for name, r in results.items():
        stats[name]["# Liquidations"] = len(r.liquidations)
    for row in rows:
        table.add_row(row, *(stat(row, stats[name].get(row, float("nan"))) for name in results))
    return table


def _report(path: Path, cfg: DemoConfig, results: dict, frames: dict, wf: Any, mon: Any, fetch_summary: str,
            perp_report: str | None = None) -> None:
    from . import __version__
    from .cache import fingerprint

    main = results[MAIN]
    main.report(
        str(path), title="nbtrade demo: walk-forward random forest on a market with a planted, learnable signal",
        subtitle=HONESTY.format(strength=cfg.strength) + " " + PERP_NOTE + (
            f" Its funding, liquidations and margin usage: {perp_report} beside this file." if perp_report else ""),
        label=MAIN,
        benchmarks={k: r.equity for k, r in results.items() if k != MAIN},
        stats=pd.DataFrame({name: r.stats().full() for name, r in results.items()}),
        importances=wf.mean_importances, folds=wf.folds,
        assumptions={**main.assumptions, "data": fetch_summary.splitlines()[0] if fetch_summary else ""},
        reproducibility={"seed": cfg.seed, "nbtrade": __version__, "data hash": fingerprint(frames)[:16],
                         "command": "nbtrade demo", **wf.meta.get("versions", {})},
        monitor=mon.summary())
