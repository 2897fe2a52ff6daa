"""FetchResult.to_market: a fetch result as one Market panel (union grid, gaps stay NaN)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.data.fetch import FetchReport, FetchResult, fetch_ohlcv


async def test_fetch_result_to_market_keeps_the_gap(mock_exchange):
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1h", "2024-02-09", "2024-02-11",
                            base_url=mock_exchange.url)
    m = res.to_market()
    assert isinstance(m, nbtrade.Market) and m.symbols == ["BTC/USDT", "ETH/USDT"] and m.timeframe == "1h"
    assert list(m.meta["exchange"]) == ["binance", "binance"]
    for sym in m.symbols:
        got = m.frame("close")[sym].dropna()
        pd.testing.assert_series_equal(got, res.frame(sym)["close"], check_names=False, check_freq=False)
    assert m.n_missing == 0  # both miss the same maintenance hours: not on the union grid


def test_to_market_union_grid_and_refusal():
    h = 3_600_000
    a = {"time": np.array([0, h, 2 * h]), **{c: np.full(3, 10.0) for c in ("open", "high", "low", "close")},
         "volume": np.ones(3)}
    b = {k: v[[0, 2]] for k, v in a.items()}
    m = FetchResult({"A": a, "B": b}, FetchReport("binance", "1h", 0, 3 * h)).to_market()
    assert m.shape == (3, 2) and np.isnan(m.array("close")[1, 1]) and m.n_missing == 1
    empty = {k: v[:0] for k, v in a.items()}
    with pytest.raises(ValueError, match="fetch result binance 1h: no candles for B"):
        FetchResult({"A": a, "B": empty}, FetchReport("binance", "1h", 0, 3 * h)).to_market()
