"""nbtrade.sweep: the table equals a per-combination loop; threads equal one thread; bad input."""
import warnings

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nbtrade
from nbtrade.kernels.sweep import METRICS
from nbtrade.sweep import memo

from .conftest import cross, cross_ls

GRID = {"fast": [5, 10, 20], "slow": [30, 60]}


@pytest.fixture(scope="module")
def swept(small_market):
    return nbtrade.sweep(small_market, cross, GRID, fees=0.001, n_jobs=2, chunk_size=2)


def test_table_equals_per_combination_loop(small_market, swept):
    t = swept.table
    assert len(t) == 6 and list(t.columns[:2]) == ["fast", "slow"]
    assert t["Sharpe Ratio"].is_monotonic_decreasing
    for i, p in enumerate(nbtrade.sweep.grid(GRID)):
        c = nbtrade.indicators.sma(small_market.close, p["fast"]), nbtrade.indicators.sma(small_market.close, p["slow"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = nbtrade.backtest(small_market, c[0] > c[1], c[0] < c[1], fees=0.001).stats()
        row = t.loc[i]
        assert (row["fast"], row["slow"]) == (p["fast"], p["slow"])
        for label in METRICS:
            assert_allclose(row[label], st[label], rtol=1e-9, err_msg=label)


def test_threads_equal_one_thread_bit_for_bit(small_market, swept):
    one = nbtrade.sweep(small_market, cross, GRID, fees=0.001, n_jobs=1)
    pd.testing.assert_frame_equal(one.table, swept.table)
    assert_array_equal(one.blocks, swept.blocks)


def test_tiny_memo_budget_same_table(small_market, swept):
    tiny = nbtrade.sweep(small_market, cross, GRID, fees=0.001, n_jobs=2, chunk_size=2, memo_bytes=0)
    pd.testing.assert_frame_equal(tiny.table, swept.table)


def test_best_result_rebuilt(small_market, swept):
    best = swept.best
    assert isinstance(best, nbtrade.Result)
    assert swept.best_params == {k: swept.table.iloc[0][k] for k in ("fast", "slow")}
    assert_allclose(best.stats()["Sharpe Ratio"], swept.table["Sharpe Ratio"].iloc[0], rtol=1e-9)
    assert len(swept.results) == 6 and swept.results[0] is best


def test_heatmap(swept):
    hm = swept.heatmap()
    assert hm.shape == (2, 3) and hm.index.name == "slow" and hm.columns.name == "fast"
    assert hm.loc[60, 20] == swept.table.set_index(["fast", "slow"]).loc[(20, 60), "Sharpe Ratio"]
    from rich.console import Console

    con = Console(record=True, width=100)
    swept.print_heatmap(console=con)
    assert "Sharpe Ratio by slow" in con.export_text()
    with pytest.raises(ValueError, match="not a parameter"):
        swept.heatmap("fast", "nope")


def test_html_report(swept, tmp_path):
    path = swept.report(str(tmp_path / "sweep.html"), title="grid")
    text = open(path).read()
    assert "<h1>grid</h1>" in text and "class='heatmap'" in text and text.count("<td style=") == 6
    assert "Top combinations" in text and "deflated Sharpe" in text


def test_overfitting_statistics_present(swept):
    s = swept.summary()
    assert 0.0 <= s["deflated_sharpe"] <= 1.0
    assert 0.0 <= s["pbo"] <= 1.0
    assert swept.pbo().n_splits == 12870  # C(16, 8)


def test_long_short_and_python_side_metric(small_market):
    r = nbtrade.sweep(small_market, cross_ls, {"fast": [8, 16], "slow": [40]}, maximize="SQN", n_jobs=2, fees=0.001)
    assert r.python_columns == ["SQN"] and r.maximize == "SQN" and r.table.attrs["python_columns"] == ["SQN"]
    for i, p in enumerate(nbtrade.sweep.grid({"fast": [8, 16], "slow": [40]})):
        res = nbtrade.backtest(small_market, *cross_ls(small_market, **p), fees=0.001)
        assert_allclose(r.table.loc[i, "SQN"], res.stats()["SQN"], rtol=1e-12)


def test_callable_objective(small_market):
    def final_cash(res):
        return float(res.cash.iloc[-1])

    r = nbtrade.sweep(small_market, cross, {"fast": [5, 10], "slow": [30]}, maximize=final_cash, n_jobs=1)
    assert r.python_columns == ["final_cash"] and r.table["final_cash"].is_monotonic_decreasing


def test_memo_computes_each_distinct_window_once(small_market):
    seen = []

    def fn(market, fast, slow):
        out = cross(market, fast, slow)
        seen.append((memo.current().misses, memo.current().hits))
        return out

    nbtrade.sweep(small_market, fn, {"fast": [5, 10, 15], "slow": [30, 40, 50]}, n_jobs=1, chunk_size=3,
                  memo_bytes=1 << 30)
    # the sweep's chunks share one memo: 18 window lookups, 6 computed
    misses, hits = seen[-1]
    assert len(seen) == 9 and (misses, hits) == (6, 18 - 6)
    assert not memo._shared  # released when the sweep ended


def test_default_memo_budget_is_one_price_panel(small_market):
    held = []

    def fn(market, fast, slow):
        out = cross(market, fast, slow)
        held.append(memo.current().nbytes)
        return out

    nbtrade.sweep(small_market, fn, {"fast": [5, 10, 15], "slow": [30, 40, 50]}, n_jobs=1)
    n, m = small_market.shape
    assert len(held) == 9 and max(held) <= n * m * 8  # bounded by the close's size, whatever the grid


def test_memo_values_equal_indicators(small_market):
    c = small_market.close
    assert_allclose(nbtrade.sweep.sma(small_market, 7), nbtrade.indicators.sma(c, 7).to_numpy())
    assert_allclose(nbtrade.sweep.ema(c, 9), nbtrade.indicators.ema(c, 9).to_numpy())
    assert_allclose(nbtrade.sweep.sma(c["BTC/USDT"].to_numpy(), 5),
                    nbtrade.indicators.sma(c["BTC/USDT"].to_numpy(), 5))


def test_failing_combination_reported_with_params(small_market):
    def fn(market, fast, slow):
        if fast == 10:
            raise ZeroDivisionError("bad fast")
        return cross(market, fast, slow)

    with pytest.warns(RuntimeWarning, match=r"2 of 6 combinations failed.*'fast': 10"):
        r = nbtrade.sweep(small_market, fn, GRID, n_jobs=2, chunk_size=1)
    assert list(r.errors["fast"]) == [10, 10] and r.errors["error"].str.contains("ZeroDivisionError: bad fast").all()
    assert r.table["Sharpe Ratio"].notna().sum() == 4 and r.table.iloc[-2:]["Sharpe Ratio"].isna().all()


def test_failing_first_combination(small_market):
    def fn(market, fast, slow):
        if fast == 5:
            raise ValueError("no")
        return cross(market, fast, slow)

    with pytest.warns(RuntimeWarning, match="2 of 6"):
        r = nbtrade.sweep(small_market, fn, GRID, n_jobs=1)
    assert sorted(r.errors.index) == [0, 1]


def test_every_combination_failing(small_market):
    def fn(market, fast, slow):
        raise KeyError("x")

    with pytest.raises(RuntimeError, match=r"the first 6 combinations all failed.*first: \{'fast': 5, 'slow': 30\}"):
        nbtrade.sweep(small_market, fn, GRID)


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(params={"fast": [5], "slwo": [30]}), ValueError, "unknown parameter 'slwo'"),
    (dict(params={}), ValueError, "params is empty"),
    (dict(maximize="Sharp Ratio"), ValueError, "maximize='Sharp Ratio' is not a statistic"),
    (dict(maximize="Duration"), ValueError, "is not a statistic"),
    (dict(maximize=3), TypeError, "maximize must be"),
    (dict(n_jobs=0), ValueError, "n_jobs"),
    (dict(top=0), ValueError, "top"),
    (dict(chunk_size=0), ValueError, "chunk_size"),
    (dict(memo_bytes=-1), ValueError, "memo_bytes"),
    (dict(constraint=lambda p: False), ValueError, "constraint rejects every"),
    (dict(params={"fast": range(1, 2001), "slow": range(1, 1001)}), ValueError,
     r"2,000,000 combinations.*h of engine time.*GiB of result rows.*max_tries"),
    (dict(params={"fast": [], "slow": [30]}), ValueError, r"params\['fast'\] has no values"),
    (dict(params=[]), ValueError, "empty list"),
    (dict(params=[{"fast": 5, "slwo": 30}]), ValueError, "unknown parameter 'slwo'"),
])
def test_bad_input(small_market, kwargs, exc, match):
    args = dict(params=GRID)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        nbtrade.sweep(small_market, cross, **args)


