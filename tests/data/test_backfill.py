"""Asking for older history than the store holds fetches it too (no gap the fetcher could have filled)."""
import numpy as np

from nbtrade.data.fetch import fetch_ohlcv
from nbtrade.data.store import Store

H = 3_600_000


async def test_earlier_start_backfills_before_the_stored_range(mock_exchange, tmp_path):
    store = Store(tmp_path / "store")
    sym = mock_exchange.config.symbols[0]
    full = await fetch_ohlcv("binance", sym, "1h", "2024-02-20", "2024-02-24", base_url=mock_exchange.url)
    want = full.data[sym]
    await fetch_ohlcv("binance", sym, "1h", "2024-02-21", "2024-02-23", base_url=mock_exchange.url, sink=store)
    assert store.first_time("binance", sym, "1h") == want["time"][24]
    res = await fetch_ohlcv("binance", sym, "1h", "2024-02-20", "2024-02-24", base_url=mock_exchange.url,
                            sink=store)
    rep = res.report.symbols[sym] if hasattr(res.report, "symbols") else None
    got = store.read("binance", sym, "1h", as_arrays=True)
    np.testing.assert_array_equal(got["time"], want["time"])
    np.testing.assert_array_equal(got["close"], want["close"])
    assert rep is None or rep.gaps == []
    # nothing new to fetch on a third run
    again = await fetch_ohlcv("binance", sym, "1h", "2024-02-20", "2024-02-24", base_url=mock_exchange.url,
                              sink=store)
    assert sum(r.rows for r in again.report.symbols.values()) == 0
