"""Child process of test_perp_resume's kill test: fetch funding rates from the mock into a store, until killed."""
import sys

from nbtrade.data.fetch import fetch_funding_rates_sync
from nbtrade.data.store import Store

url, root, exchange, start, end = sys.argv[1:6]
fetch_funding_rates_sync("BTC/USDT:USDT", start, end, exchange=exchange, base_url=url, sink=Store(root))
print("done")
