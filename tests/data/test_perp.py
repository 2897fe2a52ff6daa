"""Perpetual data (issue 17): funding-rate history and mark-price candles from Binance USD-M, Bybit
linear and OKX swaps, against the real mock server on 127.0.0.1: paging and cursors, limits, resume,
store round trip, panel fields, bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

from nbtrade.data.exchanges import get_adapter
from nbtrade.data.fetch import (MemorySink, fetch_funding_rates, fetch_mark_ohlcv, fetch_ohlcv)
from nbtrade.data.ratelimit import WeightLimiter
from nbtrade.data.store import Store

HOUR = 3_600_000
FEB10 = 1707523200000  # conftest.SMALL: maintenance 2024-02-10 00:00 .. 03:00
PERPS = ["binance_futures", "bybit_linear", "okx_swap"]
#: how each venue spells funding times (Binance: a few ms past the hour) and its page sizes
VENUE = {"binance_futures": "binance", "bybit_linear": "bybit", "okx_swap": "okx"}
FUNDING_PAGE = {"binance_futures": 1000, "bybit_linear": 200, "okx_swap": 100}
FUNDING_PATH = {"binance_futures": "/fapi/v1/fundingRate", "bybit_linear": "/v5/market/funding/history",
                "okx_swap": "/api/v5/public/funding-rate-history"}
MARK_PATH = {"binance_futures": "/fapi/v1/markPriceKlines", "bybit_linear": "/v5/market/mark-price-kline",
             "okx_swap": "/api/v5/market/history-mark-price-candles"}
#: candles per mark page: USD-M 499 (best candles per weight), Bybit 1000, OKX 100
MARK_PAGE = {"binance_futures": 499, "bybit_linear": 1000, "okx_swap": 100}
#: fast IP windows: Bybit 600 per 5 s -> 120 per 0.5 s, OKX 20 per 2 s -> 20 per 0.2 s
FAST = dict(bybit_limit=120, bybit_window_s=0.5, okx_limit=20, okx_window_s=0.2)
SYMS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
MOCK_SYM = {"BTC/USDT:USDT": "BTC/USDT", "ETH/USDT:USDT": "ETH/USDT"}  # the mock files candles by pair


def limiter(exchange: str, mock):
    """The mock's (shortened) budget for Bybit and OKX; None: the adapter's own for Binance."""
    cfg = mock.config
    if exchange == "okx_swap":
        return WeightLimiter(cfg.okx_limit, cfg.okx_window_s, probe=1.0, name="okx")
    if exchange == "bybit_linear":
        return WeightLimiter(cfg.bybit_limit, cfg.bybit_window_s, probe=1.0, name="bybit")
    return None


def same(got: dict, want: dict) -> None:
    assert set(got) == set(want), (set(got), set(want))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def no_limit_errors(mock) -> None:
    assert set(mock.stats.status) == {200}, mock.stats.status  # no 429, 418, 403


@pytest.fixture
async def long_mock(mock_factory):
    """Two years of 8-hourly funding (2,000+ events per symbol: several pages on every venue)."""
    return await mock_factory(origin="2022-03-01", **FAST)


# -- paging and cursors -----------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", PERPS)
async def test_funding_history_pages_through_every_venue(long_mock, exchange):
    m = long_mock
    res = await fetch_funding_rates(SYMS, "2022-03-01", None, exchange=exchange, base_url=m.url,
                                    limiter=limiter(exchange, m))
    for s in SYMS:
        want = m.expected_funding(MOCK_SYM[s], "2022-03-01", None, VENUE[exchange])
        same(res.data[s], want)
        rep = res.report.symbols[s]
        assert rep.bad_rows == [] and rep.duplicates == 0 and rep.unsorted_pages == 0
        assert rep.rows == want["time"].shape[0] > 2 * FUNDING_PAGE[exchange]
    # one request per page: full pages, then the short one that ends the walk
    n = want["time"].shape[0]
    assert m.stats.by_path[FUNDING_PATH[exchange]] == len(SYMS) * (n // FUNDING_PAGE[exchange] + 1)
    no_limit_errors(m)
    # OKX keeps three months: the history begins after ``start``, reported as such, not as missing data
    listed = res.report.symbols[SYMS[0]].listed
    assert (listed is not None) == (exchange == "okx_swap")
    if exchange == "okx_swap":
        assert listed == want["time"][0] and listed >= m.server_ms() - 90 * 24 * HOUR
    if exchange != "binance_futures":  # Bybit and OKX give no mark price at funding
        assert np.isnan(res.data[SYMS[0]]["mark_price"]).all()
    else:
        assert (res.data[SYMS[0]]["mark_price"] > 0).all()


@pytest.mark.parametrize("exchange", PERPS)
async def test_funding_range_inside_the_history_uses_the_cursor(long_mock, exchange):
    m = long_mock
    # inside the last 90 days (all OKX keeps): the walk starts at ``end`` and stops at ``start``
    res = await fetch_funding_rates("BTC/USDT:USDT", "2024-01-01", "2024-02-15 00:00:05", exchange=exchange,
                                    base_url=m.url, limiter=limiter(exchange, m))
    want = m.expected_funding("BTC/USDT", "2024-01-01", "2024-02-15 00:00:05", VENUE[exchange])
    same(res.data["BTC/USDT:USDT"], want)
    assert want["time"][0] < 1704067200000 + HOUR and want["time"][-1] >= 1707955200000  # both ends inside
    assert res.report.symbols["BTC/USDT:USDT"].listed is None
    pages = math.ceil(want["time"].shape[0] / FUNDING_PAGE[exchange])
    assert m.stats.by_path[FUNDING_PATH[exchange]] <= pages + 1
    no_limit_errors(m)


@pytest.mark.parametrize("exchange", PERPS)
async def test_mark_candles_page_like_the_candles(mock_factory, exchange):
    m = await mock_factory(**FAST)
    start, end = "2024-02-05", "2024-02-20"
    res = await fetch_mark_ohlcv(exchange, SYMS, "1h", start, end, base_url=m.url, limiter=limiter(exchange, m))
    for s in SYMS:
        same(res.data[s], m.expected_mark(MOCK_SYM[s], "1h", start, end))
        # the mock's maintenance window (2024-02-10 00:00-03:00) has no mark candles: a gap, not filled
        assert res.report.symbols[s].bad_rows == [] and res.report.symbols[s].gaps == [(FEB10, FEB10 + 3 * HOUR)]
    n = 15 * 24
    assert m.stats.by_path[MARK_PATH[exchange]] >= len(SYMS) * math.ceil(n / MARK_PAGE[exchange])
    assert res.report.timeframe == "mark_1h"
    no_limit_errors(m)


async def test_okx_mark_and_funding_cost_two_in_the_ip_budget(mock_factory):
    """history-mark-price-candles and funding-rate-history are 10 per 2 s (weight 2 of 20): a client
    charging 1 would run into 429s here; the adapter's weights keep every window at or under 20."""
    m = await mock_factory(**FAST)
    adapter = get_adapter("okx_swap")
    assert adapter.for_mark().klines_request("BTC/USDT:USDT", "1h", 0, HOUR, 100).weight == 2
    assert adapter.funding_request("BTC/USDT:USDT", 0, HOUR, 100).weight == 2
    await fetch_mark_ohlcv("okx_swap", SYMS, "1m", "2024-02-20", "2024-02-21", base_url=m.url,
                           limiter=limiter("okx_swap", m))
    assert m.stats.by_path[MARK_PATH["okx_swap"]] >= 2 * 14
    assert m.stats.max_weight("okx") <= m.config.okx_limit
    no_limit_errors(m)


