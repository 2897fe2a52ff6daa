"""Async, rate-limited, resumable OHLCV and funding-rate fetcher.

``await fetch_ohlcv("binance", ["BTC/USDT", "ETH/USDT"], "1m", start, end)``
(or :func:`fetch_ohlcv_sync`) downloads candles with open time in
``[start, end)``:

- pages of the exchange's best size (spot 1000; USD-M futures 499, the most
  candles per weight), cursor = last open time + interval, each request bounded
  by ``end``; a page that comes back empty or short ends the range; newest-first
  exchanges page backwards (OKX ``after``, 100 rows; Bybit windows of at most 1000
  candles, where a short page is a gap and only an empty page with no ``start``
  ends the history);
- symbols run concurrently, and a long range of one symbol is split into
  segments fetched concurrently, all within one :class:`WeightLimiter` budget;
- ``end`` is capped at the open time of the candle still open on the server
  clock, so the open candle never enters the data;
- every candle is validated (on the grid, in range, sorted, unique, finite,
  ``high >= max(open, close)``, ``low <= min(open, close)``, ``volume >= 0``); bad
  rows are dropped from the data and listed in the report, never kept silently;
- gaps the exchange really has are listed per symbol as ``[start, end)`` ranges of
  missing open times, never filled;
- with a ``sink`` (an object with ``last_time(exchange, symbol, timeframe)`` and
  ``append(exchange, symbol, timeframe, arrays)``, e.g. the HDF5 store or
  :class:`MemorySink`), pages are appended in time order as they arrive and a
  re-run continues after the last stored candle; pages that cannot be appended yet
  (newest-first venues, later segments) wait in the sink's journal
  (:mod:`nbtrade.data.pending`), so an interrupted run loses at most the pages in
  flight and a re-run fetches only what no stored or journaled page covers;
- 429: wait ``Retry-After`` (all requests pause), or without one back off
  exponentially from 0.2 s with jitter, and give up after ``BackoffPolicy.give_up_s``
  (5 minutes) of waiting; 418: raise :class:`~nbtrade.data.ratelimit.IPBanned` at once;
  5xx, network errors and malformed bodies: bounded retries; 4xx, and error bodies sent
  with HTTP 200: raise :class:`~nbtrade.data.exchanges.base.BadRequest` naming the
  symbol and timeframe and carrying the exchange's own message;
- every request has a total deadline (``timeout``), body included;
- the still-open candle never enters the data: ``end`` is capped at the server clock
  minus a margin of max(1 s, round trip), and each page is cut again by the server
  clock of its own reply (``Date`` header, Bybit ``time``, OKX ``confirm``);
- a range that starts before the symbol's first candle reports ``listed`` (one probe
  request finds whether anything exists before ``start``), not a gap.

Perpetuals (``binance_futures``, ``bybit_linear``, ``okx_swap``): :func:`fetch_funding_rates`
and :func:`fetch_mark_ohlcv`, or ``fetch_ohlcv(..., funding=True, mark=True)`` for candles, funding
rates and mark-price candles of one range in one call; ``result.to_market()`` carries them as
panel fields (:func:`nbtrade.data.panels.perp_fields`).

Times are int64 UTC ms inside; ``start``/``end`` accept anything pandas reads
(naive means UTC) and results convert to frames with a UTC DatetimeIndex.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import math
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol, Sequence

import numpy as np

from ..timeframes import DAY_MS, to_epoch_ms
from ._grid import ceil_open, floor_open, next_open, on_grid
from .exchanges import get_adapter
from .exchanges.base import Adapter, BadRequest, ExchangeError, MalformedResponse, RawBody, Request, ServerError
from .layout import mark_timeframe
from .pending import PageJournal, Walk
from .ratelimit import BackoffPolicy, IPBanned, RateLimitError, TooManyRequests, WeightLimiter

OHLCV = ("open", "high", "low", "close", "volume")
FUNDING_TIMEFRAME = "funding"  # the sink's "timeframe" key for funding-rate history

__all__ = ["fetch_ohlcv", "fetch_ohlcv_sync", "fetch_funding_rates", "fetch_funding_rates_sync",
           "fetch_mark_ohlcv", "fetch_mark_ohlcv_sync",
           "fetch_filters", "fetch_filters_sync",
           "FetchResult", "FetchReport", "SymbolReport", "MemorySink", "Sink", "validate_candles", "find_gaps",
           "run_fetch", "shared_limiters",
           # errors, re-exported so callers need one import
           "ExchangeError", "BadRequest", "ServerError", "RateLimitError", "TooManyRequests", "IPBanned"]


# ------------------------------------------------------------------------------------------------
# sinks
class Sink(Protocol):
    """Where pages go as they arrive (the HDF5 store implements this)."""

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> int | None: ...

    def append(self, exchange: str, symbol: str, timeframe: str, arrays: dict[str, np.ndarray]) -> Any: ...


class MemorySink:
    """In-memory :class:`Sink`: ``batches[(exchange, unified symbol, timeframe)]`` is a list of appended batches.

    Symbols go through the one symbol rule, as in the HDF5 store: any spelling finds its series.
    """

    def __init__(self) -> None:
        self.batches: dict[tuple[str, str, str], list[dict[str, np.ndarray]]] = {}
        self.journals: dict[tuple[str, str, str], PageJournal] = {}

    def page_journal(self, exchange: str, symbol: str, timeframe: str) -> PageJournal:
        """Pages of an unfinished newest-first walk (kept in memory; :mod:`nbtrade.data.pending`)."""
        return self.journals.setdefault(self._key(exchange, symbol, timeframe), PageJournal())

    @staticmethod
    def _key(exchange: str, symbol: str, timeframe: str) -> tuple[str, str, str]:
        from .symbols import unified_symbol

        return exchange, unified_symbol(symbol, exchange, strict=False), timeframe

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> int | None:
        batches = self.batches.get(self._key(exchange, symbol, timeframe))
        if not batches:
            return None
        return int(batches[-1]["time"][-1])

    def append(self, exchange: str, symbol: str, timeframe: str, arrays: dict[str, np.ndarray]) -> None:
        if arrays["time"].shape[0] == 0:
            return
        last = self.last_time(exchange, symbol, timeframe)
        if last is not None and arrays["time"][0] <= last:
            raise ValueError(f"append out of order for {symbol} {timeframe}: {arrays['time'][0]} <= {last}")
        self.batches.setdefault(self._key(exchange, symbol, timeframe), []).append(
            {k: v.copy() for k, v in arrays.items()})

    def read(self, exchange: str, symbol: str, timeframe: str) -> dict[str, np.ndarray]:
        batches = self.batches.get(self._key(exchange, symbol, timeframe), [])
        if not batches:
            return {}
        return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


# ------------------------------------------------------------------------------------------------
# reports
@dataclass
class SymbolReport:
    """What happened to one symbol: rows kept, gaps found, bad rows dropped, requests made."""

    symbol: str
    timeframe: str
    rows: int = 0
    requests: int = 0
    first: int | None = None
    last: int | None = None
    resumed_from: int | None = None
    gaps: list[tuple[int, int]] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    duplicates: int = 0
    unsorted_pages: int = 0
    #: open times of flat zero-volume candles (o = h = l = c, volume 0): valid, kept, but
    #: Binance prints them at the edges of outages, so they are worth a look
    flat_zero_volume: list[int] = field(default_factory=list)
    #: open time of the symbol's first candle when the range started before it (the time
    #: before is not a gap: nothing was listed); ``unlisted``: no candle before ``end`` at all
    listed: int | None = None
    unlisted: bool = False
    #: candles left out because their close was not safely past on the server clock
    open_dropped: int = 0
    #: pages of an interrupted newest-first walk (Bybit, OKX) taken from the sink's journal
    #: instead of being fetched again (:mod:`nbtrade.data.pending`)
    journaled_pages: int = 0

    @property
    def missing(self) -> int:
        """Number of missing candles across the gaps (fixed timeframes only)."""
        from ..timeframes import TIMEFRAME_MS

        step = TIMEFRAME_MS.get(self.timeframe)
        return sum((b - a) // step for a, b in self.gaps) if step else len(self.gaps)


@dataclass
class FetchReport:
    """Report of one fetch: per-symbol details plus request, retry and throttle counts."""

    exchange: str
    timeframe: str
    start: int
    end: int
    symbols: dict[str, SymbolReport] = field(default_factory=dict)
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    elapsed_s: float = 0.0
    limiter: dict[str, Any] = field(default_factory=dict)

    @property
    def gaps(self) -> dict[str, list[tuple[int, int]]]:
        return {s: r.gaps for s, r in self.symbols.items()}

    @property
    def bad_rows(self) -> dict[str, list[tuple[int, str]]]:
        return {s: r.bad_rows for s, r in self.symbols.items() if r.bad_rows}

    @property
    def ok(self) -> bool:
        """True when no bad row was found (gaps are facts, not errors)."""
        return not self.bad_rows

    def summary(self) -> str:
        from ..timeframes import ms_to_index

        def ts(ms: int | None) -> str:
            return "-" if ms is None else str(ms_to_index([ms])[0])[:19]

        what = "funding rows" if self.timeframe == FUNDING_TIMEFRAME else "candles"
        lines = [f"{self.exchange} {self.timeframe}: {sum(r.rows for r in self.symbols.values()):,} {what}, "
                 f"{self.requests} requests, {self.retries} retries, {self.throttled} throttled, "
                 f"{self.elapsed_s:.1f} s"]
        for s, r in self.symbols.items():
            lines.append(f"  {s}: {r.rows:,} rows {ts(r.first)} .. {ts(r.last)}, {len(r.gaps)} gaps "
                         f"({r.missing} missing), {len(r.bad_rows)} bad rows"
                         + (f", listed at {ts(r.listed)}" if r.listed is not None else "")
                         + (", not listed before the end" if r.unlisted else "")
                         + (f", resumed after {ts(r.resumed_from)}" if r.resumed_from is not None else ""))
        return "\n".join(lines)


@dataclass
class FetchResult:
    """``data[symbol]``: arrays ``time`` (int64 ms) and float64 columns; ``report``: a :class:`FetchReport`.

    Perpetuals (``fetch_ohlcv(..., funding=True, mark=True)``): ``funding[symbol]`` (``time, rate,
    mark_price``) and ``mark[symbol]`` (``time, open, high, low, close``), with their own reports
    in ``funding_report`` and ``mark_report``; None when not fetched.
    """

    data: dict[str, dict[str, np.ndarray]]
    report: FetchReport
    funding: dict[str, dict[str, np.ndarray]] | None = None
    mark: dict[str, dict[str, np.ndarray]] | None = None
    funding_report: FetchReport | None = None
    mark_report: FetchReport | None = None

    def frame(self, symbol: str):
        """One symbol as a DataFrame with a UTC DatetimeIndex named ``time``."""
        import pandas as pd

        from ..timeframes import ms_to_index

        arrays = self.data[symbol]
        cols = [k for k in arrays if k != "time"]
        return pd.DataFrame({k: arrays[k] for k in cols}, index=ms_to_index(arrays["time"]), columns=cols)

    def frames(self) -> dict[str, Any]:
        return {s: self.frame(s) for s in self.data}

    def to_market(self) -> Any:
        """All symbols as one :class:`nbtrade.Market` on the union of their open times (NaN where a
        symbol has no candle, nothing filled; ``meta["exchange"]`` set). Raises ``ValueError`` naming
        symbols that got no candle.

        Funding rates and mark-price candles, when fetched, become the panel fields ``funding_rate``,
        ``funding_time`` and ``mark_open`` .. ``mark_close`` (:func:`nbtrade.data.panels.perp_fields`);
        nothing is invented where they are missing."""
        from .panels import market_from_series

        r = self.report
        funding = {s: a for s, a in (self.funding or {}).items() if a["time"].shape[0]} or None
        mark = {s: a for s, a in (self.mark or {}).items() if a["time"].shape[0]} or None
        return market_from_series(self.data, exchange=r.exchange,
                                  what=f"fetch result {r.exchange} {r.timeframe}", funding=funding, mark=mark,
                                  timeframe=r.timeframe)

    def __getitem__(self, symbol: str):
        return self.frame(symbol)


# ------------------------------------------------------------------------------------------------
# validation
def validate_candles(arrays: dict[str, np.ndarray], timeframe: str, start: int | None = None,
                     end: int | None = None) -> tuple[dict[str, np.ndarray], list[tuple[int, str]], int, bool]:
    """Keep the good candles of one page; report the rest.

    Returns ``(clean, bad, duplicates, was_unsorted)``: ``clean`` sorted by time,
    unique, on the grid, inside ``[start, end)``, finite, prices > 0, with
    ``low <= min(open, close) <= max(open, close) <= high`` and ``volume >= 0``;
    ``bad`` lists ``(open_time, reason)`` of each dropped row (duplicates are
    counted, not listed: the first copy is kept).
    """
    t = np.asarray(arrays["time"], dtype=np.int64)
    unsorted = bool(t.shape[0] > 1 and np.any(np.diff(t) < 0))
    order = np.argsort(t, kind="stable") if unsorted else np.arange(t.shape[0])
    t = t[order]
    cols = {k: np.asarray(arrays[k], dtype=np.float64)[order] for k in OHLCV}
    keep = np.ones(t.shape[0], dtype=bool)
    dup = np.r_[False, t[1:] == t[:-1]] if t.shape[0] else np.zeros(0, dtype=bool)
    n_dup = int(dup.sum())
    keep &= ~dup
    o, h, lo, c, v = (cols[k] for k in OHLCV)
    checks = [
        (~on_grid(t, timeframe), "open time off the timeframe grid"),
        ((t < start) if start is not None else np.zeros_like(keep), "outside the requested range"),
        ((t >= end) if end is not None else np.zeros_like(keep), "outside the requested range"),
        (~(np.isfinite(o) & np.isfinite(h) & np.isfinite(lo) & np.isfinite(c) & np.isfinite(v)), "non-finite value"),
        ((o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0), "price <= 0"),
        (h < np.maximum(o, c), "high < max(open, close)"),
        (lo > np.minimum(o, c), "low > min(open, close)"),
        (v < 0, "volume < 0"),
    ]
    bad: list[tuple[int, str]] = []
    for mask, reason in checks:
        hit = mask & keep
        if hit.any():
            bad.extend((int(x), reason) for x in t[hit].tolist())
            keep &= ~mask
    clean = {"time": t[keep]}
    clean.update({k: cols[k][keep] for k in OHLCV})
    return clean, bad, n_dup, unsorted


def find_gaps(times: np.ndarray, timeframe: str, expected_first: int | None = None,
              expected_end: int | None = None) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of missing open times in sorted ``times`` (and before/after them)."""
    times = np.asarray(times, dtype=np.int64)
    gaps: list[tuple[int, int]] = []
    if times.shape[0] == 0:
        if expected_first is not None and expected_end is not None and expected_first < expected_end:
            gaps.append((int(expected_first), int(expected_end)))
        return gaps
    if expected_first is not None and times[0] > expected_first:
        gaps.append((int(expected_first), int(times[0])))
    if timeframe == "1M":
        for a, b in zip(times[:-1].tolist(), times[1:].tolist()):
            if next_open(a, "1M") < b:
                gaps.append((next_open(a, "1M"), b))
    else:
        step = next_open(0, timeframe)
        idx = np.flatnonzero(np.diff(times) > step)
        gaps.extend((int(times[i]) + step, int(times[i + 1])) for i in idx.tolist())
    if expected_end is not None:
        after = next_open(int(times[-1]), timeframe)
        if after < expected_end:
            gaps.append((after, int(expected_end)))
    return gaps


