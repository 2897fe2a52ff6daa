"""Incremental retraining: a sliding random forest and a drift-triggered retraining policy.

:class:`SlidingForest` keeps a scikit-learn forest of ``n_estimators`` trees. A
full :meth:`~SlidingForest.fit` grows all of them; each :meth:`~SlidingForest.update`
grows only ``refresh`` new trees on the most recent window and drops the
``refresh`` oldest, so a step costs about ``refresh / n_estimators`` of a full
refit and the forest always reflects the last ``n_estimators / refresh`` windows.
Trees are grown by small forests with distinct, seed-derived ``random_state``
(batch ``j`` uses ``SeedSequence([seed, j])``), so results are reproducible and
independent of ``n_jobs``.

:class:`DriftPolicy` decides whether a walk-forward step needs retraining at
all: on feature drift (population stability index of the current training
window against the window the model was last trained on) or on a drop in
accuracy measured on past predictions whose labels are already known.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
from .._names import public_dir

__all__ = ["SlidingForest", "ForestDelta", "DriftPolicy", "psi", "is_forest", "fast_predict_proba",
           "fast_importances"]


def is_forest(estimator: Any) -> bool:
    """True for scikit-learn bagged tree ensembles (RandomForest*/ExtraTrees*)."""
    try:
        from sklearn.ensemble._forest import BaseForest
    except ImportError:  # pragma: no cover - private path moved
        return type(estimator).__name__ in ("RandomForestClassifier", "RandomForestRegressor",
                                            "ExtraTreesClassifier", "ExtraTreesRegressor")
    return isinstance(estimator, BaseForest)


def _seed(seed: int, batch: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(batch)]).generate_state(1)[0] >> 1)


class SlidingForest:
    """A forest refreshed ``refresh`` trees at a time (oldest trees dropped first).

    Parameters
    ----------
    estimator : RandomForestClassifier, RandomForestRegressor, ExtraTrees*
        Template; its ``n_estimators`` is the size of the sliding forest.
    refresh : int or float
        Trees replaced per :meth:`update` (a float in (0, 1] is a share of
        ``n_estimators``). Default 0.2 (20 of 100).
    seed : int
        Drives every tree's ``random_state``.

    Attributes
    ----------
    forest_ : the assembled scikit-learn forest (use it like any fitted forest).
    batches_ : number of tree batches grown so far.
    full_refits_ : full fits done (the first, plus fallbacks when classes changed).
    """

    def __init__(self, estimator: Any, refresh: int | float = 0.2, seed: int = 0) -> None:
        if not is_forest(estimator):
            raise TypeError(f"SlidingForest needs a scikit-learn forest (RandomForest*/ExtraTrees*), "
                            f"got {type(estimator).__name__}")
        n = int(estimator.n_estimators)
        if isinstance(refresh, float) and not isinstance(refresh, bool):
            if not 0.0 < refresh <= 1.0:
                raise ValueError(f"refresh as a share must be in (0, 1], got {refresh}")
            k = max(1, int(round(refresh * n)))
        elif isinstance(refresh, (int, np.integer)) and 1 <= refresh <= n:
            k = int(refresh)
        else:
            raise ValueError(f"refresh must be an int in [1, n_estimators={n}] or a share in (0, 1], got {refresh!r}")
        self.estimator = estimator
        self.n_estimators = n
        self.refresh = k
        self.seed = int(seed)
        self.forest_: Any = None
        self.batches_ = 0
        self.full_refits_ = 0
        self.tree_batches_: list[int] = []  # batch index of each tree in forest_.estimators_
        self._tree_imp: list = []           # per-tree importances, aligned with estimators_
        self.delta_: ForestDelta | None = None  # what the last update added (None after a full fit)

    def _grow(self, n_trees: int, X: np.ndarray, y: np.ndarray) -> Any:
        from sklearn.base import clone

        est = clone(self.estimator).set_params(n_estimators=n_trees, random_state=_seed(self.seed, self.batches_),
                                               warm_start=False)
        est.fit(X, y)
        self.batches_ += 1
        return est

    def fit(self, X: Any, y: Any) -> "SlidingForest":
        """Grow all ``n_estimators`` trees on (X, y)."""
        self.forest_ = self._grow(self.n_estimators, X, y)
        self.tree_batches_ = [self.batches_ - 1] * self.n_estimators
        self._tree_imp = _tree_importances(self.forest_.estimators_)
        self.full_refits_ += 1
        self.delta_ = None
        return self

    def update(self, X: Any, y: Any) -> "SlidingForest":
        """Grow ``refresh`` trees on (X, y) and drop the ``refresh`` oldest; returns a new object.

        The previous object is left untouched (so a cached model stays valid).
        Falls back to a full fit when the classes seen in (X, y) differ from the
        forest's. The new object's :attr:`delta_` holds just what this step added
        (what the model cache stores for it).
        """
        new = copy.copy(self)
        new.delta_ = None
        if self.forest_ is None:
            return new.fit(X, y)
        small = new._grow(self.refresh, X, y)
        old = self.forest_
        if hasattr(old, "classes_") and not _same_classes(old.classes_, small.classes_):
            new.batches_ -= 1
            return new.fit(X, y)
        return self.apply(ForestDelta(list(small.estimators_), new.batches_, _tree_importances(small.estimators_),
                                      self.batches_, self.n_estimators))

    def apply(self, delta: "ForestDelta") -> "SlidingForest":
        """The forest after the step ``delta`` (from :meth:`update`): its trees appended, as many oldest dropped.

        Refuses a delta made for another forest (different batch count or size),
        so a cached step is never applied to the wrong parent.
        """
        if delta.parent_batches != self.batches_ or delta.n_estimators != self.n_estimators \
                or len(delta.trees) != self.refresh:
            raise ValueError(f"this forest step was made for a parent with {delta.parent_batches} batches of "
                             f"{delta.n_estimators} trees, not {self.batches_} of {self.n_estimators}")
        new = copy.copy(self)
        forest = copy.copy(self.forest_)
        forest.estimators_ = list(self.forest_.estimators_[self.refresh:]) + list(delta.trees)
        new.forest_ = forest
        new.batches_ = delta.batches
        new.tree_batches_ = self.tree_batches_[self.refresh:] + [delta.batches - 1] * self.refresh
        new._tree_imp = self._tree_imp[self.refresh:] + list(delta.tree_imp)
        new.delta_ = delta
        return new

    def __getstate__(self) -> dict[str, Any]:
        # a pickled forest holds its trees once; the last step's delta is only for the cache
        return {**self.__dict__, "delta_": None}

    # delegation -------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        return self.forest_.predict(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.forest_.predict_proba(X)

    @property
    def classes_(self) -> np.ndarray:
        return self.forest_.classes_

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean impurity importance over trees, as scikit-learn's forest (per-tree values kept, not recomputed)."""
        imps = [v for v in self._tree_imp if v is not None]
        if not imps:
            return np.zeros(self.forest_.n_features_in_)
        mean = np.mean(imps, axis=0, dtype=np.float64)
        return mean / np.sum(mean)

    def __repr__(self) -> str:
        return (f"SlidingForest({type(self.estimator).__name__}, n_estimators={self.n_estimators}, "
                f"refresh={self.refresh}, seed={self.seed}, batches={self.batches_})")


