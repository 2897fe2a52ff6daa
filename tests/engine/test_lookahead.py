"""No look-ahead: changing any input after bar t leaves orders, fills and equity up to t unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from nbtrade.backtesting import backtest

from .helpers import random_market, random_signals

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


def _run(o, h, l, c, sigs, fill, size_type):
    return backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, size=0.8 if "percent" in size_type else 2.0,
                    size_type=size_type, sl_stop=0.03, tp_stop=0.06, trail_stop=0.04, fees=0.001,
                    slippage=0.001, fill=fill, init_cash=1000.0, on_gap="skip")


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("size_type", ["percent", "target_percent", "amount"])
def test_perturbing_the_future_changes_nothing_before(fill, size_type):
    rng = np.random.default_rng(42)
    n, m = 60, 3
    for trial in range(15):
        o, h, l, c = random_market(rng, n, m, nan_prob=0.05)
        sigs = [random_signals(rng, c, 0.2) for _ in range(4)]
        base = _run(o, h, l, c, sigs, fill, size_type)
        t = int(rng.integers(0, n - 1))
        o2, h2, l2, c2 = random_market(rng, n, m, nan_prob=0.05)
        new = [a.copy() for a in (o, h, l, c)]
        for a, b in zip(new, (o2, h2, l2, c2)):
            a[t + 1:] = b[t + 1:]
        sigs2 = [s.copy() for s in sigs]
        for s in sigs2:
            s[t + 1:] = random_signals(rng, new[3], 0.3)[t + 1:]
        pert = _run(*new, sigs2, fill, size_type)

        np.testing.assert_array_equal(base.equity.to_numpy()[:t + 1], pert.equity.to_numpy()[:t + 1])
        np.testing.assert_array_equal(base.cash.to_numpy()[:t + 1], pert.cash.to_numpy()[:t + 1])
        ob, op = base.order_records, pert.order_records
        ob, op = ob[ob["idx"] <= t], op[op["idx"] <= t]
        assert ob.tobytes() == op.tobytes()
        tb, tp = base.trade_records, pert.trade_records
        closed_b = np.sort(tb[(tb["exit_idx"] <= t) & (tb["exit_reason"] != 4)], order=["exit_idx", "col"])
        closed_p = np.sort(tp[(tp["exit_idx"] <= t) & (tp["exit_reason"] != 4)], order=["exit_idx", "col"])
        np.testing.assert_array_equal(closed_b[["col", "entry_idx", "exit_idx", "size", "pnl"]],
                                      closed_p[["col", "entry_idx", "exit_idx", "size", "pnl"]])
        np.testing.assert_array_equal(base.positions.to_numpy()[:t + 1], pert.positions.to_numpy()[:t + 1])


def _assert_prefix_equal(base, pert, t):
    np.testing.assert_array_equal(base.equity.to_numpy()[:t + 1], pert.equity.to_numpy()[:t + 1])
    np.testing.assert_array_equal(base.cash.to_numpy()[:t + 1], pert.cash.to_numpy()[:t + 1])
    ob, op = base.order_records, pert.order_records
    # orders still resting at the end are stamped at the last bar, never before it
    assert ob[ob["idx"] <= t].tobytes() == op[op["idx"] <= t].tobytes()


def _perturbed(rng, arrays, t, nan_prob=0.05):
    n, m = arrays[0].shape
    fresh = random_market(rng, n, m, nan_prob=nan_prob)
    out = [a.copy() for a in arrays]
    for a, b in zip(out, fresh):
        a[t + 1:] = b[t + 1:]
    return out


@pytest.mark.parametrize("order_type", ["limit", "stop", "stop_limit"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_resting_orders_do_not_look_ahead(order_type, fill):
    rng = np.random.default_rng(9)
    n, m = 50, 2
    for _ in range(10):
        o, h, l, c = random_market(rng, n, m, nan_prob=0.05)
        sigs = [random_signals(rng, c, 0.2) for _ in range(4)]
        price = np.where(np.isnan(c), np.nan, c * rng.uniform(0.97, 1.03, c.shape))
        extra = dict(limit_price=price * 1.01) if order_type == "stop_limit" else {}

        def run(o, h, l, c, sigs, price, extra):
            return backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, size=0.5, order_type=order_type,
                            order_price=price, tif=3, sl_stop=0.02, slippage_range=0.1, fill=fill,
                            init_cash=1000.0, on_gap="skip", **extra)

        base = run(o, h, l, c, sigs, price, extra)
        t = int(rng.integers(0, n - 1))
        o2, h2, l2, c2 = _perturbed(rng, (o, h, l, c), t)
        sigs2 = [s.copy() for s in sigs]
        for s in sigs2:
            s[t + 1:] = random_signals(rng, c2, 0.3)[t + 1:]
        price2 = np.where(np.isnan(c2), np.nan, c2 * 0.99)
        price2[:t + 1] = price[:t + 1]
        extra2 = dict(limit_price=price2 * 1.01) if extra else {}
        if extra:
            extra2["limit_price"][:t + 1] = extra["limit_price"][:t + 1]
        _assert_prefix_equal(base, run(o2, h2, l2, c2, sigs2, price2, extra2), t)


def test_weights_do_not_look_ahead():
    from nbtrade.backtesting import backtest_weights

    rng = np.random.default_rng(4)
    n, m = 50, 3
    for fill in ("next_open", "close"):
        for _ in range(10):
            o, h, l, c = random_market(rng, n, m, nan_prob=0.05)
            w = rng.uniform(-0.3, 0.4, (n, m))
            base = backtest_weights({"open": o, "high": h, "low": l, "close": c}, w, rebalance_every=2, fees=0.001,
                                    fill=fill, leverage=2.0, init_cash=1000.0, on_gap="skip")
            t = int(rng.integers(0, n - 1))
            o2, h2, l2, c2 = _perturbed(rng, (o, h, l, c), t)
            w2 = w.copy()
            w2[t + 1:] = rng.uniform(-0.3, 0.4, (n - t - 1, m))
            pert = backtest_weights({"open": o2, "high": h2, "low": l2, "close": c2}, w2, rebalance_every=2,
                                    fees=0.001, fill=fill, leverage=2.0, init_cash=1000.0, on_gap="skip")
            _assert_prefix_equal(base, pert, t)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_waiting_weights_do_not_look_ahead(fill):
    # many missing bars (late listings, delistings, gaps): targets wait for candles; whether and
    # when a candle comes after t must not change anything up to t
    from nbtrade.backtesting import backtest_weights

    rng = np.random.default_rng(11)
    n, m = 40, 3
    waited = 0
    for _ in range(12):
        o, h, l, c = random_market(rng, n, m, nan_prob=0.3)
        late, gone = int(rng.integers(0, 10)), int(rng.integers(n - 10, n))
        for a in (o, h, l, c):
            a[:late, 0] = np.nan
            a[gone:, 1] = np.nan
        w = rng.uniform(-0.3, 0.4, (n, m))
        w[rng.random((n, m)) < 0.3] = np.nan

        def run(o, h, l, c, w):
            return backtest_weights({"open": o, "high": h, "low": l, "close": c}, w, rebalance_every=3,
                                    fees=0.001, fill=fill, leverage=2.0, init_cash=1000.0, on_gap="skip")

        base = run(o, h, l, c, w)
        waited += base.assumptions["delayed_orders"]
        t = int(rng.integers(0, n - 1))
        o2, h2, l2, c2 = _perturbed(rng, (o, h, l, c), t, nan_prob=0.5)
        w2 = w.copy()
        w2[t + 1:] = rng.uniform(-0.3, 0.4, (n - t - 1, m))
        pert = run(o2, h2, l2, c2, w2)
        _assert_prefix_equal(base, pert, t)
        np.testing.assert_array_equal(base.positions.to_numpy()[:t + 1], pert.positions.to_numpy()[:t + 1])
    assert waited > 20  # the rule was exercised


def test_partial_exits_do_not_look_ahead():
    """Per-bar exit fractions after bar t change nothing up to t."""
    rng = np.random.default_rng(5)
    n, m = 60, 3
    for trial in range(10):
        o, h, l, c = random_market(rng, n, m, nan_prob=0.05)
        sigs = [random_signals(rng, c, 0.25) for _ in range(2)]
        frac = rng.uniform(0.1, 1.0, (n, m))
        t = int(rng.integers(0, n - 1))
        frac2 = frac.copy()
        frac2[t + 1:] = rng.uniform(0.1, 1.0, (n - t - 1, m))
        new = _perturbed(rng, (o, h, l, c), t)
        sigs2 = [s.copy() for s in sigs]
        for s in sigs2:
            s[t + 1:] = random_signals(rng, new[3], 0.3)[t + 1:]
        kw = dict(size=0.4, fees=0.001, sl_stop=0.05, init_cash=1000.0, on_gap="skip")
        base = backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, exit_size=frac, **kw)
        pert = backtest(dict(zip(("open", "high", "low", "close"), new)), *sigs2, exit_size=frac2, **kw)
        _assert_prefix_equal(base, pert, t)