def _to_ms(value: Any, name: str) -> int:
    """Epoch ms of one ``start``/``end`` (through :func:`nbtrade.timeframes.to_epoch_ms`)."""
    if np.ndim(value):
        raise ValueError(f"{name} must be a time (ms since epoch, string or Timestamp), got "
                         f"{type(value).__name__} of {np.size(value)} values")
    return to_epoch_ms(value, name)


# ------------------------------------------------------------------------------------------------
# limiters shared by every fetch in one event loop, per exchange and server
_SHARED: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


def shared_limiters(adapter: Adapter, base_url: str) -> dict[str, WeightLimiter]:
    """The limiters (per budget bucket) that all fetches to this server in this event loop share."""
    per_loop = _SHARED.setdefault(asyncio.get_running_loop(), {})
    key = (adapter.name, base_url.rstrip("/"))
    if key not in per_loop:
        per_loop[key] = {"weight": WeightLimiter(*adapter.default_budget, name=adapter.name,
                                                 **adapter.limiter_options)}
    return per_loop[key]


# ------------------------------------------------------------------------------------------------
# the HTTP client
class _Client:
    """One session against one exchange: limiters per bucket, retries, error mapping."""

    def __init__(self, adapter: Adapter, base_url: str, session: Any, limiter: WeightLimiter | None,
                 backoff: BackoffPolicy, max_throttled: int, report: FetchReport, timeout: float = 30.0) -> None:
        self.adapter = adapter
        self.base_url = base_url.rstrip("/")
        self.session = session
        #: a library client that runs requests itself (ccxt): ``await conn.execute(req)``
        self.conn = session if hasattr(session, "execute") else None
        #: exchange info and the metadata cache, once :func:`_open` has read them
        self.info: Any = None
        self.meta: Any = None
        if limiter is None:
            self.limiters = shared_limiters(adapter, self.base_url)
        else:
            self.limiters = {"weight": limiter}
        self.backoff = backoff
        self.max_throttled = max_throttled
        self.report = report
        #: every request ends within ``timeout`` seconds (connect, headers and body): a server
        #: trickling bytes cannot hold a fetch forever
        self.timeout = float(timeout)

        #: the open-candle cut keeps only candles closed this long before the server clock:
        #: max(1 s, the round trip of the time request)
        self.margin_ms = 1000

    def limiter(self, bucket: str) -> WeightLimiter:
        if bucket not in self.limiters:
            from .exchanges.binance_futures import FUNDING_BUDGET

            limit, window = FUNDING_BUDGET if bucket == "funding" else self.adapter.default_budget
            # no reply of a separate bucket (fundingRate: 500 per 5 min, shared with fundingInfo)
            # reports its use, so pace by the documented budget instead of a slow-start probe
            self.limiters[bucket] = WeightLimiter(limit, window, name=f"{self.adapter.name}:{bucket}", probe=1.0)
            self.limiters[bucket]._offset = self.limiters["weight"]._offset
        return self.limiters[bucket]

    async def get(self, req: Request, parse: Callable[[Any], Any], symbol: str | None = None,
                  timeframe: str | None = None, with_time: bool = False) -> Any:
        """Parsed reply; with ``with_time`` a pair ``(parsed, server ms of the reply or None)``."""
        import aiohttp

        limiter = self.limiter(req.bucket)
        weight_limiter = self.limiters["weight"]
        url = self.base_url + req.path
        where = " ".join(x for x in (self.adapter.name, symbol, timeframe) if x) if symbol else \
            f"{self.adapter.name} {req.path}"
        failures = 0
        throttled = 0
        throttle_waited = 0.0
        deadline = aiohttp.ClientTimeout(total=self.timeout, sock_connect=min(10.0, self.timeout))
        while True:
            ticket = await limiter.acquire(req.weight)
            self.report.requests += 1
            error: Exception | None = None
            direct: Any = None  # a library client's reply, already decoded
            try:
                if self.conn is not None:
                    direct, headers = await asyncio.wait_for(self.conn.execute(req), self.timeout)
                    status, text = 200, ""
                else:
                    async with self.session.get(url, params=req.params, timeout=deadline) as resp:
                        status = resp.status
                        headers = resp.headers
                        text = await resp.text()
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                limiter.cancel(ticket)
                error = ServerError(f"{where}: network error {type(exc).__name__}: {exc}",
                                    exchange=self.adapter.name, symbol=symbol, timeframe=timeframe)
                cause: BaseException | None = exc
            except (ExchangeError, RateLimitError) as exc:  # raised by a library client, already mapped
                limiter.release(ticket, None)
                error, cause = exc, None
            except BaseException:
                # cancelled (an interrupted fetch): the request got no reply; a limiter shared with
                # the next run must not count it in flight for ever
                limiter.cancel(ticket)
                raise
            if error is None:
                used = self.adapter.used_weight(headers)
                if req.bucket == "weight":
                    limiter.release(ticket, used)
                else:
                    limiter.release(ticket, None)
                    if used is not None:
                        weight_limiter._used = max(weight_limiter._used, float(used))
                try:
                    payload: Any = direct if self.conn is not None else json.loads(text)
                except ValueError:
                    payload = RawBody(text)
                error = self.adapter.error(status, payload, headers)
                cause = None
                if error is None:
                    try:
                        if isinstance(payload, RawBody):
                            raise MalformedResponse(f"{where}: body is not valid JSON: {text[:60]!r}")
                        parsed = parse(payload)
                        limiter.succeeded(ticket)
                        if with_time:
                            return parsed, self.adapter.reply_time(payload, headers)
                        return parsed
                    except MalformedResponse as exc:
                        error = exc
            if isinstance(error, IPBanned):
                for lim in self.limiters.values():
                    lim.ban(error)
                raise IPBanned(f"{where}: {error} (stopping; retry after {error.retry_after} s)",
                               status=error.status, code=error.code, retry_after=error.retry_after,
                               exchange=self.adapter.name) from None
            if isinstance(error, TooManyRequests):
                throttled += 1
                self.report.throttled += 1
                # Retry-After when given, else exponential from a short base with jitter; every
                # waiter on the limiter pauses as long
                wait = self.backoff.delay(limiter.strike(ticket) - 1, error.retry_after)
                give_up = self.backoff.give_up_s
                if throttled > self.max_throttled or throttle_waited + wait > give_up:
                    raise TooManyRequests(f"{where}: still rate limited after {throttled} replies and "
                                          f"{throttle_waited:.1f} s of waiting (the next wait, {wait:.1f} s, would "
                                          f"pass the {give_up:g} s limit of BackoffPolicy.give_up_s): {error}",
                                          status=error.status, code=error.code, retry_after=error.retry_after,
                                          exchange=self.adapter.name)
                limiter.penalize(wait)
                throttle_waited += wait
                await asyncio.sleep(wait)
                continue
            if isinstance(error, BadRequest):
                raise BadRequest(f"{where}: {error}", exchange=self.adapter.name, status=error.status,
                                 code=error.code, symbol=symbol, timeframe=timeframe) from None
            failures += 1
            if failures > self.backoff.max_retries:
                raise ServerError(f"{where}: giving up after {failures} attempts: {error}",
                                  exchange=self.adapter.name, symbol=symbol, timeframe=timeframe) from cause
            self.report.retries += 1
            await asyncio.sleep(self.backoff.delay(failures - 1))

    async def server_time(self) -> int:
        req = Request(self.adapter.time_path, {}, 1)
        t0 = time.monotonic()
        server_ms = await self.get(req, self.adapter.server_time)
        t1 = time.monotonic()
        self.margin_ms = max(1000, int(math.ceil((t1 - t0) * 1000)))
        for lim in self.limiters.values():
            lim.sync_clock(server_ms, t0, t1)
        # server clock now = server_ms + (monotonic() - t1) * 1000, roughly
        self._server_anchor = (server_ms, 0.5 * (t0 + t1))
        return server_ms

    def server_now(self) -> int:
        ms, mono = self._server_anchor
        return int(ms + (time.monotonic() - mono) * 1000)

    async def exchange_info(self, cache: Any) -> dict | None:
        path = self.adapter.exchange_info_path
        if not path:
            return None
        req = Request(path, dict(self.adapter.exchange_info_params),
                      getattr(self.adapter, "exchange_info_weight", 1))

        async def fetch() -> Any:
            # checked before it is cached: a malformed list or limit never lands in the cache
            return await self.get(req, self.adapter.check_info)

        if cache is None:
            return await fetch()
        return await cache.get_or_fetch(self.info_key(), fetch)

    def info_key(self) -> dict[str, str]:
        return {"exchange": self.adapter.name, "base_url": self.base_url, "path": self.adapter.exchange_info_path}


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


