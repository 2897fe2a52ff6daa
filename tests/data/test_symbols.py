"""One symbol rule (issue 12 item 6): every spelling resolves to one unified symbol, in fetch,
the store's append/read, and the CLI."""
from __future__ import annotations

import numpy as np
import pytest

from nbtrade.data.exchanges import get_adapter
from nbtrade.data.fetch import MemorySink, fetch_ohlcv
from nbtrade.data.symbols import SymbolError, unified_symbol


@pytest.mark.parametrize("spelling, exchange, unified", [
    ("BTC/USDT", "binance", "BTC/USDT"),
    ("btc/usdt", "binance", "BTC/USDT"),
    ("BTCUSDT", "binance", "BTC/USDT"),
    (" btcusdt ", "binance", "BTC/USDT"),
    ("BTC-USDT", "binance", "BTC/USDT"),
    ("BTC_USDT", "binance", "BTC/USDT"),
    ("ETHBTC", "binance", "ETH/BTC"),
    ("BTCFDUSD", "binance", "BTC/FDUSD"),
    ("BTC-USDT", "okx", "BTC/USDT"),
    ("BTCUSDT", "okx", "BTC/USDT"),
    ("BTC/USDT", "binance_futures", "BTC/USDT:USDT"),
    ("BTCUSDT", "binance_futures", "BTC/USDT:USDT"),
    ("BTC/USDT:USDT", "binance_futures", "BTC/USDT:USDT"),
    ("BTCUSDC", "binance_futures", "BTC/USDC:USDC"),
    ("BTCUSDT", "bybit_linear", "BTC/USDT:USDT"),
    ("ETHPERP", "bybit_linear", "ETH/USDC:USDC"),
    ("eth/usdc:usdc", "bybit_linear", "ETH/USDC:USDC"),
    ("BTC-USDT-SWAP", None, "BTC/USDT:USDT"),
    ("ETHPERP", None, "ETH/USDC:USDC"),
    ("BTCUSDT", None, "BTC/USDT"),
    ("AAPL", "yahoo", "AAPL"),              # not a crypto pair on a venue nbtrade does not know: kept
])
def test_every_spelling_resolves_to_the_unified_symbol(spelling, exchange, unified):
    assert unified_symbol(spelling, exchange) == unified


@pytest.mark.parametrize("spelling, exchange, match", [
    ("BTC/USDT:USDT", "binance", r"perpetual .* binance serves spot; use 'BTC/USDT'"),
    ("BTC-USDT-SWAP", "okx", r"perpetual .* okx serves spot"),
    ("ETHPERP", "bybit", r"perpetual \(settles in USDC\) but bybit serves spot; use 'ETH/USDC'"),
    ("BTC/USDT:BTC", "binance_futures", r"only linear perpetuals .* 'BTC/USDT:USDT'"),
    ("FOO", "binance", r"cannot tell the base from the quote"),
    ("BTC USDT", "binance", r"cannot tell the base from the quote"),
    ("BTC/", "binance", r"must look like 'BTC/USDT'"),
    ("A-B-C", "binance", r"is not a pair"),
    ("", "binance", r"non-empty string"),
    (None, "binance", r"non-empty string"),
])
def test_bad_spellings_are_refused_with_what_to_write(spelling, exchange, match):
    with pytest.raises(SymbolError, match=match):
        unified_symbol(spelling, exchange)


@pytest.mark.parametrize("spelling, candidates", [
    ("BTCBUSD", ("BTC/BUSD", "BTCB/USD")),
    ("ETHTUSD", ("ETH/TUSD", "ETHT/USD")),
])
def test_ambiguous_spellings_list_the_unified_candidates(spelling, candidates):
    with pytest.raises(SymbolError, match="ambiguous") as info:
        unified_symbol(spelling)
    assert set(info.value.candidates) == set(candidates)
    for c in candidates:
        assert c in str(info.value)


def test_adapter_ids_keep_the_settle_currency():
    assert get_adapter("bybit_linear").symbol_id("ETH/USDC:USDC") == "ETHPERP"  # not ETHUSDC
    assert get_adapter("bybit_linear").symbol_id("ETHPERP") == "ETHPERP"
    assert get_adapter("bybit_linear").symbol_id("BTC/USDT") == "BTCUSDT"
    assert get_adapter("binance_futures").symbol_id("btc-usdt") == "BTCUSDT"
    for spot in ("binance", "bybit", "okx"):
        with pytest.raises(ValueError, match="perpetual"):
            get_adapter(spot).symbol_id("BTC/USDT:USDT")


async def test_two_spellings_are_one_series(mock_exchange):
    sink = MemorySink()
    res = await fetch_ohlcv("binance", ["BTCUSDT", "BTC/USDT", "btc-usdt"], "1h", "2024-02-01", "2024-02-03",
                            base_url=mock_exchange.url, sink=sink)
    assert list(res.data) == ["BTC/USDT"] and list(res.report.symbols) == ["BTC/USDT"]
    assert [key[1] for key in sink.batches] == ["BTC/USDT"]
    np.testing.assert_array_equal(res.data["BTCUSDT"]["time"], res.data["BTC/USDT"]["time"])  # any spelling finds it
    assert "btc_usdt" in res.data and "ETH/USDT" not in res.data
    assert res["BTC-USDT"].shape == (48, 5)


