"""Fetch candles from the local mock exchange (Binance API, weights, limits) into an HDF5 store, resumably."""
import tempfile

import nbtrade

from _common import QUICK

root = tempfile.mkdtemp(prefix="nbtrade-store-")
store = nbtrade.Store(root)
symbols = ["BTC/USDT", "ETH/USDT"]
with nbtrade.serve_in_thread(symbols=symbols, origin="2024-01-01", now="2024-03-01") as mock:
    end = "2024-01-10" if QUICK else "2024-03-01"
    first = nbtrade.fetch_ohlcv_sync("binance", symbols, "5m", "2024-01-01", end, base_url=mock.url, sink=store)
    print(first.report.summary())
    again = nbtrade.fetch_ohlcv_sync("binance", symbols, "5m", "2024-01-01", end, base_url=mock.url, sink=store)
    print("re-run (resumes from the store):", again.report.summary().splitlines()[0])
df = store.read("binance", "BTC/USDT", "5m", "2024-01-02", "2024-01-03")
print(df.head().to_string())
print(store.verify())