def _segments(start: int, end: int, timeframe: str, page: int, parts: int) -> list[tuple[int, int]]:
    """Split ``[start, end)`` into up to ``parts`` ranges on page boundaries."""
    if timeframe == "1M" or parts <= 1:
        return [(start, end)]
    step = next_open(0, timeframe)
    n_pages = math.ceil((end - start) / (step * page))
    parts = max(1, min(parts, n_pages))
    per = math.ceil(n_pages / parts)
    bounds = [start + i * per * page * step for i in range(parts)] + [end]
    return [(a, min(b, end)) for a, b in zip(bounds[:-1], bounds[1:]) if a < min(b, end)]


async def _fetch_symbol(client: _Client, exchange: str, symbol: str, timeframe: str, start: int, end: int,
                        sink: Any, keep: bool, rep: SymbolReport, parallel: int,
                        on_page: Callable[[str, int, int], Any] | None) -> dict[str, np.ndarray]:
    adapter = client.adapter
    adapter.symbol_id(symbol)
    cursor = ceil_open(start, timeframe)
    expected = cursor
    backfill: tuple[int, int] | None = None  # (first stored open time, resume cursor)
    if sink is not None:
        last = await _maybe_await(sink.last_time(exchange, symbol, timeframe))
        if last is not None and int(last) >= cursor:
            resume = next_open(floor_open(int(last), timeframe), timeframe)
            first_fn = getattr(sink, "first_time", None)
            first = await _maybe_await(first_fn(exchange, symbol, timeframe)) if first_fn is not None else None
            if first is not None and int(first) > cursor:
                # older history than stored was asked for: fetch [start, first) too, then resume
                backfill = (int(first), resume)
            else:
                cursor = resume
                expected = cursor
            rep.resumed_from = int(last)
    kept: list[dict[str, np.ndarray]] = []
    if cursor >= end:
        return _concat(kept)
    limit = adapter.page_limit()
    # with no start (and nothing stored) the history begins at the first candle: no leading gap
    open_ended = start <= 0 and rep.resumed_from is None
    state: dict[str, Any] = {"expected": None if open_ended else expected,
                             # the range begins at ``start``: a leading gap may be the time before listing
                             "lead": not open_ended and (rep.resumed_from is None or backfill is not None),
                             "lead_start": expected,
                             "cut_from": end}  # open time of the first candle left out as still open

    def close_backfill() -> None:
        """The backfilled range ends at the first stored candle: gaps before it, then jump to the resume point."""
        if backfill is not None and not state.get("switched"):
            first_stored, resume = backfill
            rep.gaps.extend(find_gaps(np.array([min(first_stored, end)], dtype=np.int64), timeframe,
                                      expected_first=state["expected"]))
            state["expected"] = resume
            state["switched"] = 1

    async def any_candle(lo: int, hi: int) -> bool:
        """Does a candle open in ``[lo, hi]``? (one one-row request)"""
        req = adapter.probe_request(symbol, timeframe, lo, hi)
        arrays = await client.get(req, adapter.parse_klines, symbol, timeframe)
        rep.requests += 1
        t = arrays["time"]
        return bool(np.any((t >= lo) & (t <= hi)))

    async def settle_lead(first: int | None) -> None:
        """The range starts before its first candle (``first``; None: no candle at all): listing or gap?"""
        state["lead"] = False
        lead = state["lead_start"]
        if (first is not None and first <= lead) or lead <= 0:
            return
        if await any_candle(0, lead - 1):
            return  # candles before ``start``: the missing ones are a real gap
        if first is None:
            rep.unlisted = True
            state["expected"] = None
        else:
            rep.listed = int(first)
            if state["expected"] == lead:
                state["expected"] = int(first)

    async def emit(page: dict[str, np.ndarray]) -> Any:
        t = page["time"]
        if page.get("_raw_times") is not None:
            raw = page.pop("_raw_times")
        else:
            raw = t
        if backfill is not None and raw.shape[0] and int(raw[0]) >= backfill[1]:
            close_backfill()
        if raw.shape[0] and state["lead"]:
            await settle_lead(int(raw[0]))
        if raw.shape[0]:
            rep.gaps.extend(find_gaps(raw, timeframe, expected_first=state["expected"]))
            state["expected"] = next_open(int(raw[-1]), timeframe)
        if t.shape[0] == 0:
            return None
        rep.rows += int(t.shape[0])
        flat = (page["volume"] == 0) & (page["high"] == page["low"])
        if flat.any():
            rep.flat_zero_volume.extend(t[flat].tolist())
        rep.first = int(t[0]) if rep.first is None else rep.first
        rep.last = int(t[-1])
        if keep:
            kept.append(page)
        if on_page is not None:
            on_page(symbol, rep.rows, rep.last)
        if sink is not None:
            return await _maybe_await(sink.append(exchange, symbol, timeframe, page))
        return None

    ranges = [(cursor, end)] if backfill is None else [(a, b) for a, b in ((cursor, min(backfill[0], end)),
                                                                           (backfill[1], end)) if a < b]
    # every page is recorded with the interval it covers and committed in time order as soon as it
    # joins the last stored candle (nbtrade.data.pending): at once for the first segment of an oldest-
    # first walk; journaled first for later segments and for newest-first walks (OKX ``after``, Bybit
    # lists). A resumed fetch takes the journaled pages and fetches only what they do not cover.
    walk = Walk(_page_journal(sink, exchange, symbol, timeframe), ranges, emit)
    rep.journaled_pages = walk.loaded
    # a resumed walk's gaps are what each interrupted segment had left: walked as they are, they make
    # the very requests the first run would have made next (split again, they would cost extra pages)
    segments = [seg for a, b in walk.gaps()
                for seg in ([(a, b)] if walk.loaded else _segments(a, b, timeframe, limit, parallel))]

    async def page(lo: int, hi: int) -> tuple[dict[str, np.ndarray], int, np.ndarray]:
        """One page of candles in ``[lo, hi)``: (clean rows, raw row count, raw open times)."""
        req = adapter.klines_request(symbol, timeframe, lo, hi - 1, limit)
        arrays, reply_ms = await client.get(req, adapter.parse_klines, symbol, timeframe, with_time=True)
        rep.requests += 1
        t = arrays["time"]
        n = t.shape[0]  # raw rows, open candles included: paging decisions count these
        still_open = ~arrays.pop("closed") if "closed" in arrays else np.zeros(n, dtype=bool)
        if reply_ms is not None and n:
            # never keep a candle whose close is not safely past on the server's own clock
            still_open |= _close_times(t, timeframe) > reply_ms - client.margin_ms
        cut = None
        if still_open.any():
            rep.open_dropped += int(still_open.sum())
            cut = int(t[still_open].min())
            state["cut_from"] = min(state["cut_from"], cut)
            arrays = {k: v[~still_open] for k, v in arrays.items()}
        if adapter.descending:
            # backward paging may overshoot below the range: those rows belong to no page
            inside = arrays["time"] >= lo
            arrays = {k: v[inside] for k, v in arrays.items()}
        clean, bad, dups, unsorted = validate_candles(arrays, timeframe, lo, hi)
        rep.bad_rows.extend(bad)
        rep.duplicates += dups
        rep.unsorted_pages += int(unsorted)
        kept_t = arrays["time"]
        clean["_raw_times"] = np.unique(kept_t[(kept_t >= lo) & (kept_t < hi) & on_grid(kept_t, timeframe)])
        return clean, n, t, cut

    async def run_segment(lo: int, hi: int) -> None:
        if adapter.descending:  # newest first (OKX ``after``, Bybit lists): walk back, journal, commit in order
            top = hi

            async def add(a: int, clean: dict[str, np.ndarray], cut: int | None) -> None:
                # a candle left out as still open is no fact about the history: not covered
                await walk.add(max(a, lo), top if cut is None else min(top, cut), clean)

            while top > lo:
                clean, n, t, cut = await page(lo, top)
                # a bounded window (Bybit) returned every candle of [covered, top): a short page is no end
                covered = adapter.window_start(timeframe, lo, top - 1, limit)
                if covered is not None and covered > lo:
                    if n == 0 and not await any_candle(lo, covered - 1):
                        await add(lo, clean, cut)
                        break  # nothing older in the range (before listing, or a gap to ``lo``): stop walking
                    nxt = min(covered, int(t.min())) if t.shape[0] else covered
                    await add(nxt, clean, cut)
                    top = nxt
                    continue
                if n == 0 or t.shape[0] == 0:
                    await add(lo, clean, cut)
                    break
                first = int(t.min())
                if n < limit or first <= lo:
                    await add(lo, clean, cut)
                    break
                await add(first, clean, cut)
                top = first
            return
        cur = lo
        while cur < hi:
            clean, n, t, cut = await page(cur, hi)
            if n == 0:
                await walk.add(cur, hi, clean)  # nothing in [cur, hi)
                break
            last = int(t.max())
            if last < cur:
                break  # a server ignoring the cursor
            nxt = next_open(floor_open(last, timeframe), timeframe)
            ends = n < limit and getattr(adapter, "short_page_ends", True)
            b = hi if ends else min(nxt, hi)
            await walk.add(cur, b if cut is None else min(b, cut), clean)
            cur = nxt
            if ends:
                break

    tasks = [asyncio.ensure_future(run_segment(a, b)) for a, b in segments]
    await _gather_or_cancel(tasks)
    await walk.finish()
    close_backfill()
    if state["lead"]:  # not one candle in the range
        await settle_lead(None)
    stop = min(end, state["cut_from"])  # candles from ``cut_from`` on were still open: not a gap
    if state["expected"] is not None and state["expected"] < stop:
        rep.gaps.append((state["expected"], stop))
    return _concat(kept)


