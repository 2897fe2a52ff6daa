"""Bybit v5 and OKX adapters against the real mock server on 127.0.0.1 (their layouts, codes and limits)."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nbtrade.data.exchanges import get_adapter
from nbtrade.data.exchanges.base import BadRequest, MalformedResponse, RawBody, ServerError
from nbtrade.data.exchanges.bybit import BybitSpot
from nbtrade.data.exchanges.okx import OKXSpot
from nbtrade.data.fetch import MemorySink, fetch_ohlcv
from nbtrade.data.mock import Faults
from nbtrade.data.ratelimit import BackoffPolicy, IPBanned, RateLimitError, TooManyRequests, WeightLimiter

MIN = 60_000
FEB10 = 1707523200000  # maintenance 2024-02-10 00:00 .. 03:00 (conftest.SMALL)
FAST = BackoffPolicy(base=0.01, max_delay=0.2, max_retries=8)
#: fast IP windows: Bybit 600 per 5 s -> 120 per 0.5 s, OKX 20 per 2 s -> 20 per 0.2 s
FAST_LIMITS = dict(bybit_limit=120, bybit_window_s=0.5, okx_limit=20, okx_window_s=0.2)
VENUES = ["bybit", "bybit_linear", "okx"]
#: the Binance market serving the same synthetic candles
TWIN = {"bybit": "binance", "bybit_linear": "binance_futures", "okx": "binance"}
MARKET = {"bybit": "spot", "bybit_linear": "futures", "okx": "spot"}


def limiter(exchange: str, mock) -> WeightLimiter:
    """A limiter with the mock's (shortened) budget for this exchange."""
    cfg = mock.config
    if exchange == "okx":
        return WeightLimiter(cfg.okx_limit, cfg.okx_window_s, probe=1.0, name="okx")
    return WeightLimiter(cfg.bybit_limit, cfg.bybit_window_s, name="bybit")


