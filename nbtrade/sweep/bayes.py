"""Bayesian search of a sweep's grid through optuna (``sampler="optuna"``; the ``[optuna]`` extra).

optuna's TPE sampler, seeded, asks for combinations in batches (``batch`` at a time); the sweep runs
each batch on its threads or Dask workers, then tells optuna the objective of every trial of the
batch in order. The sequence of combinations therefore depends only on the seed, the batch size and
the objective values (identical on any number of threads or workers): reproducible. A combination
the constraint rejects is told as pruned; one optuna asks for again is not rerun (its value is told
again); a failed combination (NaN objective) is told as failed.
"""
from __future__ import annotations

import math
import types
from typing import Any, Callable, Mapping

#: Trials asked per batch by default (fixed, so the search does not depend on the number of workers).
BATCH = 8


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ImportError("sampler='optuna' needs optuna: pip install 'nbtrade[optuna]'") from e
    return optuna


def _distribution(optuna: Any, values: list) -> Any:
    """An integer range with a step when ``values`` is one (TPE then models order), else categorical."""
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in values)
    if ints and len(values) >= 2:
        step = values[1] - values[0]
        if step > 0 and all(b - a == step for a, b in zip(values, values[1:])):
            return optuna.distributions.IntDistribution(values[0], values[-1], step=step)
    return optuna.distributions.CategoricalDistribution(values)


class OptunaSearch:
    """Ask/tell over a parameter grid; ``combos`` lists the distinct combinations asked, in order."""

    def __init__(self, params: Mapping[str, Any], constraint: Callable | None, seed: int | None,
                 n_trials: int, batch: int = BATCH):
        from .grid import _values

        optuna = _import_optuna()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.optuna = optuna
        if not isinstance(params, Mapping) or not params:
            raise ValueError("sampler='optuna' needs params as a dict of value lists")
        self.names = list(params)
        lists = {k: _values(k, params[k]) for k in self.names}
        self.size = math.prod(len(v) for v in lists.values())
        self.dists = {k: _distribution(optuna, v) for k, v in lists.items()}
        sampler = optuna.samplers.TPESampler(seed=seed)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.constraint = constraint
        self.n_trials = int(n_trials)
        self.batch = int(batch)
        self.max_asks = 20 * self.n_trials + 100
        self.asked = 0
        self.combos: list[dict] = []
        self._seen: dict[tuple, int] = {}
        self._waiting: list[tuple[Any, int]] = []

    def next_batch(self) -> list[dict]:
        """Up to ``batch`` new combinations (none when ``n_trials`` distinct ones ran, or the grid is
        exhausted)."""
        new: list[dict] = []
        while (len(new) < self.batch and len(self.combos) < self.n_trials and len(self._seen) < self.size
               and self.asked < self.max_asks):
            trial = self.study.ask(self.dists)
            self.asked += 1
            p = {k: trial.params[k] for k in self.names}
            if self.constraint is not None and not self.constraint(types.SimpleNamespace(**p)):
                self.study.tell(trial, state=self.optuna.trial.TrialState.PRUNED)
                continue
            key = tuple(p.values())
            if key not in self._seen:
                self._seen[key] = len(self.combos)
                self.combos.append(p)
                new.append(p)
            self._waiting.append((trial, self._seen[key]))
        return new

    def tell(self, values: Mapping[int, float]) -> None:
        """The objective of each combination asked since the last tell (``values[combination number]``)."""
        for trial, i in self._waiting:
            v = values.get(i, math.nan)
            if v == v and math.isfinite(v):
                self.study.tell(trial, float(v))
            else:
                self.study.tell(trial, state=self.optuna.trial.TrialState.FAIL)
        self._waiting = []
