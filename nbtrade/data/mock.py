"""A local mock of Binance spot/USD-M, Bybit v5 and OKX v5 REST, serving nbtrade.synthetic candles.

A real ``aiohttp.web`` server bound to 127.0.0.1 with the endpoints, parameters,
layouts, error codes, weights, headers and limits of the real API (see
../shared/EXCHANGES.md), so the fetcher is tested exactly as it runs against
Binance, without the internet:

- ``GET /api/v3/klines`` (weight 2, limit <= 1000), ``/api/v3/exchangeInfo`` (20),
  ``/api/v3/time`` and ``/api/v3/ping`` (1); ``GET /fapi/v1/klines`` (weight 1/2/5/10
  by limit, limit <= 1500), ``/fapi/v1/exchangeInfo``, ``/fapi/v1/time``,
  ``/fapi/v1/fundingRate`` (own budget of requests per window, limit <= 1000).
- Kline rows: 12 fields, times and trade counts as ints, prices and volumes as
  strings with 8 decimals, oldest first. ``startTime``/``endTime`` filter on open
  time, inclusive; without bounds the newest ``limit`` rows, the last one still open.
- Per-IP weight in fixed windows aligned to the server clock (configurable length
  so tests run in seconds), ``X-MBX-USED-WEIGHT-1M`` on every reply, 429 with
  ``Retry-After`` and code -1003 over the limit, 418 (ban) when a client keeps
  sending before its ``Retry-After`` has passed. Weight is counted for every
  request, rejected ones included, as Binance does.
- Errors ``{"code", "msg"}`` with HTTP 400: -1121 bad symbol, -1120 bad interval,
  -1102 missing or malformed parameter, -1023 start after end, -1130 bad limit.
- The server clock starts at ``MockConfig.now`` and advances in real time, so a
  test sees a fixed set of closed candles; the data are generated once from
  ``MockConfig.origin`` and never change.
- Bybit v5 (``/v5/market/kline``, ``instruments-info``, ``time``): the same candles
  (``category=spot`` = Binance spot's, ``linear`` = USD-M's) as 7-string rows, newest
  first, the newest ``limit`` of ``[start, end]``; ``{retCode, retMsg, result,
  retExtInfo, time}`` bodies, retCode 10001 (HTTP 200) for bad parameters; no
  ``X-Bapi-Limit*`` headers (the docs give them per UID and endpoint for private
  endpoints; the public market endpoints have only the IP budget, which has no header);
  over ``bybit_limit`` requests per ``bybit_window_s`` (600 per 5 s) HTTP 403 "access too
  frequent" and a ban of ``bybit_ban_s``; storms answer retCode 10006 "Too many visits!".
- OKX v5 (``/api/v5/market/history-candles``, ``/api/v5/public/instruments``,
  ``/api/v5/public/time``): spot candles as 9-string rows newest first (``after``/
  ``before`` exclusive, ``limit`` <= 300, ``confirm`` "0" on the open candle), bars
  ``1m..4H`` and the UTC ones ``6Hutc 12Hutc 1Dutc 1Wutc 1Mutc`` (51000 for others);
  ``{code, msg, data}`` bodies, 51001 unknown instrument; over ``okx_limit`` requests
  per ``okx_window_s`` (20 per 2 s), and in storms, HTTP 429 code 50011.
- Perpetuals (issue 17; each endpoint's docstring gives the rules it follows): Binance
  ``/fapi/v1/markPriceKlines`` (kline parameters and weights, mark prices, volumes "0"), Bybit
  ``/v5/market/mark-price-kline`` (5-string rows) and ``/v5/market/funding/history`` (limit <= 200,
  newest first, startTime alone refused), OKX swaps ``BTC-USDT-SWAP`` (``instType=SWAP``; candles,
  ``history-mark-price-candles`` and ``mark-price-candles`` (latest 1440), ``funding-rate-history``
  (limit <= 400, the last 90 days only); the first and the last charged 2 in the 20-per-2-s window). Mark candles are the
  futures candles times a small smooth basis; funding is 8-hourly (Binance times a few ms past
  the hour). ``bad_marks`` and ``funding_dupes`` inject a mark price of 0 and duplicated fundings.
- Every reply carries a ``Date`` header from the mock's clock (whole seconds); the time
  endpoints can be skewed (``time_skew_s``) to test the open-candle cut.
- Weights are the mock's own tables, each with its source (not imported from the adapters).
- Fault injection (:class:`Faults`): 429 storms, WAF 403 blocks, 5xx, dropped connections,
  truncated and malformed JSON, slow replies; maintenance gaps and corrupt rows
  are data options of :class:`MockConfig`.

Use ``async with serve(config) as mock: mock.url`` in async code, ``serve_in_thread``
from synchronous code, and ``run_mock_exchange(port=8080)`` for the CLI.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from .. import synthetic
from ..timeframes import DAY_MS, index_to_ms
from ._grid import next_open

__all__ = ["Faults", "MockConfig", "MockExchange", "serve", "serve_in_thread", "run_mock_exchange"]

INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
DEFAULT_SYMBOLS = ("BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT", "XRP/USDT")
#: USD-M ``/fapi/v1/klines`` weight by ``limit``, read from Binance's "Kline/Candlestick Data" page
#: (developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data):
#: [1, 100) -> 1, [100, 500) -> 2, [500, 1000] -> 5, > 1000 -> 10. Written here on purpose, not
#: imported from the adapter: the mock is an independent reading of the docs.
FUTURES_KLINE_WEIGHT = ((99, 1), (499, 2), (1000, 5), (1500, 10))
#: OKX funding-rate-history "can return data up to three months" (okx.com/docs-v5, Get funding rate history)
OKX_FUNDING_DAYS = 90
#: spot ``/api/v3/klines``: a flat weight of 2 (binance-spot-api-docs rest-api.md, "Kline/Candlestick data")
SPOT_KLINE_WEIGHT = 2
#: spot ``/api/v3/exchangeInfo`` weight 20 (rest-api.md); USD-M exchangeInfo 1 ("Exchange Information")
SPOT_INFO_WEIGHT, FUTURES_INFO_WEIGHT = 20, 1
#: the body of a Binance WAF block (HTTP 403; rest-api.md "HTTP Return Codes": "the WAF limit
#: (Web Application Firewall) has been violated"); CloudFront serves it as HTML
_WAF_BODY = ("<html><head><title>403 Forbidden</title></head><body><h1>403 ERROR</h1>"
             "<h2>The request could not be satisfied.</h2>Request blocked.</body></html>")
_BAN_MSG = ("Way too much request weight used; IP banned until {until}. "
            "Please use WebSocket Streams for live updates to avoid bans.")
_LIMIT_MSG = ("Too much request weight used; current limit is {limit} request weight per {window}. "
              "Please use WebSocket Streams for live updates to avoid polling the API.")


def _exchange_id(symbol: str) -> str:
    """Binance/Bybit id of a unified symbol as the exchanges spell it: ``BTC/USDT(:USDT)`` -> ``BTCUSDT``."""
    return symbol.split(":")[0].upper().replace("/", "")


def _ms(value: Any) -> int:
    if value is None:
        raise ValueError("time must not be None")
    return synthetic._to_ms(value)


@dataclass
class Faults:
    """Fault injection on data endpoints (klines, fundingRate); probabilities per request.

    ``storms`` is a list of ``(after_requests, seconds)``: after that many data
    requests, every request is answered 429 for that many seconds (``Retry-After``
    tells the client when the storm ends). ``seed`` makes the draws reproducible.
    """

    seed: int = 0
    p_5xx: float = 0.0
    p_drop: float = 0.0
    p_truncate: float = 0.0
    p_malformed: float = 0.0
    p_slow: float = 0.0
    slow_s: float = 0.3
    storms: Sequence[tuple[int, float]] = ()
    #: ``(after_requests, seconds)``: Binance data requests answered HTTP 403 by the WAF (no
    #: Retry-After, an HTML body) for that many seconds
    waf: Sequence[tuple[int, float]] = ()


@dataclass
class MockConfig:
    """What the mock exchange serves and how strictly it limits.

    Parameters
    ----------
    symbols : unified symbols listed on both markets.
    origin : first candle time (data are generated from here once).
    now : server clock at start-up; it then advances in real time.
    seed, gaps : passed to :func:`nbtrade.synthetic.candles` (``gaps`` = random outages).
    strength : > 0 serves :func:`nbtrade.synthetic.planted_market` candles instead, carrying a
        weak known predictable component of that strength (the demo's models have something to find).
    maintenance : ``[(start, end), ...]`` windows with no candles on any symbol.
    bad_rows : ``{symbol: [open_time, ...]}`` rows served with ``high`` below ``open``.
    flat_rows : ``{symbol: [open_time, ...]}`` rows served as Binance's outage fillers
        (open = high = low = close, volume 0).
    weight_limit, futures_weight_limit : weight per window per IP (spot 6000, futures 2400).
    window_s : length of the weight window in seconds (Binance: 60).
    funding_limit, funding_window_s : fundingRate requests per window per IP (500 per 300 s).
    ban_after : 429s tolerated before the ``Retry-After`` of the first one has passed, then
        418; requests arriving within ``ban_grace_s`` of that 429 (in flight) do not count.
    ban_s : length of a ban in seconds.
    bybit_limit, bybit_window_s, bybit_ban_s : Bybit's IP limit (600 requests per 5 s); one
        request over it is answered 403 "access too frequent" and bans the IP for ``bybit_ban_s``.
    bybit_from_start : serve the oldest ``limit`` rows from ``start`` instead of the newest up to
        ``end`` (both behaviours are reported for the real API; the adapter must not care).
    okx_limit, okx_window_s : OKX's IP limit (20 requests per 2 s); over it, HTTP 429 code 50011.
    listed : ``{symbol: time}``: the symbol's first candle (no candles before it on any market).
    time_skew_s : the time endpoints report the server clock plus this many seconds (a client whose
        clock estimate runs ahead); data replies and ``Date`` headers keep the true clock.
    bad_marks : ``{symbol: [open_time, ...]}`` mark-price candles served with a low of 0 (a mark price <= 0).
    funding_dupes : ``{symbol: [funding_time, ...]}`` funding rows served twice (a duplicated timestamp).
    """

    symbols: Sequence[str] = DEFAULT_SYMBOLS
    origin: Any = "2024-01-01"
    now: Any = "2024-03-01 00:00:30"
    seed: int = 0
    gaps: float = 0.0
    strength: float = 0.0
    maintenance: Sequence[tuple[Any, Any]] = ()
    bad_rows: dict[str, Sequence[Any]] = field(default_factory=dict)
    flat_rows: dict[str, Sequence[Any]] = field(default_factory=dict)
    weight_limit: int = 6000
    futures_weight_limit: int = 2400
    window_s: float = 60.0
    funding_limit: int = 500
    funding_window_s: float = 300.0
    ban_after: int = 10
    ban_grace_s: float = 0.05
    ban_s: float = 120.0
    horizon_s: float = 6 * 3600.0
    bybit_limit: int = 600
    bybit_window_s: float = 5.0
    bybit_ban_s: float = 600.0
    bybit_from_start: bool = False
    okx_limit: int = 20
    okx_window_s: float = 2.0
    listed: dict[str, Any] = field(default_factory=dict)
    time_skew_s: float = 0.0
    bad_marks: dict[str, Sequence[Any]] = field(default_factory=dict)
    funding_dupes: dict[str, Sequence[Any]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)


@dataclass
class MockStats:
    """What the server saw; ``window_weight[(market, window_id)]`` is the IP-total weight."""

    requests: int = 0
    data_requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    status: dict[int, int] = field(default_factory=dict)
    window_weight: dict[tuple[str, int], int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)

    @property
    def n429(self) -> int:
        return self.status.get(429, 0)

    @property
    def n418(self) -> int:
        return self.status.get(418, 0)

    def max_weight(self, market: str = "api") -> int:
        return max((w for (m, _), w in self.window_weight.items() if m == market), default=0)


class _Reply(Exception):
    """Raised inside a handler to answer with an error body."""

    def __init__(self, status: int, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg, self.headers = status, code, msg, headers or {}


class _Window:
    __slots__ = ("win", "used")

    def __init__(self) -> None:
        self.win, self.used = None, 0


class MockExchange:
    """State and handlers of the mock; :func:`serve` runs it."""

    def __init__(self, config: MockConfig | None = None, **overrides: Any) -> None:
        config = config or MockConfig()
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise TypeError(f"unknown mock option {key!r}")
            setattr(config, key, value)
        self.config = config
        self.ids = {_exchange_id(s): s for s in config.symbols}
        self.origin = _ms(config.origin)
        self.now0 = _ms(config.now)
        if self.origin >= self.now0:
            raise ValueError("origin must be before now")
        self._t0 = time.monotonic()
        self._data: dict[tuple[str, str, str], dict[str, np.ndarray]] = {}
        self._funding: dict[str, dict[str, np.ndarray]] = {}
        self._windows: dict[tuple[str, str], _Window] = {}
        self._cooldown: dict[str, float] = {}     # ip -> server ms until which requests are violations
        self._cooldown_from: dict[str, float] = {}
        self._violations: dict[str, int] = {}
        self._banned_until: dict[str, float] = {}
        self._storm_until = -math.inf
        self._storms = sorted(config.faults.storms)
        self._wafs = sorted(config.faults.waf)
        self._waf_until = -math.inf
        self._rng = random.Random(config.faults.seed)
        self.stats = MockStats()
        self.url = ""
        self.port = 0
        self._maintenance = [(_ms(a), _ms(b)) for a, b in config.maintenance]
        self.okx_ids = {s.split(":")[0].upper().replace("/", "-"): s for s in config.symbols if "/" in s}
        #: OKX perpetual swap ids (``BTC-USDT-SWAP``): the futures market's candles
        self.okx_swap_ids = {i + "-SWAP": s for i, s in self.okx_ids.items()}
        self._marks: dict[tuple[str, str], dict[str, np.ndarray]] = {}

    # -- clock and data --------------------------------------------------------------------------
    def server_ms(self) -> int:
        """Server clock in ms: ``config.now`` plus the real time elapsed since start-up."""
        return self.now0 + int((time.monotonic() - self._t0) * 1000)

    def reported_ms(self) -> int:
        """What the time endpoints say: the server clock plus ``time_skew_s``."""
        return self.server_ms() + int(self.config.time_skew_s * 1000)

    def date_header(self) -> str:
        """RFC 7231 ``Date`` of the server clock (whole seconds, as real servers send it)."""
        from email.utils import formatdate

        return formatdate(self.server_ms() // 1000, usegmt=True)

    def candles(self, symbol: str, timeframe: str, market: str = "spot") -> dict[str, np.ndarray]:
        """Every candle the mock has (beyond ``now`` too), as float64/int64 arrays before formatting."""
        key = (symbol, timeframe, market)
        if key not in self._data:
            self._data[key] = self._generate(symbol, timeframe, market)
        return self._data[key]

    def _generate(self, symbol: str, timeframe: str, market: str) -> dict[str, np.ndarray]:
        seed = self.config.seed + (7919 if market == "futures" else 0)
        end = self.now0 + int(self.config.horizon_s * 1000)
        if timeframe == "1M":
            daily = self.candles(symbol, "1d", market)
            month = daily["time"].astype("datetime64[ms]").astype("datetime64[M]")
            starts = np.flatnonzero(np.r_[True, month[1:] != month[:-1]])
            ends = np.r_[starts[1:], month.shape[0]]
            out = {"time": month[starts].astype("datetime64[ms]").astype(np.int64),
                   "open": daily["open"][starts], "close": daily["close"][ends - 1],
                   "high": np.maximum.reduceat(daily["high"], starts),
                   "low": np.minimum.reduceat(daily["low"], starts),
                   "volume": np.add.reduceat(daily["volume"], starts)}
            return out
        shift = 4 * DAY_MS if timeframe == "1w" else 0
        if self.config.strength > 0:
            frame = synthetic.planted_market(symbol, self.origin - shift, end, timeframe, seed=seed,
                                             strength=self.config.strength)
            raw = {"time": index_to_ms(frame.index), **{k: frame[k].to_numpy() for k in frame.columns}}
            if self.config.gaps > 0:
                keep = synthetic._gap_mask(np.random.default_rng(seed), raw["time"].shape[0], self.config.gaps)
                raw = {k: v[keep] for k, v in raw.items()}
        else:
            raw = synthetic.candles(symbol, self.origin - shift, end, timeframe, seed=seed, gaps=self.config.gaps)
        raw["time"] = raw["time"] + shift
        keep = np.ones(raw["time"].shape[0], dtype=bool)
        for a, b in self._maintenance:
            keep &= ~((raw["time"] >= a) & (raw["time"] < b))
        keep &= raw["time"] >= self.origin
        if symbol in self.config.listed:
            keep &= raw["time"] >= _ms(self.config.listed[symbol])
        out = {k: v[keep] for k, v in raw.items()}
        for t in self.config.bad_rows.get(symbol, ()):
            i = np.searchsorted(out["time"], _ms(t))
            if i < out["time"].shape[0] and out["time"][i] == _ms(t):
                out["high"][i] = min(out["open"][i], out["close"][i]) * 0.99
        for t in self.config.flat_rows.get(symbol, ()):
            i = np.searchsorted(out["time"], _ms(t))
            if i < out["time"].shape[0] and out["time"][i] == _ms(t):
                for col in ("open", "high", "low", "close"):
                    out[col][i] = out["open"][i]
                out["volume"][i] = 0.0
        return out

    def funding(self, symbol: str) -> dict[str, np.ndarray]:
        if symbol not in self._funding:
            c = self.candles(symbol, "8h", "futures")
            rng = np.random.default_rng(synthetic.symbol_seed(symbol, self.config.seed + 31))
            n = c["time"].shape[0]
            jitter = rng.integers(0, 10, n)  # real fundingTime values stray a few ms from the hour
            rate = np.round(rng.normal(1e-4, 1.5e-4, n), 8)
            self._funding[symbol] = {"time": c["time"] + jitter, "rate": rate, "mark_price": c["open"]}
        return self._funding[symbol]

    def mark_candles(self, symbol: str, timeframe: str) -> dict[str, np.ndarray]:
        """Mark-price candles: the perpetual's candles times a small smooth basis (all four prices by
        the same factor, so every candle stays consistent), no volume; ``bad_marks`` rows get low 0."""
        key = (symbol, timeframe)
        if key not in self._marks:
            c = self.candles(symbol, timeframe, "futures")
            i = np.arange(c["time"].shape[0])
            phase = float(zlib.crc32(symbol.encode()) % 100)
            f = 1.0 + 2e-4 * np.sin(i / 7.0 + phase)
            out = {"time": c["time"], **{k: c[k] * f for k in ("open", "high", "low", "close")}}
            for t in self.config.bad_marks.get(symbol, ()):
                j = np.searchsorted(out["time"], _ms(t))
                if j < out["time"].shape[0] and out["time"][j] == _ms(t):
                    out["low"] = out["low"].copy()
                    out["low"][j] = 0.0
            self._marks[key] = out
        return self._marks[key]

    def expected_mark(self, symbol: str, timeframe: str, start: Any = None, end: Any = None
                      ) -> dict[str, np.ndarray]:
        """Closed mark-price candles in ``[start, end)`` as a client parses them (8 decimals, no volume)."""
        c = self.mark_candles(symbol, timeframe)
        t = c["time"]
        lo = t[0] if start is None else _ms(start)
        hi = np.iinfo(np.int64).max if end is None else _ms(end)
        now = self.server_ms()
        mask = (t >= lo) & (t < hi)
        sel = np.flatnonzero(mask)
        closes = np.array([next_open(int(x), timeframe) for x in t[sel].tolist()], dtype=np.int64)
        sel = sel[closes <= now]
        out = {"time": t[sel].copy()}
        for col in ("open", "high", "low", "close"):
            out[col] = np.array([float(f"{x:.8f}") for x in c[col][sel].tolist()])
        return out

    def funding_rows(self, symbol: str, venue: str = "binance") -> dict[str, np.ndarray]:
        """Funding events as served: Binance's ``fundingTime`` strays a few ms from the hour, Bybit's
        and OKX's are on the hour; ``funding_dupes`` rows appear twice."""
        f = self.funding(symbol)
        t = f["time"] if venue == "binance" else f["time"] - f["time"] % 3_600_000
        out = {"time": t, "rate": f["rate"], "mark_price": f["mark_price"]}
        dupes = [_ms(x) for x in self.config.funding_dupes.get(symbol, ())]
        if dupes:
            idx = np.sort(np.r_[np.arange(t.shape[0]), np.flatnonzero(np.isin(t - t % 3_600_000, dupes))])
            out = {k: v[idx] for k, v in out.items()}
        return out

    def expected_funding(self, symbol: str, start: Any = None, end: Any = None, venue: str = "binance"
                         ) -> dict[str, np.ndarray]:
        """Funding events in ``[start, end)`` (each once) as a client parses them; ``mark_price`` NaN
        off Binance (Bybit and OKX do not report it)."""
        f = self.funding_rows(symbol, venue)
        t = f["time"]
        lo = -1 if start is None else _ms(start)
        if venue == "okx":  # OKX serves the last three months only
            lo = max(lo, self.server_ms() - OKX_FUNDING_DAYS * DAY_MS)
        hi = self.server_ms() + 1 if end is None else min(_ms(end), self.server_ms() + 1)
        sel = np.flatnonzero((t >= lo) & (t < hi) & np.r_[True, t[1:] != t[:-1]])
        out = {"time": t[sel].copy(), "rate": np.array([float(f"{x:.8f}") for x in f["rate"][sel].tolist()])}
        out["mark_price"] = (np.array([float(f"{x:.8f}") for x in f["mark_price"][sel].tolist()])
                             if venue == "binance" else np.full(sel.shape[0], np.nan))
        return out

    def expected(self, symbol: str, timeframe: str, start: Any = None, end: Any = None,
                 market: str = "spot", closed_only: bool = True) -> dict[str, np.ndarray]:
        """Candles with open time in ``[start, end)`` exactly as a client parses them (8 decimals).

        With ``closed_only`` the candle still open at the current server time is left out.
        """
        c = self.candles(symbol, timeframe, market)
        t = c["time"]
        lo = t[0] if start is None else _ms(start)
        hi = np.iinfo(np.int64).max if end is None else _ms(end)
        now = self.server_ms()
        mask = (t >= lo) & (t < hi) & (t <= now)
        if closed_only:
            closes = np.array([next_open(int(x), timeframe) for x in t[mask].tolist()], dtype=np.int64)
            sel = np.flatnonzero(mask)[closes <= now]
        else:
            sel = np.flatnonzero(mask)
        out = {"time": t[sel].copy()}
        for col in ("open", "high", "low", "close", "volume"):
            out[col] = np.array([float(f"{x:.8f}") for x in c[col][sel].tolist()])
        return out

    # -- limits ---------------------------------------------------------------------------------
    def _charge(self, ip: str, market: str, weight: int, limit: int, window_s: float) -> int:
        """Add ``weight`` to the IP's window; raise a 429/418 reply when over. Returns the used weight."""
        now = self.server_ms()
        wms = int(window_s * 1000)
        win = now // wms
        slot = self._windows.setdefault((ip, market), _Window())
        if slot.win != win:
            slot.win, slot.used = win, 0
        slot.used += weight
        key = (market, int(win))
        self.stats.window_weight[key] = slot.used
        if slot.used > limit:
            retry = max(1, math.ceil(((win + 1) * wms - now) / 1000))
            label = f"{window_s:g}s" if window_s != 60 else "1m"
            raise self._too_many(ip, now, retry, _LIMIT_MSG.format(limit=limit, window=label))
        return slot.used

    def _gate(self, ip: str) -> None:
        """418 for banned IPs."""
        now = self.server_ms()
        if self._banned_until.get(ip, 0) > now:
            retry = math.ceil((self._banned_until[ip] - now) / 1000)
            raise _Reply(418, -1003, _BAN_MSG.format(until=int(self._banned_until[ip])), {"Retry-After": str(retry)})

    def _too_many(self, ip: str, now: int, retry: int, msg: str) -> _Reply:
        """The 429 to send, or a 418 when the IP keeps hitting the limit before its Retry-After."""
        if self._cooldown.get(ip, 0) > now:
            # requests already in flight when the first 429 went out are not held against the client
            if now - self._cooldown_from.get(ip, now) >= self.config.ban_grace_s * 1000:
                self._violations[ip] = self._violations.get(ip, 0) + 1
                if self._violations[ip] > self.config.ban_after:
                    self._banned_until[ip] = now + self.config.ban_s * 1000
                    return _Reply(418, -1003, _BAN_MSG.format(until=int(self._banned_until[ip])),
                                  {"Retry-After": str(math.ceil(self.config.ban_s))})
        else:
            self._violations[ip] = 0
        self._start_cooldown(ip, now, retry)
        return _Reply(429, -1003, msg, {"Retry-After": str(retry)})

    def _start_cooldown(self, ip: str, now: int, retry: int) -> None:
        if self._cooldown.get(ip, 0) <= now:
            self._cooldown_from[ip] = now
        self._cooldown[ip] = max(self._cooldown.get(ip, 0), now + retry * 1000)

    def _storm(self, ip: str) -> None:
        now = self.server_ms()
        while self._storms and self.stats.data_requests > self._storms[0][0]:
            _, seconds = self._storms.pop(0)
            self._storm_until = now + seconds * 1000
        if now < self._storm_until:
            retry = max(1, math.ceil((self._storm_until - now) / 1000))
            self.stats.faults["storm"] = self.stats.faults.get("storm", 0) + 1
            raise self._too_many(ip, now, retry, _LIMIT_MSG.format(limit="?", window="storm"))

    def _waf_blocked(self) -> bool:
        now = self.server_ms()
        while self._wafs and self.stats.data_requests > self._wafs[0][0]:
            _, seconds = self._wafs.pop(0)
            self._waf_until = now + seconds * 1000
        if now < self._waf_until:
            self.stats.faults["waf"] = self.stats.faults.get("waf", 0) + 1
            return True
        return False

    def reset_limits(self) -> None:
        """Forget weight, cooldowns and bans (between test phases)."""
        self._windows.clear()
        self._cooldown.clear()
        self._violations.clear()
        self._banned_until.clear()

    # -- request handling -----------------------------------------------------------------------
    async def handle(self, request: Any) -> Any:
        from aiohttp import web

        path = request.path
        if path.startswith("/v5/"):
            return await self._handle_venue(request, "bybit")
        if path.startswith("/api/v5/"):
            return await self._handle_venue(request, "okx")
        ip = request.remote or "?"
        self.stats.requests += 1
        self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        market = "fapi" if path.startswith("/fapi/") else "api"
        limit = self.config.futures_weight_limit if market == "fapi" else self.config.weight_limit
        headers: dict[str, str] = {"Date": self.date_header()}
        try:
            route = _ROUTES.get(path)
            if route is None:
                raise _Reply(404, -1000, f"unknown path {path}")
            method, weight_fn, is_data = route
            q = request.query
            self._gate(ip)
            weight = weight_fn(q)
            used = self._charge(ip, market, weight, limit, self.config.window_s)
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            if path == "/fapi/v1/fundingRate":
                self._charge(ip, "funding", 1, self.config.funding_limit, self.config.funding_window_s)
            if is_data:
                self.stats.data_requests += 1
                if self._waf_blocked():
                    self.stats.status[403] = self.stats.status.get(403, 0) + 1
                    return web.Response(status=403, text=_WAF_BODY, content_type="text/html", headers=headers)
                self._storm(ip)
                fault = self._draw_fault()
                if fault == "slow":
                    await asyncio.sleep(self.config.faults.slow_s)
                elif fault == "drop":
                    request.transport.close()
                    return web.Response(status=500)
                elif fault == "5xx":
                    raise _Reply(self._rng.choice([500, 502, 503, 504]), -1001,
                                 "Internal error; unable to process your request. Please try again.")
            else:
                fault = None
            body = method(self, q)
            text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
            if fault == "truncate":
                text = text[: max(1, len(text) // 2)]
            elif fault == "malformed":
                text = self._rng.choice(["<html><body>502 Bad Gateway</body></html>", text.replace("]", "}", 1),
                                         '{"code":0,"msg":', "[[1704067200000,\"42\",]]"])
            status = 200
        except _Reply as reply:
            status = reply.status
            headers.update(reply.headers)
            if market != "funding" and "X-MBX-USED-WEIGHT-1M" not in headers:
                slot = self._windows.get((ip, market))
                headers["X-MBX-USED-WEIGHT-1M"] = str(slot.used if slot else 0)
            text = json.dumps({"code": reply.code, "msg": reply.msg})
        self.stats.status[status] = self.stats.status.get(status, 0) + 1
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _draw_fault(self) -> str | None:
        f = self.config.faults
        r = self._rng.random()
        for name, p in (("5xx", f.p_5xx), ("drop", f.p_drop), ("truncate", f.p_truncate),
                        ("malformed", f.p_malformed), ("slow", f.p_slow)):
            if r < p:
                self.stats.faults[name] = self.stats.faults.get(name, 0) + 1
                return name
            r -= p
        return None

    # -- endpoints ------------------------------------------------------------------------------
    def _symbol(self, q: Any) -> str:
        sym = q.get("symbol")
        if not sym:
            raise _Reply(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
        if sym not in self.ids:
            raise _Reply(400, -1121, "Invalid symbol.")
        return self.ids[sym]

    @staticmethod
    def _int(q: Any, name: str, default: int | None = None) -> int | None:
        value = q.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise _Reply(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                     "or malformed.") from None

    def _bounds(self, q: Any, max_limit: int, default_limit: int) -> tuple[int | None, int | None, int]:
        start, end = self._int(q, "startTime"), self._int(q, "endTime")
        limit = self._int(q, "limit", default_limit)
        if not 1 <= limit <= max_limit:
            raise _Reply(400, -1130, "Invalid data sent for a parameter.")
        if start is not None and end is not None and start > end:
            raise _Reply(400, -1023, "Start time is greater than end time.")
        return start, end, limit

    @staticmethod
    def _select(t: np.ndarray, start: int | None, end: int | None, limit: int, now: int) -> slice:
        hi_all = int(np.searchsorted(t, now, side="right"))  # nothing opens after the server clock
        lo = 0 if start is None else int(np.searchsorted(t, start, side="left"))
        hi = hi_all if end is None else min(hi_all, int(np.searchsorted(t, end, side="right")))
        if start is None:
            lo = max(lo, hi - limit)  # newest rows
        hi = min(hi, lo + limit)
        return slice(lo, max(lo, hi))

    def klines(self, q: Any, market: str) -> str:
        symbol = self._symbol(q)
        interval = q.get("interval")
        if not interval:
            raise _Reply(400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS:
            raise _Reply(400, -1120, "Invalid interval.")
        if market == "spot" and q.get("timeZone", "0") not in ("0", "+0", "0:00", "+00:00", "00:00"):
            raise _Reply(400, -1130, "Invalid data sent for a parameter.")  # only UTC boundaries served
        start, end, limit = self._bounds(q, 1000 if market == "spot" else 1500, 500)
        c = self.candles(symbol, interval, market)
        sl = self._select(c["time"], start, end, limit, self.server_ms())
        return _format_klines(c, sl, interval, market)

    def mark_price_klines(self, q: Any) -> str:
        """``/fapi/v1/markPriceKlines``: the kline parameters and rules, mark prices in fields 1-4, volume
        fields "0" (the first one "0 ", as in Binance's own example)."""
        symbol = self._symbol(q)
        interval = q.get("interval")
        if not interval:
            raise _Reply(400, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVALS:
            raise _Reply(400, -1120, "Invalid interval.")
        start, end, limit = self._bounds(q, 1500, 500)
        c = self.mark_candles(symbol, interval)
        sl = self._select(c["time"], start, end, limit, self.server_ms())
        t = c["time"][sl]
        close_t = ([next_open(int(x), "1M") - 1 for x in t.tolist()] if interval == "1M"
                   else (t + next_open(0, interval) - 1).tolist())
        o, h, l, cl = (c[k][sl].tolist() for k in ("open", "high", "low", "close"))
        rows = ['[%d,"%.8f","%.8f","%.8f","%.8f","0 ",%d,"0",60,"0","0","0"]' % (x, o[i], h[i], l[i], cl[i], close_t[i])
                for i, x in enumerate(t.tolist())]
        return "[" + ",".join(rows) + "]"

    def funding_rate(self, q: Any) -> list[dict[str, Any]]:
        symbol = self._symbol(q)
        start, end, limit = self._bounds(q, 1000, 100)
        f = self.funding_rows(symbol, "binance")
        sl = self._select(f["time"], start, end, limit, self.server_ms())
        sid = _exchange_id(symbol)
        return [{"symbol": sid, "fundingTime": int(t), "fundingRate": f"{r:.8f}", "markPrice": f"{m:.8f}"}
                for t, r, m in zip(f["time"][sl].tolist(), f["rate"][sl].tolist(), f["mark_price"][sl].tolist())]

    def _tick(self, unified: str, market: str) -> float:
        """The mock's tick size of a symbol: five significant digits of its first daily close."""
        price = float(self.candles(unified, "1d", market)["close"][0])
        return 10.0 ** (math.floor(math.log10(price)) - 5)

    def exchange_info(self, market: str) -> dict[str, Any]:
        w = self.config.window_s
        if w % 60 == 0:
            interval, num = "MINUTE", int(w // 60)
        else:
            interval, num = "SECOND", (int(w) if float(w).is_integer() else w)
        limit = self.config.weight_limit if market == "spot" else self.config.futures_weight_limit
        limits = [{"rateLimitType": "REQUEST_WEIGHT", "interval": interval, "intervalNum": num, "limit": limit},
                  {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                  {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000}]
        symbols = []
        for sid, unified in self.ids.items():
            base, quote = unified.split("/")[0], unified.split("/")[1].split(":")[0]
            tick = self._tick(unified, market)
            entry = {"symbol": sid, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8,
                     "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
                     "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                     "filters": [
                         {"filterType": "PRICE_FILTER", "minPrice": f"{tick:.8f}", "maxPrice": "1000000.00000000",
                          "tickSize": f"{tick:.8f}"},
                         {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
                          "stepSize": "0.00001000"},
                         {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                          "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5}]}
            if market == "futures":
                entry.update({"pair": sid, "contractType": "PERPETUAL", "marginAsset": quote})
                # USD-M "Exchange Information": MIN_NOTIONAL carries ``notional``
                entry["filters"][2] = {"filterType": "MIN_NOTIONAL", "notional": "100"}
            symbols.append(entry)
        return {"timezone": "UTC", "serverTime": self.server_ms(), "rateLimits": limits,
                "exchangeFilters": [], "symbols": symbols}


    # -- Bybit v5 and OKX v5 --------------------------------------------------------------------
    async def _handle_venue(self, request: Any, venue: str) -> Any:
        """Bybit (``/v5/...``) and OKX (``/api/v5/...``): their bodies, codes, headers and IP limits."""
        from aiohttp import web

        path = request.path
        ip = request.remote or "?"
        cfg = self.config
        self.stats.requests += 1
        self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        headers: dict[str, str] = {"Date": self.date_header()}
        bybit = venue == "bybit"
        try:
            route = _VENUE_ROUTES.get(path)
            if route is None:
                raise _Reply(404, 10001 if bybit else 50000, f"unknown path {path}")
            method, is_data = route
            now = self.server_ms()
            if bybit and self._banned_until.get("bybit:" + ip, 0) > now:
                raise _Reply(403, 0, "access too frequent")
            limit, window_s = (cfg.bybit_limit, cfg.bybit_window_s) if bybit else (cfg.okx_limit, cfg.okx_window_s)
            wms = int(window_s * 1000)
            win = now // wms
            slot = self._windows.setdefault((ip, venue), _Window())
            if slot.win != win:
                slot.win, slot.used = win, 0
            slot.used += 1 if bybit else _OKX_COST.get(path, 1)
            self.stats.window_weight[(venue, int(win))] = slot.used
            # Bybit's X-Bapi-Limit* headers describe per-UID, per-endpoint, per-second limits of the
            # private endpoints (docs/v5/rate-limit.mdx); public market endpoints are not in that
            # table and the IP budget has no header, so these replies carry none.
            if slot.used > limit:
                if bybit:  # the IP limit: 403 and a ban of at least 10 minutes
                    self._banned_until["bybit:" + ip] = now + cfg.bybit_ban_s * 1000
                    raise _Reply(403, 0, "access too frequent")
                raise _Reply(429, 50011, "Too Many Requests")
            fault = None
            if is_data:
                self.stats.data_requests += 1
                while self._storms and self.stats.data_requests > self._storms[0][0]:
                    _, seconds = self._storms.pop(0)
                    self._storm_until = now + seconds * 1000
                if now < self._storm_until:
                    self.stats.faults["storm"] = self.stats.faults.get("storm", 0) + 1
                    if bybit:  # an API limit: HTTP 200, retCode 10006, the reset time in the header
                        raise _Reply(200, 10006, "Too many visits!", {
                            "X-Bapi-Limit-Reset-Timestamp": str(int(self._storm_until))})
                    raise _Reply(429, 50011, "Too Many Requests")
                fault = self._draw_fault()
                if fault == "slow":
                    await asyncio.sleep(cfg.faults.slow_s)
                elif fault == "drop":
                    request.transport.close()
                    return web.Response(status=500)
                elif fault == "5xx":
                    raise _Reply(self._rng.choice([500, 502, 503, 504]), 10016 if bybit else 50001,
                                 "Internal server error." if bybit else "Service temporarily unavailable")
            text = method(self, request.query)
            if fault == "truncate":
                text = text[: max(1, len(text) // 2)]
            elif fault == "malformed":
                text = self._rng.choice(["<html><body>502 Bad Gateway</body></html>", text.replace("]", "}", 1)])
            status = 200
        except _Reply as reply:
            status = reply.status
            headers.update(reply.headers)
            if status == 403:
                self.stats.status[403] = self.stats.status.get(403, 0) + 1
                return web.Response(status=403, text="access too frequent", content_type="text/plain",
                                    headers=headers)
            if bybit:
                text = json.dumps({"retCode": reply.code, "retMsg": reply.msg, "result": {}, "retExtInfo": {},
                                   "time": self.server_ms()})
            else:
                text = json.dumps({"code": str(reply.code), "msg": reply.msg, "data": []})
        self.stats.status[status] = self.stats.status.get(status, 0) + 1
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def _bybit_ok(self, result: str) -> str:
        return '{"retCode":0,"retMsg":"OK","result":%s,"retExtInfo":{},"time":%d}' % (result, self.server_ms())

    @staticmethod
    def _venue_int(q: Any, name: str, bybit: bool) -> int | None:
        value = q.get(name)
        if value is None or value == "":
            return None
        try:
            return int(value)
        except ValueError:
            raise (_Reply(200, 10001, f"params error: {name} invalid") if bybit
                   else _Reply(400, 51000, f"Parameter {name} error")) from None

    def bybit_kline(self, q: Any) -> str:
        category = q.get("category") or "linear"
        if category not in ("spot", "linear", "inverse"):
            raise _Reply(200, 10001, "params error: category invalid")
        sym = q.get("symbol")
        if not sym:
            raise _Reply(200, 10001, "params error: symbol is required")
        sym = self._bybit_symbol(sym, category)
        if sym not in self.ids or category == "inverse":
            raise _Reply(200, 10001, "params error: symbol invalid")
        tf = _BYBIT_TF.get(q.get("interval", ""))
        if tf is None:
            raise _Reply(200, 10001, "params error: interval invalid")
        start, end = self._venue_int(q, "start", True), self._venue_int(q, "end", True)
        limit = self._venue_int(q, "limit", True) or 200
        if not 1 <= limit <= 1000:
            raise _Reply(200, 10001, "params error: limit invalid")
        c = self.candles(self.ids[sym], tf, "spot" if category == "spot" else "futures")
        t = c["time"]
        hi = int(np.searchsorted(t, self.server_ms(), side="right"))  # the open candle included
        if end is not None:
            hi = min(hi, int(np.searchsorted(t, end, side="right")))
        lo = 0 if start is None else int(np.searchsorted(t, start, side="left"))
        if self.config.bybit_from_start and start is not None:
            hi = min(hi, lo + limit)  # the oldest rows from start
        else:
            lo = max(lo, hi - limit)  # the newest rows of the range
        rows = []
        for i in range(hi - 1, lo - 1, -1):
            o, h, l, cl, v = (float(c[k][i]) for k in ("open", "high", "low", "close", "volume"))
            rows.append('["%d","%.8f","%.8f","%.8f","%.8f","%.8f","%.8f"]' % (t[i], o, h, l, cl, v,
                                                                             v * (o + cl) * 0.5))
        return self._bybit_ok('{"category":"%s","symbol":"%s","list":[%s]}' % (category, sym, ",".join(rows)))

    def _bybit_linear_symbol(self, q: Any) -> str:
        """The unified symbol of a ``category=linear`` request (perpetual-only endpoints)."""
        category = q.get("category") or "linear"
        if category not in ("linear", "inverse"):  # mark-kline / funding history cover linear and inverse only
            raise _Reply(200, 10001, "params error: category invalid")
        sym = q.get("symbol")
        if not sym:
            raise _Reply(200, 10001, "params error: symbol is required")
        sym = self._bybit_symbol(sym, "linear")
        if sym not in self.ids or category == "inverse":
            raise _Reply(200, 10001, "params error: symbol invalid")
        return self.ids[sym]

    def bybit_mark_kline(self, q: Any) -> str:
        """``/v5/market/mark-price-kline``: as the kline endpoint, rows of 5 strings (no volume), newest first."""
        unified = self._bybit_linear_symbol(q)
        tf = _BYBIT_TF.get(q.get("interval", ""))
        if tf is None:
            raise _Reply(200, 10001, "params error: interval invalid")
        start, end = self._venue_int(q, "start", True), self._venue_int(q, "end", True)
        limit = self._venue_int(q, "limit", True) or 200
        if not 1 <= limit <= 1000:
            raise _Reply(200, 10001, "params error: limit invalid")
        c = self.mark_candles(unified, tf)
        t = c["time"]
        hi = int(np.searchsorted(t, self.server_ms(), side="right"))
        if end is not None:
            hi = min(hi, int(np.searchsorted(t, end, side="right")))
        lo = 0 if start is None else int(np.searchsorted(t, start, side="left"))
        if self.config.bybit_from_start and start is not None:
            hi = min(hi, lo + limit)
        else:
            lo = max(lo, hi - limit)
        rows = ['["%d","%.8f","%.8f","%.8f","%.8f"]' % (t[i], c["open"][i], c["high"][i], c["low"][i], c["close"][i])
                for i in range(hi - 1, lo - 1, -1)]
        return self._bybit_ok('{"category":"linear","symbol":"%s","list":[%s]}'
                              % (_exchange_id(unified), ",".join(rows)))

    def bybit_funding(self, q: Any) -> str:
        """``/v5/market/funding/history``: ``limit`` [1, 200] (default 200), newest first; startTime alone
        is an error, endTime alone gives the ``limit`` records up to it, neither the latest ``limit``."""
        unified = self._bybit_linear_symbol(q)
        start, end = self._venue_int(q, "startTime", True), self._venue_int(q, "endTime", True)
        limit = self._venue_int(q, "limit", True) or 200
        if not 1 <= limit <= 200:
            raise _Reply(200, 10001, "params error: limit invalid")
        if start is not None and end is None:
            raise _Reply(200, 10001, "params error: endTime is required when startTime is passed")
        f = self.funding_rows(unified, "bybit")
        t = f["time"]
        hi = int(np.searchsorted(t, self.server_ms(), side="right"))
        if end is not None:
            hi = min(hi, int(np.searchsorted(t, end, side="right")))
        lo = 0 if start is None else int(np.searchsorted(t, start, side="left"))
        lo = max(lo, hi - limit)
        sid = _exchange_id(unified)
        rows = ['{"symbol":"%s","fundingRate":"%.8f","fundingRateTimestamp":"%d"}' % (sid, f["rate"][i], t[i])
                for i in range(hi - 1, lo - 1, -1)]
        return self._bybit_ok('{"category":"linear","list":[%s]}' % ",".join(rows))

    @staticmethod
    def _bybit_symbol(sym: str, category: str) -> str:
        """Bybit's linear USDC perpetuals are ``ETHPERP`` (docs/v5/market/instrument.mdx), not ``ETHUSDC``."""
        if category != "linear":
            return sym
        if sym.endswith("PERP"):
            return sym[:-4] + "USDC"
        return "?" if sym.endswith("USDC") else sym

    def bybit_instruments(self, q: Any) -> str:
        category = q.get("category")
        if category not in ("spot", "linear", "inverse"):
            raise _Reply(200, 10001, "params error: category invalid")
        items = []
        if category != "inverse":
            for sid, unified in self.ids.items():
                base, quote = unified.split("/")[0], unified.split("/")[1].split(":")[0]
                tick = self._tick(unified, "spot" if category == "spot" else "futures")
                item = {"symbol": sid, "baseCoin": base, "quoteCoin": quote, "status": "Trading",
                        "priceFilter": {"tickSize": f"{tick:.8f}"}}
                if category == "linear":  # docs/v5/market/instrument.mdx: lotSizeFilter per category
                    if quote == "USDC":
                        item["symbol"] = base + "PERP"
                    item.update({"contractType": "LinearPerpetual", "settleCoin": quote,
                                 "lotSizeFilter": {"qtyStep": "0.001", "minOrderQty": "0.001",
                                                   "maxOrderQty": "1190.000", "minNotionalValue": "5"}})
                else:
                    item["lotSizeFilter"] = {"basePrecision": "0.000001", "minOrderQty": "0.000048",
                                             "maxOrderQty": "71.73956243", "minOrderAmt": "1"}
                items.append(item)
        return self._bybit_ok(json.dumps({"category": category, "list": items, "nextPageCursor": ""}))

    def bybit_time(self, q: Any) -> str:
        now = self.reported_ms()
        return ('{"retCode":0,"retMsg":"OK","result":{"timeSecond":"%d","timeNano":"%d"},"retExtInfo":{},"time":%d}'
                % (now // 1000, now * 1_000_000, now))

    def okx_candles(self, q: Any) -> str:
        inst = q.get("instId")
        if not inst:
            raise _Reply(400, 50014, "Parameter instId can not be empty.")
        unified = self.okx_ids.get(inst)
        market = "spot"
        if unified is None and inst in self.okx_swap_ids:
            unified, market = self.okx_swap_ids[inst], "futures"
        if unified is None:
            raise _Reply(200, 51001, "Instrument ID does not exist")
        tf = _OKX_TF.get(q.get("bar") or "1m")
        if tf is None:  # only UTC-opening bars are served (6Hutc, 1Dutc, ...), not the UTC+8 ones
            raise _Reply(400, 51000, "Parameter bar error")
        after, before = self._venue_int(q, "after", False), self._venue_int(q, "before", False)
        limit = self._venue_int(q, "limit", False) or 100
        if not 1 <= limit <= 300:
            raise _Reply(400, 51000, "Parameter limit error")
        c = self.candles(unified, tf, market)
        t = c["time"]
        now = self.server_ms()
        hi = int(np.searchsorted(t, now, side="right"))
        if after is not None:
            hi = min(hi, int(np.searchsorted(t, after, side="left")))  # strictly older than ``after``
        lo = 0 if before is None else int(np.searchsorted(t, before, side="right"))  # strictly newer
        lo = max(lo, hi - limit)
        rows = []
        for i in range(hi - 1, lo - 1, -1):
            o, h, l, cl, v = (float(c[k][i]) for k in ("open", "high", "low", "close", "volume"))
            quote = v * (o + cl) * 0.5
            confirm = "1" if next_open(int(t[i]), tf) <= now else "0"
            rows.append('["%d","%.8f","%.8f","%.8f","%.8f","%.8f","%.8f","%.8f","%s"]'
                        % (t[i], o, h, l, cl, v, quote, quote, confirm))
        return '{"code":"0","msg":"","data":[%s]}' % ",".join(rows)

    def _okx_swap(self, q: Any) -> str:
        inst = q.get("instId")
        if not inst:
            raise _Reply(400, 50014, "Parameter instId can not be empty.")
        if inst not in self.okx_swap_ids:
            raise _Reply(200, 51001, "Instrument ID does not exist")
        return self.okx_swap_ids[inst]

    def okx_mark_candles(self, q: Any, recent: bool = False) -> str:
        """``history-mark-price-candles`` (and ``mark-price-candles``: the latest 1440 bars only): rows
        ``[ts, o, h, l, c, confirm]`` newest first, ``after``/``before`` exclusive, ``limit`` <= 100."""
        unified = self._okx_swap(q)
        tf = _OKX_TF.get(q.get("bar") or "1m")
        if tf is None:
            raise _Reply(400, 51000, "Parameter bar error")
        after, before = self._venue_int(q, "after", False), self._venue_int(q, "before", False)
        limit = self._venue_int(q, "limit", False) or 100
        if not 1 <= limit <= 100:
            raise _Reply(400, 51000, "Parameter limit error")
        c = self.mark_candles(unified, tf)
        t = c["time"]
        now = self.server_ms()
        top = int(np.searchsorted(t, now, side="right"))
        hi = top if after is None else min(top, int(np.searchsorted(t, after, side="left")))
        lo = 0 if before is None else int(np.searchsorted(t, before, side="right"))
        if recent:
            lo = max(lo, top - 1440)
        lo = max(lo, hi - limit)
        rows = []
        for i in range(hi - 1, lo - 1, -1):
            confirm = "1" if next_open(int(t[i]), tf) <= now else "0"
            rows.append('["%d","%.8f","%.8f","%.8f","%.8f","%s"]' % (t[i], c["open"][i], c["high"][i], c["low"][i],
                                                                   c["close"][i], confirm))
        return '{"code":"0","msg":"","data":[%s]}' % ",".join(rows)

    def okx_funding(self, q: Any) -> str:
        """``/api/v5/public/funding-rate-history``: newest first, ``after`` = older than fundingTime,
        ``before`` = newer (both exclusive), ``limit`` <= 400 (default 400, the current doc)."""
        unified = self._okx_swap(q)
        after, before = self._venue_int(q, "after", False), self._venue_int(q, "before", False)
        limit = self._venue_int(q, "limit", False) or 400
        if not 1 <= limit <= 400:
            raise _Reply(400, 51000, "Parameter limit error")
        f = self.funding_rows(unified, "okx")
        t = f["time"]
        hi = int(np.searchsorted(t, self.server_ms(), side="right"))
        if after is not None:
            hi = min(hi, int(np.searchsorted(t, after, side="left")))
        lo = 0 if before is None else int(np.searchsorted(t, before, side="right"))
        lo = max(lo, int(np.searchsorted(t, self.server_ms() - OKX_FUNDING_DAYS * DAY_MS, side="left")))
        lo = max(lo, hi - limit)
        inst = q.get("instId")
        rows = ['{"instType":"SWAP","instId":"%s","formulaType":"withRate","fundingRate":"%.8f",'
                '"realizedRate":"%.8f","fundingTime":"%d","method":"current_period"}'
                % (inst, f["rate"][i], f["rate"][i], t[i]) for i in range(hi - 1, lo - 1, -1)]
        return '{"code":"0","msg":"","data":[%s]}' % ",".join(rows)

    def okx_instruments(self, q: Any) -> str:
        inst_type = q.get("instType")
        if not inst_type:
            raise _Reply(400, 50014, "Parameter instType can not be empty.")
        data = []
        if inst_type == "SPOT":
            for iid, unified in self.okx_ids.items():
                base, quote = iid.split("-")
                data.append({"instType": "SPOT", "instId": iid, "baseCcy": base, "quoteCcy": quote, "state": "live",
                             "tickSz": f"{self._tick(unified, 'spot'):.8f}", "lotSz": "0.00000001",
                             "minSz": "0.00001", "maxMktSz": "1000000"})
        elif inst_type == "SWAP":
            for iid, unified in self.okx_swap_ids.items():
                base, quote = iid.split("-")[:2]
                data.append({"instType": "SWAP", "instId": iid, "uly": f"{base}-{quote}", "settleCcy": quote,
                             "ctType": "linear", "state": "live", "tickSz": f"{self._tick(unified, 'futures'):.8f}",
                             "lotSz": "1", "minSz": "1", "maxMktSz": "10000"})
        return json.dumps({"code": "0", "msg": "", "data": data})

    def okx_time(self, q: Any) -> str:
        return '{"code":"0","msg":"","data":[{"ts":"%d"}]}' % self.reported_ms()

def _format_klines(c: dict[str, np.ndarray], sl: slice, interval: str, market: str) -> str:
    t = c["time"][sl]
    o, h, l, cl, v = (c[k][sl].tolist() for k in ("open", "high", "low", "close", "volume"))
    if interval == "1M":
        close_t = [next_open(int(x), "1M") - 1 for x in t.tolist()]
    else:
        close_t = (t + next_open(0, interval) - 1).tolist()
    fmt = '[%d,"%.8f","%.8f","%.8f","%.8f","%.8f",%d,"%.8f",%d,"%.8f","%.8f","0"]'
    rows = []
    for i, ot in enumerate(t.tolist()):
        mid = (o[i] + cl[i]) * 0.5
        vol = v[i]
        rows.append(fmt % (ot, o[i], h[i], l[i], cl[i], vol, close_t[i], vol * mid, int(vol * 7.0) + 1,
                           vol * 0.5, vol * 0.5 * mid))
    return "[" + ",".join(rows) + "]"


def _kline_weight_spot(q: Any) -> int:
    return SPOT_KLINE_WEIGHT


def _kline_weight_futures(q: Any) -> int:
    try:
        limit = min(max(int(q.get("limit", 500)), 1), 1500)
    except ValueError:
        return 1
    return next(w for top, w in FUTURES_KLINE_WEIGHT if limit <= top)


_ROUTES: dict[str, tuple[Any, Any, bool]] = {
    "/api/v3/klines": (lambda self, q: self.klines(q, "spot"), _kline_weight_spot, True),
    "/api/v3/exchangeInfo": (lambda self, q: self.exchange_info("spot"), lambda q: SPOT_INFO_WEIGHT, False),
    "/api/v3/time": (lambda self, q: {"serverTime": self.reported_ms()}, lambda q: 1, False),
    "/api/v3/ping": (lambda self, q: {}, lambda q: 1, False),
    "/fapi/v1/klines": (lambda self, q: self.klines(q, "futures"), _kline_weight_futures, True),
    "/fapi/v1/exchangeInfo": (lambda self, q: self.exchange_info("futures"), lambda q: FUTURES_INFO_WEIGHT, False),
    "/fapi/v1/time": (lambda self, q: {"serverTime": self.reported_ms()}, lambda q: 1, False),
    "/fapi/v1/ping": (lambda self, q: {}, lambda q: 1, False),
    "/fapi/v1/fundingRate": (lambda self, q: self.funding_rate(q), lambda q: 0, True),
    #: Mark-Price-Kline-Candlestick-Data: the kline weight table by limit (read on that page)
    "/fapi/v1/markPriceKlines": (lambda self, q: self.mark_price_klines(q), _kline_weight_futures, True),
}


_BYBIT_TF = {"1": "1m", "3": "3m", "5": "5m", "15": "15m", "30": "30m", "60": "1h", "120": "2h", "240": "4h",
             "360": "6h", "720": "12h", "D": "1d", "W": "1w", "M": "1M"}
_OKX_TF = {"1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m", "1H": "1h", "2H": "2h", "4H": "4h",
           "6Hutc": "6h", "12Hutc": "12h", "1Dutc": "1d", "1Wutc": "1w", "1Mutc": "1M"}
#: path -> (handler returning the body text, is a data endpoint)
_VENUE_ROUTES: dict[str, tuple[Any, bool]] = {
    "/v5/market/kline": (MockExchange.bybit_kline, True),
    "/v5/market/instruments-info": (MockExchange.bybit_instruments, False),
    "/v5/market/time": (MockExchange.bybit_time, False),
    "/api/v5/market/history-candles": (MockExchange.okx_candles, True),
    "/api/v5/public/instruments": (MockExchange.okx_instruments, False),
    "/api/v5/public/time": (MockExchange.okx_time, False),
    "/v5/market/mark-price-kline": (MockExchange.bybit_mark_kline, True),
    "/v5/market/funding/history": (MockExchange.bybit_funding, True),
    "/api/v5/market/history-mark-price-candles": (MockExchange.okx_mark_candles, True),
    "/api/v5/market/mark-price-candles": (lambda self, q: self.okx_mark_candles(q, recent=True), True),
    "/api/v5/public/funding-rate-history": (MockExchange.okx_funding, True),
}
#: OKX requests charged 2 in the mock's 20-per-2-s IP window (10 per 2 s): history-mark-price-candles
#: (ccxt okx.py cost 2) and funding-rate-history (OKX: 10 requests per 2 s); the rest 1
_OKX_COST = {"/api/v5/market/history-mark-price-candles": 2, "/api/v5/public/funding-rate-history": 2}


def make_app(mock: MockExchange) -> Any:
    """The aiohttp.web application serving ``mock``."""
    from aiohttp import web

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", mock.handle)
    return app


@contextlib.asynccontextmanager
async def serve(config: MockConfig | None = None, *, port: int = 0, host: str = "127.0.0.1",
                **overrides: Any):
    """Run the mock on ``host:port`` (0 = a free port) for the duration of the block.

    >>> async def demo():  # doctest: +SKIP
    ...     async with serve(window_s=1, weight_limit=1200) as mock:
    ...         print(mock.url)   # http://127.0.0.1:<port>
    """
    from aiohttp import web

    mock = MockExchange(config, **overrides)
    runner = web.AppRunner(make_app(mock), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    mock.port = int(runner.addresses[0][1])
    mock.url = f"http://{host}:{mock.port}"
    try:
        yield mock
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def serve_in_thread(config: MockConfig | None = None, *, port: int = 0, host: str = "127.0.0.1",
                    **overrides: Any) -> Iterator[MockExchange]:
    """:func:`serve` on a background thread with its own event loop, for synchronous callers."""
    ready = threading.Event()
    box: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def main() -> None:
        try:
            async with serve(config, port=port, host=host, **overrides) as mock:
                box["mock"] = mock
                box["stop"] = asyncio.Event()
                ready.set()
                await box["stop"].wait()
        except BaseException as exc:  # surface start-up errors to the caller
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True,
                              name="nbtrade-mock-exchange")
    thread.start()
    ready.wait()
    if "error" in box:
        raise box["error"]
    try:
        yield box["mock"]
    finally:
        loop.call_soon_threadsafe(box["stop"].set)
        thread.join(timeout=10)
        loop.close()


def run_mock_exchange(port: int = 8080, host: str = "127.0.0.1", **options: Any) -> int:
    """Serve the mock until interrupted (``nbtrade mock-exchange --port 8080``). Returns an exit code.

    Its first line is the fetch command that uses it, with the port it really got (``port=0``
    picks a free one)."""

    async def main() -> None:
        async with serve(port=port, host=host, **options) as mock:
            print(f"fetch from it: nbtrade fetch binance BTC/USDT,ETH/USDT --base-url {mock.url} "
                  "--start 2024-01-01 --end 2024-03-01", flush=True)
            print(f"perpetuals: nbtrade fetch binance_futures BTC/USDT --base-url {mock.url} --funding --mark "
                  "(or bybit_linear, okx_swap)", flush=True)
            print(f"mock exchange on {mock.url} (Binance /api/v3 and /fapi/v1, Bybit /v5, OKX /api/v5; "
                  "perpetuals: funding history and mark-price candles); "
                  "Ctrl-C to stop", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m nbtrade.data.mock --port 8080`` (the same as ``nbtrade mock-exchange``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="nbtrade mock-exchange",
                                     description="Local mock of Binance, Bybit and OKX REST.")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--symbols", default=",".join(DEFAULT_SYMBOLS), help="comma-separated unified symbols")
    parser.add_argument("--origin", default="2024-01-01", help="first candle time")
    parser.add_argument("--now", default="2024-03-01 00:00:30", help="server clock at start-up")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=float, default=60.0, help="weight window in seconds (Binance: 60)")
    parser.add_argument("--weight-limit", type=int, default=6000, help="spot weight per window")
    parser.add_argument("--futures-weight-limit", type=int, default=2400)
    parser.add_argument("--bybit-limit", type=int, default=600, help="Bybit requests per window per IP")
    parser.add_argument("--bybit-window", type=float, default=5.0, help="Bybit window in seconds (5)")
    parser.add_argument("--okx-limit", type=int, default=20, help="OKX requests per window per IP")
    parser.add_argument("--okx-window", type=float, default=2.0, help="OKX window in seconds (2)")
    args = parser.parse_args(argv)
    return run_mock_exchange(port=args.port, host=args.host, symbols=tuple(args.symbols.split(",")),
                             origin=args.origin, now=args.now, seed=args.seed, window_s=args.window,
                             weight_limit=args.weight_limit, futures_weight_limit=args.futures_weight_limit,
                             bybit_limit=args.bybit_limit, bybit_window_s=args.bybit_window,
                             okx_limit=args.okx_limit, okx_window_s=args.okx_window)


if __name__ == "__main__":
    raise SystemExit(main())
