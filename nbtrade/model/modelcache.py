"""Fitted-model cache for the walk-forward, built on :class:`nbtrade.cache.Cache`.

A model is stored under a deterministic key of everything that determines it:
the estimator's class and parameters (including ``random_state``), the feature
set (column names and an optional spec), a fingerprint of the training rows
(features, labels and their timestamps), the training window, the retraining
step (for a sliding forest: the key of the model it was updated from) and the
versions of scikit-learn, numpy and nbtrade's cache format. Change any of them
and the key changes; nothing else can.

Retention rule (inherited from :class:`~nbtrade.cache.Cache`): in memory, at
most ``maxsize`` models and ``maxbytes`` bytes (pickled size), least recently
used evicted first; on disk (default ``$NBTRADE_HOME/cache/models``), at most
``disk_maxbytes`` compressed bytes (and ``disk_maxsize`` files), least recently
used evicted first; optionally a ``ttl``. Disk files are lz4-compressed pickles
signed with HMAC-SHA256 (per-cache key in ``.hmac-key``, mode 0600); a tampered
or corrupted file is refused, deleted and the model refitted, never unpickled.

Incremental models (sliding-forest updates) are stored as a :class:`ModelStep`:
the parent's key and only the trees the step added, so a walk-forward of k folds
stores about one forest plus k small steps instead of k forests.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..cache import CODE_VERSION, Cache, CacheStats, default_root, fingerprint, make_key
from .._names import public_dir

__all__ = ["ModelCache", "ModelStep", "library_versions"]

#: Estimator parameters that do not change a fitted model (left out of keys).
_NEUTRAL = frozenset({"n_jobs", "verbose"})


def library_versions() -> dict[str, str]:
    """Versions that change what a fitted model is (part of every key)."""
    import sklearn

    from .. import __version__

    return {"sklearn": sklearn.__version__, "numpy": np.__version__, "nbtrade": __version__,
            "cache": CODE_VERSION}


@dataclass(frozen=True)
class ModelStep:
    """Cache entry of an incremental model: the key of the model it updates and what the update added.

    A sliding forest's step stores only its new trees (a
    :class:`~nbtrade.model.forest.ForestDelta`), not the whole forest again; the
    reader rebuilds the model from its parent (in memory, cached, or refitted).
    Like every entry it is signed on disk; ``parent`` binds it to one parent key.
    """

    parent: str
    delta: Any


class ModelCache:
    """LRU cache of fitted models, in memory and (optionally) on disk.

    Parameters
    ----------
    path : str, Path, True or None
        Disk directory; ``True`` (default) means ``$NBTRADE_HOME/cache/models``;
        ``None`` keeps models in memory only.
    maxsize, maxbytes : memory budget (models, pickled bytes). Default 32 models, 1 GiB.
    disk_maxsize, disk_maxbytes : disk budget (files, compressed bytes). Default unbounded, 4 GiB.
    ttl : seconds a model stays valid; None (default) forever.
    """

    def __init__(self, path: str | os.PathLike | bool | None = True, maxsize: int | None = 32,
                 maxbytes: int | None = 1 << 30, disk_maxsize: int | None = None,
                 disk_maxbytes: int | None = 4 << 30, ttl: float | None = None) -> None:
        if path is True:
            path = default_root() / "models"
        self.cache = Cache(path, maxsize=maxsize, maxbytes=maxbytes, ttl=ttl, disk_maxsize=disk_maxsize,
                           disk_maxbytes=disk_maxbytes, name="models")
        #: Per-fold outputs (test-segment probabilities and importances) keyed by model key and
        #: test-data fingerprint: a warm walk-forward re-run reads these and loads no model.
        self.outputs = Cache(Path(path) / "outputs" if path not in (None, False) else None, maxsize=8192,
                             maxbytes=256 << 20, ttl=ttl, disk_maxbytes=disk_maxbytes // 8 if disk_maxbytes else None,
                             name="model-outputs")

    @property
    def path(self) -> Path | None:
        return self.cache.path

    @staticmethod
    def key(estimator: Any, X: np.ndarray, y: np.ndarray, *, times: Any = None, features: Any = None,
            window: Any = None, extra: Any = None) -> str:
        """Deterministic key of a fit of ``estimator`` on (X, y).

        ``times``: timestamps (or positions) of the training rows; ``features``:
        the feature set (names or spec); ``window``: the training window;
        ``extra``: anything else that changes the model (e.g. a parent model key).
        """
        params = estimator.get_params(deep=True) if hasattr(estimator, "get_params") else repr(estimator)
        if isinstance(params, dict):  # settings that do not change the fitted model
            params = {k: v for k, v in params.items() if k not in _NEUTRAL}
        return make_key("model", type(estimator).__module__, type(estimator).__qualname__, params,
                        fingerprint(features), fingerprint((np.asarray(X), np.asarray(y), times)),
                        window, extra, library_versions())

    def get(self, key: str) -> Any:
        """The cached model, or None."""
        return self.cache.get(key)

    def put(self, key: str, model: Any, cost: float = 0.0) -> None:
        """Store a fitted model; ``cost`` = seconds the fit took (reported as time saved on hits)."""
        self.cache.set(key, model, cost=cost)

    def put_step(self, key: str, parent: str, delta: Any, cost: float = 0.0) -> None:
        """Store an incremental update as a :class:`ModelStep` (``delta`` applied to model ``parent``)."""
        self.cache.set(key, ModelStep(parent, delta), cost=cost)

    def get_or_fit(self, key: str, fit: Callable[[], Any]) -> tuple[Any, bool, float]:
        """(model, hit, seconds): the cached model, or ``fit()``'s result, stored."""
        t0 = time.perf_counter()
        model = self.cache.get(key)
        if model is not None:
            return model, True, time.perf_counter() - t0
        model = fit()
        dt = time.perf_counter() - t0
        self.cache.set(key, model, cost=dt)
        return model, False, dt

    def contains(self, key: str) -> bool:
        return self.cache.contains(key)

    def stats(self) -> CacheStats:
        return self.cache.stats()

    def clear(self) -> None:
        self.cache.clear()
        self.outputs.clear()

    def __repr__(self) -> str:
        return f"Model{self.cache!r}"


__dir__ = public_dir(__all__)