def _close_times(t: np.ndarray, timeframe: str) -> np.ndarray:
    """Close instants (the next open time) of candles opening at ``t``."""
    if timeframe == "1M":
        months = t.astype("datetime64[ms]").astype("datetime64[M]") + 1
        return months.astype("datetime64[ms]").astype(np.int64)
    return t + next_open(0, timeframe)


def _concat(pages: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not pages:
        return {"time": np.empty(0, dtype=np.int64), **{k: np.empty(0) for k in OHLCV}}
    return {k: np.concatenate([p[k] for p in pages]) for k in pages[0]}


async def _gather_or_cancel(tasks: list[asyncio.Future]) -> list[Any]:
    """Wait for all; on the first error cancel the rest (a 418 stops everything at once)."""
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _symbols(symbols: str | Iterable[str], adapter: Adapter) -> list[str]:
    """Unified symbols (one rule, :mod:`nbtrade.data.symbols`), each once: ``BTCUSDT`` and ``BTC/USDT`` are one."""
    if isinstance(symbols, str):
        symbols = [s for s in symbols.split(",") if s.strip()]
    out = []
    for s in symbols:
        if not isinstance(s, str) or not s.strip():
            raise ValueError(f"symbols must be non-empty strings, got {s!r}")
        unified = adapter.unified(s)
        if unified not in out:
            out.append(unified)
    if not out:
        raise ValueError("symbols must name at least one symbol")
    return out


class SymbolDict(dict):
    """A dict keyed by unified symbols that also finds an entry by any other spelling of it."""

    def __init__(self, items: Any, resolve: Callable[[str], str]) -> None:
        super().__init__(items)
        self._resolve = resolve

    def _unified(self, key: Any) -> Any:
        try:
            return self._resolve(key)
        except (ValueError, TypeError):
            return None

    def __missing__(self, key: Any) -> Any:
        unified = self._unified(key)
        if unified is not None and dict.__contains__(self, unified):
            return dict.__getitem__(self, unified)
        raise KeyError(key)

    def __contains__(self, key: Any) -> bool:
        return dict.__contains__(self, key) or dict.__contains__(self, self._unified(key))


def _make_cache(cache: Any) -> Any:
    if cache is False:
        return None
    from .metacache import MetaCache

    if cache is None or cache is True:
        return MetaCache()
    if isinstance(cache, MetaCache):
        return cache
    return MetaCache(cache)


async def _open(exchange: Any, base_url: str | None, limiter: WeightLimiter | None, session: Any,
                concurrency: int, timeout: float, backoff: BackoffPolicy | None, max_throttled: int,
                report: FetchReport, cache: Any, symbols: Sequence[str] = (), timeframe: str | None = None):
    import aiohttp

    adapter = get_adapter(exchange)
    own_session = session is None
    if own_session and hasattr(adapter, "connect"):  # ccxt: the library's own client (execute/close)
        session = adapter.connect(base_url)
    elif own_session:
        connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=min(10.0, timeout), sock_read=timeout))
    client = _Client(adapter, base_url or adapter.default_base_url, session, limiter,
                     backoff or BackoffPolicy(), max_throttled, report, timeout)
    limiter = client.limiters["weight"]
    try:
        await client.server_time()
        meta = _make_cache(cache)
        info = await client.exchange_info(meta)
        listed = adapter.listed(info) if info else None
        if listed is not None and symbols and not set(map(adapter.symbol_id, symbols)) <= listed \
                and meta is not None:
            info = await client.exchange_info(None)  # the cached list may predate a new listing
            meta.put(client.info_key(), info)
            listed = adapter.listed(info)
        if listed is not None:
            for s in symbols:
                if adapter.symbol_id(s) not in listed:
                    code, text = adapter.unlisted_error
                    raise BadRequest(f"{adapter.name} {s} {timeframe or ''}: symbol {adapter.symbol_id(s)} is "
                                     f"not listed by the exchange (code {code} {text})",
                                     exchange=adapter.name, code=code, symbol=s, timeframe=timeframe)
        budget = adapter.rate_limits(info) if info else None
        if budget is not None and getattr(limiter, "auto_configure", True):
            limiter.configure(*budget)
        client.info, client.meta = info, meta
    except BaseException:
        if own_session:
            await session.close()
        raise
    return client, session, own_session


