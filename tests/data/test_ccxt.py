"""The ccxt adapter (optional extra ``nbtrade[ccxt]``) against the mock exchange: ccxt's URLs point at
127.0.0.1, and everything after ccxt's ``fetch_ohlcv`` is the native fetcher."""
from __future__ import annotations

import sys

import numpy as np
import pytest

ccxt = pytest.importorskip("ccxt")

from nbtrade.data.exchanges import get_adapter  # noqa: E402
from nbtrade.data.exchanges.base import BadRequest, ServerError  # noqa: E402
from nbtrade.data.exchanges.ccxt_adapter import CcxtAdapter, map_ccxt_error  # noqa: E402
from nbtrade.data.fetch import MemorySink, fetch_ohlcv  # noqa: E402
from nbtrade.data.mock import Faults  # noqa: E402
from nbtrade.data.ratelimit import BackoffPolicy, TooManyRequests  # noqa: E402

FEB10 = 1707523200000
HOUR = 3_600_000
FAST = BackoffPolicy(base=0.01, max_delay=0.2, max_retries=8)


def binance() -> CcxtAdapter:
    """ccxt's binance, spot markets only (the mock serves /api/v3 and /fapi/v1, not coin-M)."""
    return CcxtAdapter("binance", {"options": {"fetchMarkets": {"types": ["spot"]}}})


def assert_same(got, want):
    for k in ("time", "open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_the_pinned_version_is_installed():
    from nbtrade.data.exchanges.ccxt_adapter import CCXT_VERSION

    assert ccxt.__version__ == CCXT_VERSION


async def test_ccxt_fetch_equals_the_exchange_with_gaps_and_no_open_candle(mock_exchange):
    m = mock_exchange
    res = await fetch_ohlcv(binance(), ["BTC/USDT", "ethusdt"], "1h", "2024-02-05", None, base_url=m.url, cache=False)
    for s in ("BTC/USDT", "ETH/USDT"):
        assert_same(res.data[s], m.expected(s, "1h", "2024-02-05"))
        assert res.report.symbols[s].gaps == [(FEB10, FEB10 + 3 * HOUR)]
    assert res.report.exchange == "ccxt-binance" and res.report.ok
    assert m.stats.by_path["/api/v3/klines"] >= 2  # it paged


async def test_ccxt_cuts_the_open_candle_by_the_reply_clock(mock_factory):
    m = await mock_factory(time_skew_s=31.0)
    res = await fetch_ohlcv(binance(), "BTC/USDT", "1m", "2024-02-29 23:00", None, base_url=m.url, cache=False)
    want = m.expected("BTC/USDT", "1m", "2024-02-29 23:00")
    assert len(want["time"]) == 60
    assert_same(res.data["BTC/USDT"], want)
    assert res.report.symbols["BTC/USDT"].gaps == []


async def test_ccxt_resumes_into_a_sink_and_the_store(mock_exchange, tmp_path):
    from nbtrade.data.store import Store

    m = mock_exchange
    store = Store(tmp_path / "st")
    await fetch_ohlcv(binance(), "BTC/USDT", "1h", "2024-02-05", "2024-02-12", base_url=m.url, sink=store,
                      cache=False)
    res = await fetch_ohlcv(binance(), "BTC/USDT", "1h", "2024-02-05", "2024-02-20", base_url=m.url, sink=store,
                            cache=False)
    assert res.report.symbols["BTC/USDT"].resumed_from == 1707692400000  # 2024-02-11 23:00
    assert_same(store.read("ccxt-binance", "BTC/USDT", "1h", as_arrays=True),
                m.expected("BTC/USDT", "1h", "2024-02-05", "2024-02-20"))


async def test_ccxt_rate_limits_and_server_errors_map_onto_the_family(mock_factory):
    m = await mock_factory(faults=Faults(seed=2, p_5xx=0.15, storms=[(2, 0.3)]))
    sink = MemorySink()
    res = await fetch_ohlcv(binance(), "SOL/USDT", "1m", "2024-02-20", "2024-02-22", base_url=m.url, sink=sink,
                            cache=False, backoff=FAST)
    assert res.report.throttled > 0 and res.report.retries > 0
    assert_same(res.data["SOL/USDT"], m.expected("SOL/USDT", "1m", "2024-02-20", "2024-02-22"))


async def test_ccxt_unlisted_symbol_is_a_bad_request(mock_exchange):
    with pytest.raises(BadRequest, match="DOGE/USDT 1h.*not in ccxt's markets"):
        await fetch_ohlcv(binance(), "DOGE/USDT", "1h", "2024-02-01", None, base_url=mock_exchange.url, cache=False)
    assert "/api/v3/klines" not in mock_exchange.stats.by_path


@pytest.mark.parametrize("exc, kind", [
    (ccxt.RateLimitExceeded("binance 429 Too much request weight used"), TooManyRequests),
    (ccxt.DDoSProtection("blocked"), TooManyRequests),
    (ccxt.BadSymbol("binance does not have market symbol XYZ/USDT"), BadRequest),
    (ccxt.BadRequest("-1120 Invalid interval."), BadRequest),
    (ccxt.NotSupported("no"), BadRequest),
    (ccxt.AuthenticationError("key"), BadRequest),
    (ccxt.RequestTimeout("timeout"), ServerError),
    (ccxt.ExchangeNotAvailable("503"), ServerError),
    (ccxt.ExchangeError("weird"), ServerError),
])
def test_ccxt_errors_keep_their_message(exc, kind):
    err = map_ccxt_error(exc, "ccxt-binance")
    assert type(err) is kind and str(exc) in str(err) and type(exc).__name__ in str(err)


def test_unknown_exchange_and_exchange_without_ohlcv_are_clear_errors():
    with pytest.raises(ValueError, match="ccxt has no exchange 'nosuchex'"):
        get_adapter("ccxt:nosuchex")
    with pytest.raises(ValueError, match=r"'zaif' has no OHLCV endpoint \(has\['fetchOHLCV'\]"):
        get_adapter("ccxt:zaif")
    with pytest.raises(ValueError, match="ccxt:<id>"):
        get_adapter("kraken")
    with pytest.raises(ValueError, match="timeframe '7m' is not supported by ccxt-binance"):
        binance().interval("7m")


def test_ccxt_missing_is_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "ccxt.async_support", None)
    with pytest.raises(ImportError, match=r"pip install 'nbtrade\[ccxt\]'"):
        get_adapter("ccxt:binance")


def test_ccxt_adapter_symbols_follow_the_rule():
    a = get_adapter("ccxt:kraken")
    assert a.unified("btc-usd") == "BTC/USD" and a.symbol_id("BTC/USDT:USDT") == "BTC/USDT:USDT"