@dataclass(frozen=True)
class ForestDelta:
    """One :meth:`SlidingForest.update` step: the ``refresh`` new trees and what identifies the parent.

    The model cache stores this (about ``refresh / n_estimators`` of a whole forest)
    under the step's key, beside the key of the parent model it applies to.
    """

    trees: list
    batches: int           # the forest's batch count after the step
    tree_imp: list         # per-tree importances of the new trees
    parent_batches: int    # the parent's batch count: a delta applies to that parent only
    n_estimators: int


def fast_predict_proba(model: Any, X: np.ndarray) -> np.ndarray | None:
    """Class probabilities of a single-output forest classifier, trees summed in order on one thread.

    Equals ``predict_proba`` (up to float summation order) without joblib's
    thread-pool start-up, which dominates on small test segments (about 10 ms
    per call). The fixed order also makes the result independent of ``n_jobs``.
    Returns None for models it does not handle (use their ``predict_proba``).
    """
    forest = model.forest_ if isinstance(model, SlidingForest) else model
    if not (is_forest(forest) and hasattr(forest, "classes_") and getattr(forest, "n_outputs_", 2) == 1):
        return None
    X32 = np.ascontiguousarray(X, dtype=np.float32)
    out = np.zeros((X32.shape[0], int(forest.n_classes_)))
    for tree in forest.estimators_:
        out += tree.predict_proba(X32, check_input=False)
    out /= len(forest.estimators_)
    return out