def assert_same(got, want):
    for k in ("time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


@pytest.fixture
async def venue_mock(mock_factory):
    return await mock_factory(**FAST_LIMITS)


@pytest.mark.parametrize("exchange", VENUES)
async def test_fetch_equals_the_binance_fetch_of_the_same_candles(venue_mock, exchange):
    m = venue_mock
    syms = ["BTC/USDT", "ETH/USDT"]
    ours = await fetch_ohlcv(exchange, syms, "1m", "2024-02-09", "2024-02-11 12:00", base_url=m.url,
                             limiter=limiter(exchange, m))
    twin = await fetch_ohlcv(TWIN[exchange], syms, "1m", "2024-02-09", "2024-02-11 12:00", base_url=m.url)
    for s in syms:
        assert_same(ours.data[s], twin.data[s])
        assert_same(ours.data[s], m.expected(s, "1m", "2024-02-09", "2024-02-11 12:00", market=MARKET[exchange]))
        assert ours.report.symbols[s].gaps == [(FEB10, FEB10 + 180 * MIN)]
        assert ours.report.symbols[s].bad_rows == []
    assert ours.report.exchange == exchange


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
@pytest.mark.parametrize("tf", ["5m", "1h", "6h", "12h", "1d", "1w", "1M"])
async def test_timeframes_map_onto_the_utc_grid(venue_mock, exchange, tf):
    start = "2024-02-20" if tf in ("5m",) else "2024-01-01"
    res = await fetch_ohlcv(exchange, "SOL/USDT", tf, start, None, base_url=venue_mock.url,
                            limiter=limiter(exchange, venue_mock))
    want = venue_mock.expected("SOL/USDT", tf, start)
    assert len(want["time"]) > 0
    assert_same(res.data["SOL/USDT"], want)


def test_interval_and_symbol_ids():
    bybit, okx = get_adapter("bybit"), get_adapter("okx")
    assert [bybit.interval(t) for t in ("1m", "1h", "4h", "12h", "1d", "1w", "1M")] == \
        ["1", "60", "240", "720", "D", "W", "M"]
    assert [okx.interval(t) for t in ("1m", "1h", "4h", "6h", "1d", "1w", "1M")] == \
        ["1m", "1H", "4H", "6Hutc", "1Dutc", "1Wutc", "1Mutc"]
    assert okx.symbol_id("btc/usdt") == "BTC-USDT" and bybit.symbol_id("BTC/USDT") == "BTCUSDT"
    assert get_adapter("bybit_linear").symbol_id("BTC/USDT:USDT") == "BTCUSDT"
    req = okx.klines_request("ETH/USDT", "1d", 0, 999, 100)
    assert req.params == {"instId": "ETH-USDT", "bar": "1Dutc", "after": 1000, "limit": 100}
    req = get_adapter("bybit_linear").klines_request("ETH/USDT", "1h", 5, 999, 1000)
    assert req.params == {"category": "linear", "symbol": "ETHUSDT", "interval": "60", "start": 5, "end": 999,
                          "limit": 1000}
    for bad in ("8h", "3d"):
        with pytest.raises(ValueError, match="not supported by"):
            bybit.interval(bad)
        with pytest.raises(ValueError, match="not supported by"):
            okx.interval(bad)
    with pytest.raises(ValueError, match="perpetual .* okx serves spot"):
        okx.symbol_id("BTC/USDT:USDT")
    # one symbol rule: every spelling of the spot pair is the spot pair
    assert okx.symbol_id("BTCUSDT") == okx.symbol_id("btc_usdt") == "BTC-USDT"


@pytest.mark.parametrize("exchange, page", [("bybit", 1000), ("okx", 100)])
async def test_exact_multiple_of_the_page_size(venue_mock, exchange, page):
    start = FEB10 + 12 * 3600_000
    res = await fetch_ohlcv(exchange, "BTC/USDT", "1m", start, start + 3 * page * MIN, base_url=venue_mock.url,
                            parallel=1, limiter=limiter(exchange, venue_mock))
    rep = res.report.symbols["BTC/USDT"]
    assert rep.rows == 3 * page and rep.gaps == [] and rep.requests == 3
    t = res.data["BTC/USDT"]["time"]
    assert t[0] == start and t[-1] == start + (3 * page - 1) * MIN and np.all(np.diff(t) == MIN)


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_start_inside_a_maintenance_gap(venue_mock, exchange):
    res = await fetch_ohlcv(exchange, "BTC/USDT", "1m", FEB10 + 30 * MIN, FEB10 + 240 * MIN,
                            base_url=venue_mock.url, limiter=limiter(exchange, venue_mock))
    t = res.data["BTC/USDT"]["time"]
    assert t[0] == FEB10 + 180 * MIN and len(t) == 60
    assert res.report.symbols["BTC/USDT"].gaps == [(FEB10 + 30 * MIN, FEB10 + 180 * MIN)]


@pytest.mark.parametrize("exchange", ["bybit", "bybit_linear", "okx"])
async def test_open_candle_is_dropped(venue_mock, exchange):
    m = venue_mock
    res = await fetch_ohlcv(exchange, "ETH/USDT", "1m", "2024-02-29 23:00", None, base_url=m.url,
                            limiter=limiter(exchange, m))
    t = res.data["ETH/USDT"]["time"]
    now = m.server_ms()
    assert len(t) == 60 and t[-1] + MIN <= now and t[-1] == (now // MIN) * MIN - MIN


async def test_okx_confirm_zero_row_is_marked_open_by_the_parser(venue_mock):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(venue_mock.url + "/api/v5/market/history-candles",
                               params={"instId": "BTC-USDT", "bar": "1H", "limit": "3"}) as resp:
            payload = await resp.json()
    rows = payload["data"]
    assert [r[8] for r in rows] == ["0", "1", "1"]  # newest first, the open candle unconfirmed
    assert all(isinstance(x, str) for r in rows for x in r) and int(rows[0][0]) > int(rows[1][0])
    parsed = OKXSpot().parse_klines(payload)
    # every row stays (paging counts raw rows); the open one is marked and the fetcher drops it
    assert parsed["time"].tolist() == [int(r[0]) for r in rows]
    assert parsed["closed"].tolist() == [False, True, True]


async def test_bybit_layout_is_newest_first_strings(venue_mock):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(venue_mock.url + "/v5/market/kline",
                               params={"category": "spot", "symbol": "BTCUSDT", "interval": "60",
                                       "start": str(FEB10 - 3600_000 * 10), "end": str(FEB10 + 3600_000 * 10),
                                       "limit": "5"}) as resp:
            payload = await resp.json()
            headers = resp.headers
    assert payload["retCode"] == 0 and payload["retMsg"] == "OK" and isinstance(payload["time"], int)
    rows = payload["result"]["list"]
    assert len(rows) == 5 and all(len(r) == 7 and all(isinstance(x, str) for x in r) for r in rows)
    assert int(rows[0][0]) == FEB10 + 3600_000 * 10  # the newest rows of the range, newest first
    assert [int(r[0]) for r in rows] == sorted((int(r[0]) for r in rows), reverse=True)
    # public market endpoints: no per-UID X-Bapi-Limit* headers, and none is read as the IP budget
    assert not any(h.lower().startswith("x-bapi-limit") for h in headers)
    assert BybitSpot().used_weight(headers) is None


@pytest.mark.parametrize("exchange, code", [("bybit", 10001), ("okx", 51001)])
async def test_unlisted_symbol_fails_before_any_candle_request(venue_mock, exchange, code):
    with pytest.raises(BadRequest, match=rf"DOGE/USDT 1m.*{code}") as info:
        await fetch_ohlcv(exchange, ["BTC/USDT", "DOGE/USDT"], "1m", "2024-02-01", "2024-02-20",
                          base_url=venue_mock.url, backoff=FAST)
    assert info.value.code == code and info.value.symbol == "DOGE/USDT"
    assert venue_mock.stats.data_requests == 0


@pytest.mark.parametrize("exchange, code", [("bybit", 10001), ("okx", 51001)])
async def test_bad_symbol_from_the_server_fails_fast(venue_mock, exchange, code):
    class Unlisted(type(get_adapter(exchange))):
        def listed(self, info):
            return None

    with pytest.raises(BadRequest, match=rf"DOGE/USDT 1h.*{code}") as info:
        await fetch_ohlcv(Unlisted(), "DOGE/USDT", "1h", "2024-02-01", "2024-02-02", base_url=venue_mock.url,
                          backoff=FAST)
    assert info.value.code == code
    assert venue_mock.stats.data_requests == 1  # never retried


@pytest.mark.parametrize("exchange, code", [("bybit", 10001), ("okx", 51000)])
async def test_bad_interval_from_the_server_fails_fast(venue_mock, exchange, code):
    class Broken(type(get_adapter(exchange))):
        def interval(self, timeframe):
            return "7x"

    with pytest.raises(BadRequest, match=rf"BTC/USDT 1h.*{code}.*(interval|bar)"):
        await fetch_ohlcv(Broken(), "BTC/USDT", "1h", "2024-02-01", "2024-02-02", base_url=venue_mock.url,
                          backoff=FAST)
    assert venue_mock.stats.data_requests == 1


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_unsupported_timeframe_fails_before_any_request(venue_mock, exchange):
    with pytest.raises(ValueError, match=f"'8h' is not supported by {exchange}"):
        await fetch_ohlcv(exchange, "BTC/USDT", "8h", "2024-02-01", "2024-02-20", base_url=venue_mock.url)
    assert venue_mock.stats.requests == 0


def test_rate_limit_signals_map_to_one_error_family():
    bybit, okx = BybitSpot(), OKXSpot()
    err = bybit.error(200, {"retCode": 10006, "retMsg": "Too many visits!", "time": 1_000},
                      {"X-Bapi-Limit-Status": "0", "X-Bapi-Limit": "600", "X-Bapi-Limit-Reset-Timestamp": "3500"})
    assert isinstance(err, TooManyRequests) and err.retry_after == 2.5 and err.code == 10006
    ban = bybit.error(403, RawBody("access too frequent"), {})
    assert isinstance(ban, IPBanned) and ban.banned and ban.retry_after >= 600
    err = okx.error(429, {"code": "50011", "msg": "Too Many Requests", "data": []}, {})
    assert isinstance(err, TooManyRequests) and err.code == 50011
    assert all(isinstance(e, RateLimitError) for e in (err, ban))
    assert isinstance(bybit.error(200, {"retCode": 10001, "retMsg": "params error", "time": 1}, {}), BadRequest)
    assert isinstance(bybit.error(200, {"retCode": 10016, "retMsg": "server error", "time": 1}, {}), ServerError)
    assert isinstance(bybit.error(200, {"foo": 1}, {}), MalformedResponse)
    assert bybit.error(200, {"retCode": 0, "retMsg": "OK", "result": {}}, {}) is None
    assert isinstance(okx.error(200, {"code": "51001", "msg": "Instrument ID does not exist"}, {}), BadRequest)
    assert isinstance(okx.error(503, {"code": "50001", "msg": "Service temporarily unavailable"}, {}), ServerError)
    assert okx.error(200, {"code": "0", "msg": "", "data": []}, {}) is None
    # per-UID, per-endpoint, per-second headers are not the IP budget
    assert bybit.used_weight({"X-Bapi-Limit": "600", "X-Bapi-Limit-Status": "590"}) is None


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_no_ban_under_a_rate_limit_storm(mock_factory, exchange):
    m = await mock_factory(faults=Faults(storms=[(3, 0.3), (12, 0.3)]), **FAST_LIMITS)
    res = await fetch_ohlcv(exchange, ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-08", "2024-02-11", base_url=m.url,
                            limiter=limiter(exchange, m), backoff=FAST)
    assert m.stats.faults["storm"] > 0 and res.report.throttled > 0
    assert m.stats.status.get(403, 0) == 0  # Bybit's ban
    if exchange == "okx":
        assert m.stats.status.get(429, 0) > 0  # 50011 with HTTP 429
    for s in ("BTC/USDT", "ETH/USDT"):
        assert_same(res.data[s], m.expected(s, "1m", "2024-02-08", "2024-02-11"))


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_limiter_keeps_within_the_ip_budget(mock_factory, exchange):
    # two fetches in one loop share the limiter; the mock's small budget is never broken
    m = await mock_factory(bybit_limit=12, bybit_window_s=0.25, okx_limit=20, okx_window_s=0.2)
    lim = limiter(exchange, m)
    tf = "1m"  # Bybit: 2 x 20 pages of 1000 against 12 per 0.25 s; OKX: 2 x 29 pages of 100 against 20 per 0.2 s
    start, end = ("2024-02-01", "2024-02-15") if exchange == "bybit" else ("2024-02-09", "2024-02-11")
    runs = await asyncio.gather(*(fetch_ohlcv(exchange, s, tf, start, end, base_url=m.url, limiter=lim, backoff=FAST,
                                              parallel=4) for s in ("BTC/USDT", "SOL/USDT")))
    venue = "bybit" if exchange == "bybit" else "okx"
    assert m.stats.status.get(403, 0) == 0 and m.stats.status.get(429, 0) == 0
    assert 0 < m.stats.max_weight(venue) <= (12 if exchange == "bybit" else 20)
    assert len([k for k in m.stats.window_weight if k[0] == venue]) >= 3  # the budget really bound
    assert_same(runs[1].data["SOL/USDT"], m.expected("SOL/USDT", tf, start, end))


async def test_bybit_ban_stops_at_once(venue_mock):
    m = venue_mock
    m._banned_until["bybit:127.0.0.1"] = m.server_ms() + 60_000
    with pytest.raises(IPBanned, match="stopping"):
        await fetch_ohlcv("bybit", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-01", "2024-02-20", base_url=m.url,
                          backoff=FAST)
    assert m.stats.status == {403: 1}  # the server-time request was refused; nothing else was sent


async def test_bybit_over_the_ip_limit_is_a_ban(mock_factory):
    import aiohttp

    m = await mock_factory(bybit_limit=20, bybit_window_s=60.0)  # one window (the clock starts 30 s before the next)
    async with aiohttp.ClientSession() as session:
        statuses = []
        for _ in range(m.config.bybit_limit + 3):
            async with session.get(m.url + "/v5/market/time") as resp:
                statuses.append(resp.status)
                text = await resp.text()
    assert statuses == [200] * 20 + [403] * 3 and "too frequent" in text
    assert m.server_ms() < m._banned_until["bybit:127.0.0.1"]


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_fault_injected_fetch_identical_to_clean(mock_factory, exchange):
    faults = Faults(seed=3, p_5xx=0.08, p_drop=0.08, p_truncate=0.08, p_malformed=0.08, p_slow=0.04, slow_s=0.1)
    m = await mock_factory(faults=faults, **FAST_LIMITS)
    res = await fetch_ohlcv(exchange, "BTC/USDT", "1m", "2024-02-09", "2024-02-11", base_url=m.url,
                            limiter=limiter(exchange, m), backoff=FAST, timeout=5.0)
    assert res.report.retries > 0
    assert_same(res.data["BTC/USDT"], m.expected("BTC/USDT", "1m", "2024-02-09", "2024-02-11"))


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_resume_via_a_sink(venue_mock, exchange):
    m = venue_mock
    sink = MemorySink()
    first = await fetch_ohlcv(exchange, "BTC/USDT", "1m", "2024-02-09", "2024-02-10 12:00", base_url=m.url,
                              sink=sink, limiter=limiter(exchange, m))
    last = sink.last_time(exchange, "BTC/USDT", "1m")
    assert last == first.data["BTC/USDT"]["time"][-1]
    again = await fetch_ohlcv(exchange, "BTC/USDT", "1m", "2024-02-09", "2024-02-11", base_url=m.url, sink=sink,
                              limiter=limiter(exchange, m), keep=False)
    assert again.report.symbols["BTC/USDT"].resumed_from == last
    assert_same(sink.read(exchange, "BTC/USDT", "1m"), m.expected("BTC/USDT", "1m", "2024-02-09", "2024-02-11"))
    done = await fetch_ohlcv(exchange, "BTC/USDT", "1m", "2024-02-09", "2024-02-11", base_url=m.url, sink=sink,
                             limiter=limiter(exchange, m))
    assert done.report.symbols["BTC/USDT"].requests == 0


async def test_resume_after_an_interrupted_bybit_run(venue_mock):
    m = venue_mock
    sink = MemorySink()
    started = asyncio.Event()

    def on_page(symbol, rows, last):
        if rows >= 2000:
            started.set()

    task = asyncio.ensure_future(fetch_ohlcv("bybit", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-02", "2024-02-20",
                                             base_url=m.url, sink=sink, on_page=on_page, parallel=4))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = {s: sink.last_time("bybit", s, "1m") for s in ("BTC/USDT", "ETH/USDT")}
    assert any(v is not None for v in partial.values())
    res = await fetch_ohlcv("bybit", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-02", "2024-02-20", base_url=m.url,
                            sink=sink)
    for s in ("BTC/USDT", "ETH/USDT"):
        if partial[s] is not None:
            assert res.report.symbols[s].resumed_from == partial[s]
        assert_same(sink.read("bybit", s, "1m"), m.expected(s, "1m", "2024-02-02", "2024-02-20"))


@pytest.mark.parametrize("from_start", [False, True])
async def test_bybit_pages_are_right_whichever_rows_the_server_picks(mock_factory, from_start):
    # a 2-day outage is longer than a page of 1m candles: a short or empty page is a gap, not the end
    m = await mock_factory(bybit_from_start=from_start, maintenance=[("2024-02-10", "2024-02-12")], **FAST_LIMITS)
    res = await fetch_ohlcv("bybit", "BTC/USDT", "1m", "2024-02-09 00:07", "2024-02-13 05:00", base_url=m.url,
                            limiter=limiter("bybit", m), parallel=2)
    assert_same(res.data["BTC/USDT"], m.expected("BTC/USDT", "1m", "2024-02-09 00:07", "2024-02-13 05:00"))
    assert res.report.symbols["BTC/USDT"].gaps == [(FEB10, FEB10 + 2 * 1440 * MIN)]
    # no start: from the first candle the exchange has, without a leading gap
    res = await fetch_ohlcv("bybit", "ETH/USDT", "1h", None, "2024-02-20", base_url=m.url,
                            limiter=limiter("bybit", m))
    assert_same(res.data["ETH/USDT"], m.expected("ETH/USDT", "1h", None, "2024-02-20"))
    assert res.report.symbols["ETH/USDT"].gaps == [(FEB10, FEB10 + 2 * 86400_000)]


def test_bybit_window_holds_at_most_one_page():
    a = BybitSpot()
    end = FEB10 + 5000 * MIN - 1
    assert a.window_start("1m", 0, end, 1000) == FEB10 + 4000 * MIN
    assert a.window_start("1m", FEB10 + 4500 * MIN, end, 1000) == FEB10 + 4500 * MIN
    req = a.klines_request("BTC/USDT", "1m", 0, end, 1000)
    assert (req.params["start"], req.params["end"]) == (FEB10 + 4000 * MIN, end)
    # months counted as 28 days: never more than ``limit`` candles (here Jan and Feb of 3)
    assert a.window_start("1M", 0, FEB10, 3) == 1704067200000  # 2024-01-01


async def test_okx_without_start_walks_back_to_the_first_candle(venue_mock):
    res = await fetch_ohlcv("okx", "ETH/USDT", "1h", None, "2024-02-20", base_url=venue_mock.url,
                            limiter=limiter("okx", venue_mock))
    assert_same(res.data["ETH/USDT"], venue_mock.expected("ETH/USDT", "1h", None, "2024-02-20"))
    assert res.report.symbols["ETH/USDT"].gaps == [(FEB10, FEB10 + 3 * 3600_000)]


@pytest.mark.parametrize("exchange", ["bybit", "bybit_linear", "okx"])
def test_run_fetch_with_the_default_limits(exchange, capsys):
    from nbtrade.data.fetch import run_fetch
    from nbtrade.data.mock import MockConfig, serve_in_thread

    from .conftest import SMALL

    with serve_in_thread(MockConfig(**SMALL)) as m:  # the real budgets: 600 per 5 s, 20 per 2 s
        code = run_fetch(exchange, "BTC/USDT,ETH/USDT", "1h", "2024-02-05", "2024-02-15", base_url=m.url)
    out = capsys.readouterr().out
    assert code == 0 and f"{exchange} 1h: 474 candles" in out and "1 gaps (3 missing)" in out


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
async def test_hdf5_store_resume_and_backfill(venue_mock, tmp_path, exchange):
    from nbtrade.data.store import Store

    m = venue_mock
    store = Store(tmp_path / "store")
    want = m.expected("BTC/USDT", "1h", "2024-02-05", "2024-02-24")
    await fetch_ohlcv(exchange, "BTC/USDT", "1h", "2024-02-12", "2024-02-18", base_url=m.url, sink=store,
                      limiter=limiter(exchange, m))
    res = await fetch_ohlcv(exchange, "BTC/USDT", "1h", "2024-02-05", "2024-02-24", base_url=m.url, sink=store,
                            limiter=limiter(exchange, m))
    assert res.report.symbols["BTC/USDT"].gaps == [(FEB10, FEB10 + 3 * 3600_000)]
    got = store.read(exchange, "BTC/USDT", "1h", as_arrays=True)
    for k in ("time", "open", "close", "volume"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    if hasattr(store, "close"):
        store.close()