async def test_perpetual_results_are_keyed_by_the_settled_symbol(mock_exchange):
    res = await fetch_ohlcv("binance_futures", "BTC/USDT", "1h", "2024-02-01", "2024-02-02",
                            base_url=mock_exchange.url)
    assert list(res.data) == ["BTC/USDT:USDT"]
    assert res.data["BTC/USDT"]["time"].shape == (24,)


async def test_spot_adapter_refuses_a_perpetual_before_any_request(mock_exchange):
    with pytest.raises(ValueError, match="perpetual"):
        await fetch_ohlcv("binance", "BTC/USDT:USDT", "1h", "2024-02-01", "2024-02-02", base_url=mock_exchange.url)
    assert mock_exchange.stats.requests == 0


async def test_store_append_and_read_resolve_every_spelling(mock_exchange, tmp_path):
    from nbtrade.data.store import Store

    store = Store(tmp_path / "store")
    await fetch_ohlcv("binance", "BTCUSDT", "1h", "2024-02-01", "2024-02-03", base_url=mock_exchange.url,
                      sink=store)
    await fetch_ohlcv("binance", "BTC/USDT", "1h", "2024-02-03", "2024-02-05", base_url=mock_exchange.url,
                      sink=store)
    assert [(d["symbol"], d["rows"]) for d in store.ls()] == [("BTC/USDT", 96)]  # one series, not two
    for spelling in ("BTC/USDT", "BTC-USDT", "BTCUSDT", "btc_usdt"):
        assert store.read("binance", spelling, "1h", as_arrays=True)["time"].shape == (96,)
        assert store.last_time("binance", spelling, "1h") == store.last_time("binance", "BTC/USDT", "1h")
    more = mock_exchange.expected("BTC/USDT", "1h", "2024-02-05", "2024-02-06")
    assert store.append("binance", "BTC-USDT", "1h", more).added == 24  # the alias appends to the series
    assert [(d["symbol"], d["rows"]) for d in store.ls()] == [("BTC/USDT", 120)]


def test_cli_fetch_resolves_spellings(tmp_path, capsys):
    from nbtrade.cli import main
    from nbtrade.data.mock import MockConfig, serve_in_thread
    from nbtrade.data.store import Store

    from .conftest import SMALL

    with serve_in_thread(MockConfig(**SMALL)) as m:
        code = main(["fetch", "binance", "BTCUSDT,btc/usdt,ETH-USDT", "--timeframe", "1d", "--start", "2024-02-01",
                     "--end", "2024-02-05", "--store", str(tmp_path / "st"), "--base-url", m.url])
        assert code == 0
        bad = main(["fetch", "binance", "BTC/USDT:USDT", "--store", str(tmp_path / "st"), "--base-url", m.url])
    err = capsys.readouterr().err
    assert bad == 1 and "perpetual" in err
    assert sorted(d["symbol"] for d in Store(tmp_path / "st").ls()) == ["BTC/USDT", "ETH/USDT"]


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_BASES = st.sampled_from(["BTC", "ETH", "SOL", "XRP", "DOGE", "1INCH", "PEPE", "AVAX"])


@settings(max_examples=60, deadline=None)
@given(base=_BASES, quote=st.sampled_from(["USDT", "USDC", "BTC"]), exchange=st.sampled_from(["binance", "okx"]),
       case=st.sampled_from([str.upper, str.lower]), sep=st.sampled_from(["/", "-", "_", ""]))
def test_property_every_spot_spelling_is_one_symbol(base, quote, exchange, case, sep):
    if base == quote or (quote == "BTC" and exchange == "okx" and base == "BTC"):
        return
    assert unified_symbol(case(f"{base}{sep}{quote}"), exchange) == f"{base}/{quote}"


@settings(max_examples=40, deadline=None)
@given(base=_BASES, quote=st.sampled_from(["USDT", "USDC"]), sep=st.sampled_from(["/", "-", ""]),
       exchange=st.sampled_from(["binance_futures", "bybit_linear"]))
def test_property_perpetual_venues_add_the_settle_currency(base, quote, sep, exchange):
    spelled = f"{base}{sep}{quote}"
    assert unified_symbol(spelled, exchange) == unified_symbol(f"{base}/{quote}:{quote}", exchange) \
        == f"{base}/{quote}:{quote}"


async def test_bybit_usdc_perpetual_end_to_end(mock_factory):
    # Bybit's linear USDC perpetual is ETHPERP: not ETHUSDC (which Bybit's linear category does not have)
    m = await mock_factory(symbols=("BTC/USDT", "ETH/USDC"))
    res = await fetch_ohlcv("bybit_linear", ["ETHPERP", "btcusdt"], "1h", "2024-02-20", "2024-02-22",
                            base_url=m.url)
    assert list(res.data) == ["ETH/USDC:USDC", "BTC/USDT:USDT"]
    want = m.expected("ETH/USDC", "1h", "2024-02-20", "2024-02-22", market="futures")
    np.testing.assert_array_equal(res.data["ETH/USDC:USDC"]["close"], want["close"])
    spot = await fetch_ohlcv("bybit", "ETH/USDC", "1h", "2024-02-20", "2024-02-21", base_url=m.url)
    assert list(spot.data) == ["ETH/USDC"]
