"""Walk-forward training with purging and embargo: out-of-sample predictions, no look-ahead.

Timeline (time positions; for a panel with a ``(time, symbol)`` MultiIndex a
position is a distinct timestamp, all symbols of it together)::

    |<------- train [a, b) ------->|<- purge ->|<- embargo ->|<- test [s, s + test_window) ->|
                                                              s = b + purge + embargo

A prediction at bar t (made at the close of t, from features that use bars up
to t) comes from a model whose training rows i all satisfy
``i + horizon <= b - 1 + purge < s - embargo <= t``: every training label was
already known. Hence ``purge >= horizon`` is enforced: a shorter purge raises
``ValueError`` (or only warns with ``on_short_purge="warn"``, for studying leakage).
``embargo`` drops extra bars before each test segment (a safety gap against
serial correlation; walk-forward never trains on data after the test segment,
so no embargo is needed on the other side).

Folds start at ``s_0 = train_window + purge + embargo`` and every ``step``
bars (default ``test_window``); each test segment is predicted with one batched
``predict_proba`` (or ``predict``) call.
"""
from __future__ import annotations

import platform
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..cache import fingerprint, make_key
from ..timeframes import to_epoch_ms
from .forest import DriftPolicy, SlidingForest, fast_importances, fast_predict_proba, is_forest
from .labels import label_horizon
from .modelcache import ModelCache, ModelStep, library_versions
from .._names import public_dir, suggest_kwargs

__all__ = ["walk_forward", "WalkForwardResult", "default_estimator"]


def default_estimator(seed: int = 0, n_jobs: int = -1) -> Any:
    """RandomForestClassifier(n_estimators=100, max_depth=8): the walk-forward default."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, max_depth=8, random_state=seed, n_jobs=n_jobs)


@dataclass
class WalkForwardResult:
    """Out-of-sample output of :func:`walk_forward`.

    Attributes
    ----------
    predictions : Series aligned with X's index; NaN before the first test bar
        (and for rows without usable features).
    proba : DataFrame (one column per class) for classifiers, else None.
    folds : DataFrame, one row per fold: windows (positions and times), rows,
        score, fit/predict seconds, cache hit, retrained flag and reason.
    feature_importances : DataFrame, folds x features (NaN when the estimator has none).
    meta : seed, package versions, data hash, parameters.
    y : the labels (for scoring).
    """

    predictions: pd.Series
    proba: pd.DataFrame | None
    folds: pd.DataFrame
    feature_importances: pd.DataFrame
    meta: dict[str, Any]
    y: pd.Series = field(repr=False)

    @property
    def score(self) -> float:
        """Out-of-sample accuracy (classifier) or R^2 (regressor) over every predicted bar with a known label."""
        mask = self.predictions.notna() & self.y.notna()
        p, t = self.predictions[mask].to_numpy(), self.y[mask].to_numpy()
        if not mask.any():
            return float("nan")
        if self.meta["task"] == "classification":
            return float(np.mean(p == t))
        return float(1.0 - np.sum((t - p) ** 2) / np.sum((t - t.mean()) ** 2))

    @property
    def mean_importances(self) -> pd.Series:
        return self.feature_importances.mean().sort_values(ascending=False)

    def summary(self) -> dict[str, Any]:
        f = self.folds
        return {"folds": len(f), "score": self.score, "fit_s": float(f["fit_s"].sum()),
                "predict_s": float(f["predict_s"].sum()), "cache_hits": int(f["cache_hit"].sum()),
                "retrained": int(f["retrained"].sum()), "seed": self.meta["seed"]}

    def signals(self, **kwargs: Any) -> Any:
        """Entries/exits from the probabilities: see :func:`nbtrade.model.signals.proba_to_signals`."""
        from .signals import proba_to_signals

        if self.proba is None:
            raise ValueError("signals need class probabilities (a classifier)")
        return proba_to_signals(self.proba, **kwargs)


def _to_bars(value: Any, arg: str, spacing: pd.Timedelta | None) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{arg} must be a number of bars or a duration, got {value!r}")
    if isinstance(value, (int, np.integer)):
        bars = int(value)
    else:
        try:
            delta = pd.Timedelta(value)
        except (TypeError, ValueError):
            raise ValueError(f"{arg} must be a number of bars or a duration such as '7D', got {value!r}") from None
        if spacing is None:
            raise ValueError(f"{arg}={value!r} is a duration but X has no DatetimeIndex; give bars")
        bars = int(delta // spacing)
    return bars


def _check_nonneg(value: Any, arg: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{arg} must be an int >= 0 (bars), got {value!r}")
    return int(value)


def _time_positions(index: pd.Index) -> tuple[np.ndarray, pd.Index]:
    """Per-row time position and the distinct times; rows must be sorted by time."""
    if isinstance(index, pd.MultiIndex):
        times = index.get_level_values(0)
        if not times.is_monotonic_increasing:
            raise ValueError("X with a MultiIndex must be sorted by its first level (time)")
        codes, uniques = pd.factorize(times, sort=False)
        return codes.astype(np.int64), pd.Index(uniques)
    if not index.is_monotonic_increasing or not index.is_unique:
        raise ValueError("X's index must be unique and increasing (time order)")
    return np.arange(len(index), dtype=np.int64), index


def _spacing(times: pd.Index) -> pd.Timedelta | None:
    """Smallest distance between bars; the index's own unit (s, ms, us or ns) read as such."""
    if isinstance(times, pd.DatetimeIndex) and len(times) > 1:
        return pd.Timedelta(np.min(np.diff(times.asi8)), unit=times.unit)
    return None


