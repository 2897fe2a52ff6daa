"""Any exchange ccxt supports, behind the native adapter contract (optional extra ``nbtrade[ccxt]``).

``fetch_ohlcv("ccxt:kraken", "BTC/USD", "1h", ...)`` (reported and stored as exchange
``ccxt-kraken``) pages through ccxt's async
``fetch_ohlcv`` (forward from ``since``) and hands each page to the same fetcher
as the native adapters: validation, the open-candle cut (``end`` capped at the
server clock from ccxt's ``fetch_time`` minus the safety margin), gap and
listing reports, resume and the store. Native adapters stay the default for
Binance, Bybit and OKX.

- ccxt is imported lazily, so nbtrade works without it; a missing ccxt, an
  exchange ccxt does not know and one without OHLCV (``has['fetchOHLCV']``) are
  clear errors before any request.
- the open-candle cut uses each reply's ``Date`` header, read from ccxt's
  ``last_response_headers`` right after the call returns.
- ccxt's errors map onto nbtrade's family: ``RateLimitExceeded`` / ``DDoSProtection``
  -> :class:`~nbtrade.data.ratelimit.TooManyRequests`; ``BadSymbol``, ``BadRequest``,
  ``NotSupported``, ``AuthenticationError`` / ``PermissionDenied`` -> :class:`BadRequest`;
  other ``NetworkError`` and ``ExchangeError`` -> :class:`ServerError` (retried, bounded).
- ccxt throttles by its own ``rateLimit`` (ms per request unit, ``enableRateLimit``);
  the fetcher's limiter is set to the same pace so both agree.
- ``base_url`` replaces the scheme and host of every API URL ccxt knows for the
  exchange (tests point ccxt at the mock exchange on 127.0.0.1).
- Not every exchange honours an end time, so each page is clipped to the requested
  range here, and a short page does not end the walk (exchanges cap ``limit``
  differently): the walk ends on an empty page or at ``end``.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

import numpy as np

from ..ratelimit import TooManyRequests
from .base import (FILTER_COLUMNS, MAX_EPOCH_MS, Adapter, BadRequest, MalformedResponse, Request, ServerError,
                   checked_epoch_ms, filter_row, ohlcv_columns)

#: the ccxt version the extra pins (pyproject ``[ccxt]``) and the tests run against
CCXT_VERSION = "4.5.90"
#: default page size: ccxt's own default for most exchanges is 500 or less
PAGE_LIMIT = 500


def import_ccxt() -> Any:
    """``ccxt.async_support``, or an ImportError saying how to install it."""
    try:
        import ccxt.async_support as ccxt_async
    except ImportError:
        raise ImportError("the ccxt adapter needs ccxt: pip install 'nbtrade[ccxt]' "
                          f"(or pip install ccxt=={CCXT_VERSION})") from None
    return ccxt_async


def _repoint(value: Any, base_url: str) -> Any:
    """Every URL string in ccxt's ``urls['api']`` with its scheme and host replaced by ``base_url``."""
    if isinstance(value, str):
        return re.sub(r"^https?://[^/]+", base_url.rstrip("/"), value)
    if isinstance(value, dict):
        return {k: _repoint(v, base_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_repoint(v, base_url) for v in value]
    return value


def map_ccxt_error(exc: Exception, exchange: str) -> Exception:
    """The nbtrade error for a ccxt exception (the exchange's message kept)."""
    import ccxt

    text = f"{exchange}: {type(exc).__name__}: {exc}"
    if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
        return TooManyRequests(text, exchange=exchange)
    if isinstance(exc, (ccxt.BadSymbol, ccxt.BadRequest, ccxt.NotSupported, ccxt.AuthenticationError,
                        ccxt.PermissionDenied, ccxt.ArgumentsRequired)):
        return BadRequest(text, exchange=exchange)
    if isinstance(exc, ccxt.BaseError):  # NetworkError, ExchangeError and the rest: retried, bounded
        return ServerError(text, exchange=exchange)
    return exc


class CcxtConnection:
    """One ccxt exchange instance in the running event loop; the fetcher's ``_Client`` owns it."""

    def __init__(self, adapter: "CcxtAdapter", base_url: str | None) -> None:
        ccxt_async = import_ccxt()
        config = {"enableRateLimit": True, **adapter.config}
        self.adapter = adapter
        self.exchange = getattr(ccxt_async, adapter.exchange_id)(config)
        if base_url:
            self.exchange.urls["api"] = _repoint(self.exchange.urls["api"], base_url)

    async def execute(self, req: Request) -> tuple[Any, dict[str, str]]:
        """Run one request (``req.path`` names the call); returns its payload and the reply's headers."""
        ex = self.exchange
        try:
            if req.path == "time":
                if ex.has.get("fetchTime"):
                    return await ex.fetch_time(), self._headers()
                return ex.milliseconds(), {}
            if req.path == "markets":
                await ex.load_markets()
                return {"symbols": sorted(ex.symbols or []), "filters": self._filters()}, {}
            p = req.params
            rows = await ex.fetch_ohlcv(p["symbol"], p["timeframe"], p["since"], p["limit"])
            # read at once (no await in between): the Date of this reply times the open-candle cut
            headers = self._headers()
        except Exception as exc:  # noqa: BLE001 - every ccxt error maps onto nbtrade's family
            mapped = map_ccxt_error(exc, self.adapter.name)
            if mapped is exc:
                raise
            raise mapped from exc
        if not isinstance(rows, list):
            raise MalformedResponse(f"{self.adapter.name} fetch_ohlcv: expected a list of rows, got "
                                    f"{type(rows).__name__}")
        # not every exchange honours an end time: clip to the requested range here (malformed
        # rows stay, for the parser to report)
        rows = [r for r in rows if not (isinstance(r, list) and r and isinstance(r[0], int) and r[0] > p["end"])]
        return rows, headers

    def _filters(self) -> dict[str, dict[str, float]]:
        """Per-symbol filters from ccxt's markets (``precision`` as tick sizes, ``limits``)."""
        import ccxt

        ex = self.exchange
        ticks = ex.precisionMode == ccxt.TICK_SIZE

        def size(p: Any) -> Any:
            if p is None:
                return None
            return p if ticks else 10.0 ** -float(p)

        out = {}
        for symbol, m in (ex.markets or {}).items():
            prec, lim = m.get("precision") or {}, m.get("limits") or {}
            out[symbol] = filter_row(size(prec.get("price")), size(prec.get("amount")),
                                     (lim.get("amount") or {}).get("min"), (lim.get("amount") or {}).get("max"),
                                     (lim.get("cost") or {}).get("min"))
        return {k: {c: (None if v != v else v) for c, v in row.items()} for k, row in out.items()}  # JSON: NaN -> null

    def _headers(self) -> dict[str, str]:
        return dict(self.exchange.last_response_headers or {})

    async def close(self) -> None:
        await self.exchange.close()


class CcxtAdapter(Adapter):
    """Adapter for ``ccxt:<exchange id>`` (e.g. ``ccxt:kraken``, named ``ccxt-kraken``); ``config`` goes to the
    ccxt constructor (``{"options": {...}}``, keys are not needed for candles)."""

    descending = False
    short_page_ends: ClassVar[bool] = False
    time_path = "time"
    exchange_info_path = "markets"
    unlisted_error = (None, "not in ccxt's markets for the exchange")  # type: ignore[assignment]
    limiter_options = {"probe": 1.0}

    def __init__(self, exchange_id: str, config: dict[str, Any] | None = None) -> None:
        ccxt_async = import_ccxt()
        exchange_id = str(exchange_id).lower()
        if exchange_id not in ccxt_async.exchanges:
            raise ValueError(f"ccxt has no exchange {exchange_id!r} (ccxt {ccxt_async.__version__}); the ids are "
                             "in ccxt.exchanges, e.g. 'kraken', 'coinbase', 'kucoin'")
        self.exchange_id = exchange_id
        self.config = dict(config or {})
        probe = getattr(ccxt_async, exchange_id)(self.config)  # no network: capabilities only
        if not probe.has.get("fetchOHLCV"):
            raise ValueError(f"ccxt exchange {exchange_id!r} has no OHLCV endpoint (has['fetchOHLCV'] is "
                             f"{probe.has.get('fetchOHLCV')!r}); pick another exchange")
        self.name = f"ccxt-{exchange_id}"  # type: ignore[misc]  (a valid store exchange name)
        self.default_base_url = ""  # type: ignore[misc]
        self.timeframes = tuple(probe.timeframes or ())  # type: ignore[misc]
        rate_ms = float(probe.rateLimit or 100.0)
        # ccxt paces one request unit per ``rateLimit`` ms; the limiter uses the same pace per second
        self.default_budget = (max(1, int(1000.0 / rate_ms)), 1.0)  # type: ignore[misc]

    def connect(self, base_url: str | None) -> CcxtConnection:
        """The ccxt instance for one fetch (in the running event loop)."""
        return CcxtConnection(self, base_url)

    def unified(self, symbol: str) -> str:
        from ..symbols import unified_symbol

        return unified_symbol(symbol, self.name, strict=True)

    def symbol_id(self, symbol: str) -> str:
        return self.unified(symbol)  # ccxt takes unified symbols

    def kline_weight(self, limit: int) -> int:
        return 1

    def page_limit(self) -> int:
        return PAGE_LIMIT

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int, limit: int) -> Request:
        params = {"symbol": self.unified(symbol), "timeframe": self.interval(timeframe), "since": int(start_ms),
                  "end": int(end_ms), "limit": int(limit)}
        return Request("ohlcv", params, 1)

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        """ccxt rows ``[ms, open, high, low, close, volume]`` -> arrays (None volumes are NaN: flagged)."""
        if not isinstance(payload, list):
            raise MalformedResponse(f"{self.name} fetch_ohlcv: expected a list of rows, got {type(payload).__name__}")
        n = len(payload)
        time = np.empty(n, dtype=np.int64)
        ohlcv = np.empty((n, 5), dtype=np.float64)
        for i, row in enumerate(payload):
            if not isinstance(row, list) or len(row) < 6:
                raise MalformedResponse(f"{self.name} fetch_ohlcv: row {i} is {row!r:.60}; expected "
                                        "[ms, open, high, low, close, volume]")
            t = row[0]
            if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < MAX_EPOCH_MS:
                raise MalformedResponse(f"{self.name} fetch_ohlcv: row {i} timestamp is {t!r:.40}")
            time[i] = t
            try:
                ohlcv[i] = [np.nan if x is None else float(x) for x in row[1:6]]
            except (TypeError, ValueError):
                raise MalformedResponse(f"{self.name} fetch_ohlcv: row {i} has a non-numeric price or volume: "
                                        f"{row!r:.80}") from None
        return ohlcv_columns(time, ohlcv)

    def server_time(self, payload: Any) -> int:
        return checked_epoch_ms(payload, f"{self.name} fetch_time")


    def listed(self, info: dict) -> set[str] | None:
        symbols = info.get("symbols") if isinstance(info, dict) else None
        return set(symbols) if isinstance(symbols, list) and symbols else None

    def symbol_filters(self, info: dict) -> dict[str, dict[str, float]]:
        rows = info.get("filters") if isinstance(info, dict) else None
        return {s: filter_row(*(r.get(c) for c in FILTER_COLUMNS)) for s, r in (rows or {}).items()}

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        return None  # ccxt raised already (mapped in CcxtConnection.execute)
