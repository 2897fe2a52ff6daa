"""fetch_ohlcv / fetch_funding_rates against the real mock server on 127.0.0.1."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from nbtrade.data.exchanges.base import BadRequest, unified_to_id
from nbtrade.data.exchanges.binance import BinanceSpot
from nbtrade.data.fetch import (MemorySink, fetch_funding_rates, fetch_ohlcv, fetch_ohlcv_sync, find_gaps,
                                validate_candles)
from nbtrade.data.mock import Faults, MockConfig, serve_in_thread
from nbtrade.data.ratelimit import BackoffPolicy, IPBanned, WeightLimiter

MIN = 60_000
FEB10 = 1707523200000  # maintenance 2024-02-10 00:00 .. 03:00
FAST = BackoffPolicy(base=0.01, max_delay=0.2, max_retries=8)


def assert_same(got, want):
    assert set(want) <= set(got)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


async def test_clean_fetch_matches_the_exchange(mock_exchange):
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-09", "2024-02-12",
                            base_url=mock_exchange.url)
    for sym in ("BTC/USDT", "ETH/USDT"):
        assert_same(res.data[sym], mock_exchange.expected(sym, "1m", "2024-02-09", "2024-02-12"))
        assert res.report.symbols[sym].gaps == [(FEB10, FEB10 + 180 * MIN)]
        assert res.report.symbols[sym].missing == 180
    assert res.report.ok
    df = res.frame("BTC/USDT")
    assert str(df.index.tz) == "UTC" and list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert df.index[0].isoformat() == "2024-02-09T00:00:00+00:00"


@pytest.mark.parametrize("tf", ["5m", "1h", "4h", "1d", "1w", "1M"])
async def test_timeframes(mock_exchange, tf):
    res = await fetch_ohlcv("binance", "SOL/USDT", tf, "2024-01-01", None, base_url=mock_exchange.url)
    want = mock_exchange.expected("SOL/USDT", tf, "2024-01-01")
    assert_same(res.data["SOL/USDT"], want)
    assert len(want["time"]) > 0


async def test_futures_page_size_maximises_candles_per_weight(mock_exchange):
    res = await fetch_ohlcv("binance_futures", "BTC/USDT", "1m", "2024-02-20", "2024-02-21",
                            base_url=mock_exchange.url, parallel=1)
    assert_same(res.data["BTC/USDT"], mock_exchange.expected("BTC/USDT", "1m", "2024-02-20", "2024-02-21",
                                                             market="futures"))
    assert res.report.symbols["BTC/USDT"].requests == 3  # 1440 rows in pages of 499
    assert mock_exchange.stats.by_path["/fapi/v1/klines"] == 3


async def test_exact_multiple_of_the_limit(mock_exchange):
    start = FEB10 + 12 * 3600_000
    res = await fetch_ohlcv("binance", "BTC/USDT", "1m", start, start + 2000 * MIN, base_url=mock_exchange.url,
                            parallel=1)
    rep = res.report.symbols["BTC/USDT"]
    assert rep.rows == 2000 and rep.requests == 2 and rep.gaps == []
    assert res.data["BTC/USDT"]["time"][-1] == start + 1999 * MIN


async def test_start_inside_a_gap(mock_exchange):
    res = await fetch_ohlcv("binance", "BTC/USDT", "1m", FEB10 + 30 * MIN, FEB10 + 240 * MIN,
                            base_url=mock_exchange.url)
    t = res.data["BTC/USDT"]["time"]
    assert t[0] == FEB10 + 180 * MIN and len(t) == 60
    assert res.report.symbols["BTC/USDT"].gaps == [(FEB10 + 30 * MIN, FEB10 + 180 * MIN)]


async def test_end_before_start_and_empty_range(mock_exchange):
    with pytest.raises(ValueError, match="before start"):
        await fetch_ohlcv("binance", "BTC/USDT", "1m", "2024-02-02", "2024-02-01", base_url=mock_exchange.url)
    res = await fetch_ohlcv("binance", "BTC/USDT", "1m", "2024-02-02", "2024-02-02", base_url=mock_exchange.url)
    assert res.data["BTC/USDT"]["time"].shape == (0,)
    assert mock_exchange.stats.requests == 0


async def test_open_candle_is_dropped(mock_exchange):
    res = await fetch_ohlcv("binance", "ETH/USDT", "1m", "2024-02-29 23:00", None, base_url=mock_exchange.url)
    t = res.data["ETH/USDT"]["time"]
    now = mock_exchange.server_ms()
    assert t[-1] + MIN <= now  # every candle closed
    assert t[-1] == (now // MIN) * MIN - MIN
    assert len(t) == 60


@pytest.mark.parametrize("bad, match", [
    (dict(timeframe="7m"), "timeframe"), (dict(start="yesterday-ish"), "start"),
    (dict(symbols=["BTC/USDT", ""]), "symbols"), (dict(symbols="BTC/USDT:USDT"), "symbol"),
    (dict(symbols="FOO"), "base from the quote"), (dict(symbols="BTC USDT"), "symbol"),
    (dict(concurrency=0), "concurrency"), (dict(exchange="kraken"), "exchange"),
    (dict(end=[1, 2]), "end"), (dict(parallel=0), "parallel"), (dict(timeout=0), "timeout"),
])
async def test_bad_arguments_fail_before_any_request(mock_exchange, bad, match):
    kw = dict(exchange="binance", symbols="BTC/USDT", timeframe="1m", start="2024-02-01", end="2024-02-02")
    kw.update(bad)
    with pytest.raises(ValueError, match=match):
        await fetch_ohlcv(kw.pop("exchange"), kw.pop("symbols"), kw.pop("timeframe"), kw.pop("start"),
                          kw.pop("end"), base_url=mock_exchange.url, **kw)
    assert mock_exchange.stats.requests == 0


async def test_bad_symbol_fails_fast_with_a_clear_message(mock_exchange):
    with pytest.raises(BadRequest, match=r"DOGE/USDT 1m.*-1121") as info:
        await fetch_ohlcv("binance", ["BTC/USDT", "DOGE/USDT"], "1m", "2024-02-01", "2024-02-20",
                          base_url=mock_exchange.url, backoff=FAST)
    assert info.value.symbol == "DOGE/USDT" and info.value.code == -1121
    assert "/api/v3/klines" not in mock_exchange.stats.by_path  # checked against exchangeInfo first


async def test_bad_symbol_from_the_server_fails_fast(mock_exchange):
    class Unlisted(BinanceSpot):
        def listed(self, info):
            return None

    with pytest.raises(BadRequest, match=r"DOGE/USDT 1h.*-1121"):
        await fetch_ohlcv(Unlisted(), "DOGE/USDT", "1h", "2024-02-01", "2024-02-02", base_url=mock_exchange.url)
    assert mock_exchange.stats.status.get(400) == 1  # no retry


async def test_bad_interval_from_the_server_fails_fast(mock_exchange):
    class Broken(BinanceSpot):
        def interval(self, timeframe):
            return timeframe + "x"

    with pytest.raises(BadRequest, match=r"BTC/USDT 1h.*-1120"):
        await fetch_ohlcv(Broken(), "BTC/USDT", "1h", "2024-02-01", "2024-02-02", base_url=mock_exchange.url)
    assert mock_exchange.stats.status.get(400) == 1


async def test_fault_injected_fetch_identical_to_clean(mock_factory):
    faults = Faults(seed=7, p_5xx=0.06, p_drop=0.06, p_truncate=0.06, p_malformed=0.06, p_slow=0.05, slow_s=0.3,
                    storms=[(15, 1.0)])
    mock = await mock_factory(faults=faults)
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT", "SOL/USDT"], "1m", "2024-02-05", "2024-02-15",
                            base_url=mock.url, backoff=FAST, timeout=0.2)
    for sym in ("BTC/USDT", "ETH/USDT", "SOL/USDT"):
        assert_same(res.data[sym], mock.expected(sym, "1m", "2024-02-05", "2024-02-15"))
        assert res.report.symbols[sym].gaps == [(FEB10, FEB10 + 180 * MIN)]
    assert res.report.retries > 0 and res.report.throttled > 0
    assert sum(mock.stats.faults.values()) > 5
    assert mock.stats.n418 == 0


async def test_malformed_json_is_retried(mock_factory):
    mock = await mock_factory(faults=Faults(seed=1, p_malformed=0.4, p_truncate=0.2))
    res = await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", None, base_url=mock.url, backoff=FAST)
    assert_same(res.data["BTC/USDT"], mock.expected("BTC/USDT", "1h", "2024-02-01"))
    assert res.report.retries >= 1


async def test_persistent_5xx_gives_up_after_bounded_retries(mock_factory):
    from nbtrade.data.exchanges.base import ServerError

    mock = await mock_factory(faults=Faults(p_5xx=1.0))
    with pytest.raises(ServerError, match="giving up after 4 attempts"):
        await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", None, base_url=mock.url,
                          backoff=BackoffPolicy(base=0.01, max_retries=3))
    assert mock.stats.by_path["/api/v3/klines"] == 4


async def test_no_418_under_a_429_storm(mock_factory):
    # 8 connections: at most 7 other requests are in flight when the first 429 comes back
    mock = await mock_factory(faults=Faults(storms=[(5, 0.5), (40, 0.5)]), ban_after=8, ban_grace_s=0.0)
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-01", "2024-02-20",
                            base_url=mock.url, backoff=FAST)
    assert mock.stats.n429 > 0 and mock.stats.n418 == 0
    assert res.report.throttled > 0
    assert_same(res.data["ETH/USDT"], mock.expected("ETH/USDT", "1m", "2024-02-01", "2024-02-20"))


async def test_418_stops_at_once(mock_factory):
    mock = await mock_factory()
    mock._banned_until["127.0.0.1"] = mock.server_ms() + 60_000
    with pytest.raises(IPBanned, match="stopping"):
        await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-01", "2024-02-20",
                          base_url=mock.url, backoff=FAST)
    assert mock.stats.n418 == 1  # the first request (server time) was banned; nothing else was sent


async def test_two_clients_share_the_budget(mock_factory):
    # ~90 requests of weight 2 from two clients against 60 weight per 0.5 s window
    mock = await mock_factory(weight_limit=60, window_s=0.5)
    # warm the metadata cache: exchangeInfo (weight 20) twice at once would crowd a 60 budget
    await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-01", "2024-02-01 01:00", base_url=mock.url)
    await asyncio.sleep(0.5)
    a, b = WeightLimiter(name="a"), WeightLimiter(name="b")
    ra, rb = await asyncio.gather(
        fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-01", "2024-02-15", base_url=mock.url,
                    limiter=a, backoff=FAST, concurrency=4),
        fetch_ohlcv("binance", ["SOL/USDT", "BTC/USDT"], "1m", "2024-02-04", "2024-02-18", base_url=mock.url,
                    limiter=b, backoff=FAST, concurrency=4))
    assert mock.stats.n429 == 0
    assert mock.stats.max_weight("api") <= 60
    assert len(mock.stats.window_weight) >= 3
    assert_same(ra.data["ETH/USDT"], mock.expected("ETH/USDT", "1m", "2024-02-01", "2024-02-15"))
    assert_same(rb.data["SOL/USDT"], mock.expected("SOL/USDT", "1m", "2024-02-04", "2024-02-18"))


async def test_resume_after_interrupted_run(mock_exchange):
    sink = MemorySink()
    started = asyncio.Event()

    def on_page(symbol, rows, last):
        if rows >= 3000:
            started.set()

    task = asyncio.ensure_future(fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-02",
                                             "2024-02-20", base_url=mock_exchange.url, sink=sink,
                                             on_page=on_page, parallel=2))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    partial = {s: sink.last_time("binance", s, "1m") for s in ("BTC/USDT", "ETH/USDT")}
    assert any(v is not None for v in partial.values())
    res = await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", "2024-02-02", "2024-02-20",
                            base_url=mock_exchange.url, sink=sink)
    for s in ("BTC/USDT", "ETH/USDT"):
        want = mock_exchange.expected(s, "1m", "2024-02-02", "2024-02-20")
        assert_same(sink.read("binance", s, "1m"), want)
        if partial[s] is not None:
            assert res.report.symbols[s].resumed_from == partial[s]
    # a third run has nothing left to do
    again = await fetch_ohlcv("binance", "BTC/USDT", "1m", "2024-02-02", "2024-02-20",
                              base_url=mock_exchange.url, sink=sink)
    assert again.report.symbols["BTC/USDT"].requests == 0


async def test_bad_rows_are_reported_not_kept(mock_factory):
    bad = [FEB10 - 10 * MIN, FEB10 + 200 * MIN]
    mock = await mock_factory(bad_rows={"BTC/USDT": bad})
    res = await fetch_ohlcv("binance", "BTC/USDT", "1m", "2024-02-09", "2024-02-11", base_url=mock.url)
    rep = res.report.symbols["BTC/USDT"]
    assert rep.bad_rows == [(t, "high < max(open, close)") for t in bad]
    assert not res.report.ok
    t = res.data["BTC/USDT"]["time"]
    assert not np.isin(bad, t).any()
    assert rep.gaps == [(FEB10, FEB10 + 180 * MIN)]  # a bad row is not a gap


async def test_flat_zero_volume_candles_are_kept_and_flagged(mock_factory):
    flat = [FEB10 - MIN, FEB10 + 180 * MIN]  # outage fillers at both edges of the maintenance
    mock = await mock_factory(flat_rows={"ETH/USDT": flat})
    res = await fetch_ohlcv("binance", "ETH/USDT", "1m", "2024-02-09", "2024-02-11", base_url=mock.url)
    rep = res.report.symbols["ETH/USDT"]
    assert rep.flat_zero_volume == flat and rep.bad_rows == []
    assert np.isin(flat, res.data["ETH/USDT"]["time"]).all()


async def test_funding_rate_pagination_and_resume(mock_factory):
    mock = await mock_factory(origin="2023-01-01")
    res = await fetch_funding_rates(["BTC/USDT"], "2023-01-01", None, base_url=mock.url)
    want = mock.funding("BTC/USDT")
    now = mock.server_ms()
    sel = want["time"] <= now
    got = res.data["BTC/USDT"]
    np.testing.assert_array_equal(got["time"], want["time"][sel])
    np.testing.assert_allclose(got["rate"], want["rate"][sel])
    assert res.report.symbols["BTC/USDT"].requests == 2  # 1278 rows, pages of 1000
    assert mock.stats.by_path["/fapi/v1/fundingRate"] == 2
    sink = MemorySink()
    await fetch_funding_rates("BTC/USDT", "2023-01-01", "2023-06-01", base_url=mock.url, sink=sink)
    res2 = await fetch_funding_rates("BTC/USDT", "2023-01-01", None, base_url=mock.url, sink=sink)
    assert res2.report.symbols["BTC/USDT"].resumed_from is not None
    np.testing.assert_array_equal(sink.read("binance_futures", "BTC/USDT", "funding")["time"], got["time"])


def test_sync_wrapper_and_threaded_mock():
    config = MockConfig(symbols=("BTC/USDT",), origin="2024-02-20", now="2024-03-01 00:00:30", window_s=1,
                        weight_limit=1200)
    with serve_in_thread(config) as mock:
        res = fetch_ohlcv_sync("binance", "BTC/USDT", "15m", "2024-02-20", None, base_url=mock.url)
        assert_same(res.data["BTC/USDT"], mock.expected("BTC/USDT", "15m", "2024-02-20"))


async def test_sync_wrapper_refuses_a_running_loop():
    with pytest.raises(RuntimeError, match="await fetch_ohlcv"):
        fetch_ohlcv_sync("binance", "BTC/USDT", "1m", 0, 1)


def test_unified_symbols():
    assert unified_to_id("BTC/USDT") == "BTCUSDT"
    assert unified_to_id("eth/usdt:USDT") == "ETHUSDT"
    assert unified_to_id("BNBUSDT") == "BNBUSDT"
    with pytest.raises(ValueError, match="symbol"):
        unified_to_id("BTC USDT")


def test_validate_candles_reports_every_kind_of_bad_row():
    t = np.array([0, 2 * MIN, MIN, MIN, 3 * MIN + 5, 4 * MIN, 5 * MIN, 6 * MIN], dtype=np.int64)
    o = np.array([10, 10, 10, 10, 10, 10, 10, 10.0])
    h = np.array([11, 11, 11, 11, 11, 9.5, 11, 11.0])
    lo = np.array([9, 9, 9, 9, 9, 9, 10.5, 9.0])
    c = np.array([10, 10, 10, 10, 10, 10, 10, 10.0])
    v = np.array([1, 1, 1, 1, 1, 1, 1, -1.0])
    clean, bad, dups, unsorted = validate_candles(dict(time=t, open=o, high=h, low=lo, close=c, volume=v), "1m")
    assert unsorted and dups == 1
    np.testing.assert_array_equal(clean["time"], [0, MIN, 2 * MIN])
    assert bad == [(3 * MIN + 5, "open time off the timeframe grid"), (4 * MIN, "high < max(open, close)"),
                   (5 * MIN, "low > min(open, close)"), (6 * MIN, "volume < 0")]


def test_find_gaps():
    t = np.array([2, 3, 6, 7], dtype=np.int64) * MIN
    assert find_gaps(t, "1m", expected_first=0, expected_end=10 * MIN) == [
        (0, 2 * MIN), (4 * MIN, 6 * MIN), (8 * MIN, 10 * MIN)]
    assert find_gaps(np.array([], dtype=np.int64), "1m", 0, MIN) == [(0, MIN)]


async def test_no_start_means_from_the_first_candle_without_a_leading_gap(mock_exchange):
    res = await fetch_ohlcv("binance", "ETH/USDT", "4h", None, "2024-02-05", base_url=mock_exchange.url)
    rep = res.report.symbols["ETH/USDT"]
    assert res.data["ETH/USDT"]["time"][0] == 1706745600000  # 2024-02-01, the mock's first candle
    assert rep.gaps == [] and rep.rows == 24


def test_run_fetch_prints_a_summary(capsys):
    from nbtrade.data.fetch import run_fetch

    config = MockConfig(symbols=("BTC/USDT", "ETH/USDT"), origin="2024-02-20", now="2024-03-01 00:00:30")
    with serve_in_thread(config) as mock:
        code = run_fetch("binance", "BTC/USDT,ETH/USDT", "1h", "2024-02-20", "2024-02-21", base_url=mock.url)
    out = capsys.readouterr().out
    assert code == 0
    assert "BTC/USDT: 24 rows" in out and "ETH/USDT: 24 rows" in out


async def test_backward_paging_adapter_gives_the_same_candles(mock_exchange):
    """The adapter contract for newest-first exchanges (OKX, Bybit), exercised against the mock:
    Binance without startTime returns the newest rows up to endTime."""
    from nbtrade.data.exchanges.base import Request

    class Backward(BinanceSpot):
        descending = True

        def klines_request(self, symbol, timeframe, start_ms, end_ms, limit):
            params = {"symbol": self.symbol_id(symbol), "interval": timeframe, "endTime": int(end_ms),
                      "limit": int(limit)}
            return Request(self.kline_path, params, 2)

    res = await fetch_ohlcv(Backward(), ["BTC/USDT", "ETH/USDT"], "1m", FEB10 - 2500 * MIN, FEB10 + 2000 * MIN,
                            base_url=mock_exchange.url, parallel=2)
    for sym in ("BTC/USDT", "ETH/USDT"):
        assert_same(res.data[sym], mock_exchange.expected(sym, "1m", FEB10 - 2500 * MIN, FEB10 + 2000 * MIN))
        rep = res.report.symbols[sym]
        assert rep.gaps == [(FEB10, FEB10 + 180 * MIN)] and rep.bad_rows == []


async def test_fetches_in_one_loop_share_the_exchange_limiter(mock_factory):
    from nbtrade.data.exchanges import get_adapter
    from nbtrade.data.fetch import shared_limiters

    mock = await mock_factory(weight_limit=60, window_s=0.5)
    await asyncio.gather(
        fetch_ohlcv("binance", "BTC/USDT", "1m", "2024-02-01", "2024-02-08", base_url=mock.url, backoff=FAST),
        fetch_ohlcv("binance", "ETH/USDT", "1m", "2024-02-01", "2024-02-08", base_url=mock.url, backoff=FAST))
    limiter = shared_limiters(get_adapter("binance"), mock.url)["weight"]
    assert limiter.stats["requests"] == mock.stats.requests
    assert mock.stats.n429 == 0 and mock.stats.max_weight() <= 60


async def test_a_ban_expires_after_its_retry_after():
    import math

    lim = WeightLimiter(100, 1.0)
    lim.ban(IPBanned("banned", status=418, retry_after=0.01))
    assert lim.banned
    await asyncio.sleep(0.02)
    assert not lim.banned
    lim.ban(IPBanned("banned", status=418))
    assert lim.banned and lim._ban_until == math.inf