def _check_range(timeframe: str, start: Any, end: Any) -> tuple[int, int | None]:
    from ..timeframes import TIMEFRAMES

    if timeframe not in TIMEFRAMES:
        raise ValueError(f"timeframe {timeframe!r} is not supported; expected one of {', '.join(TIMEFRAMES)}")
    lo = 0 if start is None else _to_ms(start, "start")
    hi = None if end is None else _to_ms(end, "end")
    if lo < 0:
        raise ValueError(f"start must be >= 1970-01-01, got {start!r}")
    if hi is not None and hi < lo:
        raise ValueError(f"end ({end}) is before start ({start})")
    return lo, hi


async def fetch_ohlcv(exchange: str | Adapter, symbols: str | Sequence[str], timeframe: str = "1m",
                      start: Any = None, end: Any = None, *, base_url: str | None = None, sink: Any = None,
                      keep: bool = True, limiter: WeightLimiter | None = None, session: Any = None,
                      concurrency: int = 8, parallel: int | None = None, timeout: float = 30.0,
                      backoff: BackoffPolicy | None = None, max_throttled: int = 20, cache: Any = None,
                      on_page: Callable[[str, int, int], Any] | None = None, funding: bool = False,
                      mark: bool = False) -> FetchResult:
    """Download closed OHLCV candles with open time in ``[start, end)`` for several symbols.

    Parameters
    ----------
    exchange : ``"binance"`` (spot), ``"binance_futures"`` (USD-M), ``"bybit"`` (spot),
        ``"bybit_linear"`` (linear perpetuals), ``"okx"`` (spot), ``"ccxt:<id>"`` (any
        exchange ccxt supports, extra ``nbtrade[ccxt]``), or an adapter.
    symbols : symbols in any spelling (``"BTC/USDT"``, ``"BTCUSDT"``, ``"btc-usdt"``), a list or a
        comma-separated string; each resolves to its unified symbol
        (:func:`nbtrade.data.symbols.unified_symbol`), which keys the results and the sink.
    timeframe : one of ``1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M``.
    start, end : ms since epoch, strings or Timestamps (naive = UTC). ``start=None``
        means the first candle the exchange has; ``end=None`` the last closed candle.
        ``end`` is exclusive and capped at the open time of the still-open candle.
    base_url : another server with the same API, e.g. the mock exchange's ``mock.url``.
    sink : resumable destination (``last_time``/``append``); appends happen in time order per page.
    keep : also return the candles (set False for very large downloads into a sink).
    limiter : a :class:`WeightLimiter` of your own; by default every fetch to the same
        exchange and server in this event loop shares one, seeded from exchangeInfo
        ``rateLimits`` and reconciled with the used-weight header.
    concurrency : HTTP connections; ``parallel`` segments per symbol (default
        ``max(1, concurrency // len(symbols))``).
    timeout : seconds one request may take in all (connect, headers, body) before it is
        retried; a server that trickles its reply cannot hold the fetch longer.
    backoff : retry and rate-limit policy (:class:`~nbtrade.data.ratelimit.BackoffPolicy`):
        5xx, network and malformed replies are retried ``max_retries`` times; a request
        throttled (429 and the like) fails once its waits would pass ``give_up_s``
        (default 300 s) or after ``max_throttled`` waits.
    cache : :class:`~nbtrade.data.metacache.MetaCache`, a directory, None (default
        cache dir) or False (no cache) for exchangeInfo.
    on_page : ``callback(symbol, rows_so_far, last_open_time)`` after each page.
    funding, mark : perpetual exchanges (``binance_futures``, ``bybit_linear``, ``okx_swap``): also
        fetch the funding-rate history (:func:`fetch_funding_rates`) and the mark-price candles
        (:func:`fetch_mark_ohlcv`) of the same symbols over the range the candles cover (into the
        same ``sink``); they land in ``result.funding`` / ``result.mark`` and in ``to_market()``.

    Returns
    -------
    FetchResult
        ``data[symbol]`` arrays (``time`` int64 ms, float64 OHLCV) and ``report``
        (gaps, bad rows, requests, retries, throttles).
    """
    if funding or mark:
        perp = get_adapter(exchange)
        if funding and not perp.funding_page_limit or mark and not perp.mark_path:
            raise ValueError(f"funding/mark need a perpetual exchange (binance_futures, bybit_linear, okx_swap), "
                             f"got {perp.name!r}")
        common = dict(base_url=base_url, sink=sink, limiter=limiter, session=session, timeout=timeout,
                      backoff=backoff, max_throttled=max_throttled, cache=cache)
        result = await fetch_ohlcv(perp, symbols, timeframe, start, end, keep=keep, concurrency=concurrency,
                                   parallel=parallel, on_page=on_page, **common)
        lo, _ = _check_range(timeframe, start, end)
        stop = result.report.end  # the candles' end: the open-candle cut applies to funding and marks too
        if funding:
            fr = await fetch_funding_rates(list(result.data), lo, max(lo, stop), exchange=perp, **common)
            result.funding, result.funding_report = fr.data, fr.report
        if mark:
            mk = await fetch_mark_ohlcv(perp, list(result.data), timeframe, start, max(lo, stop), keep=keep,
                                        concurrency=concurrency, parallel=parallel, **common)
            result.mark, result.mark_report = mk.data, mk.report
        return result
    adapter = get_adapter(exchange)
    names = _symbols(symbols, adapter)
    lo, hi = _check_range(timeframe, start, end)
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if parallel is not None and parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    adapter.interval(timeframe)  # a timeframe this exchange lacks fails before any request
    report = FetchReport(adapter.name, timeframe, lo, hi if hi is not None else -1)
    report.symbols = SymbolDict({s: SymbolReport(s, timeframe) for s in names}, adapter.unified)
    if hi is not None and hi == lo:
        return FetchResult(SymbolDict({s: _concat([]) for s in names}, adapter.unified), report)
    t0 = time.monotonic()
    client, session, own = await _open(adapter, base_url, limiter, session, concurrency, timeout, backoff,
                                       max_throttled, report, cache, names, timeframe)
    try:
        # the candle still open on the server, with a safety margin for clock error
        open_candle = floor_open(client.server_now() - client.margin_ms, timeframe)
        end_ms = open_candle if hi is None else min(hi, open_candle)
        report.end = end_ms
        par = parallel if parallel is not None else max(1, concurrency // len(names))
        tasks = [asyncio.ensure_future(_fetch_symbol(client, adapter.name, s, timeframe, lo, end_ms, sink, keep,
                                                     report.symbols[s], par, on_page)) for s in names]
        results = await _gather_or_cancel(tasks)
    finally:
        report.elapsed_s = time.monotonic() - t0
        report.limiter = dict(client.limiters["weight"].stats)
        if own:
            await session.close()
    return FetchResult(SymbolDict(zip(names, results), adapter.unified), report)


def _empty_funding() -> dict[str, np.ndarray]:
    return {"time": np.empty(0, np.int64), "rate": np.empty(0), "mark_price": np.empty(0)}


def _clean_funding(page: dict[str, np.ndarray], lo: int, hi: int, rep: SymbolReport,
                   descending: bool) -> dict[str, np.ndarray]:
    """One reply's funding rows, checked: in ``[lo, hi)``, sorted, each time once, finite rate,
    mark price > 0 or NaN. Dropped rows are listed in ``rep.bad_rows`` naming the field;
    duplicates are counted (the first copy is kept), a reply out of its documented order counts
    in ``rep.unsorted_pages`` and is sorted."""
    t = page["time"]
    step = np.diff(t)
    if t.shape[0] > 1 and np.any(step > 0 if descending else step < 0):
        rep.unsorted_pages += 1
    order = np.argsort(t, kind="stable")
    page = {k: v[order] for k, v in page.items()}
    t = page["time"]
    dup = np.r_[False, t[1:] == t[:-1]] if t.shape[0] else np.zeros(0, dtype=bool)
    rep.duplicates += int(dup.sum())
    keep = ~dup
    rate, mark = page["rate"], page["mark_price"]
    for mask, reason in (((t < lo) | (t >= hi), "funding 'time' outside the requested range"),
                         (~np.isfinite(rate), "funding 'rate' not a finite number"),
                         (np.isinf(mark) | (mark <= 0), "funding 'mark_price' <= 0 or infinite")):
        hit = mask & keep
        if hit.any():
            rep.bad_rows.extend((int(x), reason) for x in t[hit].tolist())
            keep &= ~mask
    return {k: v[keep] for k, v in page.items()}


async def fetch_funding_rates(symbols: str | Sequence[str], start: Any = None, end: Any = None, *,
                              exchange: str | Adapter = "binance_futures", base_url: str | None = None,
                              sink: Any = None, limiter: WeightLimiter | None = None, session: Any = None,
                              timeout: float = 30.0, backoff: BackoffPolicy | None = None,
                              max_throttled: int = 20, cache: Any = None) -> FetchResult:
    """Funding-rate history with funding time in ``[start, end)``.

    Exchanges (each adapter's module docstring cites the docs it follows): Binance USD-M
    ``/fapi/v1/fundingRate`` (pages of 1000 oldest first, cursor = last funding time + 1 ms,
    its own budget of 500 requests per 5 min), Bybit linear ``/v5/market/funding/history``
    (pages of 200 newest first, ``endTime`` = oldest seen - 1) and OKX swaps
    ``/api/v5/public/funding-rate-history`` (pages of 100 newest first, ``after`` = oldest seen).
    A short page ends the walk (the start of the history).

    ``data[symbol]`` holds ``time`` (funding time, int64 ms; may stray a few ms from the hour,
    as on Binance), ``rate`` (fraction of the notional per funding, paid by longs when positive)
    and ``mark_price`` (the mark price at funding; NaN where the exchange does not give it:
    Bybit, OKX). Rows out of range, duplicated, with a non-finite rate or a mark price <= 0 are
    dropped and listed in the report. With a ``sink`` rows go to timeframe key ``"funding"`` in
    time order and a re-run resumes after the last stored funding time; on the newest-first
    venues each page waits in the sink's journal (:mod:`nbtrade.data.pending`) until it joins
    the stored rows, so an interrupted walk resumes with the request it would have made next.
    """
    adapter = get_adapter(exchange)
    if not adapter.funding_page_limit:
        raise ValueError(f"exchange {adapter.name!r} has no funding rates; use one of binance_futures, "
                         "bybit_linear, okx_swap")
    names = _symbols(symbols, adapter)
    lo, hi = _check_range("8h", start, end)
    report = FetchReport(adapter.name, FUNDING_TIMEFRAME, lo, hi if hi is not None else -1)
    report.symbols = SymbolDict({s: SymbolReport(s, FUNDING_TIMEFRAME) for s in names}, adapter.unified)
    if hi is not None and hi == lo:
        return FetchResult(SymbolDict({s: _empty_funding() for s in names}, adapter.unified), report)
    t0 = time.monotonic()
    client, session, own = await _open(adapter, base_url, limiter, session, 4, timeout, backoff, max_throttled,
                                       report, cache, names, "funding")
    limit = adapter.funding_page_limit

    async def get_page(symbol: str, a: int, b: int) -> dict[str, np.ndarray]:
        page = await client.get(adapter.funding_request(symbol, a, b, limit), adapter.parse_funding, symbol,
                                "funding")
        report.symbols[symbol].requests += 1
        return page

    async def one(symbol: str) -> dict[str, np.ndarray]:
        rep = report.symbols[symbol]
        cursor = lo
        end_ms = client.server_now() + 1 if hi is None else hi
        if sink is not None:
            last = await _maybe_await(sink.last_time(adapter.name, symbol, FUNDING_TIMEFRAME))
            if last is not None and int(last) >= cursor:
                cursor = int(last) + 1
                rep.resumed_from = int(last)
        pages: list[dict[str, np.ndarray]] = []

        async def keep(page: dict[str, np.ndarray]) -> None:
            if page["time"].shape[0] and pages and page["time"][0] <= pages[-1]["time"][-1]:
                page = {k: v[page["time"] > pages[-1]["time"][-1]] for k, v in page.items()}
            if not page["time"].shape[0]:
                return
            rep.rows += int(page["time"].shape[0])
            rep.first = int(page["time"][0]) if rep.first is None else rep.first
            rep.last = int(page["time"][-1])
            pages.append(page)
            if sink is not None:
                await _maybe_await(sink.append(adapter.name, symbol, FUNDING_TIMEFRAME, page))

        if adapter.funding_descending:
            # newest first: each page is journaled with the interval it covers as it arrives and
            # committed in time order once it joins the last stored row (nbtrade.data.pending); an
            # interrupted walk resumes from the journal with the very request it would have made next
            walk = Walk(_page_journal(sink, adapter.name, symbol, FUNDING_TIMEFRAME), [(cursor, end_ms)], keep)
            rep.journaled_pages = walk.loaded
            for a, b in walk.gaps():
                top = b - 1
                while top >= a:
                    page = await get_page(symbol, a, top)
                    t = page["time"]
                    if t.shape[0] == 0:
                        await walk.add(a, top + 1, _empty_funding())
                        break
                    oldest = int(t.min())
                    if oldest > top:
                        break  # a server ignoring the cursor: nothing of this page is trusted
                    inside = t >= a  # a page reaching below the range is the walk's end, not a fault
                    clean = _clean_funding({k: v[inside] for k, v in page.items()}, a, top + 1, rep,
                                           descending=True)
                    if t.shape[0] < limit or oldest <= a:
                        await walk.add(a, top + 1, clean)  # the start of the history, or the range covered
                        break
                    await walk.add(oldest, top + 1, clean)
                    top = oldest - 1
            await walk.finish()
        else:
            while cursor < end_ms:
                page = await get_page(symbol, cursor, end_ms - 1)
                t = page["time"]
                n = t.shape[0]
                if n == 0:
                    break
                await keep(_clean_funding(page, cursor, end_ms, rep, descending=False))
                cursor = int(t.max()) + 1
                if n < limit:
                    break
        if rep.first is not None and rep.resumed_from is None and rep.first - cursor > DAY_MS:
            # the exchange's history begins after ``start`` (a later listing; OKX keeps three months)
            rep.listed = rep.first
        if not pages:
            return _empty_funding()
        return {k: np.concatenate([p[k] for p in pages]) for k in pages[0]}

    try:
        results = await _gather_or_cancel([asyncio.ensure_future(one(s)) for s in names])
    finally:
        report.elapsed_s = time.monotonic() - t0
        report.limiter = dict(client.limiters["weight"].stats)
        if own:
            await session.close()
    return FetchResult(SymbolDict(zip(names, results), adapter.unified), report)


def _page_journal(sink: Any, exchange: str, symbol: str, timeframe: str) -> PageJournal:
    """The sink's journal of newest-first pages (``sink.page_journal``), or one in memory."""
    fn = getattr(sink, "page_journal", None) if sink is not None else None
    return fn(exchange, symbol, timeframe) if fn is not None else PageJournal()


class _MarkSink:
    """A sink view that files mark-price candles under ``"mark_<timeframe>"`` without the volume."""

    def __init__(self, sink: Any) -> None:
        self.sink = sink

    def last_time(self, exchange: str, symbol: str, timeframe: str) -> Any:
        return self.sink.last_time(exchange, symbol, mark_timeframe(timeframe))

    def first_time(self, exchange: str, symbol: str, timeframe: str) -> Any:
        fn = getattr(self.sink, "first_time", None)
        return None if fn is None else fn(exchange, symbol, mark_timeframe(timeframe))

    def append(self, exchange: str, symbol: str, timeframe: str, arrays: dict[str, np.ndarray]) -> Any:
        return self.sink.append(exchange, symbol, mark_timeframe(timeframe),
                                {k: v for k, v in arrays.items() if k != "volume"})

    def page_journal(self, exchange: str, symbol: str, timeframe: str) -> PageJournal:
        return _page_journal(self.sink, exchange, symbol, mark_timeframe(timeframe))


async def fetch_mark_ohlcv(exchange: str | Adapter, symbols: str | Sequence[str], timeframe: str = "1m",
                           start: Any = None, end: Any = None, *, sink: Any = None, **kwargs: Any) -> FetchResult:
    """Mark-price candles with open time in ``[start, end)``: Binance USD-M ``/fapi/v1/markPriceKlines``,
    Bybit linear ``/v5/market/mark-price-kline``, OKX swaps ``/api/v5/market/history-mark-price-candles``.

    Everything :func:`fetch_ohlcv` does (paging, limits, open-candle cut, validation, gaps, resume)
    applies: mark candles page with the candles' own cursor rules (see each adapter). ``data[symbol]``
    holds ``time`` and ``open, high, low, close`` (mark prices; no volume). A mark price <= 0 is
    dropped and listed in the report's bad rows (``mark price <= 0``). With a ``sink`` they go to the
    pseudo-timeframe ``"mark_<timeframe>"`` (:func:`nbtrade.data.layout.mark_timeframe`) and a
    re-run resumes. Other keyword arguments are those of :func:`fetch_ohlcv`.
    """
    adapter = get_adapter(exchange).for_mark()
    result = await fetch_ohlcv(adapter, symbols, timeframe, start, end,
                               sink=None if sink is None else _MarkSink(sink), **kwargs)
    for s, arrays in result.data.items():
        arrays.pop("volume", None)
    for rep in result.report.symbols.values():
        rep.flat_zero_volume = []  # mark candles have no volume: "flat zero-volume" means nothing here
        rep.bad_rows = [(t, "mark " + reason) for t, reason in rep.bad_rows]
    result.report.timeframe = mark_timeframe(timeframe)
    return result


def fetch_mark_ohlcv_sync(*args: Any, **kwargs: Any) -> FetchResult:
    """Blocking :func:`fetch_mark_ohlcv`."""
    return _run_sync(fetch_mark_ohlcv(*args, **kwargs))


async def fetch_filters(exchange: str | Adapter, symbols: str | Sequence[str] | None = None, *,
                        base_url: str | None = None, session: Any = None, cache: Any = None,
                        timeout: float = 30.0) -> Any:
    """Each symbol's exchange filters, from the exchange's metadata endpoint, as a table.

    Binance/USD-M ``exchangeInfo`` (PRICE_FILTER, LOT_SIZE, NOTIONAL / MIN_NOTIONAL), Bybit
    ``instruments-info`` (priceFilter, lotSizeFilter), OKX ``instruments`` (tickSz, lotSz,
    minSz, maxMktSz) and ccxt's markets (precision and limits). The metadata reply is kept
    in the metadata cache (:class:`~nbtrade.data.metacache.MetaCache`, TTL one hour), which
    is where the table's provenance comes from.

    Parameters
    ----------
    exchange : as for :func:`fetch_ohlcv`.
    symbols : any spellings; None for every symbol the exchange lists. A symbol the exchange
        does not list raises :class:`BadRequest` naming it.

    Returns
    -------
    pandas.DataFrame
        Index ``symbol`` (unified); float columns ``tick_size`` (price step), ``step_size``
        (quantity step, base units), ``min_qty``, ``max_qty``, ``min_notional`` (quote
        currency), NaN where the exchange has no such rule; provenance columns ``exchange``,
        ``source`` (the metadata URL) and ``fetched_at`` (UTC time of the metadata reply).
    """
    import pandas as pd

    from .exchanges.base import FILTER_COLUMNS

    adapter = get_adapter(exchange)
    names = _symbols(symbols, adapter) if symbols is not None else None
    report = FetchReport(adapter.name, "filters", 0, 0)
    client, session, own = await _open(adapter, base_url, None, session, 2, timeout, None, 20, report, cache,
                                       names or (), "filters")
    try:
        info = client.info
        if info is None:
            raise ValueError(f"{adapter.name} has no metadata endpoint to read filters from")
        table = adapter.symbol_filters(info)
        created = client.meta.created(client.info_key()) if client.meta is not None else None
    finally:
        if own:
            await session.close()
    if names is not None:
        missing = [s for s in names if s not in table]
        if missing:
            raise BadRequest(f"{adapter.name}: no filters for {', '.join(missing)} in "
                             f"{adapter.exchange_info_path} (listed but not trading, or not a symbol it trades)",
                             exchange=adapter.name, symbol=missing[0])
        table = {s: table[s] for s in names}
    frame = pd.DataFrame.from_dict(table, orient="index", columns=list(FILTER_COLUMNS)).astype(float)
    frame.index.name = "symbol"
    frame["exchange"] = adapter.name
    frame["source"] = client.base_url + adapter.exchange_info_path
    stamp = pd.Timestamp(created, unit="s", tz="UTC") if created is not None else pd.Timestamp.now(tz="UTC")
    frame["fetched_at"] = stamp
    return frame


def fetch_filters_sync(*args: Any, **kwargs: Any) -> Any:
    """Blocking :func:`fetch_filters`."""
    return _run_sync(fetch_filters(*args, **kwargs))


def _run_sync(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise RuntimeError("an event loop is running here: use `await fetch_ohlcv(...)` instead of the sync wrapper")


def fetch_ohlcv_sync(*args: Any, **kwargs: Any) -> FetchResult:
    """Blocking :func:`fetch_ohlcv` (runs its own event loop)."""
    return _run_sync(fetch_ohlcv(*args, **kwargs))


def fetch_funding_rates_sync(*args: Any, **kwargs: Any) -> FetchResult:
    """Blocking :func:`fetch_funding_rates`."""
    return _run_sync(fetch_funding_rates(*args, **kwargs))


def run_fetch(exchange: str, symbols: str | Sequence[str], timeframe: str = "1h", start: Any = None,
              end: Any = None, store: str | None = None, base_url: str | None = None,
              funding: bool = False, mark: bool = False) -> int:
    """``nbtrade fetch EXCHANGE SYMBOLS --timeframe --start --end [--store PATH] [--base-url URL]
    [--funding] [--mark]``.

    Prints the report summaries; with ``store`` candles (and funding rates, mark-price candles)
    go to the HDF5 store and a re-run resumes. Returns a process exit code (1 if bad rows were found).
    """
    sink = None
    if store is not None:
        from .store import Store  # the HDF5 store (nbtrade.data.store)

        sink = Store(store)
    try:
        result = fetch_ohlcv_sync(exchange, symbols, timeframe, start, end, base_url=base_url, sink=sink,
                                  keep=store is None, funding=funding, mark=mark)
    finally:
        if sink is not None and hasattr(sink, "close"):
            sink.close()
    reports = [r for r in (result.report, result.funding_report, result.mark_report) if r is not None]
    for r in reports:
        print(r.summary())
    return 0 if all(r.ok for r in reports) else 1
