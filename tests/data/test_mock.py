"""The mock exchange answers like Binance: layouts, filters, errors, weights, 429 then 418."""
from __future__ import annotations

import json
import urllib.request

import aiohttp
import pytest

from nbtrade.data.mock import Faults, MockConfig, serve_in_thread

MIN = 60_000
FEB10 = 1707523200000  # 2024-02-10 00:00 UTC (maintenance until 03:00)


async def get(mock, path, **params):
    async with aiohttp.ClientSession() as s:
        async with s.get(mock.url + path, params=params) as r:
            return r.status, r.headers, await r.text()


async def test_kline_layout_types_and_order(mock_exchange):
    status, headers, text = await get(mock_exchange, "/api/v3/klines", symbol="BTCUSDT", interval="1m",
                                      startTime=FEB10 - 5 * MIN, limit=3)
    assert status == 200
    rows = json.loads(text)
    assert len(rows) == 3
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
        assert all(isinstance(row[i], str) for i in (1, 2, 3, 4, 5, 7, 9, 10, 11))
        assert row[6] == row[0] + MIN - 1
        assert float(row[2]) >= max(float(row[1]), float(row[4])) >= min(float(row[1]), float(row[4])) >= float(row[3])
    assert [r[0] for r in rows] == [FEB10 - 5 * MIN, FEB10 - 4 * MIN, FEB10 - 3 * MIN]
    assert headers["X-MBX-USED-WEIGHT-1M"] == "2"


async def test_bounds_are_inclusive_on_open_time(mock_exchange):
    t0 = FEB10 - 10 * MIN
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="BTCUSDT", interval="1m",
                           startTime=t0, endTime=t0 + 2 * MIN)
    assert [r[0] for r in json.loads(text)] == [t0, t0 + MIN, t0 + 2 * MIN]
    # start inside the maintenance gap: the next candles after it
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="BTCUSDT", interval="1m",
                           startTime=FEB10 + 5 * MIN, limit=2)
    assert json.loads(text)[0][0] == FEB10 + 180 * MIN


async def test_no_bounds_gives_newest_including_open_candle(mock_exchange):
    _, _, text = await get(mock_exchange, "/api/v3/time")
    now = json.loads(text)["serverTime"]
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="ETHUSDT", interval="1m", limit=5)
    rows = json.loads(text)
    assert len(rows) == 5
    assert rows[-1][0] <= now <= rows[-1][6]  # still open
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="ETHUSDT", interval="1m",
                           endTime=rows[-2][0], limit=2)
    assert [r[0] for r in json.loads(text)] == [rows[-3][0], rows[-2][0]]


@pytest.mark.parametrize("params, code", [
    (dict(symbol="NOPEUSDT", interval="1m"), -1121),
    (dict(symbol="BTCUSDT", interval="1x"), -1120),
    (dict(symbol="BTCUSDT", interval="1M0"), -1120),
    (dict(interval="1m"), -1102),
    (dict(symbol="BTCUSDT"), -1102),
    (dict(symbol="BTCUSDT", interval="1m", startTime="abc"), -1102),
    (dict(symbol="BTCUSDT", interval="1m", startTime=2, endTime=1), -1023),
    (dict(symbol="BTCUSDT", interval="1m", limit=1001), -1130),
])
async def test_errors(mock_exchange, params, code):
    status, headers, text = await get(mock_exchange, "/api/v3/klines", **params)
    assert status == 400
    assert json.loads(text)["code"] == code
    assert "X-MBX-USED-WEIGHT-1M" in headers


@pytest.mark.parametrize("limit, weight", [(99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10), (1500, 10)])
async def test_futures_weight_by_limit(mock_factory, limit, weight):
    mock = await mock_factory()
    status, headers, text = await get(mock, "/fapi/v1/klines", symbol="BTCUSDT", interval="1m",
                                      startTime=FEB10 - 2000 * MIN, limit=limit)
    assert status == 200 and len(json.loads(text)) == limit
    assert headers["X-MBX-USED-WEIGHT-1M"] == str(weight)


