"""Real instrument filters in backtests (issue 12): Market.with_filters + backtest(filters="exchange")."""
import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade import Market, backtest

TABLE = pd.DataFrame({"tick_size": [0.5, 0.01], "step_size": [0.001, 0.1], "min_qty": [0.002, 0.1],
                      "max_qty": [100.0, np.nan], "min_notional": [50.0, 5.0]},
                     index=pd.Index(["BTC/USDT", "ETH/USDT"], name="symbol"))


@pytest.fixture(scope="module")
def data():
    return nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-06", "1h", seed=3)


def _signals(data):
    close = pd.DataFrame({s: f.close for s, f in data.items()})
    e = close > close.rolling(5).mean()
    return close, e, ~e


def test_with_filters_fills_the_metadata(data):
    m = Market(data).with_filters(TABLE)
    assert m.meta.loc["ETH/USDT", "step_size"] == 0.1 and m.meta.loc["ETH/USDT", "lot_size"] == 0.1
    assert np.isnan(m.meta.loc["ETH/USDT", "max_qty"]) and m.meta["has_filters"].all()
    assert m.shape == Market(data).shape
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['min_notional'\]"):
        Market(data).with_filters(TABLE.drop(columns="min_notional"))
    with pytest.raises(ValueError, match="tick_size of BTC/USDT is -1.0"):
        Market(data).with_filters(TABLE.assign(tick_size=[-1.0, 0.01]))


def test_quantities_follow_the_step_and_minimums(data):
    _, e, x = _signals(data)
    m = Market(data).with_filters(TABLE)
    res = backtest(m, e, x, size=0.5, fees=0.001, filters="exchange")
    same = backtest(data, e, x, size=0.5, fees=0.001, lot_size={"BTC/USDT": 0.001, "ETH/USDT": 0.1},
                    min_qty={"BTC/USDT": 0.002, "ETH/USDT": 0.1}, min_notional={"BTC/USDT": 50.0, "ETH/USDT": 5.0})
    np.testing.assert_array_equal(res.equity.to_numpy(), same.equity.to_numpy())
    filled = res.orders[res.orders["status"] == "filled"]
    steps = filled["symbol"].map({"BTC/USDT": 0.001, "ETH/USDT": 0.1})
    q = filled["size"] / steps
    np.testing.assert_allclose(q, np.round(q), atol=1e-6)
    assert not np.array_equal(res.equity.to_numpy(), backtest(data, e, x, size=0.5, fees=0.001).equity.to_numpy())
    f = res.assumptions["filters"]
    assert f["BTC/USDT"]["step_size"] == 0.001 and f["ETH/USDT"]["max_qty"] is None
    assert f["BTC/USDT"]["max_qty_enforced"] is False
    # a table may be passed directly: the same run
    direct = backtest(data, e, x, size=0.5, fees=0.001, filters=TABLE)
    np.testing.assert_array_equal(direct.equity.to_numpy(), res.equity.to_numpy())


def test_order_prices_round_to_the_tick_against_the_order(data):
    close, e, x = _signals(data)
    se = ~e
    raw = close * 1.0123 + 0.0037  # off the grid
    kw = dict(size=0.4, filters=TABLE, order_price=raw, sl_price=raw * 0.97, tp_price=raw * 1.03)
    tick = np.array([0.5, 0.01])
    for order_type, up_long in (("limit", False), ("stop", True)):
        res = backtest(data, e, x, se, e, order_type=order_type, **kw)
        assert res.assumptions["filters"]["BTC/USDT"]["tick_size"] == 0.5
        ref = backtest(data, e, x, se, e, order_type=order_type, size=0.4, order_price=_round(raw, tick, e, up_long),
                       sl_price=_round(raw * 0.97, tick, e, False), tp_price=_round(raw * 1.03, tick, e, True),
                       lot_size=TABLE["step_size"].to_dict(), min_qty=TABLE["min_qty"].to_dict(),
                       min_notional=TABLE["min_notional"].to_dict())
        assert res.order_records.tobytes() == ref.order_records.tobytes()
        assert len(res.trades) > 0


