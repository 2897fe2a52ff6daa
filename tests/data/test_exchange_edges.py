"""Exchange-faithful edges (issue 12): open-candle cut, OKX paging, Bybit headers, funding pacing,
403 rules, listings, and a mock that reads the docs on its own. Real mock server on 127.0.0.1."""
from __future__ import annotations

import ast
import inspect

import numpy as np
import pytest

from nbtrade.data import mock as mock_module
from nbtrade.data.exchanges import get_adapter
from nbtrade.data.exchanges.base import BadRequest, RawBody
from nbtrade.data.fetch import FetchReport, _Client, fetch_ohlcv
from nbtrade.data.ratelimit import BackoffPolicy, IPBanned, TooManyRequests, WeightLimiter

MIN = 60_000
HOUR = 3_600_000
FAST = BackoffPolicy(base=0.01, max_delay=0.2, max_retries=8)
FAST_LIMITS = dict(bybit_limit=120, bybit_window_s=0.5, okx_limit=20, okx_window_s=0.2)
MARKET = {"binance": "spot", "binance_futures": "futures", "bybit": "spot", "bybit_linear": "futures",
          "okx": "spot"}


def venue_limiter(exchange: str, mock) -> WeightLimiter | None:
    cfg = mock.config
    if exchange == "okx":
        return WeightLimiter(cfg.okx_limit, cfg.okx_window_s, probe=1.0, name="okx")
    if exchange.startswith("bybit"):
        return WeightLimiter(cfg.bybit_limit, cfg.bybit_window_s, probe=1.0, name="bybit")
    return None


def assert_same(got, want):
    for k in ("time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


# -- 1 and 2: the open candle, with the client's clock estimate 31 s ahead across a boundary ---------
@pytest.mark.parametrize("exchange", ["binance", "binance_futures", "bybit", "okx"])
async def test_open_candle_is_cut_when_the_clock_estimate_runs_ahead(mock_factory, exchange):
    # server clock 00:00:30, its time endpoint says 00:01:01: floor(estimate) puts the open
    # 00:00 candle inside the range; the reply's own clock (Date header / Bybit ``time``) cuts it
    m = await mock_factory(time_skew_s=31.0, **FAST_LIMITS)
    start = "2024-02-29 12:00"
    res = await fetch_ohlcv(exchange, "BTC/USDT", "1m", start, None, base_url=m.url,
                            limiter=venue_limiter(exchange, m), backoff=FAST, parallel=1)
    want = m.expected("BTC/USDT", "1m", start, market=MARKET[exchange])
    rep = res.report.symbols["BTC/USDT"]
    assert len(want["time"]) == 720
    assert_same(res.data["BTC/USDT"], want)  # 720 closed candles, not 721 (nor 99 for OKX)
    assert rep.gaps == [] and rep.open_dropped == 1


async def test_okx_paging_counts_the_open_row(mock_factory):
    # a page of 100 raw rows with one unconfirmed is a full page: the walk goes on
    m = await mock_factory(time_skew_s=31.0, **FAST_LIMITS)
    res = await fetch_ohlcv("okx", "ETH/USDT", "1m", "2024-02-29 12:00", None, base_url=m.url,
                            limiter=venue_limiter("okx", m), parallel=1)
    rep = res.report.symbols["ETH/USDT"]
    assert rep.rows == 720 and rep.gaps == [] and rep.requests == 8


async def test_a_stored_series_never_gets_the_open_candle(mock_factory, tmp_path):
    from nbtrade.data.fetch import MemorySink

    m = await mock_factory(time_skew_s=31.0)
    sink = MemorySink()
    await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-28", None, base_url=m.url, sink=sink)
    stored = sink.read("binance", "BTC/USDT", "1h")
    assert stored["time"][-1] + HOUR <= m.server_ms()


# -- 3: Bybit headers and the IP budget ------------------------------------------------------------
async def test_bybit_public_replies_carry_no_per_uid_headers_and_the_limiter_uses_the_ip_budget(mock_factory):
    m = await mock_factory(bybit_limit=10, bybit_window_s=0.5)
    # the shared limiter's options, at the mock's shortened budget: without any header to learn
    # from, it must still use the documented budget, not a 25 % slow-start share
    lim = WeightLimiter(10, 0.5, name="bybit", **get_adapter("bybit").limiter_options)
    res = await fetch_ohlcv("bybit", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-12", "2024-02-29", base_url=m.url,
                            limiter=lim, parallel=4)
    assert res.report.ok and m.stats.status.get(403, 0) == 0
    assert m.stats.max_weight("bybit") >= 8
    assert lim.stats["max_header"] == 0  # no header was read as the IP budget


# -- 4: fundingRate pacing --------------------------------------------------------------------------
async def test_funding_limiter_paces_by_the_documented_budget():
    adapter = get_adapter("binance_futures")
    client = _Client(adapter, "http://127.0.0.1:9", None, WeightLimiter(2400, 60.0), FAST, 5,
                     FetchReport(adapter.name, "funding", 0, 0))
    funding = client.limiter("funding")
    assert (funding.limit, funding.window) == (500, 300.0)
    assert funding.available() >= 0.95 * 500  # was a 25 % probe (~124 per 5 min) that no header corrects


# -- 5: one 403 rule per exchange ---------------------------------------------------------------
async def test_binance_waf_403_makes_the_shared_limiter_back_off(mock_factory):
    m = await mock_factory(faults=mock_module.Faults(waf=[(6, 0.4)]))
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-01", "2024-02-09",
                            base_url=m.url, backoff=FAST)
    assert m.stats.status.get(403, 0) > 0 and res.report.throttled > 0
    for s in ("BTC/USDT", "ETH/USDT"):
        assert_same(res.data[s], m.expected(s, "1m", "2024-02-01", "2024-02-09"))
    # every request in the block was one already in flight or a backed-off retry: no stampede
    assert m.stats.status[403] <= 16