async def test_binance_mark_requests_use_the_kline_weight_table(mock_factory):
    m = await mock_factory()
    mark = get_adapter("binance_futures").for_mark()
    req = mark.klines_request("BTC/USDT:USDT", "1h", 0, HOUR, mark.page_limit())
    assert (req.path, req.params["limit"], req.weight) == ("/fapi/v1/markPriceKlines", 499, 2)
    await fetch_mark_ohlcv("binance_futures", "BTC/USDT", "1m", "2024-02-20", "2024-02-22", base_url=m.url)
    assert m.stats.max_weight("fapi") <= m.config.futures_weight_limit
    no_limit_errors(m)


async def test_bybit_funding_sends_end_time_alone(mock_factory):
    """The doc: startTime alone is an error, endTime alone gives the records up to it."""
    import aiohttp

    m = await mock_factory(**FAST)
    req = get_adapter("bybit_linear").funding_request("BTC/USDT:USDT", 1, 2, 200)
    assert "startTime" not in req.params and req.params["endTime"] == 2 and req.params["limit"] == 200
    async with aiohttp.ClientSession() as session:
        async with session.get(m.url + "/v5/market/funding/history",
                               params={"category": "linear", "symbol": "BTCUSDT", "startTime": 1}) as resp:
            body = await resp.json()
    assert body["retCode"] == 10001


