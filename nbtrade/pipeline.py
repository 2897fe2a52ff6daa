"""One call from candles to an out-of-sample backtest: features -> labels -> walk-forward -> signals -> engine.

>>> import nbtrade
>>> from nbtrade.pipeline import research
>>> data = nbtrade.planted_market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-04-01", "1h", seed=1)
>>> run = research(data, train_window="30D", test_window="7D")        # doctest: +SKIP
>>> run.walk_forward.score, run.backtest.stats()["Sharpe Ratio"]      # doctest: +SKIP

Every stage is causal: features at bar t use bars up to t; labels look
``horizon`` bars ahead and the walk-forward purges that many bars between
training and test; predictions exist only after the first training window;
the backtest runs on the out-of-sample period only, filling at the next open.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .panel import Market

#: A general-purpose feature set: scale-free returns, volatility, oscillators, volume and cross-asset terms.
DEFAULT_FEATURES: list = [
    ("ret", 1), ("ret", 3), ("ret", 6), ("ret", 24), ("vol", 24), ("vol", 96), ("rsi", 14), ("rsi", 6),
    ("ema", 12), ("ema", 26), ("ema", 96), ("sma", 24), "macd", ("bbands", 20), ("atr", 14), ("adx", 14),
    ("stoch", 14), ("zscore", {"window": 48}), ("volume_ratio", 24), ("volume_ratio", 6), "range",
]


#: Default target share of equity of all symbols together: the rest stays free so that a symbol's
#: entry still finds cash after the other positions grew (else the engine rejects it, and warns).
_SIZE_SHARE = 0.9


@dataclass
class ResearchRun:
    """What :func:`research` produced, stage by stage."""

    features: pd.DataFrame       # (time, (symbol, feature))
    labels: pd.Series            # (time, symbol) -> class
    walk_forward: Any            # WalkForwardResult
    entries: pd.DataFrame
    exits: pd.DataFrame
    backtest: Any                # Result, on the out-of-sample period
    first_oos: pd.Timestamp


def pooled_labels(frames: Mapping[str, pd.DataFrame], horizon: int = 1, dead_zone: float = 0.0) -> pd.Series:
    """Sign-of-forward-return labels of all symbols, indexed ``(time, symbol)``, horizon in ``attrs``."""
    from .model.labels import sign_label

    y = pd.concat({s: pd.Series(np.asarray(sign_label(f["close"], n=horizon, dead_zone=dead_zone)), index=f.index)
                   for s, f in frames.items()}, names=["symbol", "time"]).swaplevel().sort_index()
    y.attrs["horizon"] = horizon
    return y


def research(data: Market | Mapping[str, pd.DataFrame] | pd.DataFrame, features: Sequence | None = None, *,
             horizon: int = 1, dead_zone: float = 0.0, estimator: Any = None, train_window: int | str = "60D",
             test_window: int | str = "7D", retrain: str | None = None, seed: int = 0, cache: Any = None,
             long_threshold: float = 0.55, exit_threshold: float = 0.5, size: float | None = None,
             progress: Callable[[dict], None] | None = None, monitor: Any = None,
             **backtest_kwargs: Any) -> ResearchRun:
    """Features, labels, a purged walk-forward model (one model pooled over symbols) and its backtest.

    Parameters
    ----------
    data : a :class:`~nbtrade.Market`, a dict of OHLCV DataFrames or one DataFrame
    features : feature specs (see :mod:`nbtrade.features`); default :data:`DEFAULT_FEATURES`
        (plus each symbol's correlation to the first symbol when there are several).
    horizon, dead_zone : the label: sign of the ``horizon``-bar forward return, 0 inside the dead zone.
    estimator, train_window, test_window, retrain, seed, cache, progress : passed to
        :func:`nbtrade.model.walkforward.walk_forward` (default estimator: a 100-tree depth-8 forest).
        ``retrain`` defaults to ``"incremental"`` for forests and ``"full"`` for any other estimator
        (e.g. ``LogisticRegression()``); ``run.walk_forward.meta["retrain"]`` says which ran.
    long_threshold, exit_threshold : P(up) at which to enter and below which to exit.
    size : target share of equity per symbol (default ``0.9 / n_symbols``: 10 % stays free for positions
        that grew, so re-entries are not rejected for cash).
    monitor : a :class:`nbtrade.monitor.Monitor` recording the stages (features, walk-forward, backtest).
    **backtest_kwargs : fees, slippage, stops... for :func:`nbtrade.backtest`; an unknown
        name is refused before any work (with "did you mean", e.g. ``stop_loss=`` -> ``sl_stop=``).
    """
    import inspect

    from ._names import check_kwargs
    from .engine import backtest
    from .features import compute_features, stack
    from .model.signals import proba_to_signals
    from .model.walkforward import default_estimator, is_forest, walk_forward

    own = [k for k in inspect.signature(research).parameters if k != "backtest_kwargs"]
    engine = [k for k in inspect.signature(backtest).parameters
              if k not in ("data", "entries", "exits", "short_entries", "short_exits") and not k.startswith("_")]
    check_kwargs("research()", backtest_kwargs, own + engine)
    if estimator is None:
        estimator = default_estimator(seed=seed)
    if retrain is None:  # incremental refits exist for forests only: anything else retrains in full
        retrain = "incremental" if is_forest(estimator) else "full"

    from contextlib import nullcontext

    def stage(name: str) -> Any:
        return monitor.stage(name) if monitor is not None else nullcontext()

    market = data if isinstance(data, Market) else Market(data, copy=False)
    frames = market.to_frames()  # one UTC index for features, labels and the backtest
    specs = list(features) if features is not None else list(DEFAULT_FEATURES)
    if features is None and len(frames) > 1:
        specs.append(("corr", {"window": 72, "to": next(iter(frames))}))
    with stage("features"):
        X = compute_features(market, specs)
        Xs = stack(X)
        Xs.index = Xs.index.set_names(["time", "symbol"])
        y = pooled_labels(frames, horizon, dead_zone).reindex(Xs.index)
        y.attrs["horizon"] = horizon
    with stage("walk-forward"):
        wf = walk_forward(estimator, Xs, y,
                          train_window, test_window, retrain=retrain, seed=seed, cache=cache, progress=progress,
                          impute="drop", features=specs)
    if wf.proba is None:
        raise ValueError("research() needs a classifier with predict_proba (labels are classes)")
    first_oos = wf.predictions.dropna().index.get_level_values(0).min()
    close = market.close
    sig = proba_to_signals(wf.proba, long_threshold=long_threshold, exit_threshold=exit_threshold)

    def cut(df: pd.DataFrame) -> pd.DataFrame:
        return df.reindex(index=close.index, columns=close.columns, fill_value=False).loc[first_oos:]

    entries, exits = cut(sig.entries), cut(sig.exits)
    params = dict(fill="next_open", size=_SIZE_SHARE / len(frames) if size is None else size,
                  size_type="target_percent")
    params.update(backtest_kwargs)
    with stage("backtest"):
        result = backtest(market[first_oos:], entries, exits, **params)
    return ResearchRun(X, y, wf, entries, exits, result, first_oos)