async def test_exchange_info_rate_limits_and_filters(mock_exchange):
    status, headers, text = await get(mock_exchange, "/api/v3/exchangeInfo")
    info = json.loads(text)
    assert headers["X-MBX-USED-WEIGHT-1M"] == "20"
    weight = [r for r in info["rateLimits"] if r["rateLimitType"] == "REQUEST_WEIGHT"][0]
    assert weight == {"rateLimitType": "REQUEST_WEIGHT", "interval": "SECOND", "intervalNum": 1, "limit": 1200}
    btc = [s for s in info["symbols"] if s["symbol"] == "BTCUSDT"][0]
    kinds = {f["filterType"] for f in btc["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"} <= kinds
    assert all(isinstance(v, str) for f in btc["filters"] if f["filterType"] == "PRICE_FILTER"
               for k, v in f.items())


async def test_429_then_418_for_clients_that_keep_going(mock_factory):
    mock = await mock_factory(weight_limit=10, window_s=5.0, ban_after=3, ban_grace_s=0.0)
    statuses = []
    for _ in range(12):
        status, headers, text = await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1)
        statuses.append(status)
        if status in (429, 418):
            assert int(headers["Retry-After"]) >= 1
            assert json.loads(text)["code"] == -1003
    assert statuses[:5] == [200] * 5
    assert statuses[5] == 429
    assert 418 in statuses
    assert statuses[-1] == 418  # the ban holds
    assert mock.stats.n418 >= 1


async def test_funding_rate_layout_and_limits(mock_exchange):
    _, _, text = await get(mock_exchange, "/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=0, limit=3)
    rows = json.loads(text)
    assert len(rows) == 3
    assert set(rows[0]) == {"symbol", "fundingTime", "fundingRate", "markPrice"}
    assert isinstance(rows[0]["fundingTime"], int) and isinstance(rows[0]["fundingRate"], str)
    assert rows[0]["fundingTime"] < rows[1]["fundingTime"] < rows[2]["fundingTime"]
    _, _, text = await get(mock_exchange, "/fapi/v1/fundingRate", symbol="BTCUSDT")
    assert len(json.loads(text)) == 87  # default limit 100, but only 29 days x 3 exist
    status, _, text = await get(mock_exchange, "/fapi/v1/fundingRate", symbol="BTCUSDT", limit=1001)
    assert status == 400


async def test_weekly_and_monthly_grids(mock_exchange):
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="BTCUSDT", interval="1w", startTime=0, limit=2)
    import pandas as pd

    for row in json.loads(text):
        assert pd.Timestamp(row[0], unit="ms").day_of_week == 0  # Monday
    _, _, text = await get(mock_exchange, "/api/v3/klines", symbol="BTCUSDT", interval="1M", startTime=0)
    rows = json.loads(text)
    assert [pd.Timestamp(r[0], unit="ms").day for r in rows] == [1] * len(rows)
    assert rows[0][6] == int(pd.Timestamp("2024-03-01").value // 10**6) - 1


async def test_faults(mock_factory):
    mock = await mock_factory(faults=Faults(p_drop=1.0))
    with pytest.raises(aiohttp.ClientError):
        await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=1)
    mock = await mock_factory(faults=Faults(p_malformed=1.0, seed=3))
    status, _, text = await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=2)
    with pytest.raises(ValueError):
        json.loads(text)
    mock = await mock_factory(faults=Faults(p_5xx=1.0))
    status, _, _ = await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=2)
    assert status >= 500
    mock = await mock_factory(faults=Faults(p_truncate=1.0))
    status, _, text = await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=2)
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(text)
    mock = await mock_factory(faults=Faults(storms=[(0, 1.0)]))
    status, headers, _ = await get(mock, "/api/v3/klines", symbol="BTCUSDT", interval="1m", limit=2)
    assert status == 429 and headers["Retry-After"] == "1"
    # metadata endpoints are never faulted
    status, _, _ = await get(mock, "/api/v3/time")
    assert status == 200


def test_serve_in_thread_for_sync_callers():
    config = MockConfig(symbols=("BTC/USDT",), origin="2024-02-25", now="2024-03-01 00:00:30")
    with serve_in_thread(config) as mock:
        with urllib.request.urlopen(mock.url + "/api/v3/klines?symbol=BTCUSDT&interval=1h&limit=2") as r:
            rows = json.loads(r.read())
            assert r.headers["X-MBX-USED-WEIGHT-1M"] == "2"
        assert len(rows) == 2


def test_bad_mock_options():
    with pytest.raises(TypeError, match="unknown mock option"):
        from nbtrade.data.mock import MockExchange

        MockExchange(nonsense=1)
    with pytest.raises(ValueError, match="origin"):
        MockExchange(origin="2024-03-02", now="2024-03-01")
