"""Binance USD-M futures REST: ``/fapi/v1/klines``, ``/fapi/v1/fundingRate``, exchangeInfo, time.

Klines take the spot parameters minus ``timeZone``; ``limit`` max 1500 and the
weight grows with it: [1, 100) -> 1, [100, 500) -> 2, [500, 1000] -> 5, > 1000 -> 10.
Candles per weight are best at ``limit=499`` (249.5 per weight, against 200 at
1000 and 150 at 1500), so that is the page size. ``fundingRate``: ``startTime``
and ``endTime`` inclusive, ``limit`` max 1000, ascending rows
``{symbol, fundingRate, fundingTime, markPrice}``; it has its own budget of 500
requests per 5 minutes per IP (one request = 1 unit here).

Perpetual data (issue 17), read from Binance's own pages and ccxt:

- ``GET /fapi/v1/markPriceKlines`` (developers.binance.com ... /market-data/rest-api/
  Mark-Price-Kline-Candlestick-Data): parameters ``symbol, interval, startTime, endTime,
  limit`` (default 500, max 1500), the kline weight table by ``limit`` ([1,100) 1, [100,500) 2,
  [500,1000] 5, > 1000 10), rows in the 12-field kline layout with the mark price in fields 1-4
  and "0" (sometimes "0 ") for the volumes; "uniquely identified by their open time". So mark
  candles page exactly like klines: 499 rows per page (the best candles per weight), cursor =
  last open time + interval, a short page ends the range (ccxt binance.py fetch_ohlcv with
  ``price="mark"`` uses the same endpoint and paging).
- ``GET /fapi/v1/fundingRate`` (.../Get-Funding-Rate-History): ``symbol, startTime, endTime,
  limit`` (default 100, max 1000); with more than ``limit`` rows in the range "the first
  ``limit`` from startTime" (ascending); weight: 500 requests per 5 min per IP shared with
  ``fundingInfo`` (the ``funding`` limiter bucket). Rows ``{symbol, fundingRate, fundingTime,
  markPrice}``; ``fundingTime`` strays a few ms from the hour. Cursor: last fundingTime + 1 ms
  (ccxt binance.py fetch_funding_rate_history pages the same way).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import MalformedResponse, Request, best_page_limit
from .binance import BinanceSpot

#: (largest limit of the tier, weight)
KLINE_WEIGHT_TIERS = [(99, 1), (499, 2), (1000, 5), (1500, 10)]

FUNDING_PATH = "/fapi/v1/fundingRate"
MARK_PATH = "/fapi/v1/markPriceKlines"
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
    mark_path = MARK_PATH
    funding_page_limit = FUNDING_MAX_LIMIT

    def page_limit(self) -> int:
        return best_page_limit(KLINE_WEIGHT_TIERS)

    def kline_weight(self, limit: int) -> int:
        return kline_weight(limit)

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        req = super().klines_request(symbol, timeframe, start_ms, end_ms, limit)
        if self.price == "mark":  # same parameters, weights and layout (Mark-Price-Kline-Candlestick-Data)
            return Request(MARK_PATH, req.params, req.weight)
        return req

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        from .binance import parse_kline_rows

        path = MARK_PATH if self.price == "mark" else self.kline_path
        return parse_kline_rows(payload, f"{self.name} {path}")

    def funding_request(self, symbol: str, start_ms: int, end_ms: int, limit: int = FUNDING_MAX_LIMIT) -> Request:
        params = {"symbol": self.symbol_id(symbol), "startTime": int(start_ms), "endTime": int(end_ms),
                  "limit": int(limit)}
        return Request(FUNDING_PATH, params, 1, bucket="funding")

    def parse_funding(self, payload: Any) -> dict[str, np.ndarray]:
        """Arrays ``time`` (fundingTime, int64 ms), ``rate`` and ``mark_price`` (float64)."""
        from .base import funding_arrays

        if not isinstance(payload, list):
            raise MalformedResponse(f"{self.name} {FUNDING_PATH}: expected a JSON array, got {type(payload).__name__}")
        return funding_arrays(payload, f"{self.name} {FUNDING_PATH}", "fundingTime", ("fundingRate",), "markPrice")
