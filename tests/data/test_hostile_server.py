"""The fetcher against a hostile local server (issue 14): slowloris, endless 429, malformed
bodies, error bodies sent with HTTP 200. Every case is bounded by a timeout and ends with a
clear error naming the endpoint and field, carrying the exchange's own message where it sent one.
"""
from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any, Awaitable, Callable

import pytest

from nbtrade.data.exchanges.base import BadRequest, ServerError
from nbtrade.data.fetch import fetch_ohlcv
from nbtrade.data.ratelimit import BackoffPolicy, IPBanned, TooManyRequests

HOUR = 3_600_000
NOW = 1709251230000            # 2024-03-01 00:00:30 UTC
FIRST = 1706745600000          # 2024-02-01
#: every case must end well inside this many seconds
BOUND_S = 20.0
#: short retries and a short give-up time: bounded by design, not by real minutes
QUICK = dict(backoff=BackoffPolicy(base=0.01, max_delay=0.05, max_retries=2, give_up_s=0.5), cache=False,
             timeout=1.0)
Handler = Callable[[Any], Awaitable[Any]]


def web():
    from aiohttp import web as _web

    return _web


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None, raw: bool = False):
    text = body if raw else json.dumps(body)
    return web().Response(status=status, text=text, headers=headers or {}, content_type="application/json")