# -- resume, store, panel ---------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", PERPS)
async def test_resume_after_an_interrupted_run(long_mock, exchange):
    m = long_mock
    sink = MemorySink()
    kw = dict(base_url=m.url, limiter=limiter(exchange, m))
    await fetch_funding_rates("BTC/USDT:USDT", "2023-12-10", "2024-01-10", exchange=exchange, sink=sink, **kw)
    await fetch_mark_ohlcv(exchange, "BTC/USDT:USDT", "1h", "2024-02-05", "2024-02-10", sink=sink, **kw)
    before = dict(m.stats.by_path)
    fr = await fetch_funding_rates("BTC/USDT:USDT", "2023-12-10", "2024-02-20", exchange=exchange, sink=sink, **kw)
    mk = await fetch_mark_ohlcv(exchange, "BTC/USDT:USDT", "1h", "2024-02-05", "2024-02-15", sink=sink, **kw)
    assert fr.report.symbols["BTC/USDT:USDT"].resumed_from is not None
    assert mk.report.symbols["BTC/USDT:USDT"].resumed_from is not None
    new = m.expected_funding("BTC/USDT", "2024-01-10", "2024-02-20", VENUE[exchange])["time"].shape[0]
    made = m.stats.by_path[FUNDING_PATH[exchange]] - before[FUNDING_PATH[exchange]]
    assert made <= new // FUNDING_PAGE[exchange] + 1  # only the part after the last stored funding
    same(sink.read(exchange, "BTC/USDT:USDT", "funding"),
         m.expected_funding("BTC/USDT", "2023-12-10", "2024-02-20", VENUE[exchange]))
    stored = sink.read(exchange, "BTC/USDT:USDT", "mark_1h")
    same(stored, m.expected_mark("BTC/USDT", "1h", "2024-02-05", "2024-02-15"))


