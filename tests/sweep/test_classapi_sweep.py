"""The class API in sweeps: optimize_class (threads) equals Backtest.optimize; nbtrade.sweep(bt, params)."""
import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.sweep.classopt import optimize_class

from .conftest import NbCross, PyCross

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")

GRID = {"fast": [3, 5, 8], "slow": [12, 20]}


@pytest.fixture(scope="module")
def bt(small_market):
    return nbtrade.Backtest(small_market, NbCross, fees=0.001)


@pytest.fixture(scope="module")
def serial(bt):
    return bt.optimize(**GRID)


def _same(got, ref):
    best, table = got
    pd.testing.assert_frame_equal(table, ref[1])
    assert best.params == ref[0].params
    np.testing.assert_array_equal(best.equity.to_numpy(), ref[0].equity.to_numpy())


@pytest.mark.parametrize("n_jobs,chunk_size", [(1, None), (2, 1), (2, 4)])
def test_optimize_class_equals_serial_optimize(bt, serial, n_jobs, chunk_size):
    _same(optimize_class(bt, n_jobs=n_jobs, chunk_size=chunk_size, **GRID), serial)


def test_optimize_class_options_as_optimize(bt):
    kw = dict(constraint=lambda p: p.fast * 3 < p.slow, max_tries=3, random_state=2,
              maximize="Total Return [%]")
    _same(optimize_class(bt, n_jobs=2, chunk_size=1, **kw, **GRID), bt.optimize(**kw, **GRID))
    fn = lambda r: -r.stats()["Max. Drawdown [%]"]  # noqa: E731
    _same(optimize_class(bt, n_jobs=2, maximize=fn, **GRID), bt.optimize(maximize=fn, **GRID))


def test_optimize_class_python_next(small_market):
    bt = nbtrade.Backtest(small_market, PyCross, fees=0.001)
    grid = {"fast": [3, 5], "slow": [12]}
    _same(optimize_class(bt, n_jobs=2, chunk_size=1, **grid), bt.optimize(**grid))


def test_optimize_class_bad_input(bt):
    with pytest.raises(TypeError, match="bt must be an nbtrade.Backtest"):
        optimize_class("x", fast=[3])
    with pytest.raises(TypeError, match="has no parameter 'fsat'"):
        optimize_class(bt, fsat=[3])
    with pytest.raises(ValueError, match="needs a parameter grid"):
        optimize_class(bt)
    with pytest.raises(ValueError, match="not a statistic"):
        optimize_class(bt, maximize="Sharpe", fast=[3])
    with pytest.raises(ValueError, match="n_jobs"):
        optimize_class(bt, n_jobs=0, fast=[3])


def test_sweep_takes_a_backtest(bt, small_market, serial):
    got = nbtrade.sweep(bt, GRID, n_jobs=2, chunk_size=2)
    assert len(got.table) == 6
    ref = serial[1].set_index(["fast", "slow"])
    for (f, s), row in got.table.set_index(["fast", "slow"]).iterrows():
        for col in ("Total Return [%]", "Sharpe Ratio", "Max. Drawdown [%]", "# Trades"):
            assert row[col] == pytest.approx(ref.loc[(f, s), col], rel=1e-9, nan_ok=True), col
    assert got.best_params == {"fast": serial[0].params["fast"], "slow": serial[0].params["slow"]}
    np.testing.assert_array_equal(got.best.equity.to_numpy(), serial[0].equity.to_numpy())
    # a strategy class and engine settings: the Backtest is built by the sweep
    again = nbtrade.sweep(small_market, NbCross, GRID, fees=0.001, n_jobs=1)
    pd.testing.assert_frame_equal(again.table, got.table)
    with pytest.raises(TypeError, match="takes no engine settings"):
        nbtrade.sweep(bt, GRID, fees=0.01)
    with pytest.raises(TypeError, match="has no parameter 'fsat'"):
        nbtrade.sweep(bt, {"fsat": [3]})


def test_backtest_optimize_n_jobs_runs_the_parallel_path(bt, serial):
    """``Backtest.optimize(n_jobs=...)`` hands the grid to optimize_class: same result as serial."""
    _same(bt.optimize(n_jobs=2, **GRID), serial)
    _same(bt.optimize(n_jobs=-1, **GRID), serial)
