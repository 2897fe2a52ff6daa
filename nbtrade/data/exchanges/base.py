"""The exchange adapter contract: what the fetcher needs to know about one REST API.

An adapter is a small stateless object. It turns unified symbols (``BTC/USDT``)
and timeframes (``1m``) into the exchange's ids, builds the request for one page
of candles (path, params, weight), parses a page into arrays, reads rate-limit
facts from exchange info, and classifies errors. The fetcher owns the network,
the cursor, retries and validation, so adding Bybit or OKX means writing one
adapter:

- Binance pages forward: ``klines_request(start, end)`` returns the oldest
  ``limit`` rows from ``start``; the next page starts after the last row.
- An exchange that pages backwards (OKX ``after``, Bybit's newest-first lists)
  sets ``descending = True``: ``klines_request(start, end)`` must return the
  newest ``limit`` rows up to ``end`` (rows before ``start`` are ignored), and
  the next page ends before the oldest row seen. Rows may come in any order; the
  fetcher sorts, validates and emits pages in time order either way.
- ``error()`` maps the exchange's failures (Bybit retCode 10006, OKX 50011, HTTP
  403...) onto :class:`~nbtrade.data.ratelimit.RateLimitError`, :class:`BadRequest`
  or :class:`ServerError`; ``used_weight()`` reads a used-budget header if there is one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ...timeframes import TIMEFRAMES
from ..symbols import split_symbol, unified_symbol



class ExchangeError(Exception):
    """An exchange request failed; names the exchange, symbol and timeframe when known."""

    def __init__(self, message: str, *, exchange: str | None = None, status: int | None = None,
                 code: int | None = None, symbol: str | None = None, timeframe: str | None = None) -> None:
        super().__init__(message)
        self.exchange = exchange
        self.status = status
        self.code = code
        self.symbol = symbol
        self.timeframe = timeframe


class BadRequest(ExchangeError, ValueError):
    """4xx client error (bad symbol, bad interval, missing parameter): never retried."""


class ServerError(ExchangeError):
    """5xx, network failure or malformed body that persisted after the allowed retries."""


class MalformedResponse(ExchangeError):
    """A body that is not valid JSON or not the documented layout (retried)."""


#: epoch-ms bounds a server clock or candle open time must lie in (2009-01-03, the first
#: bitcoin block, to 2200-01-01): anything outside is a malformed reply, not a time
MIN_EPOCH_MS, MAX_EPOCH_MS = 1_230_940_800_000, 7_258_118_400_000


def checked_epoch_ms(value: Any, where: str) -> int:
    """``value`` as epoch ms, or :class:`MalformedResponse` naming ``where`` (endpoint and field)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedResponse(f"{where}: expected epoch milliseconds (an integer), got {value!r:.60}")
    if not MIN_EPOCH_MS <= value < MAX_EPOCH_MS:
        raise MalformedResponse(f"{where}: {value} ms is not a plausible time (expected 2009..2200 in epoch ms)")
    return value


#: columns of an exchange filter table (floats; NaN where the exchange has no such rule)
FILTER_COLUMNS = ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")


#: the five price and volume fields of a candle row, after its time
OHLCV_FIELDS = ("open", "high", "low", "close", "volume")


def read_ohlcv_fields(row: list, i: int, out: np.ndarray, where: str) -> None:
    """Fields 1..5 of kline row ``i`` (decimal strings or numbers) into ``out[i]``; ``MalformedResponse``
    naming the row and field when one is not a number."""
    for j in range(1, 6):
        try:
            out[i, j - 1] = float(row[j])
        except (TypeError, ValueError, OverflowError):
            raise MalformedResponse(f"{where}: row {i} field {j} ({OHLCV_FIELDS[j - 1]}) is {row[j]!r:.40}; "
                                    "expected a decimal string") from None


def ohlcv_columns(time: np.ndarray, ohlcv: np.ndarray) -> dict[str, np.ndarray]:
    """``{"time": ..., "open": ..., ...}`` with contiguous columns of an ``(n, 5)`` OHLCV block."""
    return {"time": time, **{name: ohlcv[:, k].copy() for k, name in enumerate(OHLCV_FIELDS)}}


def filter_row(tick: Any = None, step: Any = None, min_qty: Any = None, max_qty: Any = None,
               min_notional: Any = None) -> dict[str, float]:
    """One symbol's filters as floats; missing, unparsable or non-positive values (0 disables a rule on
    Binance) are NaN."""
    out = {}
    for name, value in zip(FILTER_COLUMNS, (tick, step, min_qty, max_qty, min_notional)):
        try:
            x = float(value) if value is not None and not isinstance(value, bool) else float("nan")
        except (TypeError, ValueError):
            x = float("nan")
        out[name] = x if x > 0 else float("nan")
    return out


class RawBody(str):
    """A reply body that is not JSON, handed to :meth:`Adapter.error` as ``payload`` (its text)."""


