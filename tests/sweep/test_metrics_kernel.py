"""The sweep's metrics kernel equals Result.stats() on varied runs."""
import numpy as np
import pytest
from numpy.testing import assert_allclose

import nbtrade
from nbtrade.kernels.sweep import METRICS, sweep_metrics_nb
from nbtrade.sweep.overfit import block_stats
from nbtrade.sweep.run import _annualisation

from .conftest import cross, cross_ls

CASES = {
    "long": (cross, dict(fees=0.001)),
    "long_short_stops": (cross_ls, dict(fees=0.0005, sl_stop=0.01, tp_stop=0.02)),
    "isolated": (cross, dict(fees=0.001, cash_sharing=False)),
    "rejections": (cross, dict(fees=0.001, min_notional=2_000.0)),
    "close_fill_trail": (cross_ls, dict(fill="close", trail_stop=0.01, slippage=0.0005)),
}


def _row(res, n_blocks=4):
    bpy, years = _annualisation(res)
    out, mom, blocks = np.empty(len(METRICS)), np.empty(4), np.empty((n_blocks, 3))
    sweep_metrics_nb(res.equity.to_numpy(), float(res.init_cash), bpy, years, res.order_records,
                     res.trade_records, len(res.symbols), out, mom, blocks)
    return out, mom, blocks


@pytest.mark.filterwarnings("ignore::nbtrade.RejectedOrdersWarning")
@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_row_equals_stats(small_market, case):
    fn, opts = CASES[case]
    res = nbtrade.backtest(small_market, *fn(small_market, 12, 48), **opts)
    if case == "rejections":
        st_ = res.order_records["status"]
        assert (st_ == 1).any() and (st_ == 0).any()
    out, mom, blocks = _row(res)
    st = res.stats()
    for j, label in enumerate(METRICS):
        assert_allclose(out[j], st[label], rtol=1e-9, atol=1e-12, err_msg=label)
    r = nbtrade.metrics.bar_returns(res.equity.to_numpy(), res.init_cash)
    scipy_stats = pytest.importorskip("scipy.stats")
    assert_allclose(mom[0], r.mean() / r.std(ddof=1), rtol=1e-9)
    assert_allclose(mom[1], scipy_stats.skew(r), rtol=1e-7)
    assert_allclose(mom[2], scipy_stats.kurtosis(r, fisher=False), rtol=1e-7)
    assert mom[3] == len(r)
    assert_allclose(blocks, block_stats(r[:, None], 4)[:, 0, :], rtol=1e-9, atol=1e-15)


def test_kernel_on_integer_index_and_flat_run():
    close = np.linspace(100.0, 110.0, 50)[:, None] * np.ones((1, 2))
    res = nbtrade.backtest(close, np.zeros((50, 2), bool), np.zeros((50, 2), bool), freq="1h")
    out, _, _ = _row(res, 3)
    st = res.stats()
    for j, label in enumerate(METRICS):
        assert_allclose(out[j], st[label], rtol=1e-12, equal_nan=True, err_msg=label)
    assert out[METRICS.index("# Trades")] == 0 and np.isnan(out[METRICS.index("Sharpe Ratio")])


def test_drawdown_only_at_last_bar_counts_as_no_episode():
    # equity rises then falls only on the last bar: drawdown_episodes finds no episode
    close = np.r_[np.linspace(100, 120, 20), 110.0]
    entries = np.zeros(21, bool)
    entries[0] = True
    res = nbtrade.backtest(close, entries, np.zeros(21, bool), fill="close", freq="1h")
    out, _, _ = _row(res, 2)
    assert_allclose(out[METRICS.index("Max. Drawdown [%]")], res.stats()["Max. Drawdown [%]"])