def test_signals_fn_bad_output(small_market):
    with pytest.raises(RuntimeError, match="TypeError: signals_fn must return"):
        nbtrade.sweep(small_market, lambda market, fast: 1, {"fast": [1]})
    with pytest.raises(TypeError, match="signals_fn must be a callable"):
        nbtrade.sweep(small_market, None, {"fast": [1]})


@pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")
def test_target_weights_sweep(small_market):
    def momentum(market, lookback, top):
        close = market.close
        score = close / close.shift(lookback) - 1.0
        rank = score.rank(axis=1, ascending=False)
        return (rank <= top).astype(float).div(top).fillna(0.0)

    r = nbtrade.sweep(small_market, momentum, {"lookback": [12, 48], "top": [1, 2]}, fees=0.001,
                      rebalance_every=12, n_jobs=2)
    assert len(r.table) == 4 and len(r.errors) == 0
    for i, p in enumerate(nbtrade.sweep.grid({"lookback": [12, 48], "top": [1, 2]})):
        res = nbtrade.backtest_weights(small_market, momentum(small_market, **p), fees=0.001, rebalance_every=12)
        st = res.stats()
        for label in METRICS:
            assert_allclose(r.table.loc[i, label], st[label], rtol=1e-9, err_msg=label)
    assert isinstance(r.best, nbtrade.Result)


@pytest.mark.parametrize("window", [1, 2, 5, 30])
def test_row_major_sma_equals_indicator_with_missing_values(window):
    from nbtrade.kernels.sweep import sma_rows_nb

    rng = np.random.default_rng(window)
    x = 100 + rng.normal(0, 1, (200, 4)).cumsum(axis=0)
    x[10:13, 0] = np.nan
    x[50, 1] = np.inf
    x[:20, 2] = np.nan
    x[199, 3] = np.nan
    got = sma_rows_nb(x, window, np.empty_like(x))
    want = np.column_stack([nbtrade.indicators.sma(x[:, c].copy(), window) for c in range(4)])
    assert_array_equal(got, want)  # bit for bit, NaN where the indicator is NaN
