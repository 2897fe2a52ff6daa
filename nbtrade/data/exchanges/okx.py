"""OKX v5 REST: ``/api/v5/market/history-candles``, ``/api/v5/public/instruments``, ``/api/v5/public/time``.

Facts (../shared/EXCHANGES.md; okx.com/docs-v5 "Get candlesticks history"):

- ``GET /api/v5/market/history-candles?instId=BTC-USDT&bar=1m&after=<ts>&limit=100``:
  ``after`` returns records *older* than ``ts`` (exclusive), newest first, so the
  adapter pages backwards (``descending``) with ``after = end + 1``.
- ``bar``: ``1m 3m 5m 15m 30m 1H 2H 4H``; from 6 hours up the plain names open on
  UTC+8, so ``6Hutc 12Hutc 1Dutc 1Wutc 1Mutc`` are requested (candles open on UTC
  like every other exchange here). No 8h; 3d is left out (its grid is not documented).
- ``limit``: the current doc allows up to 300 (default 100); older docs and clients
  say 100, so 100 is requested.
- Body ``{code: "0", msg: "", data: [...]}``; rows are all strings
  ``[ts, o, h, l, c, vol, volCcy, volCcyQuote, confirm]``; ``confirm == "0"`` marks
  the still-open candle: parsed with ``closed=False`` (the page length still counts it,
  EXCHANGES.md "OKX confirm") and dropped by the fetcher.
- Limit: 20 requests per 2 s per IP; breaking it gives code 50011 (HTTP 429) ->
  :class:`TooManyRequests`. OKX sends no used-budget header, so the limiter trusts
  its own count (``probe=1.0``). 51001 (instrument does not exist) and 51000
  (parameter error, e.g. ``bar``) -> :class:`BadRequest`; 50001/50004/50013/50026
  (service busy, timeout) -> retried.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ratelimit import TooManyRequests
from ..symbols import split_symbol
from .base import Adapter, BadRequest, MalformedResponse, Request, ServerError, checked_epoch_ms, filter_row
from .bybit import parse_rows

BARS = {"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "1H", "2h": "2H", "4h": "4H",
        "6h": "6Hutc", "12h": "12Hutc", "1d": "1Dutc", "1w": "1Wutc", "1M": "1Mutc"}
RATE_LIMIT_CODES = (50011, 50061)
SERVER_CODES = (50001, 50004, 50013, 50026)
#: requested page size (the doc's current maximum is 300)
PAGE_LIMIT = 100


class OKXSpot(Adapter):
    """OKX spot candles from the history endpoint (years of data, closed candles)."""

    name = "okx"
    default_base_url = "https://www.okx.com"
    kline_path = "/api/v5/market/history-candles"
    kline_max_limit = PAGE_LIMIT
    exchange_info_path = "/api/v5/public/instruments"
    exchange_info_params = {"instType": "SPOT"}
    time_path = "/api/v5/public/time"
    descending = True
    #: 20 requests per 2 s per IP
    default_budget = (20, 2.0)
    limiter_options = {"probe": 1.0}
    unlisted_error = (51001, "Instrument ID does not exist")
    timeframes = tuple(BARS)

    def symbol_id(self, symbol: str) -> str:
        """``"BTC/USDT"`` (or ``BTC-USDT``, ``BTCUSDT``) -> ``"BTC-USDT"`` (spot only)."""
        base, quote, _ = split_symbol(self.unified(symbol))
        return f"{base}-{quote}"

    def interval(self, timeframe: str) -> str:
        return BARS[super().interval(timeframe)]

    def kline_weight(self, limit: int) -> int:
        return 1

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        # ``after`` is exclusive: the newest ``limit`` candles with ts <= end_ms
        params = {"instId": self.symbol_id(symbol), "bar": self.interval(timeframe), "after": int(end_ms) + 1,
                  "limit": int(limit)}
        return Request(self.kline_path, params, 1)

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        rows = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(rows, list):
            raise MalformedResponse(f"{self.name} candles: no 'data' list in the body")
        bad = [r for r in rows if not isinstance(r, list) or len(r) < 9]
        if bad:
            raise MalformedResponse(f"{self.name} candles: malformed row {bad[0]!r:.80}")
        out = parse_rows(rows, 9, f"{self.name} candles")
        # confirm "0": the candle is still open. The row stays in the page (paging counts raw
        # rows: a page of 100 with one open row is a full page) and the fetcher drops it.
        out["closed"] = np.array([r[8] != "0" for r in rows], dtype=bool)
        return out

    def server_time(self, payload: Any) -> int:
        try:
            value = payload["data"][0]["ts"]
        except (KeyError, IndexError, TypeError):
            raise MalformedResponse(f"{self.name} {self.time_path}: no field 'data[0].ts' in {payload!r:.80}") from None
        return checked_epoch_ms(value, f"{self.name} {self.time_path}: field 'data[0].ts'")

    def listed(self, info: dict) -> set[str] | None:
        data = info.get("data") if isinstance(info, dict) else None
        if not data:
            return None
        where = f"{self.name} {self.exchange_info_path}"
        if not isinstance(data, list):
            raise MalformedResponse(f"{where}: field 'data' is {type(data).__name__}; expected a list")
        for i, s in enumerate(data):
            if not isinstance(s, dict) or not isinstance(s.get("instId"), str):
                raise MalformedResponse(f"{where}: data[{i}] is {s!r:.60}; expected an object with an 'instId' string")
        return {s["instId"] for s in data}

    def symbol_filters(self, info: dict) -> dict[str, dict[str, float]]:
        """instruments ``tickSz``, ``lotSz``, ``minSz``, ``maxMktSz`` (OKX states no minimum notional: NaN)."""
        out = {}
        for item in (info.get("data") if isinstance(info, dict) else None) or []:
            if not isinstance(item, dict) or item.get("state", "live") != "live" or "instId" not in item:
                continue
            out[self.unified(item["instId"])] = filter_row(item.get("tickSz"), item.get("lotSz"), item.get("minSz"),
                                                           item.get("maxMktSz"), None)
        return out

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        raw = payload.get("code") if isinstance(payload, dict) else None
        try:
            code = int(raw) if raw is not None else None
        except (TypeError, ValueError):
            code = None
        msg = str(payload.get("msg", "")) if isinstance(payload, dict) else ""
        kw = dict(exchange=self.name, status=status, code=code)
        if status == 429 or code in RATE_LIMIT_CODES:
            return TooManyRequests(f"rate limit hit on {self.name}: code {code} {msg}".rstrip(), retry_after=None,
                                   **kw)
        text = f"{self.name}: HTTP {status}" + (f", code {code}: {msg}" if code is not None else "")
        if code in SERVER_CODES or status >= 500:
            return ServerError(text, **kw)
        if status >= 400 or (code is not None and code != 0):
            return BadRequest(text, **kw)
        if code is None:  # not JSON or not an object: the parser reports it (and it is retried)
            return MalformedResponse(f"{self.name}: body without code: {str(payload)[:60]!r}") \
                if isinstance(payload, dict) else None
        return None


#: OKX perpetual swaps (issue 17). Facts used, with their sources (okx.com/docs-v5/en, "Public data"
#: pages, read in the rosssaunders/coincise mirror; ccxt okx.py ``api`` costs, rateLimit 100 ms):
#: - instruments: ``instType=SWAP``, ids ``BTC-USDT-SWAP`` (linear: settled in the quote currency);
#:   candles of the swap come from the same ``history-candles`` endpoint with the swap's instId.
#: - ``GET /api/v5/market/history-mark-price-candles?instId=&bar=&after=&before=&limit=`` ("from recent
#:   years"): rows ``[ts, o, h, l, c, confirm]`` newest first, ``after`` = records earlier than ``ts``,
#:   ``before`` = newer (exclusive), ``limit`` max 100 (default 100), bars as the candles (UTC ones:
#:   ``1Dutc``...). The doc gives 20 requests per 2 s per IP; ccxt prices it 2 (10 per 2 s): charged
#:   2 here, the stricter of the two. ``mark-price-candles`` (20 per 2 s) returns "the latest 1,440
#:   data entries" only, so the history endpoint serves every page (one cursor rule, whole range).
#: - ``GET /api/v5/public/funding-rate-history?instId=&before=&after=&limit=``: "data up to three
#:   months" back; rows ``{instType, instId, formulaType, fundingRate (predicted), realizedRate
#:   (actual), fundingTime, method}`` newest first; ``after`` = earlier than ``fundingTime``
#:   (exclusive). 10 requests per 2 s, rule "IP + Instrument ID": charged 2 of the 20-per-2-s IP
#:   budget, so all instruments together stay within one instrument's limit. ``limit``: the current
#:   doc says max and default 400, older docs and clients 100; 100 is requested, because a server
#:   capping at 100 would make a 400-row request look like a short page and end the walk early.
#:   ``realizedRate`` (what was settled) is the rate when present, else ``fundingRate``. The funding
#:   interval may drop from 8 h to 6, 4, 2 or 1 h for volatile swaps: nothing assumes 8 h.
MARK_HISTORY_PATH = "/api/v5/market/history-mark-price-candles"
MARK_RECENT_PATH = "/api/v5/market/mark-price-candles"
FUNDING_PATH = "/api/v5/public/funding-rate-history"
#: weight in the 20-per-2-s IP budget of the mark-candle and funding requests (10 per 2 s each)
HISTORY_WEIGHT = 2


class OKXSwap(OKXSpot):
    """OKX linear perpetual swaps (``BTC/USDT:USDT``, id ``BTC-USDT-SWAP``): candles, mark-price
    candles and funding-rate history."""

    name = "okx_swap"
    exchange_info_params = {"instType": "SWAP"}
    mark_path = MARK_HISTORY_PATH
    funding_page_limit = PAGE_LIMIT
    funding_descending = True

    def symbol_id(self, symbol: str) -> str:
        """``"BTC/USDT:USDT"`` (or ``BTC/USDT``, ``BTC-USDT-SWAP``) -> ``"BTC-USDT-SWAP"``."""
        base, quote, _ = split_symbol(self.unified(symbol))
        return f"{base}-{quote}-SWAP"

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        req = super().klines_request(symbol, timeframe, start_ms, end_ms, limit)
        return Request(MARK_HISTORY_PATH, req.params, HISTORY_WEIGHT) if self.price == "mark" else req

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        if self.price != "mark":
            return super().parse_klines(payload)
        from .bybit import parse_mark_rows

        rows = payload.get("data") if isinstance(payload, dict) else None
        where = f"{self.name} history-mark-price-candles"
        out = parse_mark_rows(rows, 6, where)
        out["closed"] = np.array([r[5] != "0" for r in rows], dtype=bool)  # confirm "0": still open
        return out

    def funding_request(self, symbol: str, start_ms: int, end_ms: int, limit: int = PAGE_LIMIT) -> Request:
        # ``after`` is exclusive: the newest ``limit`` fundings with fundingTime <= end_ms
        params = {"instId": self.symbol_id(symbol), "after": int(end_ms) + 1, "limit": int(limit)}
        return Request(FUNDING_PATH, params, HISTORY_WEIGHT)

    def parse_funding(self, payload: Any) -> dict[str, np.ndarray]:
        from .base import funding_arrays

        rows = payload.get("data") if isinstance(payload, dict) else None
        return funding_arrays(rows, f"{self.name} funding-rate-history", "fundingTime",
                              ("realizedRate", "fundingRate"))
