"""Volume impact (``slippage_volume``): square-root law on the last complete bar's volume."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest, backtest_callback, prepare
from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
from nbtrade.synthetic import market

from .helpers import random_market, random_signals

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


def _data(n=4, volume=100.0):
    px = np.full(n, 100.0)
    vol = np.full(n, volume) if np.ndim(volume) == 0 else np.asarray(volume, dtype=float)
    return {"open": px, "high": px, "low": px, "close": px, "volume": vol}


ENTRY = np.array([1, 0, 0, 0], dtype=bool)
EXIT = np.array([0, 0, 1, 0], dtype=bool)


def test_amount_order_pays_the_square_root_impact_both_ways():
    res = backtest(_data(), entries=ENTRY, exits=EXIT, size=4.0, size_type="amount", fill="close",
                   slippage_volume=0.5)
    # 0.5 * sqrt(4 / 100) = 10 % of the price: buy at 110, sell at 90
    assert res.orders["price"].tolist() == pytest.approx([110.0, 90.0], rel=1e-12)
    assert res.equity.iloc[-1] == pytest.approx(10_000 - 4 * 20.0)


def test_value_order_spends_its_budget_at_its_own_impacted_price():
    res = backtest(_data(), entries=ENTRY, exits=EXIT, size=1000.0, size_type="value", fill="close",
                   slippage_volume=0.5)
    q, p = res.orders["size"].iloc[0], res.orders["price"].iloc[0]
    assert q * p == pytest.approx(1000.0, rel=1e-12)
    assert p == pytest.approx(100.0 + 100.0 * 0.5 * np.sqrt(q / 100.0), rel=1e-12)
    assert 8.7 < q < 8.72


def test_all_in_percent_is_not_rejected_by_its_own_impact():
    res = backtest(_data(), entries=ENTRY, exits=EXIT, size=1.0, fees=0.001, fill="close", slippage_volume=0.2)
    o = res.orders
    assert o["status"].tolist() == ["filled", "filled"]
    assert res.cash.iloc[0] == pytest.approx(0.0, abs=1e-6)


def test_next_open_fills_use_the_previous_bar_volume_and_skip_empty_bars():
    # signal at bar 0 fills at bar 1's open with bar 0's volume; bar 1's own volume is the future
    a = backtest(_data(volume=[100.0, 1.0, 100.0, 100.0]), entries=ENTRY, size=4.0, size_type="amount",
                 slippage_volume=0.5)
    assert a.orders["price"].iloc[0] == pytest.approx(110.0)
    # a bar without trades (volume 0) does not count: the last bar with volume does
    e = np.array([0, 1, 0, 0], dtype=bool)
    b = backtest(_data(volume=[100.0, 0.0, 1.0, 1.0]), entries=e, size=4.0, size_type="amount",
                 slippage_volume=0.5)
    assert b.orders["price"].iloc[0] == pytest.approx(110.0)
    # no volume seen yet: no impact
    c = backtest(_data(volume=[0.0, 0.0, 0.0, 0.0]), entries=ENTRY, size=4.0, size_type="amount",
                 slippage_volume=0.5)
    assert c.orders["price"].iloc[0] == 100.0


def test_impact_is_capped_at_half_the_price_and_applies_to_stops():
    res = backtest(_data(volume=1.0), entries=ENTRY, size=10_000.0, size_type="amount", fill="close",
                   slippage_volume=1.0, init_cash=1e7)
    assert res.orders["price"].iloc[0] == pytest.approx(150.0)
    px = np.array([100.0, 100.0, 100.0, 100.0])
    low = px.copy()
    low[2] = 80.0
    data = {"open": px, "high": px, "low": low, "close": px, "volume": np.full(4, 100.0)}
    res = backtest(data, entries=ENTRY, size=4.0, size_type="amount", fill="close", sl_stop=0.05,
                   slippage_volume=0.5)
    stop = res.orders.iloc[1]
    assert stop["type"] == "stop_loss"
    # stop level 110 * 0.95 = 104.5 (open 100 is below it: gap, fills at the open), minus 10 %
    assert stop["price"] == pytest.approx(100.0 - 10.0)


def test_callback_path_applies_it_too():
    from numba import njit

    @njit
    def on_bar(ctx, i):
        if i == 0:
            enter_long_nb(ctx, i, 0)
        elif i == 2:
            exit_long_nb(ctx, i, 0)

    res = backtest_callback(_data(), on_bar, size=4.0, size_type="amount", fill="close", slippage_volume=0.5)
    assert res.orders["price"].tolist() == pytest.approx([110.0, 90.0])


def test_volume_from_ohlcv_frames_and_prepare():
    d = market(["A", "B"], "2024-01-01", "2024-01-03", "1h", seed=2)
    close = pd.DataFrame({s: f.close for s, f in d.items()})
    entries = close > close.rolling(5).mean()
    exits = close < close.rolling(5).mean()
    a = backtest(d, entries=entries, exits=exits, size=0.4, slippage_volume=0.5)
    b = backtest(prepare(d), entries=entries, exits=exits, size=0.4, slippage_volume=0.5)
    c = backtest(d, entries=entries, exits=exits, size=0.4)
    pd.testing.assert_series_equal(a.equity, b.equity)
    assert a.equity.iloc[-1] < c.equity.iloc[-1]
    assert a.assumptions["slippage_volume"] != c.assumptions["slippage_volume"]


def test_bad_input():
    with pytest.raises(ValueError, match="needs volume"):
        backtest(np.full(4, 100.0), entries=ENTRY, slippage_volume=0.5)
    with pytest.raises(ValueError, match="must be >= 0"):
        backtest(_data(), entries=ENTRY, slippage_volume=-0.1)
    with pytest.raises(ValueError, match="volume must be finite and >= 0"):
        backtest(_data(volume=[100.0, -1.0, 100.0, 100.0]), entries=ENTRY, slippage_volume=0.5)
    with pytest.raises(ValueError, match="volume must be finite and >= 0"):
        backtest(_data(volume=[100.0, np.nan, 100.0, 100.0]), entries=ENTRY, slippage_volume=0.5)
    with pytest.raises(ValueError, match="shape"):
        backtest({**_data(), "volume": np.ones(3)}, entries=ENTRY, slippage_volume=0.5)
    # unused volume is not checked
    backtest(_data(volume=[100.0, np.nan, 100.0, 100.0]), entries=ENTRY)


def test_volume_impact_does_not_look_ahead():
    rng = np.random.default_rng(9)
    n, m = 50, 2
    for _ in range(8):
        o, h, l, c = random_market(rng, n, m, nan_prob=0.05)
        vol = rng.uniform(0.0, 30.0, (n, m))
        sigs = [random_signals(rng, c, 0.25) for _ in range(2)]
        t = int(rng.integers(0, n - 1))
        vol2 = vol.copy()
        vol2[t + 1:] = rng.uniform(0.0, 30.0, (n - t - 1, m))
        kw = dict(size=0.5, fees=0.001, slippage_volume=0.5, init_cash=1000.0, on_gap="skip", sl_stop=0.04)
        for fill in ("next_open", "close"):
            a = backtest({"open": o, "high": h, "low": l, "close": c, "volume": vol}, *sigs, fill=fill, **kw)
            b = backtest({"open": o, "high": h, "low": l, "close": c, "volume": vol2}, *sigs, fill=fill, **kw)
            np.testing.assert_array_equal(a.equity.to_numpy()[:t + 1], b.equity.to_numpy()[:t + 1])
            ra, rb = a.order_records, b.order_records
            assert ra[ra["idx"] <= t].tobytes() == rb[rb["idx"] <= t].tobytes()
