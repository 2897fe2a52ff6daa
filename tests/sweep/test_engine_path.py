"""The sweep's validated-once engine call gives bit for bit what nbtrade.backtest gives."""
import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import nbtrade
from nbtrade.sweep.engine import ConfigEngine
from nbtrade.sweep.run import as_signals

from .conftest import cross, cross_ls

OPTIONS = [
    dict(fees=0.001),
    dict(fees=0.0005, fixed_fees=0.1, slippage=0.0002, size=0.3, cash_sharing=False, fill="close"),
    dict(sl_stop=0.01, tp_stop=0.03, trail_stop=0.02, intrabar="optimistic", maker_fees=0.0),
    dict(size=500.0, size_type="value", lot_size=0.001, min_notional=100.0, leverage=2.0,
         cash_sharing={"BTC/USDT": "a", "ETH/USDT": "a", "SOL/USDT": "b", "XRP/USDT": "b"}),
    dict(size_type="target_percent", size=0.25, slippage_range=0.1, slippage_volume=0.2, freq="5m", on_gap="skip"),
]


@pytest.mark.parametrize("k", range(len(OPTIONS)))
@pytest.mark.parametrize("fn", [cross, cross_ls])
def test_config_engine_equals_backtest(small_market, k, fn):
    opts = OPTIONS[k]
    eng = ConfigEngine(small_market, opts)
    for fast, slow in ((6, 30), (15, 60)):
        sig = as_signals(fn(small_market, fast, slow))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = nbtrade.backtest(small_market, **sig, **opts)
            eq, orders, trades = eng.run(sig)
        assert_array_equal(eq, res.equity.to_numpy())
        assert_array_equal(orders, res.order_records)
        assert_array_equal(trades, res.trade_records)


def test_exit_sizes_take_the_config_path(small_market):
    assert ConfigEngine(small_market, dict(exit_size=0.5)).cfg is not None


def test_sweep_with_fallback_options_equals_fast(small_market):
    g = {"fast": [6, 12], "slow": [30]}
    a = nbtrade.sweep(small_market, cross, g, fees=0.001, exit_size=1.0, n_jobs=1)  # fallback: backtest()
    b = nbtrade.sweep(small_market, cross, g, fees=0.001, n_jobs=1)
    np.testing.assert_array_equal(a.table.to_numpy(), b.table.to_numpy())
