"""Target-weights backtest: hand-computed rebalances and parity with the reference (hypothesis)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.backtesting import backtest_weights

from .helpers import compare_with_reference, random_market
from .reference_weights import run_reference_weights

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


def _frame(rows, symbols=("A",)):
    idx = pd.date_range("2024-01-01", periods=len(rows), freq="1h", tz="UTC")
    return {s: pd.DataFrame([r[k] for r in rows], index=idx, columns=["open", "high", "low", "close"], dtype=float)
            for k, s in enumerate(symbols)}


def test_rebalance_to_half_and_back():
    flat = ((100, 100, 100, 100), (200, 200, 200, 200))
    d = _frame([flat, flat, ((110, 110, 110, 110), (200, 200, 200, 200)), flat], symbols=("A", "B"))
    w = pd.DataFrame({"A": [0.5, np.nan, 0.0, np.nan], "B": [0.5, np.nan, 0.5, np.nan]}, index=d["A"].index)
    res = backtest_weights(d, w, init_cash=1000.0)
    o = res.orders
    # bar 1: 500 / 100 = 5 A, 500 / 200 = 2.5 B; bar 3 (weights of bar 2): equity 1000, A sold first
    assert o["size"].tolist() == pytest.approx([5.0, 2.5, 5.0])
    assert o["side"].tolist() == ["buy", "buy", "sell"] and o["time"].iloc[2] == d["A"].index[3]
    t = res.trades.iloc[0]
    assert (t["symbol"], t["pnl"], t["exit_reason"]) == ("A", 0.0, "signal")
    assert res.trades["exit_reason"].tolist() == ["signal", "end"]


def test_fees_are_paid_by_the_target():
    d = _frame([((100, 100, 100, 100),), ((100, 100, 100, 100),)])
    res = backtest_weights(d, np.ones(2), rebalance_every=2, fees=0.01, init_cash=1000.0)
    assert res.orders["size"].iloc[0] == pytest.approx(1000 / 1.01 / 100)
    assert res.cash.iloc[-1] == pytest.approx(0.0, abs=1e-9)


def test_flip_is_a_close_then_an_open():
    p = ((100, 100, 100, 100),)
    d = _frame([p, p, p])
    res = backtest_weights(d, np.array([0.5, -0.5, np.nan]), init_cash=1000.0, leverage=2.0)
    assert res.orders["side"].tolist() == ["buy", "sell", "sell"]
    assert res.orders["size"].tolist() == pytest.approx([5.0, 5.0, 5.0])
    assert res.trades["direction"].tolist() == ["long", "short"]


def test_lot_and_min_notional_rejections():
    p = ((100, 100, 100, 100),)
    d = _frame([p, p, p])
    res = backtest_weights(d, np.array([0.5, 0.51, np.nan]), init_cash=1000.0, lot_size=0.5, min_notional=50.0)
    assert res.orders["size"].tolist() == pytest.approx([5.0])  # the 0.1-unit top-up rounds to 0 lots: no order
    res = backtest_weights(d, np.array([0.5, 0.52, np.nan]), init_cash=1000.0, min_notional=50.0)
    assert res.orders["reason"].tolist() == ["none", "min_notional"]


def test_bad_weights():
    d = _frame([((100, 100, 100, 100),)] * 3)
    with pytest.raises(ValueError, match="weights has shape"):
        backtest_weights(d, np.ones(2))
    with pytest.raises(ValueError, match="rebalance_every must be >= 1"):
        backtest_weights(d, np.ones(3), rebalance_every=0)
    with pytest.raises(ValueError, match="weights must not contain inf"):
        backtest_weights(d, np.array([1.0, np.inf, 1.0]))


case = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "n": st.integers(1, 20),
    "m": st.integers(1, 3),
    "every": st.integers(1, 3),
    "nan_prob": st.sampled_from([0.0, 0.1]),
    "shorts": st.booleans(),
    "fill": st.sampled_from(["next_open", "close"]),
    "fees": st.sampled_from([0.0, 0.001, 0.01]),
    "fixed_fees": st.sampled_from([0.0, 0.5]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "lot_size": st.sampled_from([0.0, 0.01, 0.5]),
    "min_qty": st.sampled_from([0.0, 0.2]),
    "min_notional": st.sampled_from([0.0, 30.0]),
    "leverage": st.sampled_from([1.0, 2.0]),
})


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case)
def test_weights_engine_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    n, m = cfg["n"], cfg["m"]
    o, h, l, c = random_market(rng, n, m, nan_prob=cfg["nan_prob"])
    lo = -0.6 if cfg["shorts"] else 0.0
    w = rng.uniform(lo, 1.0 / m, (n, m))
    w[rng.random((n, m)) < 0.3] = np.nan
    w[rng.random((n, m)) < 0.1] = 0.0
    per = {k: [cfg[k]] * m for k in ("fees", "fixed_fees", "slippage", "lot_size", "min_qty", "min_notional")}
    res = backtest_weights({"open": o, "high": h, "low": l, "close": c}, w, rebalance_every=cfg["every"],
                           init_cash=1000.0, fill=cfg["fill"], leverage=cfg["leverage"], on_gap="skip",
                           **{k: cfg[k] for k in per})
    mask = np.zeros(n, dtype=bool)
    mask[::cfg["every"]] = True
    ref = run_reference_weights(o.tolist(), c.tolist(), w.tolist(), mask.tolist(), init_cash=1000.0,
                                fill=cfg["fill"], leverage=cfg["leverage"], **per)
    compare_with_reference(res, *ref)
    # positions rebuilt from the orders agree with the engine's equity
    marks = res.marks.fillna(0.0).to_numpy()
    np.testing.assert_allclose(res.cash.to_numpy() + (res.positions.to_numpy() * marks).sum(axis=1),
                               res.equity.to_numpy(), rtol=1e-9, atol=1e-9)
