"""Shared helpers of the engine tests: random markets and engine-vs-reference comparison."""
from __future__ import annotations

import numpy as np
import pandas as pd

from nbtrade.kernels.records import Direction, ExitReason, OrderType, RejectReason, Side, Status

_NAMES = {
    "side": [f.lower() for f in Side._fields],
    "type": [f.lower() for f in OrderType._fields],
    "status": [f.lower() for f in Status._fields],
    "reason": [f.lower() for f in RejectReason._fields],
    "direction": [f.lower() for f in Direction._fields],
    "exit_reason": [f.lower() for f in ExitReason._fields],
}


def random_market(rng: np.random.Generator, n: int, m: int, nan_prob: float = 0.0, gap_prob: float = 0.2):
    """OHLC (n, m) random walk with gaps between bars and optional missing (NaN) bars."""
    o, h, l, c = (np.empty((n, m)) for _ in range(4))
    for j in range(m):
        price = rng.uniform(50, 150)
        for i in range(n):
            jump = rng.normal(0, 0.08) if rng.random() < gap_prob else 0.0
            op = price * np.exp(jump)
            cl = op * np.exp(rng.normal(0, 0.03))
            hi = max(op, cl) * np.exp(abs(rng.normal(0, 0.02)))
            lo = min(op, cl) * np.exp(-abs(rng.normal(0, 0.02)))
            o[i, j], h[i, j], l[i, j], c[i, j] = op, hi, lo, cl
            price = cl
    if nan_prob > 0:
        mask = rng.random((n, m)) < nan_prob
        for a in (o, h, l, c):
            a[mask] = np.nan
    return o, h, l, c


def random_signals(rng: np.random.Generator, close: np.ndarray, p: float):
    sig = rng.random(close.shape) < p
    sig &= ~np.isnan(close)
    return sig


def compare_with_reference(result, ref_orders, ref_trades, ref_cash, ref_equity, rtol=1e-9):
    """Assert the engine's records and curves equal the reference's."""
    got = result.order_records
    assert len(got) == len(ref_orders), f"{len(got)} orders vs reference {len(ref_orders)}"
    for k, (g, r) in enumerate(zip(got, ref_orders)):
        for f in ("col", "idx"):
            assert g[f] == r[f], (k, f, g, r)
        for f in ("side", "type", "status", "reason"):
            assert _NAMES[f][g[f]] == r[f], (k, f, g, r)
        for f in ("size", "price", "fees"):
            np.testing.assert_allclose(g[f], r[f], rtol=rtol, atol=1e-9, err_msg=f"order {k} {f}: {g} vs {r}")
    got_t = result.trade_records
    assert len(got_t) == len(ref_trades), f"{len(got_t)} trades vs reference {len(ref_trades)}"
    for k, (g, r) in enumerate(zip(got_t, ref_trades)):
        for f in ("col", "entry_idx", "exit_idx"):
            assert g[f] == r[f], (k, f, g, r)
        for f in ("direction", "exit_reason"):
            assert _NAMES[f][g[f]] == r[f], (k, f, g, r)
        for f in ("size", "entry_price", "exit_price", "entry_fees", "exit_fees", "pnl", "ret"):
            np.testing.assert_allclose(g[f], r[f], rtol=rtol, atol=1e-9, err_msg=f"trade {k} {f}")
    np.testing.assert_allclose(result.cash.to_numpy(), ref_cash, rtol=rtol, atol=1e-9)
    np.testing.assert_allclose(result.equity.to_numpy(), ref_equity, rtol=rtol, atol=1e-9)


def frame(arr: np.ndarray, freq: str = "1h") -> pd.DataFrame:
    index = pd.date_range("2024-01-01", periods=arr.shape[0], freq=freq, tz="UTC")
    return pd.DataFrame(arr, index=index)
