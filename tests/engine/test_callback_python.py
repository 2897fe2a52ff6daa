"""The callback strategy runs as plain Python with NUMBA_DISABLE_JIT=1 and gives the same result."""
from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import numpy as np, pandas as pd
from numba import njit
from nbtrade.backtesting import backtest_callback
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.synthetic import market

@njit
def on_bar(ctx, i):
    fast, slow = ctx.user
    for c in range(ctx.close.shape[1]):
        if ctx.position[c] == 0.0 and fast[i, c] > slow[i, c]:
            enter_long_nb(ctx, i, c)
        elif ctx.position[c] > 0.0 and fast[i, c] < slow[i, c]:
            exit_long_nb(ctx, i, c)

d = market(["A", "B"], "2024-01-01", "2024-01-05", "1h", seed=2)
close = pd.DataFrame({k: v["close"] for k, v in d.items()})
fast, slow = close.rolling(3).mean().to_numpy(), close.rolling(12).mean().to_numpy()
res = backtest_callback(d, on_bar, user=(fast, slow), fees=0.001, sl_stop=0.01, size=0.5)
print(repr(float(res.equity.iloc[-1])), len(res.order_records))
"""


def _run(disable_jit: bool) -> str:
    env = dict(os.environ)
    if disable_jit:
        env["NUMBA_DISABLE_JIT"] = "1"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def test_same_result_with_jit_disabled():
    jitted, python = _run(False), _run(True)
    # same orders; equity equal to the last bits (LLVM may fuse a multiply-add that Python rounds twice)
    (eq_j, n_j), (eq_p, n_p) = jitted.split(), python.split()
    assert n_p == n_j and int(n_p) > 4
    assert abs(float(eq_p) - float(eq_j)) <= 1e-12 * abs(float(eq_j))