@pytest.mark.parametrize("exchange", PERPS)
async def test_store_round_trip_and_panel_fields(mock_factory, tmp_path, exchange):
    m = await mock_factory(maintenance=(), **FAST)
    store = Store(tmp_path / "store")
    res = await fetch_ohlcv(exchange, SYMS, "1h", "2024-02-05", "2024-02-12", base_url=m.url, sink=store,
                            limiter=limiter(exchange, m), funding=True, mark=True)
    assert res.report.ok and res.funding_report.ok and res.mark_report.ok
    fetched = res.to_market()
    stored = store.read_market(exchange, SYMS, "1h", "2024-02-05", "2024-02-12")
    for f in ("close", "mark_open", "mark_high", "mark_low", "mark_close", "funding_rate", "funding_time"):
        np.testing.assert_array_equal(stored.array(f), fetched.array(f), err_msg=f)
    assert stored.has_mark and stored.has_funding
    # mark candles on every bar; funding at the 8-hourly bars only (NaN elsewhere), exact times kept
    assert not np.isnan(stored.array("mark_close")).any()
    fr = stored.array("funding_rate")
    hit = ~np.isnan(fr[:, 0])
    assert hit.sum() == 7 * 3
    ft = stored.array("funding_time")[hit, 0].astype(np.int64)
    bars = stored.time_ms[hit]
    assert ((ft >= bars) & (ft < bars + HOUR)).all()
    events = stored.funding_events("BTC/USDT:USDT")
    np.testing.assert_array_equal(events["rate"].to_numpy(), fr[hit, 0])
    want = m.expected_funding("BTC/USDT", "2024-02-05", "2024-02-12", VENUE[exchange])
    np.testing.assert_array_equal(ft, want["time"])
    # read without them, or require them
    plain = store.read_market(exchange, SYMS, "1h", "2024-02-05", "2024-02-12", funding=False, mark=False)
    assert not plain.has_mark and not plain.has_funding


