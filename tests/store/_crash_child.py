"""Writer process for the crash and concurrency tests (run as a script; killed with SIGKILL).

Usage: python _crash_child.py ROOT FIRST_STEP [N_STEPS]
Prints ``ACK <step>`` after each append returned (i.e. was reported as written).
"""
from __future__ import annotations

import sys

import numpy as np

STEP_ROWS = 500
T0 = 1_704_067_200_000  # 2024-01-01, on the 1m grid
TF = 60_000


def make_data(n: int) -> dict[str, np.ndarray]:
    """Deterministic valid 1m candles (no numba, so the child starts fast)."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 5e-4, (2, n)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(0, 1, n)
    return {"time": T0 + TF * np.arange(n, dtype=np.int64), "open": open_, "high": high, "low": low,
            "close": close, "volume": volume}


def schedule(n_steps: int) -> list[tuple[str, int, int]]:
    """(symbol, lo, hi) slices: mostly in order, every 4th slice skipped and filled 2 steps later
    (a merge that rewrites chunks), a second symbol now and then (new groups) and
    two-symbol transactions (symbol "TX": SOL and XRP together)."""
    out: list[tuple[str, int, int]] = []
    pending: list[tuple[int, int]] = []
    k = 0
    while len(out) < n_steps:
        lo, hi = k * STEP_ROWS, (k + 1) * STEP_ROWS
        if k % 4 == 3:
            pending.append((lo, hi))
        else:
            out.append(("BTC/USDT", lo, hi))
        if len(pending) and k % 4 == 1 and k > 4:
            plo, phi = pending.pop(0)
            out.append(("BTC/USDT", plo - 50, phi + 50))  # overlaps both neighbours
        if k % 7 == 0:
            out.append(("ETH/USDT", lo, hi))
        if k % 5 == 2:
            out.append(("TX", lo, hi))  # one transaction writing SOL and XRP: both or neither
        k += 1
    return out[:n_steps]


def main() -> None:
    from nbtrade.data.store import Store

    root, first = sys.argv[1], int(sys.argv[2])
    n_steps = int(sys.argv[3]) if len(sys.argv) > 3 else 400
    steps = schedule(n_steps)
    data = make_data(max(hi for _, _, hi in steps) + 100)
    store = Store(root, chunk_rows=1024)
    for i in range(first, n_steps):
        sym, lo, hi = steps[i]
        part = {k: v[lo:hi] for k, v in data.items()}
        if sym == "TX":
            with store.transaction("binance") as tx:
                tx.append("SOL/USDT", "1m", part)
                tx.append("XRP/USDT", "1m", part)
        else:
            store.append("binance", sym, "1m", part)
        sys.stdout.write(f"ACK {i}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
