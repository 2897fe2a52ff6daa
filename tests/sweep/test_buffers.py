"""Record buffers of a signals run: sized from the signal counts, grown when short; results unchanged."""
import numpy as np
import pytest

import nbtrade
from nbtrade.engine import run as run_mod
from nbtrade.engine import signals as sig_mod
from nbtrade.kernels.records import counts_dt, order_dt, trade_dt
from nbtrade.sweep.native import sma_cross, sma_cross_into


def _tiny(counts, n, m, cfg, has_short, margin_on, partial):
    return np.empty(4 * m, dtype=order_dt), np.empty(3 * m, dtype=trade_dt)  # room for one bar: grown at once


@pytest.mark.parametrize("opts", [dict(size=0.2), dict(size=1.0, sl_stop=0.01), dict(size=0.2, order_type="limit",
                                                                                      order_price=None)])
def test_tiny_buffers_grow_to_the_same_result(small_market, monkeypatch, opts):
    opts = {k: v for k, v in opts.items() if v is not None}
    if opts.get("order_type") == "limit":
        opts["order_price"] = small_market.close * 0.999
    e, x = sma_cross(small_market, 5, 30)
    ref = nbtrade.backtest(small_market, e, x, fees=0.001, **opts)
    monkeypatch.setattr(sig_mod, "record_buffers", _tiny)
    got = nbtrade.backtest(small_market, e, x, fees=0.001, **opts)
    assert len(ref.order_records) > 8 * small_market.shape[1]  # several growths
    np.testing.assert_array_equal(got.equity.to_numpy(), ref.equity.to_numpy())
    assert got.order_records.tobytes() == ref.order_records.tobytes()
    assert got.trade_records.tobytes() == ref.trade_records.tobytes()


def test_grow_doubles_only_the_short_buffer():
    m = 2
    orders, trades = np.zeros(100, dtype=order_dt), np.zeros(50, dtype=trade_dt)
    done = np.zeros(1, dtype=counts_dt)
    done[0]["orders"], done[0]["trades"] = 95, 10  # orders short of 4 per symbol, trades fine
    o2, t2 = run_mod.grow(orders, trades, done, m)
    assert len(o2) == 195 and t2 is trades
    done[0]["orders"], done[0]["trades"] = 10, 48
    o3, t3 = run_mod.grow(orders, trades, done, m)
    assert o3 is orders and len(t3) == 48 + 50
    done[0]["orders"], done[0]["trades"] = 10, 10  # neither short: both grow (callers' own room rules)
    o4, t4 = run_mod.grow(orders, trades, done, m)
    assert len(o4) == 110 and len(t4) == 60


def test_record_buffers_plain_run_orders_bound(small_market, monkeypatch):
    """A long-only market run without stops: one order per entry and exit at most (no order growth)."""
    sizes = []
    real = sig_mod.record_buffers
    monkeypatch.setattr(sig_mod, "record_buffers", lambda *a: sizes.append(real(*a)) or sizes[-1])
    e, x = sma_cross(small_market, 5, 30)
    for size in (1.0, 0.1):
        res = nbtrade.backtest(small_market, e, x, size=size, fees=0.001)
        orders, _ = sizes[-1]
        assert len(res.order_records) + 4 * small_market.shape[1] <= len(orders) <= e.sum() + x.sum() + 16


def test_sma_cross_into_reuses_out(small_market):
    out = (np.empty(small_market.shape, dtype=bool), np.empty(small_market.shape, dtype=bool))
    e, x = sma_cross_into(small_market, 5, 30, out=out)
    assert e is out[0] and x is out[1]
    ref = sma_cross(small_market, 5, 30)
    np.testing.assert_array_equal(e, ref[0])
    np.testing.assert_array_equal(x, ref[1])
