"""Bybit v5 REST: ``/v5/market/kline``, ``/v5/market/instruments-info``, ``/v5/market/time``.

Facts (../shared/EXCHANGES.md; bybit-exchange/docs docs/v5/market/kline.mdx,
rate-limit.mdx, error.mdx):

- ``GET /v5/market/kline?category=spot|linear&symbol=BTCUSDT&interval=1&start=&end=&limit=``;
  intervals ``1 3 5 15 30 60 120 240 360 720 D W M`` (no 8h, no 3d); ``start``/``end``
  in ms on the open time; ``limit`` 1..1000 (default 200; an older doc said 200 max).
- Body ``{retCode, retMsg, result: {category, symbol, list}, retExtInfo, time}``;
  ``list`` is **newest first**, 7 strings per row ``[startTime, open, high, low,
  close, volume, turnover]``; the still-open candle is included (its close is the
  last trade), so the fetcher caps ``end`` at the server clock.
- Which rows come back when ``[start, end]`` holds more than ``limit`` candles is
  reported both ways (the newest ``limit``: ccxt/ccxt#16551; the oldest from ``start``:
  a 2026 comment on bybit-exchange/pybit#186), and ``start`` also matches the candle
  containing it (mirumirumi/ro-soku#3). So each request asks for a window on the grid
  that holds at most ``limit`` candles, ``[end - (limit - 1) * interval, end]``: both
  readings give the same rows. Pages go backwards (``descending``), each window ending
  before the previous one; a short page is a gap, not the end.
- Errors come as HTTP 200 with a non-zero ``retCode``: 10001 parameter error (bad
  symbol, interval, limit) -> :class:`BadRequest`, never retried; 10006 "Too many
  visits!" -> :class:`TooManyRequests`, waiting until ``X-Bapi-Limit-Reset-Timestamp``;
  10000/10016 (server timeout/error) -> retried.
- HTTP 403, one rule (docs/v5/rate-limit.mdx, docs/v5/error.mdx): "access too frequent" is
  the IP limit (600 requests per 5 s) broken, a ban of at least 10 minutes ->
  :class:`IPBanned`: stop, never continue into it. Any other 403 has one of the causes
  error.mdx names (the IP limit, a GET with a body, a U.S. IP): :class:`BadRequest`, never
  retried, with those causes in the message.
- ``X-Bapi-Limit``, ``-Status``, ``-Reset-Timestamp`` describe per-UID, per-endpoint,
  per-second limits of private endpoints (rate-limit.mdx); the public market endpoints used
  here are not in that table, so they do not measure the IP budget and are not read as
  such. The limiter paces by the documented IP budget alone (``probe=1.0``: no header will
  correct it). The reset timestamp still times a 10006 wait.
- Each body's ``time`` (server ms) times the open-candle cut.

Perpetual data (issue 17), linear only (bybit-exchange.github.io/docs/v5/market/mark-kline and
/history-fund-rate; ccxt bybit.py fetch_ohlcv ``price="mark"`` and fetch_funding_rate_history):

- ``GET /v5/market/mark-price-kline?category=linear&symbol=&interval=&start=&end=&limit=``: the
  kline parameters and intervals, ``limit`` [1, 1000] default 200, ``list`` newest first, rows of
  5 strings ``[startTime, open, high, low, close]`` (no volume). Paged like the klines (windows of
  at most ``limit`` candles, backwards); cost 1 in the IP budget (ccxt prices it as the kline).
- ``GET /v5/market/funding/history?category=linear&symbol=&startTime=&endTime=&limit=``:
  ``limit`` [1, 200] default 200; rows ``{symbol, fundingRate, fundingRateTimestamp}`` (ms as a
  string, no mark price), newest first. Time rules of the doc: "passing only startTime returns
  an error; passing only endTime returns 200 records before endTime; passing neither returns the
  latest 200". So the walk sends ``endTime`` alone and goes back: next ``endTime`` = oldest
  timestamp seen - 1, until a page is short (the start of the history) or older than ``start``.
  The funding interval differs by symbol (1, 2, 4 or 8 h): nothing here assumes 8 h.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...timeframes import DAY_MS, timeframe_ms
from .._grid import ceil_open, floor_open
from ..ratelimit import IPBanned, TooManyRequests
from ..symbols import split_symbol
from .base import (MAX_EPOCH_MS, Adapter, BadRequest, MalformedResponse, Request, ServerError, checked_epoch_ms,
                   filter_row, ohlcv_columns, read_ohlcv_fields)

INTERVALS = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60", "2h": "120", "4h": "240",
             "6h": "360", "12h": "720", "1d": "D", "1w": "W", "1M": "M"}
#: a ban after the IP limit lasts at least 10 minutes
BAN_S = 600.0
RATE_LIMIT_CODES = (10006, 10018)
SERVER_CODES = (10000, 10016)


def parse_rows(rows: Any, width: int, where: str) -> dict[str, np.ndarray]:
    """Newest-first rows of decimal strings ``[ts, o, h, l, c, v, ...]`` -> arrays (in the order given)."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: expected a list of rows, got {type(rows).__name__}")
    n = len(rows)
    time = np.empty(n, dtype=np.int64)
    ohlcv = np.empty((n, 5), dtype=np.float64)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < width:
            kind = "a JSON object" if isinstance(row, dict) else f"{row!r:.60}"
            raise MalformedResponse(f"{where}: row {i} is {kind}; expected an array of {width} strings "
                                    "[ts, open, high, low, close, volume, ...]")
        try:
            t = int(row[0]) if isinstance(row[0], (str, int)) and not isinstance(row[0], bool) else None
        except ValueError:
            t = None
        if t is None or not 0 <= t < MAX_EPOCH_MS:
            raise MalformedResponse(f"{where}: row {i} field 0 (start time) is {row[0]!r:.40}; expected epoch "
                                    "milliseconds before 2200")
        time[i] = t
        read_ohlcv_fields(row, i, ohlcv, where)
    return ohlcv_columns(time, ohlcv)


