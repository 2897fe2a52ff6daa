"""The README's code blocks run as written (with the names they assume defined)."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

import nbtrade
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.strategy import Strategy

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(title: str) -> str:
    text = README.read_text()
    section = text[text.index(title):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@njit
def _on_bar(ctx, i):
    fast, slow = ctx.user
    for c in range(ctx.close.shape[1]):
        if ctx.position[c] == 0.0 and fast[i, c] > slow[i, c]:
            enter_long_nb(ctx, i, c)
        elif ctx.position[c] > 0.0 and fast[i, c] < slow[i, c]:
            exit_long_nb(ctx, i, c)


class _SmaCross(Strategy):
    fast = 10
    slow = 50

    def init(self):
        close = self.data.close
        self.sma1 = self.I(lambda x: x.rolling(self.fast).mean(), close)
        self.sma2 = self.I(lambda x: x.rolling(self.slow).mean(), close)

    def next(self):
        if self.sma1[-1] > self.sma2[-1] and not self.position:
            self.buy()
        elif self.sma1[-1] < self.sma2[-1] and self.position:
            self.position.close()


def test_four_ways_block_runs():
    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-15", "1h", seed=3)
    close = pd.DataFrame({s: f.close for s, f in data.items()})
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    entries, exits = (fast > slow) & (fast.shift(1) <= slow.shift(1)), fast < slow
    short_entries, short_exits = exits & ~exits.shift(1, fill_value=False), entries
    px = close * 0.998
    weights = pd.DataFrame(0.4, index=close.index, columns=close.columns)
    env = dict(nbtrade=nbtrade, data=data, entries=entries, exits=exits, short_entries=short_entries,
               short_exits=short_exits, px=px, weights=weights, on_bar=_on_bar,
               fast=np.ascontiguousarray(fast.to_numpy()), slow=np.ascontiguousarray(slow.to_numpy()),
               SmaCross=_SmaCross)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(_block("## Four ways to drive the engine"), env)
    assert isinstance(env["best"], nbtrade.Result) and len(env["runs"]) == 6
    assert isinstance(env["data"], nbtrade.Inputs)
