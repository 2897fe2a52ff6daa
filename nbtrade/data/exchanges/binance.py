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
from .base import (MAX_EPOCH_MS, Adapter, BadRequest, MalformedResponse, Request, ServerError, filter_row,
                   ohlcv_columns, read_ohlcv_fields)

_WINDOW_S = {"SECOND": 1.0, "MINUTE": 60.0, "HOUR": 3600.0, "DAY": 86400.0}
#: errors.md "10xx - General Server or Network issues" that are worth a retry: -1000 UNKNOWN,
#: -1001 DISCONNECTED, -1006 UNEXPECTED_RESP, -1007 TIMEOUT, -1008 SERVER_BUSY
SERVER_CODES = (-1000, -1001, -1006, -1007, -1008)


def parse_kline_rows(payload: Any, where: str = "klines") -> dict[str, np.ndarray]:
    """Binance kline rows -> arrays; ``MalformedResponse`` naming the row and field if the layout is wrong."""
    if not isinstance(payload, list):
        raise MalformedResponse(f"{where}: expected a JSON array of rows, got {type(payload).__name__} "
                                f"{str(payload)[:80]!r}")
    n = len(payload)
    time = np.empty(n, dtype=np.int64)
    ohlcv = np.empty((n, 5), dtype=np.float64)
    for i, row in enumerate(payload):
        if not isinstance(row, list) or len(row) < 6:
            kind = "a JSON object" if isinstance(row, dict) else f"{row!r:.60}"
            raise MalformedResponse(f"{where}: row {i} is {kind}; expected an array of 12 fields "
                                    "[openTime, open, high, low, close, volume, ...]")
        t = row[0]
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < MAX_EPOCH_MS:
            raise MalformedResponse(f"{where}: row {i} field 0 (open time) is {t!r:.40}; expected epoch "
                                    "milliseconds (an integer before 2200)")
        time[i] = t
        read_ohlcv_fields(row, i, ohlcv, where)
    return ohlcv_columns(time, ohlcv)


def parse_rate_limits(info: dict, where: str = "exchangeInfo") -> tuple[int, float] | None:
    """The ``REQUEST_WEIGHT`` entry of exchangeInfo ``rateLimits`` as (limit, window seconds).

    ``MalformedResponse`` naming the field when the entry is there but unusable.
    """
    entries = info.get("rateLimits")
    if entries is None:
        return None
    if not isinstance(entries, list):
        raise MalformedResponse(f"{where}: field 'rateLimits' is {type(entries).__name__}; expected a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise MalformedResponse(f"{where}: rateLimits[{i}] is {entry!r:.40}; expected an object")
        if entry.get("rateLimitType") == "REQUEST_WEIGHT":
            limit, num, unit = entry.get("limit"), entry.get("intervalNum", 1), entry.get("interval")
            if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
                raise MalformedResponse(f"{where}: rateLimits[{i}].limit (REQUEST_WEIGHT) is {limit!r:.40}; "
                                        "expected a positive integer")
            if not isinstance(num, (int, float)) or isinstance(num, bool) or not 0 < num < 1e6 \
                    or unit not in _WINDOW_S:
                raise MalformedResponse(f"{where}: rateLimits[{i}] (REQUEST_WEIGHT) has interval {unit!r:.20} x "
                                        f"{num!r:.20}; expected SECOND/MINUTE/HOUR/DAY and a positive intervalNum")
            return limit, _WINDOW_S[unit] * num
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
        return parse_kline_rows(payload, f"{self.name} {self.kline_path}")

    def rate_limits(self, info: dict) -> tuple[int, float] | None:
        return parse_rate_limits(info, f"{self.name} {self.exchange_info_path}")

    def listed(self, info: dict) -> set[str] | None:
        symbols = info.get("symbols") if isinstance(info, dict) else None
        if not symbols:
            return None
        where = f"{self.name} {self.exchange_info_path}"
        if not isinstance(symbols, list):
            raise MalformedResponse(f"{where}: field 'symbols' is {type(symbols).__name__}; expected a list")
        for i, s in enumerate(symbols):
            if not isinstance(s, dict) or not isinstance(s.get("symbol"), str):
                raise MalformedResponse(f"{where}: symbols[{i}] is {s!r:.60}; expected an object with a "
                                        "'symbol' string")
        return {s["symbol"] for s in symbols}

    def symbol_filters(self, info: dict) -> dict[str, dict[str, float]]:
        """exchangeInfo ``filters`` (filters.md): PRICE_FILTER tickSize, LOT_SIZE stepSize/minQty/maxQty,
        NOTIONAL or MIN_NOTIONAL minNotional (USD-M: MIN_NOTIONAL ``notional``)."""
        out = {}
        for entry in info.get("symbols") or []:
            if not isinstance(entry, dict) or entry.get("status", "TRADING") != "TRADING":
                continue
            base, quote = entry.get("baseAsset"), entry.get("quoteAsset")
            if not (isinstance(base, str) and isinstance(quote, str)):
                continue
            flt = {f.get("filterType"): f for f in entry.get("filters") or [] if isinstance(f, dict)}
            price, lot = flt.get("PRICE_FILTER", {}), flt.get("LOT_SIZE", {})
            notional = flt.get("NOTIONAL") or flt.get("MIN_NOTIONAL") or {}
            out[self.unified(f"{base}/{quote}")] = filter_row(
                price.get("tickSize"), lot.get("stepSize"), lot.get("minQty"), lot.get("maxQty"),
                notional.get("minNotional", notional.get("notional")))
        return out

    def used_weight(self, headers: Any) -> int | None:
        value = headers.get(self.weight_header)
        if value is None:
            return None
        try:
            return int(value)
        except ValueError:
            return None

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        code = payload.get("code") if isinstance(payload, dict) else None
        msg = payload.get("msg", "") if isinstance(payload, dict) else ""
        sent = status
        if status < 400:
            # an error body sent with HTTP 200 ({"code": -1121, "msg": "Invalid symbol."}) is an
            # error: classify it by its code, never parse or retry it as malformed data
            if not (isinstance(code, int) and not isinstance(code, bool) and code < 0 and "msg" in payload):
                return None
            status = 429 if code == -1003 else (500 if code in SERVER_CODES else 400)
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
        text = f"{self.name}: HTTP {sent}" + (f", code {code}: {msg}" if code is not None else "")
        if 400 <= status < 500:
            return BadRequest(text, exchange=self.name, status=status, code=code)
        return ServerError(text, exchange=self.name, status=status, code=code)
