"""Weight-based rate limiting for exchange REST APIs: one error family, one backoff policy.

Binance (and most exchanges) count request *weight* per IP in fixed windows
aligned to the server clock (1 minute for ``REQUEST_WEIGHT``). :class:`WeightLimiter`
admits a request when its cost still fits the current window, so it never
relies on a 429 to learn the limit:

- seeded from exchangeInfo ``rateLimits`` (:meth:`WeightLimiter.configure`);
- window boundaries follow the *server* clock (:meth:`WeightLimiter.sync_clock`),
  tracked with ``time.monotonic`` so wall-clock jumps do not matter;
- reconciled with the used-weight header (``X-MBX-USED-WEIGHT-1M``): the header
  counts every client behind the same IP, so weight used by others is seen;
- burst detection: weight used by others is projected to the end of the window
  and reserved, and when latency rises well above its baseline the remaining
  budget is spread over the remaining window instead of being sent at once;
- waiters queue FIFO on one asyncio lock and sleep until the instant they may
  go (no polling loop);
- a 429 blocks every waiter until ``Retry-After`` has passed (or, without one, for
  an exponential backoff that grows with each wave of throttled replies, see
  :meth:`WeightLimiter.strike`), then one request probes alone until one succeeds;
  a 418 (IP ban)
  makes every later :meth:`acquire` raise at once: never continue into a ban.

Every rate-limit signal (Binance 429/418, Bybit 10006/403, OKX 50011) maps to
:class:`RateLimitError` (subclasses :class:`TooManyRequests`, :class:`IPBanned`)
and to one :class:`BackoffPolicy`.
"""
from __future__ import annotations

import asyncio
import math
from collections import deque
import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable


class RateLimitError(Exception):
    """An exchange said we sent too much (any exchange, any code).

    Attributes: ``status`` (HTTP), ``code`` (exchange error code), ``retry_after``
    (seconds, or None), ``banned`` (True when the IP is banned: stop, do not retry).
    """

    banned = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None,
                 retry_after: float | None = None, exchange: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.exchange = exchange


class TooManyRequests(RateLimitError):
    """Limit broken (Binance 429/-1003, Bybit retCode 10006, OKX 50011): wait, then retry."""


class IPBanned(RateLimitError):
    """IP banned (Binance 418, Bybit 403 "access too frequent"): never retry into it."""

    banned = True


def classify_rate_limit(status: int | None, code: int | None = None, retry_after: float | None = None,
                        message: str = "", exchange: str | None = None) -> RateLimitError | None:
    """Map an exchange's rate-limit signal to the one error family, or None if it is not one."""
    text = message or f"HTTP {status}, code {code}"
    kw = dict(status=status, code=code, retry_after=retry_after, exchange=exchange)
    if status == 418 or (code == -1003 and "banned" in message.lower()):
        return IPBanned(f"IP banned by {exchange or 'the exchange'}: {text}", **kw)
    if status == 403 and "too frequent" in message.lower():  # Bybit IP limit
        return IPBanned(f"IP banned by {exchange or 'the exchange'}: {text}", **kw)
    if status == 429 or code in (-1003, 10006, 50011):
        return TooManyRequests(f"rate limit hit on {exchange or 'the exchange'}: {text}", **kw)
    return None


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds form); None if absent or unparsable."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass
class BackoffPolicy:
    """Exponential backoff with jitter, shared by every retryable failure.

    ``delay(attempt)`` is ``min(max_delay, base * factor**attempt)`` stretched by a
    random factor in ``[1, 1 + jitter)``; with a ``retry_after`` it is never shorter
    than that. ``max_retries`` bounds retries of 5xx, network and malformed replies;
    ``give_up_s`` bounds the time one request waits out rate limits (429 and the like):
    a request still throttled when the next wait would pass it raises. A ``Retry-After``
    longer than ``give_up_s`` raises at once. With the defaults, a request that keeps
    getting 429 without ``Retry-After`` waits about 0.2, 0.4, 0.8, ... s (capped at 30 s)
    and fails within 5 minutes.
    """

    base: float = 0.2
    factor: float = 2.0
    max_delay: float = 30.0
    jitter: float = 0.25
    max_retries: int = 6
    give_up_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        d = min(self.max_delay, self.base * self.factor ** max(0, attempt))
        d *= 1.0 + self.jitter * self.rng.random()
        if retry_after is not None:
            # obey Retry-After, plus a little jitter so clients do not return in lockstep
            d = max(d, retry_after * (1.0 + 0.05 * self.rng.random()) + 0.01)
        return d


