"""``nbtrade.prepare``: validate once, run many backtests; same results as raw data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.backtesting import Inputs, backtest, backtest_weights, prepare
from nbtrade.synthetic import market

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


@pytest.fixture
def data():
    d = market(["A", "B", "C"], "2024-01-01", "2024-01-08", "1h", seed=5)
    d["C"] = d["C"].iloc[30:]  # listed later: NaN bars in the joined panel
    return d


def _signals(data):
    close = pd.DataFrame({s: df.close for s, df in data.items()})
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    return (fast > slow) & close.notna(), fast < slow


def test_prepared_equals_raw(data):
    entries, exits = _signals(data)
    prepared = prepare(data)
    assert isinstance(prepared, Inputs) and prepared.frozen
    assert prepared.n_missing == 30
    for kw in ({}, {"fill": "close"}, {"sl_stop": 0.02, "tp_stop": 0.03}, {"cash_sharing": False}):
        a = backtest(data, entries=entries, exits=exits, size=0.3, fees=0.001, **kw)
        b = backtest(prepared, entries=entries, exits=exits, size=0.3, fees=0.001, **kw)
        pd.testing.assert_series_equal(a.equity, b.equity)
        pd.testing.assert_frame_equal(a.orders, b.orders)
        assert a.assumptions == b.assumptions


def test_prepared_reused_and_independent_of_later_writes():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 2)), axis=0))
    entries = np.zeros_like(close, dtype=bool)
    entries[::17] = True
    exits = np.roll(entries, 5, axis=0)
    prepared = prepare(close)
    first = backtest(prepared, entries=entries, exits=exits, size=0.5).equity
    close[:] = 1.0  # the caller's array changes afterwards: the prepared copy does not
    again = backtest(prepared, entries=entries, exits=exits, size=0.5).equity
    pd.testing.assert_series_equal(first, again)
    assert prepare(prepared) is prepared
    assert "300 bars x 2 symbols" in repr(prepared)


def test_prepared_weights(data):
    prepared = prepare(data)
    idx = prepared.index
    w = pd.DataFrame(0.3, index=idx, columns=prepared.symbols)
    w["C"] = w["C"].where(prepared.close["C"].notna())  # Market.close: a DataFrame (bars x symbols)
    a = backtest_weights(data, w, rebalance_every=24)
    b = backtest_weights(prepared, w, rebalance_every=24)
    pd.testing.assert_series_equal(a.equity, b.equity)


def test_prepare_validates_once():
    close = np.array([[1.0], [-2.0], [3.0]])
    with pytest.raises(ValueError, match="must be > 0"):
        prepare(close)


def test_prepare_is_exported():
    assert nbtrade.prepare is prepare
