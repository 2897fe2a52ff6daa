"""Walk-forward optimization: optimize in sample, trade the choice out of sample, fold after fold.

Timeline per fold (bar positions; the same as :func:`nbtrade.walk_forward`)::

    |<------- in-sample [a, b) ------->|<- purge ->|<- embargo ->|<- out-of-sample [s, e) ->|
                                                                  s = b + purge + embargo

Folds start at ``s_0 = train_window + purge + embargo`` and every ``step`` bars
(default ``test_window``; ``step >= test_window`` so out-of-sample windows never
overlap). ``window="rolling"``: ``a = b - train_window``; ``"expanding"``: ``a = 0``.
The in-sample sweep sees bars ``[a, b)`` only. Out of sample, the signal function
runs on bars ``[a, e)`` (the in-sample bars serve as indicator warm-up; a causal
signal at ``t`` reads bars up to ``t``), and the backtest trades bars ``[s, e)``
from ``init_cash``, flat. The stitched out-of-sample equity compounds the folds'
growth. Folds are independent (full refits): with ``client`` each fold's sweep runs
on the cluster; folds themselves run one after another.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd


@dataclass
class WalkForwardOptimizeResult:
    """Per-fold choices and performance, and the stitched out-of-sample equity.

    Attributes
    ----------
    folds : DataFrame
        One row per fold: its windows (``is_start``, ``is_end``, ``oos_start``, ``oos_end``:
        first and last bar times), the chosen parameters, in-sample and out-of-sample
        objective, Sharpe ratio and total return, trials, the in-sample deflated Sharpe
        ratio and PBO.
    oos_equity : Series
        Out-of-sample equity stitched over the folds (quote currency, from the portfolio's initial
        cash): each fold's growth compounded on the previous folds' end value.
    results : list of Result
        Each fold's out-of-sample backtest.
    sweeps : list of SweepResult
        Each fold's in-sample sweep.
    """

    folds: pd.DataFrame
    oos_equity: pd.Series
    results: list = field(default_factory=list)
    sweeps: list = field(default_factory=list)
    params: list = field(default_factory=list)

    @property
    def chosen(self) -> pd.DataFrame:
        """The parameters chosen per fold (their stability over time)."""
        return self.folds[self.params]

    def __repr__(self) -> str:
        return (f"<WalkForwardOptimizeResult {len(self.folds)} folds, out-of-sample return "
                f"{(self.oos_equity.iloc[-1] / self.oos_equity.iloc[0] - 1) * 100 if len(self.oos_equity) else 0:.2f}%>")


def _slice_signal(x: Any, lo: int, hi: int) -> Any:
    if x is None:
        return None
    if hasattr(x, "iloc"):
        return x.iloc[lo:hi]
    return np.asarray(x)[lo:hi]


def walk_forward_optimize(market: Any, signals_fn: Callable, params: Mapping[str, Any] | Sequence[Mapping],
                          train_window: int | str, test_window: int | str, *, step: int | str | None = None,
                          purge: int = 0, embargo: int = 0, window: str = "rolling",
                          maximize: str | Callable = "Sharpe Ratio", constraint: Callable | None = None,
                          max_tries: int | None = None, seed: int | None = 0, n_jobs: int = -1, client: Any = None,
                          chunk_size: int | None = None, **backtest_options: Any) -> WalkForwardOptimizeResult:
    """Walk-forward optimization of a signal function's parameters (module docstring: the timeline).

    Parameters
    ----------
    market, signals_fn, params, maximize, constraint, max_tries, seed, n_jobs, client, chunk_size
        As :func:`nbtrade.sweep` (the in-sample sweep of each fold).
    train_window, test_window, step : int (bars) or duration (``"30D"``)
        In-sample length, out-of-sample length, distance between fold starts.
    purge, embargo : int
        Bars dropped between in-sample and out-of-sample windows.
    window : {"rolling", "expanding"}
    **backtest_options
        Passed to every backtest.

    Returns
    -------
    WalkForwardOptimizeResult
    """
    from ..backtesting import RejectedOrdersWarning, prepare
    from ..model.walkforward import _check_nonneg, _spacing, _to_bars
    from .distributed import resolve_client
    from .run import _check_maximize, _evaluate, as_signals, objective
    from .run import sweep as run_sweep

    market = prepare(market)
    T = market.shape[0]
    spacing = _spacing(market.index) if isinstance(market.index, pd.DatetimeIndex) else None
    train_w = _to_bars(train_window, "train_window", spacing)
    test_w = _to_bars(test_window, "test_window", spacing)
    step_w = test_w if step is None else _to_bars(step, "step", spacing)
    for name, v in (("train_window", train_w), ("test_window", test_w), ("step", step_w)):
        if v < 1:
            raise ValueError(f"{name} must be at least one bar, got {v}")
    if step_w < test_w:
        raise ValueError(f"step ({step_w}) < test_window ({test_w}): out-of-sample windows would overlap")
    purge = _check_nonneg(purge, "purge")
    embargo = _check_nonneg(embargo, "embargo")
    if window not in ("rolling", "expanding"):
        raise ValueError(f"window must be 'rolling' or 'expanding', got {window!r}")
    first = train_w + purge + embargo
    if first >= T:
        raise ValueError(f"windows larger than the data: train_window + purge + embargo = {first} bars leaves "
                         f"no out-of-sample bar of {T}")
    col, extra = _check_maximize(maximize)
    client_obj, owned = resolve_client(client)
    rows, results, sweeps, pieces = [], [], [], []
    level = None  # the stitched curve's value: starts at the portfolio's initial cash
    try:
        for k, s in enumerate(range(first, T, step_w)):
            e = min(s + test_w, T)
            b = s - purge - embargo
            a = max(0, b - train_w) if window == "rolling" else 0
            sw = run_sweep(market[a:b], signals_fn, params, constraint=constraint, max_tries=max_tries, seed=seed,
                           maximize=maximize, n_jobs=n_jobs, client=client_obj, chunk_size=chunk_size,
                           **backtest_options)
            best = sw.best_params
            sig = as_signals(signals_fn(market[a:e], **best))
            sig = {key: _slice_signal(v, s - a, e - a) for key, v in sig.items()}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RejectedOrdersWarning)
                res = _evaluate(market[s:e], backtest_options, sig)
            st = res.stats()
            oos_obj = float(st[col]) if extra is None else objective(res, extra)
            top = sw.table.iloc[0]
            dsr = sw.deflated_sharpe()
            try:
                pbo = sw.pbo().pbo
            except ValueError:
                pbo = np.nan
            idx = market.index
            rows.append({"fold": k, "is_start": idx[a], "is_end": idx[b - 1], "oos_start": idx[s],
                         "oos_end": idx[e - 1], **best,
                         f"IS {col}": float(top[col]), f"OOS {col}": oos_obj,
                         "IS Sharpe Ratio": float(top["Sharpe Ratio"]), "OOS Sharpe Ratio": float(st["Sharpe Ratio"]),
                         "IS Total Return [%]": float(top["Total Return [%]"]),
                         "OOS Total Return [%]": float(st["Total Return [%]"]),
                         "trials": len(sw.table) - len(sw.errors), "deflated_sharpe": dsr, "pbo": pbo})
            growth = res.equity.to_numpy() / res.init_cash
            level = float(res.init_cash) if level is None else level
            pieces.append(pd.Series(level * growth, index=res.index))
            level = level * float(growth[-1])
            results.append(res)
            sweeps.append(sw)
    finally:
        if owned:
            client_obj.close()
    folds = pd.DataFrame(rows).set_index("fold")
    eq = pd.concat(pieces).rename("oos_equity") if pieces else pd.Series(dtype=float, name="oos_equity")
    return WalkForwardOptimizeResult(folds, eq, results, sweeps, list(sweeps[0].params) if sweeps else [])
