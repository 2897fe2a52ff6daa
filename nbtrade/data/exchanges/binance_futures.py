"""Binance USD-M futures REST: ``/fapi/v1/klines``, ``/fapi/v1/fundingRate``, exchangeInfo, time.

Klines take the spot parameters minus ``timeZone``; ``limit`` max 1500 and the
weight grows with it: [1, 100) -> 1, [100, 500) -> 2, [500, 1000] -> 5, > 1000 -> 10.
Candles per weight are best at ``limit=499`` (249.5 per weight, against 200 at
1000 and 150 at 1500), so that is the page size. ``fundingRate``: ``startTime``
and ``endTime`` inclusive, ``limit`` max 1000, ascending rows
``{symbol, fundingRate, fundingTime, markPrice}``; it has its own budget of 500
requests per 5 minutes per IP (one request = 1 unit here).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import MalformedResponse, Request, best_page_limit
from .binance import BinanceSpot

#: (largest limit of the tier, weight)
KLINE_WEIGHT_TIERS = [(99, 1), (499, 2), (1000, 5), (1500, 10)]

FUNDING_PATH = "/fapi/v1/fundingRate"
FUNDING_MAX_LIMIT = 1000
#: fundingRate budget: 500 requests per 5 minutes per IP
FUNDING_BUDGET = (500, 300.0)


def kline_weight(limit: int) -> int:
    for top, weight in KLINE_WEIGHT_TIERS:
        if limit <= top:
            return weight
    raise ValueError(f"futures klines limit must be <= 1500, got {limit}")


class BinanceUSDM(BinanceSpot):
    name = "binance_futures"
    default_base_url = "https://fapi.binance.com"
    kline_path = "/fapi/v1/klines"
    kline_max_limit = 1500
    exchange_info_path = "/fapi/v1/exchangeInfo"
    exchange_info_weight = 1
    time_path = "/fapi/v1/time"
    default_budget = (2400, 60.0)

    def page_limit(self) -> int:
        return best_page_limit(KLINE_WEIGHT_TIERS)

    def kline_weight(self, limit: int) -> int:
        return kline_weight(limit)

    def funding_request(self, symbol: str, start_ms: int, end_ms: int, limit: int = FUNDING_MAX_LIMIT) -> Request:
        params = {"symbol": self.symbol_id(symbol), "startTime": int(start_ms), "endTime": int(end_ms),
                  "limit": int(limit)}
        return Request(FUNDING_PATH, params, 1, bucket="funding")

    def parse_funding(self, payload: Any) -> dict[str, np.ndarray]:
        """Arrays ``time`` (fundingTime, int64 ms), ``rate`` and ``mark_price`` (float64)."""
        if not isinstance(payload, list):
            raise MalformedResponse(f"fundingRate: expected a JSON array, got {type(payload).__name__}")
        n = len(payload)
        time = np.empty(n, dtype=np.int64)
        rate = np.empty(n)
        mark = np.empty(n)
        try:
            for i, row in enumerate(payload):
                time[i] = int(row["fundingTime"])
                rate[i] = float(row["fundingRate"])
                mark[i] = float(row.get("markPrice") or "nan")
        except (TypeError, ValueError, KeyError) as exc:
            raise MalformedResponse(f"fundingRate: malformed row: {exc!r}") from None
        return {"time": time, "rate": rate, "mark_price": mark}
