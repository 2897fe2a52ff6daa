"""Exchange filters (lot/step size, tick size, min/max qty, min notional) from each exchange's metadata
endpoint, kept in the metadata cache with provenance. Real mock server on 127.0.0.1."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nbtrade.data.exchanges import get_adapter
from nbtrade.data.exchanges.base import FILTER_COLUMNS, BadRequest
from nbtrade.data.fetch import fetch_filters, fetch_filters_sync
from nbtrade.data.metacache import MetaCache

NAN = float("nan")
#: (step, min qty, max qty, min notional) the mock states per venue, from each venue's docs layout
EXPECTED = {
    "binance": (1e-5, 1e-5, 9000.0, 5.0),
    "binance_futures": (1e-5, 1e-5, 9000.0, 100.0),
    "bybit": (1e-6, 4.8e-5, 71.73956243, 1.0),
    "bybit_linear": (0.001, 0.001, 1190.0, 5.0),
    "okx": (1e-8, 1e-5, 1e6, NAN),
}
MARKET = {"binance_futures": "futures", "bybit_linear": "futures"}


@pytest.mark.parametrize("exchange", list(EXPECTED))
async def test_filters_table_per_exchange(mock_exchange, exchange, tmp_path):
    m = mock_exchange
    table = await fetch_filters(exchange, base_url=m.url, cache=MetaCache(tmp_path / "meta"))
    assert list(table.columns) == list(FILTER_COLUMNS) + ["exchange", "source", "fetched_at"]
    assert table.index.name == "symbol" and len(table) == len(m.config.symbols)
    adapter = get_adapter(exchange)
    for symbol in m.config.symbols:
        row = table.loc[adapter.unified(symbol)]
        assert row["tick_size"] == pytest.approx(m._tick(symbol, MARKET.get(exchange, "spot")))
        np.testing.assert_allclose(row[list(FILTER_COLUMNS[1:])].to_numpy(float), EXPECTED[exchange])
    assert (table["exchange"] == exchange).all()
    assert (table["source"] == m.url + adapter.exchange_info_path).all()


async def test_filters_come_from_the_metadata_cache_with_their_time(mock_exchange, tmp_path):
    m = mock_exchange
    cache = MetaCache(tmp_path / "meta")
    first = await fetch_filters("binance", ["btcusdt", "ETH-USDT"], base_url=m.url, cache=cache)
    calls = m.stats.by_path["/api/v3/exchangeInfo"]
    again = await fetch_filters("binance", "BTC/USDT", base_url=m.url, cache=cache)
    assert m.stats.by_path["/api/v3/exchangeInfo"] == calls  # served by the cache
    assert list(first.index) == ["BTC/USDT", "ETH/USDT"] and list(again.index) == ["BTC/USDT"]
    created = cache.created({"exchange": "binance", "base_url": m.url, "path": "/api/v3/exchangeInfo"})
    assert again["fetched_at"].iloc[0].timestamp() == pytest.approx(created)
    assert first["fetched_at"].iloc[0] == again["fetched_at"].iloc[0]


async def test_filters_missing_for_a_symbol_say_which(mock_exchange):
    with pytest.raises(BadRequest, match="DOGE/USDT filters.*DOGEUSDT is not listed"):
        await fetch_filters("binance", ["BTC/USDT", "DOGE/USDT"], base_url=mock_exchange.url, cache=False)


def test_a_symbol_not_trading_has_no_filters_and_zero_disables_a_rule():
    info = {"symbols": [
        {"symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT", "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0", "maxPrice": "0", "tickSize": "0.01"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "0", "stepSize": "0.00001"}]},
        {"symbol": "LUNAUSDT", "status": "BREAK", "baseAsset": "LUNA", "quoteAsset": "USDT", "filters": []}]}
    table = get_adapter("binance").symbol_filters(info)
    assert list(table) == ["BTC/USDT"]
    row = table["BTC/USDT"]
    assert row["tick_size"] == 0.01 and row["step_size"] == 1e-5
    assert math.isnan(row["max_qty"]) and math.isnan(row["min_notional"])  # 0 disables; no NOTIONAL filter


def test_filters_sync_from_a_thread_mock():
    from nbtrade.data.mock import MockConfig, serve_in_thread

    from .conftest import SMALL

    with serve_in_thread(MockConfig(**SMALL)) as m:
        table = fetch_filters_sync("okx", base_url=m.url, cache=False)
    assert set(table.index) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"} and table["min_notional"].isna().all()


async def test_ccxt_markets_give_filters(mock_exchange):
    pytest.importorskip("ccxt")
    from nbtrade.data.exchanges.ccxt_adapter import CcxtAdapter

    m = mock_exchange
    adapter = CcxtAdapter("binance", {"options": {"fetchMarkets": {"types": ["spot"]}}})
    table = await fetch_filters(adapter, base_url=m.url, cache=False)
    row = table.loc["BTC/USDT"]
    assert row["tick_size"] == pytest.approx(m._tick("BTC/USDT", "spot"))
    assert row["step_size"] == pytest.approx(1e-5) and row["min_notional"] == pytest.approx(5.0)
    assert (table["exchange"] == "ccxt-binance").all()