def _utc(index: pd.Index) -> pd.Index:
    """A DatetimeIndex as UTC instants (naive means UTC); other indexes unchanged."""
    if isinstance(index, pd.DatetimeIndex):
        return index.tz_convert("UTC") if index.tz is not None else index.tz_localize("UTC")
    return index


def _time_key(index: pd.Index) -> Any:
    """Content key of an index: times as UTC epoch ms, whatever their resolution or time zone."""
    if isinstance(index, pd.MultiIndex):
        return [_time_key(index.get_level_values(i)) for i in range(index.nlevels)]
    if isinstance(index, pd.DatetimeIndex):
        return to_epoch_ms(index, "X's index")
    return index.to_numpy()


def _stamp_key(stamp: Any) -> Any:
    return to_epoch_ms(stamp) if isinstance(stamp, pd.Timestamp) else str(stamp)


def _prepare_xy(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, pd.Index, list[str], pd.Series]:
    if isinstance(X, pd.DataFrame):
        index, columns = X.index, [str(c) for c in X.columns]
        try:
            Xv = X.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("X must hold numeric features") from None
    else:
        try:
            Xv = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError("X must hold numeric features (DataFrame or 2-D array)") from None
        if Xv.ndim != 2:
            raise ValueError(f"X must be 2-D (rows x features), got shape {Xv.shape}")
        index = y.index if isinstance(y, pd.Series) else pd.RangeIndex(Xv.shape[0])
        columns = [f"f{i}" for i in range(Xv.shape[1])]
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError("y must be one label column (a Series or 1-D array)")
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        if len(y) != len(index):
            raise ValueError(f"X and y are misaligned: {len(index)} rows vs {len(y)} labels")
        if isinstance(X, pd.DataFrame) and not _utc(y.index).equals(_utc(index)):
            raise ValueError("X and y are misaligned: their indexes differ (align them, e.g. y = y.reindex(X.index))")
        ys = pd.Series(y.to_numpy(), index=index, name=y.name or "label")
    else:
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise ValueError(f"y must be 1-D, got shape {arr.shape}")
        if arr.shape[0] != Xv.shape[0]:
            raise ValueError(f"X and y are misaligned: {Xv.shape[0]} rows vs {arr.shape[0]} labels")
        ys = pd.Series(arr, index=index, name="label")
    if Xv.shape[0] == 0 or Xv.shape[1] == 0:
        raise ValueError(f"X is empty (shape {Xv.shape})")
    if np.isinf(Xv).any():
        raise ValueError("X contains infinite values")
    return Xv, ys.to_numpy(), index, columns, ys


def _impute_ffill(Xv: np.ndarray, index: pd.Index) -> np.ndarray:
    df = pd.DataFrame(Xv, index=index)
    if isinstance(index, pd.MultiIndex):
        return df.groupby(level=list(range(1, index.nlevels)), sort=False).ffill().to_numpy()
    return df.ffill().to_numpy()