@dataclass(frozen=True)
class Request:
    """One HTTP GET: ``path`` relative to the base URL, query ``params`` and its ``weight``."""

    path: str
    params: dict[str, Any]
    weight: int
    bucket: str = "weight"  # which limiter pays for it


def best_page_limit(tiers: list[tuple[int, int]]) -> int:
    """Page size with the most candles per weight from ``[(max_limit_of_tier, weight), ...]``.

    Ties go to the larger page (fewer requests).

    >>> best_page_limit([(99, 1), (499, 2), (1000, 5), (1500, 10)])
    499
    """
    best = max(tiers, key=lambda t: (t[0] / t[1], t[0]))
    return best[0]


def unified_to_id(symbol: str) -> str:
    """``"BTC/USDT"`` (or ``"BTC/USDT:USDT"``, ``"BTCUSDT"``, ``"btc-usdt"``) -> ``"BTCUSDT"`` (Binance-style id)."""
    base, quote, _ = split_symbol(unified_symbol(symbol))
    return base + quote


def http_date_ms(headers: Any) -> int | None:
    """The reply's ``Date`` header as epoch ms (whole seconds: a lower bound of the server clock), or None."""
    value = headers.get("Date") if headers is not None else None
    if not value:
        return None
    from email.utils import parsedate_to_datetime

    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:
        return None
    return int(stamp.timestamp()) * 1000