def fast_importances(model: Any) -> np.ndarray | None:
    """``feature_importances_`` without a thread pool (same formula as scikit-learn's forests)."""
    if isinstance(model, SlidingForest):
        return model.feature_importances_
    if is_forest(model) and hasattr(model, "estimators_"):
        imps = _tree_importances(model.estimators_)
        imps = [v for v in imps if v is not None]
        if not imps:
            return np.zeros(model.n_features_in_)
        mean = np.mean(imps, axis=0, dtype=np.float64)
        return mean / np.sum(mean)
    imp = getattr(model, "feature_importances_", None)
    return None if imp is None else np.asarray(imp, dtype=np.float64)


def _tree_importances(trees: list) -> list:
    return [t.feature_importances_ if t.tree_.node_count > 1 else None for t in trees]


def _same_classes(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):  # multi-output
        return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> np.ndarray:
    """Population stability index per column of ``current`` against ``reference``.

    Bins are the reference's quantiles; shares are floored at 1e-4.
    Common reading: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large shift.
    """
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    if ref.ndim == 1:
        ref, cur = ref[:, None], cur[:, None]
    if ref.shape[1] != cur.shape[1]:
        raise ValueError(f"reference has {ref.shape[1]} columns, current {cur.shape[1]}")
    out = np.zeros(ref.shape[1])
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    for j in range(ref.shape[1]):
        r = ref[:, j][np.isfinite(ref[:, j])]
        c = cur[:, j][np.isfinite(cur[:, j])]
        if r.size == 0 or c.size == 0:
            continue
        edges = np.unique(np.quantile(r, qs))
        e = np.bincount(np.searchsorted(edges, r, side="right"), minlength=edges.size + 1) / r.size
        a = np.bincount(np.searchsorted(edges, c, side="right"), minlength=edges.size + 1) / c.size
        e, a = np.maximum(e, 1e-4), np.maximum(a, 1e-4)
        out[j] = float(np.sum((a - e) * np.log(a / e)))
    return out


@dataclass
class DriftPolicy:
    """Retrain only when features drift or accuracy drops (or the model gets too old).

    Parameters
    ----------
    psi_threshold : float
        Retrain when the largest per-feature PSI between the window the model
        was trained on and the current training window exceeds it.
    acc_drop : float
        Retrain when accuracy on the most recent ``perf_window`` known-label
        predictions falls more than this below the accuracy measured right
        after the last retrain (its first ``perf_window`` known predictions).
    perf_window : int
        Rows used for each accuracy estimate.
    max_age : int, optional
        Retrain at least every ``max_age`` steps.

    Only information available at the step is used: the training windows and
    predictions whose labels are already known (the walk-forward passes them).
    """

    psi_threshold: float = 0.25
    acc_drop: float = 0.05
    perf_window: int = 200
    max_age: int | None = None

    def __post_init__(self) -> None:
        if self.psi_threshold <= 0 or self.acc_drop <= 0 or self.perf_window < 1:
            raise ValueError("DriftPolicy: psi_threshold and acc_drop must be > 0, perf_window >= 1")
        if self.max_age is not None and self.max_age < 1:
            raise ValueError("DriftPolicy: max_age must be >= 1 or None")

    def decide(self, reference_X: np.ndarray, current_X: np.ndarray, age: int,
               hits_since_fit: np.ndarray) -> tuple[bool, str]:
        """(retrain?, reason). ``hits_since_fit``: 1/0 correctness of known-label predictions since the last fit."""
        if self.max_age is not None and age >= self.max_age:
            return True, f"age {age} >= {self.max_age}"
        drift = psi(reference_X, current_X)
        if drift.size and float(drift.max()) > self.psi_threshold:
            return True, f"psi {float(drift.max()):.3f} (feature {int(drift.argmax())})"
        w = self.perf_window
        if hits_since_fit.size >= 2 * w:
            base, recent = float(hits_since_fit[:w].mean()), float(hits_since_fit[-w:].mean())
            if base - recent > self.acc_drop:
                return True, f"accuracy {recent:.3f} < {base:.3f} - {self.acc_drop}"
        return False, ""


__dir__ = public_dir(__all__)