@dataclass
class Ticket:
    """One admitted request; hand it back to :meth:`WeightLimiter.release`."""

    cost: int
    window: int
    t0: float


class WeightLimiter:
    """Fixed-window weight budget per exchange (and IP), FIFO admission.

    Parameters
    ----------
    limit : int
        Weight allowed per window (Binance spot ``REQUEST_WEIGHT``: 6000 per minute).
    window : float
        Window length in seconds; windows are aligned to multiples of it on the server clock.
    safety : float
        Fraction of ``limit`` never used (room for clock error and stray requests).
    probe : float
        Share of the budget sent in a window before any used-weight header has
        come back when nothing is known about other clients (slow start).
    guard : float, optional
        Clock error allowance in seconds: nothing is sent in the first ``guard`` seconds
        of a window, and weight sent in the last ``guard`` seconds of a window is also
        counted in the next; default ``min(0.25, window / 50)``.
    clock : callable
        Monotonic clock in seconds (``time.monotonic``); injectable for tests.
    """

    def __init__(self, limit: int = 6000, window: float = 60.0, *, safety: float = 0.01, probe: float = 0.25,
                 guard: float | None = None, clock: Callable[[], float] = time.monotonic,
                 name: str = "") -> None:
        self.name = name
        self._clock = clock
        # server seconds = clock() + _offset; until synced, assume the server clock is ours
        self._offset = time.time() - clock()
        self._guard_arg = guard
        self.safety = float(safety)
        self.probe = float(probe)
        self.configure(limit, window)
        self._lock: asyncio.Lock | None = None
        self._news: asyncio.Event | None = None
        self._win: int | None = None
        self._used = 0.0        # best estimate of the weight used this window by the IP
        self._own = 0.0         # weight we admitted this window
        self._ext_seen = 0.0    # weight used by others this window (header - own)
        self._prev_ext = 0.0    # others' weight in the previous window
        self._inflight = 0.0
        self._peak_inflight = 0.0
        self._recent: deque[tuple[float, int]] = deque(maxlen=512)  # (admitted at, cost)
        self._feedback = False  # a used-weight header arrived in this window
        self._prev_known = False
        self._blocked_until = 0.0
        self._banned: IPBanned | None = None
        self._ban_until = math.inf
        self._lat_base: float | None = None
        self._lat_ewma: float | None = None
        self._next_at = 0.0
        self._strikes = 0              # throttle waves since the last success
        self._penalized_at = -math.inf  # clock time of the last strike
        self.stats: dict[str, Any] = {"requests": 0, "weight": 0, "waits": 0, "waited_s": 0.0,
                                      "throttled": 0, "banned": 0, "max_header": 0, "slow_mode": 0}

    # -- configuration ---------------------------------------------------------------------------
    def configure(self, limit: int, window: float) -> None:
        """Set the budget (e.g. from exchangeInfo ``rateLimits``)."""
        if limit <= 0:
            raise ValueError(f"limit must be positive, got {limit}")
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.limit = int(limit)
        self.window = float(window)
        self.guard = float(self._guard_arg) if self._guard_arg is not None else min(0.25, self.window / 50.0)
        self._win = None  # window numbering changed: recount from recent admissions

    @property
    def capacity(self) -> float:
        return self.limit * (1.0 - self.safety)

    def sync_clock(self, server_ms: int, sent_at: float, received_at: float) -> None:
        """Align window boundaries with the server clock.

        ``server_ms`` is the server time read in a reply; ``sent_at``/``received_at``
        are ``clock()`` readings around the request (the midpoint is assumed).
        """
        self._offset = server_ms / 1000.0 - 0.5 * (sent_at + received_at)

    # -- helpers --------------------------------------------------------------------------------
    def _window_of(self, t: float) -> int:
        return math.floor((t + self._offset) / self.window)

    def _window_start(self, win: int) -> float:
        return win * self.window - self._offset

    def _roll(self, now: float) -> None:
        win = self._window_of(now)
        if win != self._win:
            self._prev_known = self._win == win - 1 and self._feedback
            self._prev_ext = self._ext_seen if self._prev_known else 0.0
            self._feedback = False
            self._win = win
            # requests still in flight, and those sent just before the boundary (clock
            # error), may be counted in this window by the server
            since = self._window_start(win) - self.guard
            recent = sum(c for t, c in self._recent if t >= since)
            carry = self._inflight + recent
            self._used = carry
            self._own = carry
            self._ext_seen = 0.0

    def _allowance(self, now: float) -> float:
        if not self._feedback and not self._prev_known:
            # slow start: nothing is known yet about other clients on this IP
            return self._used + max(0.0, max(self.capacity * self.probe, 2.0) - self._own)
        elapsed = now - self._window_start(self._win)
        projected = self._ext_seen * self.window / max(elapsed, self.window / 4.0)
        reserve = max(0.0, max(self._prev_ext, projected) - self._ext_seen)
        if self._ext_seen > 0 or self._prev_ext > 0:
            # others share the IP: their requests in flight are not in any header yet;
            # assume they keep as much in flight as we do
            reserve += self._peak_inflight
        return self.capacity - reserve

    def available(self) -> float:
        """Weight that could be admitted right now (after reserving for other clients)."""
        now = self._clock()
        self._roll(now)
        if now < self._blocked_until or self.banned:
            return 0.0
        return max(0.0, min(self._allowance(now), self.capacity) - self._used)

    @property
    def used(self) -> float:
        """Estimated weight used by the IP in the current window."""
        return self._used

    @property
    def banned(self) -> bool:
        if self._banned is not None and self._clock() >= self._ban_until:
            self._banned = None  # the ban has run out
        return self._banned is not None

    # -- admission ------------------------------------------------------------------------------
    async def acquire(self, cost: int) -> Ticket:
        """Wait until ``cost`` weight fits the budget, then take it (FIFO among waiters)."""
        if cost > self.capacity:
            raise ValueError(f"request cost {cost} exceeds the whole window budget {self.capacity:.0f}")
        if self.banned:
            raise self._banned
        if self._lock is None:
            self._lock = asyncio.Lock()
        t_start = self._clock()
        waited = False
        async with self._lock:
            while True:
                if self.banned:
                    raise self._banned
                now = self._clock()
                if now < self._blocked_until:
                    waited = True
                    await asyncio.sleep(self._blocked_until - now)
                    continue
                if self._strikes and self._inflight > 0:
                    # after a throttle one request probes alone; the rest follow its success
                    waited = True
                    await self._wait_news(0.5)
                    continue
                self._roll(now)
                next_window = self._window_start(self._win + 1)
                opens = self._window_start(self._win) + self.guard
                if now < opens:  # dead time after the boundary: our clock may run ahead of the server's
                    waited = True
                    await asyncio.sleep(opens - now)
                    continue
                if now < self._next_at:  # burst pacing
                    waited = True
                    await asyncio.sleep(min(self._next_at, next_window) - now)
                    continue
                allowed = self._allowance(now)
                if self._used + cost <= allowed or (self._own == 0 and self._used + cost <= self.capacity):
                    self._used += cost
                    self._own += cost
                    self._inflight += cost
                    self._peak_inflight = max(self._peak_inflight, self._inflight)
                    self._recent.append((now, cost))
                    self._pace(now, next_window, cost)
                    self.stats["requests"] += 1
                    self.stats["weight"] += cost
                    if waited:
                        self.stats["waits"] += 1
                        self.stats["waited_s"] += now - t_start
                    return Ticket(cost, self._win, now)
                waited = True
                if self._used + cost > self.capacity:
                    await asyncio.sleep(max(0.0, next_window - now))
                else:  # held back by slow start or by weight reserved for others: wait for news
                    await self._wait_news(max(0.0, min(next_window - now, self.window / 10.0)))

    async def _wait_news(self, timeout: float) -> None:
        """Sleep until a reply reconciles the budget, or ``timeout`` seconds."""
        self._news = asyncio.Event()
        try:
            await asyncio.wait_for(self._news.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def _pace(self, now: float, next_window: float, cost: int) -> None:
        """In slow mode (latency well above baseline) spread the remaining budget evenly."""
        if self._lat_ewma is None or self._lat_base is None:
            return
        if self._lat_ewma > 4.0 * self._lat_base and self._lat_ewma > 0.05:
            remaining = max(1.0, (self.capacity - self._used) / cost)
            self._next_at = now + max(0.0, next_window - now) / remaining
            self.stats["slow_mode"] += 1
        else:
            self._next_at = 0.0

    def release(self, ticket: Ticket, used_header: int | None = None) -> None:
        """Reconcile after a reply: ``used_header`` is the server's used weight (any client on the IP)."""
        now = self._clock()
        self._inflight = max(0.0, self._inflight - ticket.cost)
        if self._news is not None:
            self._news.set()
        latency = now - ticket.t0
        self._lat_ewma = latency if self._lat_ewma is None else 0.8 * self._lat_ewma + 0.2 * latency
        self._lat_base = latency if self._lat_base is None else min(self._lat_base * 1.01, latency)
        if used_header is None:
            return
        self.stats["max_header"] = max(self.stats["max_header"], int(used_header))
        self._roll(now)
        if ticket.window != self._win:
            return  # the header may belong to either window: ignore it
        self._feedback = True
        self._used = max(self._used, float(used_header))
        self._ext_seen = max(self._ext_seen, float(used_header) - self._own)

    def cancel(self, ticket: Ticket) -> None:
        """Forget an admitted request that got no reply (its weight stays counted)."""
        self._inflight = max(0.0, self._inflight - ticket.cost)
        if self._news is not None:
            self._news.set()

    def penalize(self, retry_after: float | None, fallback: float = 1.0) -> None:
        """A 429 arrived: block every waiter for ``retry_after`` seconds (``fallback`` if absent).

        Binance's ``Retry-After`` points at the end of its window, which is what to
        trust here: our own window estimate may still be the unconfigured default.
        The fetcher passes its backoff delay (never shorter than ``Retry-After``), so
        a 429 without one blocks for an exponentially growing, jittered time.
        """
        now = self._clock()
        self.stats["throttled"] += 1
        wait = retry_after if retry_after is not None else fallback
        self._blocked_until = max(self._blocked_until, now + wait)

    def strike(self, ticket: Ticket) -> int:
        """A throttle reply to ``ticket``: the number of throttle waves so far (>= 1).

        Replies to requests admitted before the last strike belong to the same wave (they
        were in flight when the first one came back) and do not escalate the backoff.
        """
        if self._strikes == 0 or ticket.t0 > self._penalized_at:
            self._strikes += 1
            self._penalized_at = self._clock()
        return self._strikes

    def succeeded(self, ticket: Ticket) -> None:
        """A good reply to a request admitted after the last strike: throttling is over."""
        if ticket.t0 > self._penalized_at:
            self._strikes = 0

    def ban(self, error: IPBanned) -> None:
        """A 418 arrived: every acquire raises ``error`` until its ``Retry-After`` has passed."""
        self.stats["banned"] += 1
        self._banned = error
        # a ban lasts Retry-After seconds (Binance: 2 min to 3 days); unknown means for good
        self._ban_until = self._clock() + error.retry_after if error.retry_after else math.inf

    def __repr__(self) -> str:
        return (f"WeightLimiter({self.name!r}, limit={self.limit}, window={self.window}s, "
                f"used={self._used:.0f})")