def _round(p, tick, long_entry, up_for_long):
    q = p.to_numpy() / tick
    up, down = np.ceil(q) * tick, np.floor(q) * tick
    use_up = long_entry.to_numpy() if up_for_long else ~long_entry.to_numpy()
    return pd.DataFrame(np.where(use_up, up, down), index=p.index, columns=p.columns)


def test_fill_prices_after_slippage_are_not_rounded(data):
    _, e, x = _signals(data)
    res = backtest(data, e, x, size=0.5, slippage=0.00123, filters=TABLE)
    px = res.orders.loc[res.orders["status"] == "filled", "price"].to_numpy()
    assert not np.allclose(px / 0.5, np.round(px / 0.5))  # BTC's tick is 0.5; slipped fills are off it


def test_missing_filters_refused_by_symbol(data):
    _, e, x = _signals(data)
    with pytest.raises(ValueError, match=r"no exchange filters for ETH/USDT: attach them with "
                                         r"Market\(data\).with_filters"):
        backtest(Market(data).with_filters(TABLE.loc[["BTC/USDT"]]), e, x, size=0.5, filters="exchange")
    with pytest.raises(ValueError, match="no exchange filters for BTC/USDT, ETH/USDT"):
        backtest(data, e, x, size=0.5, filters="exchange")
    with pytest.raises(ValueError, match="lot_size and filters='exchange' both set"):
        backtest(data, e, x, size=0.5, filters=TABLE, lot_size=0.01)
    with pytest.raises(ValueError, match="unknown filters 'binance'"):
        backtest(data, e, x, size=0.5, filters="binance")


def test_filters_off_by_default_keep_results(data):
    _, e, x = _signals(data)
    a = backtest(Market(data).with_filters(TABLE), e, x, size=0.5)
    b = backtest(data, e, x, size=0.5)
    np.testing.assert_array_equal(a.equity.to_numpy(), b.equity.to_numpy())
    assert "filters" not in a.assumptions


def test_filters_fetched_from_the_mock_exchange(tmp_path):
    from nbtrade.data.metacache import MetaCache
    from nbtrade.data.mock import MockConfig, serve_in_thread

    data = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-06", "1h", seed=3)
    _, e, x = _signals(data)
    with serve_in_thread(MockConfig()) as mock:
        table = nbtrade.fetch_filters_sync("binance", ["BTC/USDT", "ETH/USDT"], base_url=mock.url,
                                           cache=MetaCache(tmp_path / "meta"))
    res = backtest(Market(data).with_filters(table), e, x, size=0.5, filters="exchange")
    f = res.assumptions["filters"]["BTC/USDT"]
    assert f["exchange"] == "binance" and f["source"].endswith("/api/v3/exchangeInfo") and f["fetched_at"]
    assert f["step_size"] == pytest.approx(1e-5) and f["min_notional"] == 5.0


def test_price_below_one_tick_refused(data):
    close, e, x = _signals(data)
    tiny = close * 0 + 0.3  # below BTC's tick of 0.5: a long limit would round to 0
    with pytest.raises(ValueError, match=r"order_price 0.3 \(bar \d+, symbol BTC/USDT\) is below one tick \(0.5\)"):
        backtest(data, e, x, size=0.4, order_type="limit", order_price=tiny, filters=TABLE)


def test_weights_and_class_api_take_the_filters(data):
    from nbtrade import Backtest, Strategy, backtest_weights

    w = np.full((len(data["BTC/USDT"]), 2), 0.45)
    lots = dict(lot_size=TABLE["step_size"].to_dict(), min_qty=TABLE["min_qty"].to_dict(),
                min_notional=TABLE["min_notional"].to_dict())
    res = backtest_weights(data, w, rebalance_every=24, filters=TABLE)
    ref = backtest_weights(data, w, rebalance_every=24, **lots)
    assert res.order_records.tobytes() == ref.order_records.tobytes()
    assert res.assumptions["filters"]["ETH/USDT"]["step_size"] == 0.1

    class Hold(Strategy):
        def init(self):
            pass

        def next(self):
            if not self.position:
                self.buy()

    a = Backtest(Market(data).with_filters(TABLE), Hold, size=0.4, filters="exchange").run()
    b = Backtest(data, Hold, size=0.4, **lots).run()
    assert a.order_records.tobytes() == b.order_records.tobytes() and "filters" in a.assumptions
