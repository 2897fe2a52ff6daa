"""nbtrade: a Numba-accelerated, event-driven backtester and research pipeline for crypto.

The public API is re-exported here lazily, so ``import nbtrade`` (and the CLI)
start fast: numba, pandas and friends load on first use of what needs them.
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # modules
    "indicators": "nbtrade.indicators",
    "stats": "nbtrade.stats",
    "rolling": "nbtrade.rolling",
    "synthetic": "nbtrade.synthetic",
    "cache": "nbtrade.cache",
    "monitor": "nbtrade.monitor",
    "model": "nbtrade.model",
    # synthetic markets
    "market": "nbtrade.synthetic",
    "planted_market": "nbtrade.synthetic",
    # features
    "ema_many": "nbtrade.stats",
    "sma_many": "nbtrade.stats",
    "compute_features": "nbtrade.features",
    "FeatureSet": "nbtrade.features",
    "FeatureCache": "nbtrade.features",
    # data
    "fetch_ohlcv": "nbtrade.data.fetch",
    "fetch_ohlcv_sync": "nbtrade.data.fetch",
    "fetch_funding_rates": "nbtrade.data.fetch",
    "fetch_funding_rates_sync": "nbtrade.data.fetch",
    "fetch_mark_ohlcv": "nbtrade.data.fetch",
    "fetch_mark_ohlcv_sync": "nbtrade.data.fetch",
    "unified_symbol": "nbtrade.data.symbols",
    "fetch_filters": "nbtrade.data.fetch",
    "fetch_filters_sync": "nbtrade.data.fetch",
    "Store": "nbtrade.data.store",
    "import_csv": "nbtrade.data.io",
    "export_csv": "nbtrade.data.io",
    "import_bulk": "nbtrade.data.bulk",
    "import_table": "nbtrade.data.formats",
    "export_table": "nbtrade.data.formats",
    "resample_store": "nbtrade.data.resample",
    "serve_in_thread": "nbtrade.data.mock",
    # model
    "walk_forward": "nbtrade.model.walkforward",
    "research": "nbtrade.pipeline",
    "ModelCache": "nbtrade.model.modelcache",
    "SlidingForest": "nbtrade.model.forest",
    "sign_label": "nbtrade.model.labels",
    "forward_return": "nbtrade.model.labels",
    "triple_barrier": "nbtrade.model.labels",
    "proba_to_signals": "nbtrade.model.signals",
    # backtest
    "backtest": "nbtrade.engine",
    "backtest_weights": "nbtrade.engine",
    "backtest_callback": "nbtrade.engine",
    "backtest_chunked": "nbtrade.engine.chunked",
    "one_variant": "nbtrade.engine.signals",
    "Strategy": "nbtrade.engine",
    "Backtest": "nbtrade.engine",
    "crossover": "nbtrade.engine",
    "prepare": "nbtrade.engine",
    "Inputs": "nbtrade.engine",
    "RunConfig": "nbtrade.engine",
    "Market": "nbtrade.panel",
    "resample_apply": "nbtrade.multitimeframe",
    "informative": "nbtrade.multitimeframe",
    "higher_timeframes": "nbtrade.multitimeframe",
    "RejectedOrdersWarning": "nbtrade.engine",
    "Result": "nbtrade.result",
    # margin, liquidation, funding (perpetuals; leveraged spot)
    "Tiers": "nbtrade.margin",
    "DEFAULT_TIERS": "nbtrade.margin",
    "liquidation_price": "nbtrade.margin",
    "load_result": "nbtrade.saved",
    # report, caches, checks
    "Cache": "nbtrade.cache",
    "cached": "nbtrade.cache",
    "Monitor": "nbtrade.monitor",
    "Dashboard": "nbtrade.report.dashboard",
    "write_report": "nbtrade.report.html",
    "check_lookahead": "nbtrade.lookahead",
    "LookaheadError": "nbtrade.lookahead",
    "check_recursive": "nbtrade.lookahead",
    "load_settings": "nbtrade.config",
    # parameter sweeps (nbtrade.sweep is a callable module: nbtrade.sweep(market, fn, params))
    "sweep": "nbtrade.sweep",
    "SweepResult": "nbtrade.sweep.result",
    "walk_forward_optimize": "nbtrade.sweep.walkforward",
    "deflated_sharpe_ratio": "nbtrade.sweep.overfit",
    "pbo_cscv": "nbtrade.sweep.overfit",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nbtrade' has no attribute {name!r}")
    mod = import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