def parse_mark_rows(rows: Any, width: int, where: str) -> dict[str, np.ndarray]:
    """Mark-price rows ``[ts, o, h, l, c, ...]`` (strings) -> arrays with ``volume`` 0 (the mark price
    has no volume), in the order given; ``MalformedResponse`` naming the row and field."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: expected a list of rows, got {type(rows).__name__}")
    padded = []
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) < width:
            kind = "a JSON object" if isinstance(row, dict) else f"{row!r:.60}"
            raise MalformedResponse(f"{where}: row {i} is {kind}; expected an array of {width} strings "
                                    "[ts, open, high, low, close, ...]")
        padded.append(list(row[:5]) + ["0"])
    return parse_rows(padded, 6, where)


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name) if headers is not None else None
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class BybitSpot(Adapter):
    """Bybit v5 spot candles (``category=spot``)."""

    name = "bybit"
    category = "spot"
    default_base_url = "https://api.bybit.com"
    kline_path = "/v5/market/kline"
    kline_max_limit = 1000
    exchange_info_path = "/v5/market/instruments-info"
    time_path = "/v5/market/time"
    weight_header = "X-Bapi-Limit-Status"
    descending = True
    #: 600 requests per 5 s per IP, every request costs 1; no header reports its use
    default_budget = (600, 5.0)
    limiter_options = {"probe": 1.0}
    unlisted_error = (10001, "params error: symbol invalid")
    timeframes = tuple(INTERVALS)

    @property
    def exchange_info_params(self) -> dict[str, Any]:  # type: ignore[override]
        return {"category": self.category, "limit": 1000} if self.category != "spot" else {"category": "spot"}

    def interval(self, timeframe: str) -> str:
        return INTERVALS[super().interval(timeframe)]

    def kline_weight(self, limit: int) -> int:
        return 1

    def window_start(self, timeframe: str, start_ms: int, end_ms: int, limit: int) -> int:
        """First open time of the window ``[.., end_ms]`` of at most ``limit`` candles (>= ``start_ms``)."""
        step = 28 * DAY_MS if timeframe == "1M" else timeframe_ms(timeframe)  # 1M: the shortest month
        last = floor_open(int(end_ms), timeframe)  # the newest candle the window may hold
        return max(int(start_ms), ceil_open(last - (limit - 1) * step, timeframe))

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        start = self.window_start(timeframe, start_ms, end_ms, limit)
        params = {"category": self.category, "symbol": self.symbol_id(symbol), "interval": self.interval(timeframe),
                  "start": start, "end": int(end_ms), "limit": int(limit)}
        return Request(self.kline_path, params, 1)

    def probe_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> Request:
        # one row of [start, end]: whichever row Bybit picks (newest or oldest), it is there iff any is
        params = {"category": self.category, "symbol": self.symbol_id(symbol), "interval": self.interval(timeframe),
                  "start": int(start_ms), "end": int(end_ms), "limit": 1}
        return Request(self.kline_path, params, 1)

    def reply_time(self, payload: Any, headers: Any) -> int | None:
        t = payload.get("time") if isinstance(payload, dict) else None
        if isinstance(t, int) and not isinstance(t, bool) and t > 0:
            return t
        return super().reply_time(payload, headers)

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict):
            raise MalformedResponse(f"{self.name} kline: no 'result' object in the body")
        return parse_rows(result.get("list"), 7, f"{self.name} kline")

    def server_time(self, payload: Any) -> int:
        where = f"{self.name} {self.time_path}"
        if isinstance(payload, dict) and "time" in payload:
            return checked_epoch_ms(payload["time"], f"{where}: field 'time'")
        result = payload.get("result") if isinstance(payload, dict) else None
        seconds = result.get("timeSecond") if isinstance(result, dict) else None
        if isinstance(seconds, str) and seconds.isdigit():
            return checked_epoch_ms(int(seconds) * 1000, f"{where}: field 'result.timeSecond'")
        raise MalformedResponse(f"{where}: no field 'time' or 'result.timeSecond' in {payload!r:.80}")

    def listed(self, info: dict) -> set[str] | None:
        result = info.get("result") if isinstance(info, dict) else None
        if not isinstance(result, dict) or not result.get("list") or result.get("nextPageCursor"):
            return None  # unknown or only one page of many: let the kline endpoint judge
        where = f"{self.name} {self.exchange_info_path}"
        if not isinstance(result["list"], list):
            raise MalformedResponse(f"{where}: field 'result.list' is {type(result['list']).__name__}; "
                                    "expected a list")
        for i, s in enumerate(result["list"]):
            if not isinstance(s, dict) or not isinstance(s.get("symbol"), str):
                raise MalformedResponse(f"{where}: result.list[{i}] is {s!r:.60}; expected an object with a "
                                        "'symbol' string")
        return {s["symbol"] for s in result["list"]}

    def symbol_filters(self, info: dict) -> dict[str, dict[str, float]]:
        """instruments-info ``priceFilter.tickSize`` and ``lotSizeFilter`` (spot: ``basePrecision``,
        ``minOrderQty``, ``maxOrderQty``, ``minOrderAmt``; linear: ``qtyStep``, ..., ``minNotionalValue``)."""
        result = info.get("result") if isinstance(info, dict) else None
        out = {}
        for item in (result.get("list") if isinstance(result, dict) else None) or []:
            if not isinstance(item, dict) or item.get("status", "Trading") != "Trading":
                continue
            price, lot = item.get("priceFilter") or {}, item.get("lotSizeFilter") or {}
            base, quote = item.get("baseCoin"), item.get("quoteCoin")
            if not (isinstance(base, str) and isinstance(quote, str)):
                continue
            settle = item.get("settleCoin")
            name = f"{base}/{quote}" + (f":{settle}" if self.category != "spot" and settle else "")
            out[self.unified(name)] = filter_row(
                price.get("tickSize"), lot.get("qtyStep", lot.get("basePrecision")), lot.get("minOrderQty"),
                lot.get("maxOrderQty"), lot.get("minNotionalValue", lot.get("minOrderAmt")))
        return out

    def used_weight(self, headers: Any) -> int | None:
        """None: Bybit sends no header measuring the IP budget (``X-Bapi-Limit*`` are per UID and endpoint)."""
        return None

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        code = payload.get("retCode") if isinstance(payload, dict) else None
        msg = str(payload.get("retMsg", "")) if isinstance(payload, dict) else ""
        kw = dict(exchange=self.name, status=status, code=code)
        if status == 403:
            text = str(payload) if payload is not None else ""  # the body is plain text, not JSON
            if "too frequent" in (msg + " " + text).lower():
                return IPBanned(f"{self.name}: HTTP 403 access too frequent (IP limit broken; banned for at least "
                                f"{BAN_S / 60:.0f} min)", retry_after=BAN_S, **kw)
            return BadRequest(f"{self.name}: HTTP 403 Forbidden" + (f" ({msg})" if msg else "") +
                              "; Bybit documents three causes: the IP limit (600 requests per 5 s) broken, "
                              "a GET request with a body, or a U.S. IP address (not served)", **kw)
        if status == 429 or code in RATE_LIMIT_CODES:
            reset = _int_header(headers, "X-Bapi-Limit-Reset-Timestamp")
            now = payload.get("time") if isinstance(payload, dict) else None
            retry = None
            if reset is not None and isinstance(now, (int, float)):
                retry = max(0.0, (reset - now) / 1000.0)
            return TooManyRequests(f"rate limit hit on {self.name}: retCode {code} {msg}".rstrip(),
                                   retry_after=retry, **kw)
        if status >= 500:
            return ServerError(f"{self.name}: HTTP {status}" + (f", retCode {code}: {msg}" if code else ""), **kw)
        if status >= 400:
            return BadRequest(f"{self.name}: HTTP {status}" + (f", retCode {code}: {msg}" if code else ""), **kw)
        if code is None:  # not JSON or not an object: the parser reports it (and it is retried)
            return MalformedResponse(f"{self.name}: body without retCode: {str(payload)[:60]!r}") \
                if isinstance(payload, dict) else None
        if code == 0:
            return None
        text = f"{self.name}: retCode {code}: {msg}"
        if code in SERVER_CODES:
            return ServerError(text, **kw)
        return BadRequest(text, **kw)


class BybitLinear(BybitSpot):
    """Bybit v5 linear perpetuals (``category=linear``): ``BTC/USDT:USDT`` (id ``BTCUSDT``; ``BTC/USDT``
    and ``BTCUSDT`` mean the same) and USDC perpetuals ``ETH/USDC:USDC`` (id ``ETHPERP``)."""

    name = "bybit_linear"
    category = "linear"
    mark_path = "/v5/market/mark-price-kline"
    funding_path = "/v5/market/funding/history"
    funding_page_limit = 200
    funding_descending = True

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        req = super().klines_request(symbol, timeframe, start_ms, end_ms, limit)
        return Request(self.mark_path, req.params, 1) if self.price == "mark" else req

    def probe_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> Request:
        req = super().probe_request(symbol, timeframe, start_ms, end_ms)
        return Request(self.mark_path, req.params, 1) if self.price == "mark" else req

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        if self.price != "mark":
            return super().parse_klines(payload)
        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict):
            raise MalformedResponse(f"{self.name} mark-price-kline: no 'result' object in the body")
        return parse_mark_rows(result.get("list"), 5, f"{self.name} mark-price-kline")

    def funding_request(self, symbol: str, start_ms: int, end_ms: int, limit: int = 200) -> Request:
        # endTime alone: "the 200 records before endTime" (newest first); startTime alone is an error
        params = {"category": self.category, "symbol": self.symbol_id(symbol), "endTime": int(end_ms),
                  "limit": int(limit)}
        return Request(self.funding_path, params, 1)

    def parse_funding(self, payload: Any) -> dict[str, np.ndarray]:
        from .base import funding_arrays

        result = payload.get("result") if isinstance(payload, dict) else None
        if not isinstance(result, dict):
            raise MalformedResponse(f"{self.name} funding/history: no 'result' object in the body")
        return funding_arrays(result.get("list"), f"{self.name} funding/history", "fundingRateTimestamp",
                              ("fundingRate",))

    def symbol_id(self, symbol: str) -> str:
        base, quote, settle = split_symbol(self.unified(symbol))
        return base + "PERP" if settle == "USDC" else base + quote