async def test_panel_without_mark_candles_invents_nothing(mock_factory, tmp_path):
    m = await mock_factory(maintenance=())
    store = Store(tmp_path / "s")
    await fetch_ohlcv("binance_futures", "BTC/USDT", "1d", "2024-02-05", "2024-02-12", base_url=m.url, sink=store,
                      funding=True)
    market = store.read_market("binance_futures", ["BTC/USDT:USDT"], "1d")
    assert market.has_funding and not market.has_mark
    with pytest.raises(AttributeError, match="mark_close"):
        market.array("mark_close")
    with pytest.raises(KeyError, match="mark"):
        store.read_market("binance_futures", ["BTC/USDT:USDT"], "1d", mark=True)
    # daily bars: three fundings per bar, summed; the time is the last one; the events stay exact
    fr = market.array("funding_rate")[:, 0]
    ev = market.funding_events("BTC/USDT:USDT")
    assert len(ev) == 3 * len(market)
    np.testing.assert_allclose(fr, ev["rate"].to_numpy().reshape(-1, 3).sum(axis=1), rtol=0, atol=1e-15)
    last = market.array("funding_time")[:, 0].astype(np.int64)
    np.testing.assert_array_equal(last, ev.index.asi8[2::3] // 1_000_000)


# -- bad input ----------------------------------------------------------------------------------------
async def test_server_duplicates_and_bad_mark_prices_are_dropped_and_reported(mock_factory):
    dup_at, bad_at = "2024-02-07 08:00", "2024-02-08 05:00"
    m = await mock_factory(funding_dupes={"BTC/USDT": [dup_at]}, bad_marks={"BTC/USDT": [bad_at]}, **FAST)
    for exchange in PERPS:
        kw = dict(base_url=m.url, limiter=limiter(exchange, m))
        fr = await fetch_funding_rates("BTC/USDT", "2024-02-05", "2024-02-10", exchange=exchange, **kw)
        got = fr.data["BTC/USDT:USDT"]["time"]
        assert (np.diff(got) > 0).all() and fr.report.symbols["BTC/USDT:USDT"].duplicates == 1
        mk = await fetch_mark_ohlcv(exchange, "BTC/USDT", "1h", "2024-02-05", "2024-02-10", **kw)
        rep = mk.report.symbols["BTC/USDT:USDT"]
        assert rep.bad_rows == [(1707368400000, "mark price <= 0")], (exchange, rep.bad_rows)
        assert not mk.report.ok


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
async def test_spot_exchanges_refuse_perp_data(exchange):
    with pytest.raises(ValueError, match="no funding rates"):
        await fetch_funding_rates("BTC/USDT", exchange=exchange)
    with pytest.raises(ValueError, match="serves no mark-price candles"):
        await fetch_mark_ohlcv(exchange, "BTC/USDT", "1h")
    with pytest.raises(ValueError, match="perpetual exchange"):
        await fetch_ohlcv(exchange, "BTC/USDT", "1h", funding=True)


def test_cli_fetch_funding_and_mark_into_the_store(tmp_path, capsys):
    from nbtrade.cli import main
    from nbtrade.data.mock import MockConfig, serve_in_thread

    config = MockConfig(symbols=("BTC/USDT",), origin="2024-02-01", now="2024-03-01 00:00:30")
    with serve_in_thread(config) as m:
        code = main(["fetch", "okx_swap", "BTC-USDT-SWAP", "--timeframe", "4h", "--start", "2024-02-10",
                     "--end", "2024-02-20", "--base-url", m.url, "--store", str(tmp_path / "s"), "--funding", "--mark"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "okx_swap funding: 30 funding rows" in out and "okx_swap mark_4h: 60 candles" in out
    market = Store(tmp_path / "s").read_market("okx_swap", ["BTC/USDT:USDT"], "4h")
    assert market.has_mark and market.has_funding and len(market) == 60


@pytest.mark.parametrize("exchange", PERPS)
async def test_faults_are_retried_and_the_data_stays_exact(mock_factory, exchange):
    from nbtrade.data.mock import Faults
    from nbtrade.data.ratelimit import BackoffPolicy

    m = await mock_factory(faults=Faults(seed=3, p_5xx=0.15, p_malformed=0.1, p_truncate=0.05), **FAST)
    kw = dict(base_url=m.url, limiter=limiter(exchange, m), backoff=BackoffPolicy(base=0.01, max_delay=0.05,
                                                                                 max_retries=12))
    fr = await fetch_funding_rates("BTC/USDT", "2024-01-01", "2024-02-20", exchange=exchange, **kw)
    same(fr.data["BTC/USDT:USDT"], m.expected_funding("BTC/USDT", "2024-01-01", "2024-02-20", VENUE[exchange]))
    mk = await fetch_mark_ohlcv(exchange, "BTC/USDT", "15m", "2024-02-12", "2024-02-16", **kw)
    same(mk.data["BTC/USDT:USDT"], m.expected_mark("BTC/USDT", "15m", "2024-02-12", "2024-02-16"))
    assert fr.report.retries + mk.report.retries > 0 and sum(m.stats.faults.values()) > 0


@pytest.mark.parametrize("exchange, payload, field", [
    ("binance_futures", [{"fundingTime": 1704067200000, "fundingRate": "x"}], "'fundingRate'"),
    ("binance_futures", [{"fundingRate": "0.0001"}], "'fundingTime'"),
    ("bybit_linear", {"retCode": 0, "result": {"list": [{"fundingRateTimestamp": "abc", "fundingRate": "0"}]}},
     "'fundingRateTimestamp'"),
    ("okx_swap", {"code": "0", "data": [{"fundingTime": "1704067200000"}]}, "'realizedRate'"),
])
def test_malformed_funding_rows_name_the_field(exchange, payload, field):
    from nbtrade.data.exchanges.base import MalformedResponse

    with pytest.raises(MalformedResponse, match=field):
        get_adapter(exchange).parse_funding(payload)


@pytest.mark.parametrize("exchange, payload", [
    ("bybit_linear", {"retCode": 0, "result": {"list": [["1704067200000", "1", "1", "1"]]}}),
    ("okx_swap", {"code": "0", "data": [["1704067200000", "1", "1", "1", "1"]]}),
    ("binance_futures", [[1704067200000, "1", "1"]]),
])
def test_short_mark_rows_are_malformed(exchange, payload):
    from nbtrade.data.exchanges.base import MalformedResponse

    with pytest.raises(MalformedResponse, match="row 0"):
        get_adapter(exchange).for_mark().parse_klines(payload)
