import numpy as np
import pytest

import nbtrade


@pytest.fixture(scope="package")
def small_market():
    """4 symbols x 1,440 5-minute bars (5 days), prepared once."""
    syms = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    return nbtrade.prepare(nbtrade.market(syms, "2024-01-01", "2024-01-06", "5m", seed=3))


def cross(market, fast, slow):
    """SMA crossover as state signals (long while fast > slow)."""
    f, s = nbtrade.sweep.sma(market, fast), nbtrade.sweep.sma(market, slow)
    return f > s, f < s


def cross_ls(market, fast, slow):
    """Long/short SMA crossover."""
    f, s = nbtrade.sweep.ema(market, fast), nbtrade.sweep.sma(market, slow)
    up, down = f > s, f < s
    return up, down, down, up