def _fold_bounds(s: int, train_w: int, test_w: int, purge: int, embargo: int, window: str,
                 T: int) -> tuple[int, int, int]:
    """``(a, b, e)``: training times ``[a, b)`` and test times ``[s, e)`` of the fold testing from ``s``."""
    e = min(s + test_w, T)
    b = s - purge - embargo
    a = max(0, b - train_w) if window == "rolling" else 0
    return a, b, e


def _train_set(arrays: tuple, impute: str | None, r0: int,
               r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Usable training rows ``[r0, r1)``: ``(X, y, kept mask, training medians or None)``."""
    Xv, yv, x_ok, y_ok = arrays
    keep = y_ok[r0:r1] & x_ok[r0:r1]
    Xtr, ytr = Xv[r0:r1][keep], yv[r0:r1][keep]
    med = None
    if impute == "median" and len(Xtr):
        med = np.nanmedian(Xtr, axis=0)
        med = np.where(np.isnan(med), 0.0, med)
        Xtr = np.where(np.isnan(Xtr), med, Xtr)
    return Xtr, ytr, keep, med


def _test_set(arrays: tuple, impute: str | None, med: np.ndarray | None, q0: int,
              q1: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the test segment ``[q0, q1)`` that get a prediction, and their features."""
    Xv, _, x_ok, _ = arrays
    Xte = Xv[q0:q1]
    ok_te = x_ok[q0:q1]
    if impute == "median":
        Xte = np.where(np.isnan(Xte), med if med is not None else 0.0, Xte)
        ok_te = np.ones(q1 - q0, dtype=bool)
    return np.flatnonzero(ok_te) + q0, Xte[ok_te]


def _predict(model: Any, Xq: np.ndarray, task: str) -> dict[str, Any]:
    out = {"imp": fast_importances(model)}
    if len(Xq):
        if task == "classification" and hasattr(model, "predict_proba"):
            P = fast_predict_proba(model, Xq)
            out["P"] = model.predict_proba(Xq) if P is None else P
            out["classes"] = np.asarray(model.classes_)
        else:
            out["p"] = model.predict(Xq)
    return out


def _fit_predict(arrays: tuple, base: Any, impute: str | None, task: str, r0: int, r1: int, q0: int,
                 q1: int) -> tuple[Any, dict, float, float]:
    """One full-refit fold (a Dask task): ``(model, outputs, fit seconds, predict seconds)``."""
    from sklearn.base import clone

    Xtr, ytr, _, med = _train_set(arrays, impute, r0, r1)
    t0 = time.perf_counter()
    model = clone(base).fit(Xtr, ytr)
    t1 = time.perf_counter()
    out = _predict(model, _test_set(arrays, impute, med, q0, q1)[1], task)
    return model, out, t1 - t0, time.perf_counter() - t1


@suggest_kwargs
def walk_forward(estimator: Any, X: Any, y: Any, train_window: int | str, test_window: int | str,
                 step: int | str | None = None, purge: int | None = None, embargo: int = 0,
                 window: str = "rolling", retrain: str = "full", horizon: int | None = None,
                 seed: int | None = 0, cache: ModelCache | bool | str | None = None,
                 progress: Callable[[dict[str, Any]], None] | None = None, *,
                 impute: str | None = None, refresh: int | float = 0.2, policy: DriftPolicy | None = None,
                 on_short_purge: str = "error", features: Any = None, min_train: int = 20,
                 client: Any = None) -> WalkForwardResult:
    """Train, step forward, predict: out-of-sample predictions for every bar after the first window.

    Parameters
    ----------
    estimator : scikit-learn estimator or None
        Cloned for every fit; None means :func:`default_estimator`.
    X : DataFrame or 2-D array, rows in time order
        Features; value at row t must use data up to t only. A ``(time, symbol)``
        MultiIndex pools symbols: windows then count distinct timestamps.
    y : Series or 1-D array aligned with X
        Labels; NaN = unknown (dropped from training, still predicted).
    train_window, test_window, step : int bars or durations ('180D', '7D')
        Training window length, test segment length, distance between folds
        (default ``test_window``; must be >= ``test_window``).
    purge : int, optional
        Bars dropped between training and test; default and minimum ``horizon``.
    embargo : int
        Extra bars dropped before each test segment.
    window : 'rolling' (last ``train_window`` bars) or 'expanding' (all bars so far).
    retrain : 'full' refits a clone each fold; 'incremental' (forests only) uses a
        :class:`~nbtrade.model.forest.SlidingForest`, replacing ``refresh`` trees per fold.
    horizon : int, optional
        Bars the label looks ahead; default ``y.attrs['horizon']`` (set by
        :mod:`nbtrade.model.labels`). Required when y does not record it.
    seed : int or None
        Sets the estimator's ``random_state`` (and the sliding forest's tree seeds);
        None keeps the estimator's own.
    cache : ModelCache, True (default disk cache), a path, or None
        Reuse fitted models: a warm re-run fits nothing.
    progress : callable receiving a dict per fold (fold, folds, fit_s, cache_hit, ...).
    impute : None (NaN in X raises), 'drop' (rows with NaN get no training/prediction),
        'ffill' (causal forward fill, per symbol, then drop), 'median' (each fold's
        training medians, applied to that fold).
    refresh : trees replaced per incremental step (int, or share of n_estimators).
    policy : DriftPolicy, optional
        Retrain only on drift/performance drop; other folds reuse the last model.
    on_short_purge : 'error' (default) or 'warn' when ``purge < horizon``.
    features : feature-set spec, recorded in cache keys and meta.
    min_train : fewest usable training rows a fold needs.
    client : dask.distributed.Client or str, optional
        Fit the folds on a Dask cluster (a Client or a scheduler address; ``[dask]`` extra): the
        features and labels are scattered once to every worker, each fold's fit and test-segment
        prediction is one task, and the result equals the local run (same seeds, same data). Only
        ``retrain="full"`` without ``policy``: incremental and drift-triggered folds depend on the
        previous fold's model and stay sequential (a warning says so and they run here).

    Returns
    -------
    WalkForwardResult
    """
    from sklearn.base import clone, is_classifier

    t_start = time.perf_counter()
    if estimator is None:
        estimator = default_estimator(seed if seed is not None else 0)
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise TypeError(f"estimator must be a scikit-learn estimator (fit/predict), got {type(estimator).__name__}")
    if window not in ("rolling", "expanding"):
        raise ValueError(f"window must be 'rolling' or 'expanding', got {window!r}")
    if retrain not in ("full", "incremental"):
        raise ValueError(f"retrain must be 'full' or 'incremental', got {retrain!r}")
    if retrain == "incremental" and not is_forest(estimator):
        raise ValueError("retrain='incremental' needs a RandomForest*/ExtraTrees* estimator")
    if impute not in (None, "drop", "ffill", "median"):
        raise ValueError(f"impute must be None, 'drop', 'ffill' or 'median', got {impute!r}")
    if on_short_purge not in ("error", "warn"):
        raise ValueError(f"on_short_purge must be 'error' or 'warn', got {on_short_purge!r}")
    if policy is not None and not isinstance(policy, DriftPolicy):
        raise TypeError("policy must be a DriftPolicy or None")
    if client is not None and (retrain != "full" or policy is not None):
        warnings.warn("walk_forward(client=...): incremental and drift-triggered folds depend on the previous "
                      "fold's model and run sequentially here; only retrain='full' without policy runs folds on "
                      "the cluster", UserWarning, stacklevel=2)
        client = None

    Xv, yv, index, columns, ys = _prepare_xy(X, y)
    tpos, times = _time_positions(index)
    T = len(times)
    spacing = _spacing(times)
    train_w = _to_bars(train_window, "train_window", spacing)
    test_w = _to_bars(test_window, "test_window", spacing)
    step_w = test_w if step is None else _to_bars(step, "step", spacing)
    if train_w < 1 or test_w < 1:
        raise ValueError(f"train_window and test_window must be >= 1 bar, got {train_w} and {test_w}")
    if step_w < test_w:
        raise ValueError(f"step ({step_w} bars) must be >= test_window ({test_w}); overlapping test segments "
                         "would be predicted twice")
    embargo = _check_nonneg(embargo, "embargo")
    if horizon is None:
        horizon = label_horizon(y)
        if horizon is None:
            raise ValueError("horizon is unknown: pass horizon= (bars the label looks ahead, e.g. 1 for the next "
                             "bar's direction) or build y with nbtrade.model.labels")
    horizon = _check_nonneg(horizon, "horizon")
    purge = horizon if purge is None else _check_nonneg(purge, "purge")
    if purge < horizon:
        msg = (f"purge ({purge}) < label horizon ({horizon}): the last training labels overlap the test "
               "segment (look-ahead)")
        if on_short_purge == "error":
            raise ValueError(msg + "; set purge >= horizon")
        warnings.warn(msg, stacklevel=2)
    first = train_w + purge + embargo
    if first >= T:
        raise ValueError(f"windows larger than the data: train_window + purge + embargo = {first} bars leaves "
                         f"nothing to test in {T} bars")

    # features -> usable rows
    nan_x = np.isnan(Xv)
    if impute is None and nan_x.any():
        r, c = np.argwhere(nan_x)[0]
        raise ValueError(f"X has NaN features (first at row {index[r]!r}, column {columns[c]!r}); "
                         "drop warm-up rows, or pass impute='drop'|'ffill'|'median'")
    if impute == "ffill":
        Xv = _impute_ffill(Xv, index)
        nan_x = np.isnan(Xv)
    x_ok = ~nan_x.any(axis=1) if impute in ("drop", "ffill") else np.ones(len(Xv), dtype=bool)
    y_ok = ~pd.isna(yv)
    task = "classification" if is_classifier(estimator) else "regression"
    if task == "regression":
        yv = yv.astype(np.float64)

    base = clone(estimator)
    if seed is not None and "random_state" in base.get_params():
        base.set_params(random_state=int(seed))
    if retrain == "incremental":
        SlidingForest(base, refresh=refresh)  # validates refresh before any work
    if isinstance(cache, (str, bytes)) or hasattr(cache, "__fspath__"):
        cache = ModelCache(cache)
    elif cache is True:
        cache = ModelCache(True)
    elif cache is not None and not isinstance(cache, ModelCache):
        raise TypeError("cache must be a ModelCache, True, a path or None")

    # time position -> row range (rows sorted by time)
    bounds = np.searchsorted(tpos, np.arange(T + 1), side="left")
    starts = list(range(first, T, step_w))
    n = len(Xv)
    pred = np.full(n, np.nan, dtype=object if task == "classification" else np.float64)
    pred_set = np.zeros(n, dtype=bool)
    proba_parts: list[tuple[slice, np.ndarray, np.ndarray]] = []
    classes_all: list[Any] = []
    rows, importances = [], []
    ref_X: np.ndarray | None = None
    fit_fold = -1
    feat_fp = fingerprint((columns, features))

    specs: dict[str, tuple[str, str | None, int, int]] = {}  # model key -> (kind, parent key, r0, r1)
    loaded: dict[str, Any] = {}                                # the chain head, in memory

    arrays = (Xv, yv, x_ok, y_ok)

    def train_set(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        return _train_set(arrays, impute, r0, r1)

    def fit(key: str) -> Any:
        """Fit the model of ``key`` from its spec (an update first materializes its parent) and cache it."""
        kind, parent, r0, r1 = specs[key]
        Xtr, ytr, _, _ = train_set(r0, r1)
        t0 = time.perf_counter()
        if kind == "full":
            fitted = clone(base).fit(Xtr, ytr)
        elif kind == "sliding":
            fitted = SlidingForest(base, refresh=refresh, seed=int(seed or 0)).fit(Xtr, ytr)
        else:
            fitted = materialize(parent)[0].update(Xtr, ytr)
        if cache is not None:
            delta = getattr(fitted, "delta_", None)
            if kind == "update" and delta is not None:  # store what the step added, not the forest again
                cache.put_step(key, parent, delta, cost=time.perf_counter() - t0)
            else:
                cache.put(key, fitted, cost=time.perf_counter() - t0)
        return fitted

    def materialize(key: str) -> tuple[Any, bool]:
        """The model of ``key``: in memory, from the cache (a step applied to its parent), or fitted."""
        steps: list[Any] = []  # cached steps from ``key`` back towards a model we hold
        k = key
        while True:
            if k in loaded:  # the model kept from the previous fold
                model, hit = loaded[k], False
                break
            got = cache.get(k) if cache is not None else None
            if isinstance(got, ModelStep) and got.parent == specs[k][1]:
                steps.append(got.delta)
                k = got.parent
                continue
            if got is not None and not isinstance(got, ModelStep):
                model, hit = got, True
                break
            if not steps:
                return fit(key), False
            model, hit = fit(k), False  # a parent that is gone: refit it, then replay the cached steps
            break
        try:
            for delta in reversed(steps):
                model = model.apply(delta)
        except (AttributeError, ValueError):  # a step that does not fit its parent: never use it
            return fit(key), False
        return model, hit or bool(steps)

    # Dask: every fold's fit and prediction submitted at once (full refits are independent)
    remote: dict[int, Any] = {}
    client_obj, owned, shared = None, False, None
    if client is not None:
        from ..sweep.distributed import resolve_client

        client_obj, owned = resolve_client(client)
        shared = tuple(client_obj.scatter(list(arrays), broadcast=True))
        for k, s in enumerate(starts):
            a, b, e = _fold_bounds(s, train_w, test_w, purge, embargo, window, T)
            remote[k] = client_obj.submit(_fit_predict, shared, base, impute, task, int(bounds[a]),
                                          int(bounds[b]), int(bounds[s]), int(bounds[e]), pure=False)

    model_key: str | None = None
    try:
        for k, s in enumerate(starts):
            a, b, e = _fold_bounds(s, train_w, test_w, purge, embargo, window, T)
            r0, r1 = int(bounds[a]), int(bounds[b])
            q0, q1 = int(bounds[s]), int(bounds[e])
            Xtr, ytr, keep, med = train_set(r0, r1)
            if len(ytr) < min_train:
                raise ValueError(f"fold {k}: only {len(ytr)} usable training rows (< min_train={min_train}); "
                                 "use a longer train_window or fewer NaN labels/features")
            if task == "classification" and len(np.unique(ytr)) < 2:
                raise ValueError(f"fold {k}: training labels hold a single class; a classifier needs two or more")

            # retrain decision (the policy sees training windows and already-known outcomes only)
            retrained, reason = True, "first" if model_key is None else "scheduled"
            if model_key is not None and policy is not None:
                known_rows = np.arange(int(bounds[starts[fit_fold]]), r1)
                known_rows = known_rows[pred_set[known_rows] & y_ok[known_rows]]
                hits = (pred[known_rows] == yv[known_rows]).astype(float) if task == "classification" else \
                    -np.abs(pred[known_rows].astype(float) - yv[known_rows].astype(float))
                retrained, reason = policy.decide(ref_X, Xtr, k - fit_fold, hits)
            if retrained:
                # by time (epoch ms, any resolution or zone), so prepending history still hits
                win = (_stamp_key(times[a]), _stamp_key(times[b - 1]))
                if retrain == "full" or model_key is None:
                    kind, parent = ("sliding", None) if retrain == "incremental" else ("full", None)
                else:
                    kind, parent = "update", model_key
                if cache is not None:
                    model_key = cache.key(base, Xtr, ytr, times=tpos[r0:r1][keep], features=feat_fp, window=win,
                                          extra=(kind, parent, refresh if retrain == "incremental" else None,
                                                 seed, impute))
                else:
                    model_key = make_key(kind, parent, k)
                specs[model_key] = (kind, parent, r0, r1)
                ref_X, fit_fold = Xtr, k

            # one batched prediction for the test segment (outputs cached too: a warm run loads no model)
            sel, Xq = _test_set(arrays, impute, med, q0, q1)
            out_key = make_key("wf-out", model_key, fingerprint(Xq), task) if cache is not None else None
            out = cache.outputs.get(out_key) if cache is not None else None
            fit_s = predict_s = 0.0
            if out is not None:
                hit = True
            else:
                t0 = time.perf_counter()
                if k in remote:  # fitted and predicted on a worker (the same fit, the same numbers)
                    model, out, fit_s, predict_s = remote.pop(k).result()
                    hit = False
                    if cache is not None:
                        cache.put(model_key, model, cost=fit_s)
                        cache.outputs.set(out_key, out, cost=fit_s + predict_s)
                if out is None:
                    model, hit = materialize(model_key)
                    loaded = {model_key: model}
                    fit_s = time.perf_counter() - t0
                    t1 = time.perf_counter()
                    out = _predict(model, Xq, task)
                    predict_s = time.perf_counter() - t1
                    if cache is not None:
                        cache.outputs.set(out_key, out, cost=fit_s + predict_s)
            score = float("nan")
            if sel.size:
                if "P" in out:
                    cls, P = out["classes"], out["P"]
                    p = cls[np.argmax(P, axis=1)]
                    proba_parts.append((sel, cls, P))
                    classes_all.extend(c for c in cls.tolist() if c not in classes_all)
                else:
                    p = out["p"]
                pred[sel] = p
                pred_set[sel] = True
                known = y_ok[sel]
                if known.any():
                    if task == "classification":
                        score = float(np.mean(p[known] == yv[sel][known]))
                    else:
                        t_ = yv[sel][known].astype(float)
                        denom = np.sum((t_ - t_.mean()) ** 2)
                        score = float(1 - np.sum((t_ - p[known]) ** 2) / denom) if denom > 0 else float("nan")
            importances.append(out["imp"] if out.get("imp") is not None else np.full(len(columns), np.nan))
            row = {"fold": k, "train_start": times[a], "train_end": times[b - 1], "test_start": times[s],
                   "test_end": times[e - 1], "n_train": int(len(ytr)), "n_test": int(sel.size), "score": score,
                   "fit_s": fit_s, "predict_s": predict_s, "cache_hit": bool(hit), "retrained": bool(retrained),
                   "reason": reason}
            rows.append(row)
            if progress is not None:
                progress({**row, "folds": len(starts)})

    finally:
        for f in remote.values():
            f.release()
        if client_obj is not None:
            for f in shared:  # a tuple of futures (one per array)
                f.release()
            if owned:
                client_obj.close()

    # assemble outputs
    if task == "classification":
        classes = sorted(classes_all, key=lambda c: (str(type(c)), c))
        if classes and all(isinstance(c, (int, float, np.number)) and not isinstance(c, bool) for c in classes):
            pred_out = pd.Series(np.where(pred_set, pred, np.nan).astype(np.float64), index=index)
        else:
            pred_out = pd.Series(np.where(pred_set, pred, None), index=index, dtype=object)
        proba = None
        if proba_parts:
            Pm = np.full((n, len(classes)), np.nan)
            col_of = {c: i for i, c in enumerate(classes)}
            for sel, cls, P in proba_parts:
                Pm[sel] = 0.0
                Pm[np.ix_(sel, [col_of[c] for c in cls.tolist()])] = P
            proba = pd.DataFrame(Pm, index=index, columns=pd.Index(classes, name="class"))
    else:
        pred_out = pd.Series(pred.astype(np.float64), index=index)
        proba = None
    pred_out.name = "prediction"
    folds = pd.DataFrame(rows)
    fi = pd.DataFrame(np.vstack(importances), columns=columns, index=pd.Index(folds["fold"], name="fold"))
    meta = {
        "seed": seed, "task": task, "estimator": repr(base), "estimator_class": type(base).__qualname__,
        "params": {k: repr(v) for k, v in base.get_params(deep=False).items()},
        "retrain": retrain, "refresh": refresh if retrain == "incremental" else None, "window": window,
        "train_window": train_w, "test_window": test_w, "step": step_w, "purge": purge, "embargo": embargo,
        "horizon": horizon, "impute": impute, "policy": repr(policy) if policy else None,
        "n_rows": n, "n_times": T, "n_features": len(columns), "features": columns,
        "data_hash": fingerprint((Xv, ys.to_numpy(), _time_key(index))), "versions": {**library_versions(),
                                                                "pandas": pd.__version__,
                                                                "python": platform.python_version()},
        "cache": str(cache.path) if cache is not None and cache.path is not None else (
            "memory" if cache is not None else None),
        "elapsed_s": time.perf_counter() - t_start,
    }
    return WalkForwardResult(pred_out, proba, folds, fi, meta, ys)


__dir__ = public_dir(__all__)