class Adapter:
    """Base adapter. Subclasses fill in the class attributes and the parse/build methods."""

    name: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    kline_path: ClassVar[str] = ""
    kline_max_limit: ClassVar[int] = 1000
    exchange_info_path: ClassVar[str] = ""
    #: query of the exchange-info request (Bybit ``category``, OKX ``instType``)
    exchange_info_params: ClassVar[dict[str, Any]] = {}
    exchange_info_weight: ClassVar[int] = 1
    #: (code, text) reported when a symbol is missing from exchange info
    unlisted_error: ClassVar[tuple[int, str]] = (-1121, "Invalid symbol")
    #: keyword arguments of the shared :class:`~nbtrade.data.ratelimit.WeightLimiter`
    #: (``probe=1.0`` when the exchange sends no used-budget header to learn from)
    limiter_options: ClassVar[dict[str, Any]] = {}
    time_path: ClassVar[str] = ""
    weight_header: ClassVar[str] = ""
    descending: ClassVar[bool] = False
    #: default budget when exchange info says nothing: (limit, window seconds)
    default_budget: ClassVar[tuple[int, float]] = (1200, 60.0)
    timeframes: ClassVar[tuple[str, ...]] = TIMEFRAMES

    # -- perpetual data (issue 17): mark-price candles and funding-rate history ----------------
    #: which price the kline methods serve: ``"last"`` (trade prices) or ``"mark"`` (:meth:`for_mark`)
    price: str = "last"
    #: the endpoint serving mark-price candles ("" when the exchange has none)
    mark_path: ClassVar[str] = ""
    #: funding rows per page (0: no funding endpoint); ``funding_descending``: pages go newest
    #: first (walk back with :meth:`funding_request` ``end_ms`` = oldest seen - 1), else oldest first
    funding_page_limit: ClassVar[int] = 0
    funding_descending: ClassVar[bool] = False

    def for_mark(self) -> "Adapter":
        """A copy of this adapter whose kline requests and parsing serve mark-price candles (same
        grid, paging and cursor rules as the candles; rows parse to ``volume`` 0)."""
        if not self.mark_path:
            raise ValueError(f"{self.name} serves no mark-price candles; use a perpetual exchange "
                             "(binance_futures, bybit_linear, okx_swap)")
        import copy

        out = copy.copy(self)
        out.price = "mark"
        return out

    def funding_request(self, symbol: str, start_ms: int, end_ms: int, limit: int) -> Request:
        """Request for funding rows with funding time in ``[start_ms, end_ms]``: ascending adapters
        return the oldest ``limit`` from ``start_ms``, descending ones the newest ``limit`` up to ``end_ms``."""
        raise ValueError(f"{self.name} has no funding-rate history; use a perpetual exchange "
                         "(binance_futures, bybit_linear, okx_swap)")

    def parse_funding(self, payload: Any) -> dict[str, np.ndarray]:
        """Arrays ``time`` (int64 ms), ``rate`` and ``mark_price`` (float64, NaN when not given), in reply order."""
        raise NotImplementedError

    def unified(self, symbol: str) -> str:
        """The unified symbol of any spelling on this exchange (:func:`nbtrade.data.symbols.unified_symbol`)."""
        return unified_symbol(symbol, self.name)

    def symbol_id(self, symbol: str) -> str:
        """The exchange's id of any spelling: ``BTC/USDT``, ``BTCUSDT``, ``btc-usdt`` -> ``BTCUSDT``."""
        base, quote, _ = split_symbol(self.unified(symbol))
        return base + quote

    def interval(self, timeframe: str) -> str:
        if timeframe not in self.timeframes:
            raise ValueError(f"timeframe {timeframe!r} is not supported by {self.name}; "
                             f"expected one of {', '.join(self.timeframes)}")
        return timeframe

    def page_limit(self) -> int:
        return self.kline_max_limit

    def kline_weight(self, limit: int) -> int:
        raise NotImplementedError

    def window_start(self, timeframe: str, start_ms: int, end_ms: int, limit: int) -> int | None:
        """Lowest open time a descending page request covers, when the adapter bounds it itself.

        None (the default): the request spans ``[start_ms, end_ms]`` and returns its newest
        ``limit`` rows, so a short page means the range is done. An adapter that narrows
        each request to a window holding at most ``limit`` candles returns the window's
        start: every candle in it came back, and a short page only means a gap.
        """
        return None

    def klines_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int,
                       limit: int) -> Request:
        """Request for candles with open time in ``[start_ms, end_ms]`` (both inclusive)."""
        raise NotImplementedError

    def probe_request(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> Request:
        """Request whose reply holds a candle iff one opens in ``[start_ms, end_ms]`` (a one-row page)."""
        return self.klines_request(symbol, timeframe, start_ms, end_ms, 1)

    def parse_klines(self, payload: Any) -> dict[str, np.ndarray]:
        """Arrays ``time`` (int64 ms), ``open, high, low, close, volume`` (float64).

        Every row of the reply is returned (paging counts them); an exchange that marks
        unfinished candles adds a boolean ``closed`` array and the fetcher drops the rest.
        """
        raise NotImplementedError

    def reply_time(self, payload: Any, headers: Any) -> int | None:
        """Server clock (ms) when the reply was made, a lower bound; None if unknown.

        The fetcher keeps only candles whose close is at least its safety margin before
        this instant. The default reads the HTTP ``Date`` header (whole seconds).
        """
        return http_date_ms(headers)

    def used_weight(self, headers: Any) -> int | None:
        """Budget used by this IP so far in the window, from reply headers (None if unknown)."""
        return None

    def rate_limits(self, info: dict) -> tuple[int, float] | None:
        """(weight limit, window seconds) from exchange info, or None."""
        return None

    def listed(self, info: dict) -> set[str] | None:
        """Exchange ids of the listed symbols in exchange info (None if unknown)."""
        return None

    def symbol_filters(self, info: dict) -> dict[str, dict[str, float]]:
        """``{unified symbol: filter_row(...)}`` from exchange info (tick, step, min/max qty, min notional)."""
        raise NotImplementedError(f"{self.name} has no exchange filters")

    def server_time(self, payload: Any) -> int:
        """Server clock (epoch ms) from the time endpoint's body (Binance ``{"serverTime": ms}``)."""
        value = payload.get("serverTime") if isinstance(payload, dict) else None
        return checked_epoch_ms(value, f"{self.name} {self.time_path}: field 'serverTime'")

    def check_info(self, info: Any) -> Any:
        """Exchange info as received, after checking the fields the fetcher reads (MalformedResponse if not)."""
        if not isinstance(info, dict):
            raise MalformedResponse(f"{self.name} {self.exchange_info_path}: expected a JSON object, "
                                    f"got {type(info).__name__}")
        self.listed(info)
        self.rate_limits(info)
        return info

    def error(self, status: int, payload: Any, headers: Any) -> Exception | None:
        """Classify a reply: a RateLimitError, a BadRequest, a ServerError, or None if fine."""
        raise NotImplementedError


def funding_arrays(rows: Any, where: str, time_key: str, rate_keys: tuple[str, ...],
                   mark_key: str | None = None) -> dict[str, np.ndarray]:
    """Funding rows (JSON objects) -> ``time, rate, mark_price`` arrays; ``MalformedResponse`` naming
    the row and the field when one is missing or not a number. ``rate_keys``: the first present,
    non-empty key is the rate (OKX: ``realizedRate`` then ``fundingRate``)."""
    if not isinstance(rows, list):
        raise MalformedResponse(f"{where}: expected a list of funding rows, got {type(rows).__name__}")
    n = len(rows)
    time = np.empty(n, dtype=np.int64)
    rate = np.empty(n)
    mark = np.full(n, np.nan)
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedResponse(f"{where}: row {i} is {row!r:.60}; expected an object")
        time[i] = checked_epoch_ms(row.get(time_key), f"{where}: row {i} field {time_key!r}")
        key = next((k for k in rate_keys if row.get(k) not in (None, "")), rate_keys[0])
        try:
            rate[i] = float(row[key])
        except (KeyError, TypeError, ValueError):
            raise MalformedResponse(f"{where}: row {i} field {key!r} is {row.get(key)!r:.40}; expected a decimal "
                                    "string") from None
        if mark_key is not None and row.get(mark_key) not in (None, ""):
            try:
                mark[i] = float(row[mark_key])
            except (TypeError, ValueError):
                raise MalformedResponse(f"{where}: row {i} field {mark_key!r} is {row[mark_key]!r:.40}; expected "
                                        "a decimal string") from None
    return {"time": time, "rate": rate, "mark_price": mark}
