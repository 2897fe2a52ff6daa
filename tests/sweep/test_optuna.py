"""Bayesian search through optuna (sampler="optuna"): seeded, reproducible on any number of threads."""
import pandas as pd
import pytest

import nbtrade

from .conftest import cross

optuna = pytest.importorskip("optuna")

GRID = {"fast": list(range(2, 40, 2)), "slow": list(range(20, 200, 10))}


@pytest.fixture(scope="module")
def first(small_market):
    return nbtrade.sweep(small_market, cross, GRID, sampler="optuna", n_trials=20, seed=7, n_jobs=1, fees=0.001)


def test_optuna_tries_n_trials_distinct_combinations(first):
    t = first.table
    assert len(t) == 20 and len(t.drop_duplicates(["fast", "slow"])) == 20
    assert t["fast"].isin(GRID["fast"]).all() and t["slow"].isin(GRID["slow"]).all()
    assert t["Sharpe Ratio"].is_monotonic_decreasing


def test_optuna_is_reproducible_on_threads(small_market, first):
    again = nbtrade.sweep(small_market, cross, GRID, sampler="optuna", n_trials=20, seed=7, n_jobs=2, fees=0.001)
    pd.testing.assert_frame_equal(again.table, first.table)
    other = nbtrade.sweep(small_market, cross, GRID, sampler="optuna", n_trials=20, seed=8, n_jobs=1, fees=0.001)
    assert not other.table[["fast", "slow"]].sort_values(["fast", "slow"]).reset_index(drop=True).equals(
        first.table[["fast", "slow"]].sort_values(["fast", "slow"]).reset_index(drop=True))


def test_optuna_constraint_small_grid_and_bad_input(small_market):
    got = nbtrade.sweep(small_market, cross, {"fast": [5, 10], "slow": [20, 30, 5]}, sampler="optuna",
                        n_trials=50, constraint=lambda p: p.fast < p.slow, n_jobs=1)
    assert len(got.table) == 4  # the grid holds 4 admissible combinations
    with pytest.raises(ValueError, match="n_trials"):
        nbtrade.sweep(small_market, cross, GRID, sampler="optuna")
    with pytest.raises(ValueError, match="sampler must be"):
        nbtrade.sweep(small_market, cross, GRID, sampler="tpe", n_trials=3)
    with pytest.raises(ValueError, match="n_trials is for sampler='optuna'"):
        nbtrade.sweep(small_market, cross, GRID, n_trials=3)
    with pytest.raises(ValueError, match="constraint rejects"):
        nbtrade.sweep(small_market, cross, GRID, sampler="optuna", n_trials=3, constraint=lambda p: False)