def good_rows(q: Any, price: str = "100.0") -> list[list[Any]]:
    start = int(q.get("startTime", FIRST))
    end = min(int(q.get("endTime", NOW)), NOW - HOUR)
    limit = int(q.get("limit", 500))
    first = max(FIRST, -(-start // HOUR) * HOUR)
    rows = []
    for t in range(first, end + 1, HOUR):
        if len(rows) == limit:
            break
        rows.append([t, price, price, price, price, "1.0", t + HOUR - 1, "100.0", 1, "0.5", "50.0", "0"])
    return rows


async def ok_time(request):
    return reply({"serverTime": NOW})


async def ok_info(request):
    return reply({"timezone": "UTC", "serverTime": NOW, "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000}],
        "symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}]})


async def ok_klines(request):
    return reply(good_rows(request.query))


class Hostile:
    """A Binance-shaped server whose handlers each test replaces."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {"/api/v3/time": ok_time, "/api/v3/exchangeInfo": ok_info,
                                             "/api/v3/klines": ok_klines}
        self.hits: Counter[str] = Counter()
        self.url = ""

    async def handle(self, request):
        self.hits[request.path] += 1
        handler = self.handlers.get(request.path)
        if handler is None:
            return reply({"code": -1000, "msg": "unknown path"}, status=404)
        return await handler(request)


@pytest.fixture
async def hostile():
    w = web()
    server = Hostile()
    app = w.Application()
    app.router.add_route("GET", "/{tail:.*}", server.handle)
    runner = w.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = w.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield server
    await runner.cleanup()


async def fetch(server: Hostile, **kw):
    options = {**QUICK, **kw}
    return await asyncio.wait_for(fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", "2024-02-10",
                                              base_url=server.url, **options), BOUND_S)


def constant(body: Any, status: int = 200, headers: dict[str, str] | None = None, raw: bool = False) -> Handler:
    async def handler(request):
        return reply(body, status, headers, raw)

    return handler


# -- the time endpoint -------------------------------------------------------------------------------
@pytest.mark.parametrize("body, match", [
    ({"foo": 1}, r"/api/v3/time: field 'serverTime'"),
    ({"serverTime": 0}, r"field 'serverTime': 0 ms is not a plausible time"),
    ({"serverTime": -5}, r"field 'serverTime'.*not a plausible"),
    ({"serverTime": 2 ** 70}, r"field 'serverTime'.*not a plausible"),
    ({"serverTime": "soon"}, r"field 'serverTime': expected epoch milliseconds"),
    ({"serverTime": 1.7e12}, r"field 'serverTime': expected epoch milliseconds"),
    ({"serverTime": True}, r"field 'serverTime': expected epoch milliseconds"),
    ({"serverTime": None}, r"field 'serverTime'"),
    ([], r"field 'serverTime'"),
    (None, r"field 'serverTime'"),
])
async def test_malformed_server_time_is_a_clear_error(hostile, body, match):
    hostile.handlers["/api/v3/time"] = constant(body)
    with pytest.raises(ServerError, match=match):
        await fetch(hostile)
    assert hostile.hits["/api/v3/klines"] == 0


# -- exchangeInfo --------------------------------------------------------------------------------
def info_with(**fields) -> dict[str, Any]:
    base = {"timezone": "UTC", "serverTime": NOW,
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                            "limit": 6000}],
            "symbols": [{"symbol": "BTCUSDT", "status": "TRADING"}]}
    base.update(fields)
    return base


def weight(**entry) -> list[dict[str, Any]]:
    return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000, **entry}]


@pytest.mark.parametrize("info, match", [
    (info_with(symbols="BTCUSDT"), r"exchangeInfo: field 'symbols' is str; expected a list"),
    (info_with(symbols=[1, 2]), r"exchangeInfo: symbols\[0\] is 1"),
    (info_with(symbols=[{"name": "BTCUSDT"}]), r"exchangeInfo: symbols\[0\].*'symbol' string"),
    (info_with(symbols=[{"symbol": 7}]), r"exchangeInfo: symbols\[0\]"),
    (info_with(rateLimits=weight(limit="6000")), r"exchangeInfo: rateLimits\[0\].limit .* is '6000'"),
    (info_with(rateLimits=weight(limit=-5)), r"rateLimits\[0\].limit .* is -5; expected a positive integer"),
    (info_with(rateLimits=weight(limit=0)), r"rateLimits\[0\].limit"),
    (info_with(rateLimits=weight(limit=None)), r"rateLimits\[0\].limit"),
    (info_with(rateLimits=weight(interval="FORTNIGHT")), r"rateLimits\[0\].*interval 'FORTNIGHT'"),
    (info_with(rateLimits=weight(intervalNum=0)), r"rateLimits\[0\].*intervalNum"),
    (info_with(rateLimits={"REQUEST_WEIGHT": 6000}), r"field 'rateLimits' is dict; expected a list"),
    (info_with(rateLimits=["weight"]), r"rateLimits\[0\] is 'weight'"),
    ([1, 2, 3], r"exchangeInfo: expected a JSON object, got list"),
])
async def test_malformed_exchange_info_names_the_field(hostile, info, match):
    hostile.handlers["/api/v3/exchangeInfo"] = constant(info)
    with pytest.raises(ServerError, match=match):
        await fetch(hostile)
    assert hostile.hits["/api/v3/klines"] == 0


async def test_malformed_exchange_info_is_never_cached(hostile, tmp_path):
    from nbtrade.data.metacache import MetaCache

    cache = MetaCache(tmp_path / "meta")
    hostile.handlers["/api/v3/exchangeInfo"] = constant(info_with(symbols="BTCUSDT"))
    with pytest.raises(ServerError):
        await fetch(hostile, cache=cache)
    hostile.handlers["/api/v3/exchangeInfo"] = ok_info
    res = await fetch(hostile, cache=cache)
    assert res.report.symbols["BTC/USDT"].rows > 0


# -- kline bodies ----------------------------------------------------------------------------------
def row(t: Any = FIRST, o: Any = "100.0", v: Any = "1.0") -> list[Any]:
    return [t, o, "100.0", "100.0", "100.0", v, 0, "0", 1, "0", "0", "0"]


@pytest.mark.parametrize("body, match", [
    ([row(2 ** 70)], r"klines: row 0 field 0 \(open time\) is 1180591620717411303424"),
    ([row(-1)], r"row 0 field 0 \(open time\)"),
    ([row(str(FIRST))], r"row 0 field 0 \(open time\) is '1706745600000'"),
    ([row(float(FIRST))], r"row 0 field 0 \(open time\)"),
    ([row(True)], r"row 0 field 0 \(open time\)"),
    ([{"openTime": FIRST, "open": "1"}], r"klines: row 0 is a JSON object; expected an array of 12 fields"),
    ([[FIRST, "1"]], r"klines: row 0 is \[1706745600000, '1'\]"),
    ([row(o="abc")], r"row 0 field 1 \(open\) is 'abc'; expected a decimal string"),
    ([row(o=None)], r"row 0 field 1 \(open\)"),
    ([row(v=[1])], r"row 0 field 5 \(volume\)"),
    ({"rows": []}, r"klines: expected a JSON array of rows, got dict"),
    (None, r"klines: expected a JSON array of rows, got NoneType"),
    ("<html><body>502 Bad Gateway</body></html>", r"body is not valid JSON: '<html>"),
    ("", r"body is not valid JSON"),
    ('[[1706745600000,"1.0",', r"body is not valid JSON"),
])
async def test_malformed_klines_are_a_clear_error(hostile, body, match):
    raw = isinstance(body, str)
    hostile.handlers["/api/v3/klines"] = constant(body, raw=raw)
    with pytest.raises(ServerError, match=match):
        await fetch(hostile)
    assert hostile.hits["/api/v3/klines"] == 3  # bounded retries (max_retries=2), then the error


@pytest.mark.parametrize("price, reason", [("-5.0", "price <= 0"), ("0", "price <= 0"), ("0.0", "price <= 0"),
                                           ("NaN", "non-finite value"), ("Infinity", "non-finite value")])
async def test_bad_prices_make_the_report_not_ok_without_a_store(hostile, price, reason):
    async def klines(request):
        rows = good_rows(request.query)
        for r in rows[:3]:
            r[1:5] = [price] * 4
        return reply(rows)

    hostile.handlers["/api/v3/klines"] = klines
    res = await fetch(hostile)
    rep = res.report.symbols["BTC/USDT"]
    assert not res.report.ok
    assert [why for _, why in rep.bad_rows] == [reason] * 3
    assert (res.data["BTC/USDT"]["close"] > 0).all()


# -- error bodies sent with HTTP 200 -----------------------------------------------------------------
@pytest.mark.parametrize("code, msg", [(-1121, "Invalid symbol."), (-1120, "Invalid interval."),
                                       (-1102, "Mandatory parameter 'symbol' was not sent."),
                                       (-1100, "Illegal characters found in a parameter.")])
async def test_error_body_with_200_fails_at_once_with_the_exchange_message(hostile, code, msg):
    hostile.handlers["/api/v3/klines"] = constant({"code": code, "msg": msg})
    with pytest.raises(BadRequest) as info:
        await fetch(hostile)
    assert msg in str(info.value) and info.value.code == code and "BTC/USDT 1h" in str(info.value)
    assert hostile.hits["/api/v3/klines"] == 1  # never retried


async def test_server_error_body_with_200_is_retried_then_reported(hostile):
    msg = "Internal error; unable to process your request. Please try again."
    hostile.handlers["/api/v3/klines"] = constant({"code": -1001, "msg": msg})
    with pytest.raises(ServerError, match="giving up after 3 attempts.*Internal error; unable to process"):
        await fetch(hostile)


async def test_rate_limit_body_with_200_is_throttled_and_bounded(hostile):
    msg = "Too much request weight used; current limit is 6000 request weight per 1 MINUTE."
    hostile.handlers["/api/v3/klines"] = constant({"code": -1003, "msg": msg})
    with pytest.raises(TooManyRequests, match="give_up_s.*Too much request weight used"):
        await fetch(hostile)


# -- rate limits without end -------------------------------------------------------------------------
LIMIT_MSG = {"code": -1003, "msg": "Too much request weight used; current limit is 6000 request weight per "
                                   "1 MINUTE. Please use WebSocket Streams for live updates."}


@pytest.mark.parametrize("headers", [{}, {"Retry-After": "0"}, {"Retry-After": "soon"}, {"Retry-After": "-3"}])
async def test_endless_429_gives_up_within_the_documented_time(hostile, headers):
    hostile.handlers["/api/v3/klines"] = constant(LIMIT_MSG, status=429, headers=headers)
    with pytest.raises(TooManyRequests, match="still rate limited.*Too much request weight used") as info:
        await fetch(hostile)
    assert info.value.status == 429
    assert hostile.hits["/api/v3/klines"] >= 3  # it did back off and retry before giving up


async def test_429_without_retry_after_backs_off_exponentially_from_a_short_base(hostile):
    hostile.handlers["/api/v3/klines"] = constant(LIMIT_MSG, status=429)
    policy = BackoffPolicy(base=0.01, factor=2.0, max_delay=10.0, jitter=0.0, give_up_s=0.3)
    with pytest.raises(TooManyRequests):
        await fetch(hostile, backoff=policy, concurrency=1, parallel=1)
    # waits 0.01, 0.02, 0.04, 0.08, 0.16 (sum 0.31 > 0.3 stops at the 5th): 5 replies, not 60 s each
    assert hostile.hits["/api/v3/klines"] == 5


async def test_a_retry_after_longer_than_the_give_up_time_fails_at_once(hostile):
    hostile.handlers["/api/v3/klines"] = constant(LIMIT_MSG, status=429, headers={"Retry-After": "100000"})
    with pytest.raises(TooManyRequests, match="would pass the 0.5 s limit"):
        await fetch(hostile)
    assert hostile.hits["/api/v3/klines"] == 1


async def test_418_stops_at_once_with_the_exchange_message(hostile):
    msg = "Way too much request weight used; IP banned until 1709251290000."
    hostile.handlers["/api/v3/klines"] = constant({"code": -1003, "msg": msg}, status=418,
                                                  headers={"Retry-After": "60"})
    with pytest.raises(IPBanned, match="IP banned until 1709251290000"):
        await fetch(hostile)
    assert hostile.hits["/api/v3/klines"] == 1


async def test_endless_waf_403_is_throttled_and_bounded(hostile):
    hostile.handlers["/api/v3/klines"] = constant("<html>403 ERROR Request blocked.</html>", status=403, raw=True)
    with pytest.raises(TooManyRequests, match="WAF"):
        await fetch(hostile)


async def test_persistent_5xx_carries_the_exchange_message(hostile):
    msg = "Service unavailable from a restricted location."
    hostile.handlers["/api/v3/klines"] = constant({"code": -1000, "msg": msg}, status=503)
    with pytest.raises(ServerError, match="giving up after 3 attempts.*restricted location"):
        await fetch(hostile)


# -- slow and broken connections ---------------------------------------------------------------------
async def slowloris(request):
    """Headers at once, then one body byte every 0.5 s, forever."""
    resp = web().StreamResponse(status=200, headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    try:
        for _ in range(10_000):
            await resp.write(b" ")
            await asyncio.sleep(0.5)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


async def silent(request):
    """Never answers."""
    await asyncio.sleep(3600)


async def drop(request):
    request.transport.close()
    return reply({}, status=500)


@pytest.mark.parametrize("path", ["/api/v3/klines", "/api/v3/time", "/api/v3/exchangeInfo"])
@pytest.mark.parametrize("handler", [slowloris, silent, drop], ids=["slowloris", "silent", "drop"])
async def test_a_reply_that_never_ends_hits_the_request_deadline(hostile, path, handler):
    hostile.handlers[path] = handler
    with pytest.raises(ServerError, match="giving up after 3 attempts: .*network error"):
        await fetch(hostile)
    # three attempts; aiohttp itself resends once when a kept-alive connection was dropped
    assert 3 <= hostile.hits[path] <= 6


# -- the same classes on Bybit and OKX ------------------------------------------------------------
def bybit_ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW}


def okx_ok(data: Any) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


async def bybit_klines(request):
    q = request.query
    start, end = int(q["start"]), min(int(q["end"]), NOW - HOUR)
    first = max(FIRST, -(-start // HOUR) * HOUR)
    rows = [[str(t), "100", "100", "100", "100", "1", "100"] for t in range(first, end + 1, HOUR)]
    return reply(bybit_ok({"category": "spot", "symbol": "BTCUSDT", "list": rows[::-1][: int(q["limit"])]}))


async def okx_candles(request):
    after = int(request.query.get("after", NOW))
    rows = [[str(t), "100", "100", "100", "100", "1", "100", "100", "1"]
            for t in range(min(after - 1, NOW - HOUR) // HOUR * HOUR, FIRST - 1, -HOUR)]
    return reply(okx_ok(rows[: int(request.query.get("limit", 100))]))


VENUES = {
    "bybit": {"/v5/market/time": constant(bybit_ok({"timeSecond": str(NOW // 1000)})),
              "/v5/market/instruments-info": constant(bybit_ok({"category": "spot", "list": [
                  {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading"}],
                  "nextPageCursor": ""})),
              "/v5/market/kline": bybit_klines},
    "okx": {"/api/v5/public/time": constant(okx_ok([{"ts": str(NOW)}])),
            "/api/v5/public/instruments": constant(okx_ok([{"instId": "BTC-USDT", "state": "live"}])),
            "/api/v5/market/history-candles": okx_candles},
}
KLINE_PATH = {"bybit": "/v5/market/kline", "okx": "/api/v5/market/history-candles"}
TIME_PATH = {"bybit": "/v5/market/time", "okx": "/api/v5/public/time"}


async def venue_fetch(server: Hostile, venue: str, **kw):
    keep = kw.pop("keep", ())  # the handlers the test set; the rest are the venue's good ones
    server.handlers = {**VENUES[venue], **{p: h for p, h in server.handlers.items() if p in keep}}
    return await asyncio.wait_for(fetch_ohlcv(venue, "BTC/USDT", "1h", "2024-02-01", "2024-02-10",
                                              base_url=server.url, **{**QUICK, **kw}), BOUND_S)


@pytest.mark.parametrize("venue", ["bybit", "okx"])
async def test_venue_clean_fetch_through_the_hostile_harness(hostile, venue):
    res = await venue_fetch(hostile, venue)
    assert res.report.symbols["BTC/USDT"].rows == 216 and res.report.ok


@pytest.mark.parametrize("venue, body, kind, match", [
    ("bybit", {"retCode": 10001, "retMsg": "params error: symbol invalid", "result": {}, "time": NOW}, BadRequest,
     "retCode 10001: params error: symbol invalid"),
    ("okx", {"code": "51001", "msg": "Instrument ID does not exist", "data": []}, BadRequest,
     "code 51001: Instrument ID does not exist"),
    ("okx", {"code": "51000", "msg": "Parameter bar error", "data": []}, BadRequest, "Parameter bar error"),
])
async def test_venue_error_body_with_200_fails_at_once(hostile, venue, body, kind, match):
    res_handlers = {KLINE_PATH[venue]: constant(body)}
    hostile.handlers.update(res_handlers)
    with pytest.raises(kind, match=match):
        await venue_fetch(hostile, venue, keep=tuple(res_handlers), parallel=1)
    assert hostile.hits[KLINE_PATH[venue]] == 1  # never retried


@pytest.mark.parametrize("venue, body, status, match", [
    ("bybit", {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "time": NOW}, 200, "Too many visits"),
    ("okx", {"code": "50011", "msg": "Too Many Requests", "data": []}, 429, "Too Many Requests"),
])
async def test_venue_endless_rate_limit_gives_up_in_time(hostile, venue, body, status, match):
    hostile.handlers[KLINE_PATH[venue]] = constant(body, status=status)
    with pytest.raises(TooManyRequests, match=f"still rate limited.*{match}"):
        await venue_fetch(hostile, venue, keep=(KLINE_PATH[venue],))


@pytest.mark.parametrize("venue, body, match", [
    ("bybit", bybit_ok({"list": [{"start": FIRST}]}), r"row 0 is a JSON object"),
    ("bybit", bybit_ok({"list": [[str(2 ** 70), "1", "1", "1", "1", "1", "1"]]}), r"row 0 field 0 \(start time\)"),
    ("bybit", bybit_ok({"list": [[str(FIRST), "x", "1", "1", "1", "1", "1"]]}), r"row 0 field 1 \(open\) is 'x'"),
    ("bybit", {"retMsg": "OK"}, r"body without retCode"),
    ("okx", okx_ok([[str(2 ** 70), "1", "1", "1", "1", "1", "1", "1", "1"]]), r"row 0 field 0 \(start time\)"),
    ("okx", okx_ok([{"ts": str(FIRST)}]), r"malformed row"),
    ("okx", {"msg": ""}, r"body without code"),
])
async def test_venue_malformed_candles_name_row_and_field(hostile, venue, body, match):
    hostile.handlers[KLINE_PATH[venue]] = constant(body)
    with pytest.raises(ServerError, match=match):
        await venue_fetch(hostile, venue, keep=(KLINE_PATH[venue],))


@pytest.mark.parametrize("venue, body, match", [
    ("bybit", {"retCode": 0, "retMsg": "OK", "result": {"foo": 1}},
     r"/v5/market/time: no field 'time' or 'result.timeSecond'"),
    ("bybit", {"retCode": 0, "retMsg": "OK", "result": {}, "time": 0},
     r"/v5/market/time: field 'time': 0 ms is not a plausible time"),
    ("bybit", {"foo": 1}, r"bybit /v5/market/time: giving up .* body without retCode"),
    ("okx", {"code": "0", "data": []}, r"/api/v5/public/time: no field 'data\[0\].ts'"),
    ("okx", okx_ok([{"ts": "0"}]), r"field 'data\[0\].ts': 0 ms is not a plausible time"),
])
async def test_venue_malformed_server_time(hostile, venue, body, match):
    hostile.handlers[TIME_PATH[venue]] = constant(body)
    with pytest.raises(ServerError, match=match):
        await venue_fetch(hostile, venue, keep=(TIME_PATH[venue],))


@pytest.mark.parametrize("venue", ["bybit", "okx"])
async def test_venue_slowloris_hits_the_deadline(hostile, venue):
    hostile.handlers[KLINE_PATH[venue]] = slowloris
    with pytest.raises(ServerError, match="network error"):
        await venue_fetch(hostile, venue, keep=(KLINE_PATH[venue],))