def test_403_rules_per_exchange():
    binance, bybit, okx = get_adapter("binance"), get_adapter("bybit"), get_adapter("okx")
    waf = binance.error(403, RawBody("<html>403 ERROR Request blocked.</html>"), {})
    assert isinstance(waf, TooManyRequests) and "WAF" in str(waf)
    ban = bybit.error(403, RawBody("access too frequent"), {})
    assert isinstance(ban, IPBanned) and ban.retry_after >= 600
    other = bybit.error(403, RawBody("Forbidden"), {})
    assert isinstance(other, BadRequest) and not isinstance(other, IPBanned)
    assert "U.S." in str(other) and "GET request with a body" in str(other)
    assert isinstance(okx.error(403, RawBody("Forbidden"), {}), BadRequest)


async def test_bybit_forbidden_403_stops_with_the_documented_causes(mock_factory):
    from aiohttp import web

    async def forbidden(request):
        return web.Response(status=403, text="Forbidden", content_type="text/plain")

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", forbidden)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        with pytest.raises(BadRequest, match="U.S. IP"):
            await fetch_ohlcv("bybit", "BTC/USDT", "1h", "2024-02-01", "2024-02-02", base_url=url, backoff=FAST)
    finally:
        await runner.cleanup()


# -- 7: before listing ------------------------------------------------------------------------------
LISTED = "2024-02-15 12:00"


@pytest.mark.parametrize("exchange", ["binance", "binance_futures", "bybit", "bybit_linear", "okx"])
async def test_range_starting_before_listing_reports_the_listing_not_a_gap(mock_factory, exchange):
    m = await mock_factory(listed={"SOL/USDT": LISTED}, **FAST_LIMITS)
    res = await fetch_ohlcv(exchange, "SOL/USDT", "1m", "2024-02-01", "2024-02-16", base_url=m.url,
                            limiter=venue_limiter(exchange, m), parallel=1)
    rep = res.report.symbols["SOL/USDT"]
    want = m.expected("SOL/USDT", "1m", "2024-02-01", "2024-02-16", market=MARKET[exchange])
    assert_same(res.data["SOL/USDT"], want)
    listed = int(want["time"][0])
    assert rep.listed == listed and rep.gaps == []
    assert "listed at 2024-02-15 12:00" in res.report.summary()
    # the 720 listed candles' pages plus up to three probes or empty windows: Bybit no
    # longer walks the 21 empty 1000-candle windows before the listing
    page = get_adapter(exchange).page_limit()
    assert rep.requests <= -(-720 // page) + 3


async def test_a_real_gap_at_the_start_stays_a_gap(mock_factory):
    m = await mock_factory(maintenance=[("2024-02-10 00:00", "2024-02-10 03:00")])
    res = await fetch_ohlcv("bybit", "BTC/USDT", "1m", "2024-02-10 01:00", "2024-02-10 05:00", base_url=m.url)
    rep = res.report.symbols["BTC/USDT"]
    assert rep.listed is None and rep.gaps == [(1707526800000, 1707534000000)]


async def test_symbol_listed_after_the_range(mock_factory):
    m = await mock_factory(listed={"SOL/USDT": LISTED})
    res = await fetch_ohlcv("binance", "SOL/USDT", "1h", "2024-02-01", "2024-02-05", base_url=m.url)
    rep = res.report.symbols["SOL/USDT"]
    assert rep.rows == 0 and rep.gaps == [] and rep.unlisted
    assert "not listed before the end" in res.report.summary()


# -- 8: the mock reads the docs on its own -----------------------------------------------------------
def test_the_mock_imports_nothing_from_the_adapters():
    tree = ast.parse(inspect.getsource(mock_module))
    imported = {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any("exchanges" in name for name in imported)


@pytest.mark.parametrize("limit, weight", [(1, 1), (99, 1), (100, 2), (499, 2), (500, 5), (1000, 5), (1001, 10),
                                           (1500, 10)])
async def test_mock_futures_kline_weight_follows_the_docs(mock_exchange, limit, weight):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(mock_exchange.url + "/fapi/v1/klines",
                               params={"symbol": "BTCUSDT", "interval": "1m", "limit": str(limit)}) as resp:
            assert resp.status == 200
            assert int(resp.headers["X-MBX-USED-WEIGHT-1M"]) == weight
            assert resp.headers["Date"].endswith("GMT")
