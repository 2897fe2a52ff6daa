"""Binance spot REST: ``/api/v3/klines``, ``/api/v3/exchangeInfo``, ``/api/v3/time``.

Facts (../shared/EXCHANGES.md, binance-spot-api-docs rest-api.md): klines weight 2,
``limit`` max 1000, rows of 12 fields (times and counts as ints, prices and volumes
as strings), oldest first; ``startTime``/``endTime`` filter on open time, inclusive.
exchangeInfo weight 20, ``REQUEST_WEIGHT`` 6000 per minute per IP, every reply
carries ``X-MBX-USED-WEIGHT-1M``. 429 then 418 with ``Retry-After``; 403 is a WAF block
(treated as a rate-limit signal: the shared limiter backs off); errors are
``{"code": <negative int>, "msg": ...}`` (-1121 bad symbol, -1120 bad interval,
-1102 missing parameter).
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np

from ..ratelimit import TooManyRequests, classify_rate_limit, parse_retry_after
from .base import Adapter, BadRequest, MalformedResponse, Request, ServerError

_WINDOW_S = {"SECOND": 1.0, "MINUTE": 60.0, "HOUR": 3600.0, "DAY": 86400.0}


def parse_kline_rows(payload: Any) -> dict[str, np.ndarray]:
    """Binance kline rows -> arrays; ``MalformedResponse`` if the layout is wrong."""
    if not isinstance(payload, list):
        raise MalformedResponse(f"klines: expected a JSON array, got {type(payload).__name__}")
    n = len(payload)
    time = np.empty(n, dtype=np.int64)
    ohlcv = np.empty((n, 5), dtype=np.float64)
    try:
        for i, row in enumerate(payload):
            if len(row) < 6 or isinstance(row[0], (str, float)):
                raise MalformedResponse(f"klines: malformed row {i}: {row!r:.80}")
            time[i] = row[0]
            ohlcv[i] = (float(row[1]), float(row[2]), float(row[3]), float(row[4]), float(row[5]))
    except (TypeError, ValueError) as exc:
        raise MalformedResponse(f"klines: malformed row: {exc}") from None
    return {"time": time, "open": ohlcv[:, 0].copy(), "high": ohlcv[:, 1].copy(), "low": ohlcv[:, 2].copy(),
            "close": ohlcv[:, 3].copy(), "volume": ohlcv[:, 4].copy()}


def parse_rate_limits(info: dict) -> tuple[int, float] | None:
    """The ``REQUEST_WEIGHT`` entry of exchangeInfo ``rateLimits`` as (limit, window seconds)."""
    for entry in info.get("rateLimits", []) or []:
        if entry.get("rateLimitType") == "REQUEST_WEIGHT":
            window = _WINDOW_S.get(entry.get("interval"), 60.0) * float(entry.get("intervalNum", 1))
            return int(entry["limit"]), window
    return None


def symbol_filters(info: dict, symbol: str) -> dict[str, dict[str, Decimal]]:
    """Filters of one symbol from exchangeInfo, numbers as ``Decimal`` (exact tick/step arithmetic).

    >>> info = {"symbols": [{"symbol": "BTCUSDT", "filters": [
    ...     {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "0", "tickSize": "0.01"}]}]}
    >>> symbol_filters(info, "BTCUSDT")["PRICE_FILTER"]["tickSize"]
    Decimal('0.01')
    """
    for entry in info.get("symbols", []) or []:
        if entry.get("symbol") == symbol:
            out: dict[str, dict[str, Decimal]] = {}
            for flt in entry.get("filters", []):
                values = {}
                for key, value in flt.items():
                    if key == "filterType":
                        continue
                    try:
                        values[key] = Decimal(str(value))
                    except Exception:
                        values[key] = value
                out[flt["filterType"]] = values
            return out
    raise KeyError(f"symbol {symbol!r} not in exchange info")


class BinanceSpot(Adapter):
    name = "binance"
    default_base_url = "https://api.binance.com"
    kline_path = "/api/v3/klines"
    kline_max_limit = 1000
    exchange_info_path = "/api/v3/exchangeInfo"
    exchange_info_weight = 20
    time_path = "/api/v3/time"
    weight_header = "X-MBX-USED-WEIGHT-1M"
    default_budget = (6000, 60.0)

    def kline_weight(self, limit: int) -> int:
        return 2

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        params = {"symbol": self.symbol_id(symbol), "interval": self.interval(timeframe),
                  "startTime": int(start_ms), "endTime": int(end_ms), "limit": int(limit)}
        return Request(self.kline_path, params, self.kline_weight(limit))

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        return parse_kline_rows(payload)

    def rate_limits(self, info: dict) -> tuple[int, float] | None:
        return parse_rate_limits(info)

    def listed(self, info: dict) -> set[str] | None:
        symbols = info.get("symbols") if isinstance(info, dict) else None
        if not symbols:
            return None
        return {s["symbol"] for s in symbols if "symbol" in s}

    def used_weight(self, headers: Any) -> int | None:
        value = headers.get(self.weight_header)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            return None

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        if status < 400:
            return None
        code = payload.get("code") if isinstance(payload, dict) else None
        msg = payload.get("msg", "") if isinstance(payload, dict) else ""
        retry_after = parse_retry_after(headers.get("Retry-After"))
        if status == 403:
            # rest-api.md "HTTP Return Codes": 403 is the WAF limit (Web Application Firewall)
            # being violated. It is a traffic signal, not a bad request: the shared limiter
            # backs off (exponentially when there is no Retry-After) and every fetch waits.
            return TooManyRequests(f"{self.name}: HTTP 403, request blocked by Binance's web application "
                                   f"firewall (WAF)" + (f", code {code}: {msg}" if code is not None else ""),
                                   status=status, code=code, retry_after=retry_after, exchange=self.name)
        limited = classify_rate_limit(status, code, retry_after, str(msg), exchange=self.name)
        if limited is not None:
            return limited
        text = f"{self.name}: HTTP {status}" + (f", code {code}: {msg}" if code is not None else "")
        if 400 <= status < 500:
            return BadRequest(text, exchange=self.name, status=status, code=code)
        return ServerError(text, exchange=self.name, status=status, code=code)
