"""Weights benchmark: 20 symbols sharing cash, rebalanced daily (every 24 hourly bars) to drifting weights.

``n`` counts bar-steps (bars x symbols). Fills at the close (``fill="close"``), 0.1 % fee,
weights summing to 0.95 (never short of cash, so no margin check binds):

* ``nbtrade``: the public path ``nbtrade.backtesting.backtest_weights`` on close prices
  (validation, kernel, order/trade records, Result), arrays in;
* ``bare_loop``: a bare @njit loop doing only the rebalance arithmetic (sales first, then
  purchases; the ceiling).

Outputs (portfolio equity per bar) must agree to 1e-9 relative. Run directly::

    python bench/bench_weights.py --quick          # 1,000,000 bar-steps
"""
from __future__ import annotations

import sys

import numpy as np
from numba import njit

from nbtrade.bench import Case

N_SYMBOLS = 20
EVERY = 24
FEE = 0.001
INIT_CASH = 100_000.0


def make_inputs(n_bars: int, n_symbols: int = N_SYMBOLS, seed: int = 0) -> dict[str, np.ndarray]:
    """Random-walk closes ``(n_bars, n_symbols)`` and weights drifting around equal weight."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, (n_bars, n_symbols)), axis=0))
    raw = rng.uniform(0.5, 1.5, (n_bars, n_symbols))
    weights = 0.95 * raw / raw.sum(axis=1, keepdims=True)
    return {"close": close, "weights": weights}


@njit(cache=True, nogil=True)
def bare_loop_nb(close, weights, every, fee, init_cash, out):
    """Rebalance at the close of every ``every``-th bar: sales first, then purchases."""
    n, m = close.shape
    pos = np.zeros(m)
    cash = init_cash
    for i in range(n):
        if i % every == 0:
            equity = cash
            for c in range(m):
                if pos[c] != 0.0:
                    equity += pos[c] * close[i, c]
            floor = 1e-9 * max(abs(equity), 1.0)
            for phase in range(2):
                for c in range(m):
                    p = close[i, c]
                    target = weights[i, c] * equity / ((1.0 + fee) * p)
                    q = pos[c] - target if phase == 0 else target - pos[c]
                    if q <= 0.0 or q * p <= floor:
                        continue
                    v = q * p
                    if phase == 0:
                        cash += v - v * fee
                        pos[c] -= q
                    else:
                        cash -= v + v * fee
                        pos[c] = pos[c] + q if pos[c] != 0.0 else q
        acc = 0.0
        for c in range(m):
            acc += pos[c] * close[i, c]
        out[i] = cash + acc
    return out


def _setup(n: int):
    from nbtrade.backtesting import backtest_weights

    d = make_inputs(max(n // N_SYMBOLS, 100))
    return {
        "nbtrade": lambda: backtest_weights(d["close"], d["weights"], rebalance_every=EVERY, fees=FEE,
                                            init_cash=INIT_CASH, fill="close", freq="1h",
                                            on_gap="skip").equity.to_numpy(),
        "bare_loop": lambda: bare_loop_nb(d["close"], d["weights"], EVERY, FEE, INIT_CASH,
                                          np.empty(d["close"].shape[0])),
    }


def _check(ref, other):
    np.testing.assert_allclose(np.asarray(other).ravel(), ref, rtol=1e-9, atol=1e-9 * INIT_CASH)


CASES = [
    Case("weights_daily_rebalance_20sym", _setup, unit="bar-step",
         units=lambda n: max(n // N_SYMBOLS, 100) * N_SYMBOLS, check=_check,
         target="none in issue #4 (nbtrade also writes ~1 order record per column per rebalance)"),
]


def main(argv=None) -> int:
    from nbtrade.bench import script_main

    script_main(CASES, "nbtrade bench weights", __doc__.split("\n")[0], argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
