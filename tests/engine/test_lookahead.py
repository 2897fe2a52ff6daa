"""No look-ahead: changing any input after bar t leaves orders, fills and equity up to t unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from nbtrade.backtesting import backtest

from .helpers import random_market, random_signals


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
