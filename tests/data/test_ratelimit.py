"""WeightLimiter, BackoffPolicy and the rate-limit error family (no timing asserts)."""
from __future__ import annotations

import asyncio

import pytest

from nbtrade.data.exchanges.base import best_page_limit
from nbtrade.data.exchanges.binance import parse_rate_limits
from nbtrade.data.exchanges.binance_futures import KLINE_WEIGHT_TIERS, kline_weight
from nbtrade.data.ratelimit import (BackoffPolicy, IPBanned, RateLimitError, TooManyRequests, WeightLimiter,
                                    classify_rate_limit, parse_retry_after)


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


@pytest.mark.parametrize("status, code, msg, kind", [
    (429, -1003, "Too much request weight used", TooManyRequests),
    (418, -1003, "Way too much request weight used; IP banned until 1", IPBanned),
    (200, 10006, "Too many visits!", TooManyRequests),          # Bybit per-UID limit
    (403, None, "access too frequent", IPBanned),              # Bybit IP limit
    (200, 50011, "Rate limit reached", TooManyRequests),        # OKX
    (400, -1121, "Invalid symbol.", None),
    (500, None, "", None),
])
def test_every_rate_limit_signal_maps_to_one_family(status, code, msg, kind):
    err = classify_rate_limit(status, code, 3.0, msg, exchange="x")
    if kind is None:
        assert err is None
    else:
        assert type(err) is kind and isinstance(err, RateLimitError)
        assert err.retry_after == 3.0 and err.banned == (kind is IPBanned)


def test_parse_retry_after():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert parse_retry_after("-1") is None


def test_backoff_grows_is_capped_and_obeys_retry_after():
    import random

    policy = BackoffPolicy(base=0.1, factor=2.0, max_delay=1.0, jitter=0.25, rng=random.Random(0))
    delays = [policy.delay(a) for a in range(8)]
    for a, d in enumerate(delays):
        lo = min(1.0, 0.1 * 2 ** a)
        assert lo <= d <= lo * 1.25
    assert policy.delay(0, retry_after=5.0) >= 5.0


def test_bad_configuration():
    with pytest.raises(ValueError, match="limit"):
        WeightLimiter(0, 60)
    with pytest.raises(ValueError, match="window"):
        WeightLimiter(100, 0)


async def test_cost_above_the_window_budget_is_an_error():
    with pytest.raises(ValueError, match="exceeds"):
        await WeightLimiter(10, 1.0).acquire(11)


async def test_per_window_admissions_stay_under_the_budget():
    lim = WeightLimiter(10, 0.1, safety=0.0)
    tickets = []
    server = {}

    async def one():
        t = await lim.acquire(2)
        server[t.window] = server.get(t.window, 0) + 2
        tickets.append(t)
        await asyncio.sleep(0)
        lim.release(t, server[t.window])

    await asyncio.gather(*(one() for _ in range(25)))
    per_window = {}
    for t in tickets:
        per_window[t.window] = per_window.get(t.window, 0) + t.cost
    assert max(per_window.values()) <= 10
    assert len(per_window) >= 5
    assert lim.stats["weight"] == 50 and lim.stats["waits"] > 0


async def test_waiters_are_served_first_in_first_out():
    lim = WeightLimiter(4, 0.05, safety=0.0)
    order = []

    async def one(i):
        t = await lim.acquire(2)
        order.append(i)
        lim.release(t, None)

    tasks = []
    for i in range(10):
        tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.sleep(0)  # enqueue in order
    await asyncio.gather(*tasks)
    assert order == list(range(10))


async def test_header_reconciles_weight_used_by_other_clients():
    clock = FakeClock()
    lim = WeightLimiter(100, 60.0, safety=0.0, clock=clock)
    lim.sync_clock(int(clock.t * 1000) + 30_000 - int(clock.t * 1000) % 60_000, clock.t, clock.t)  # 30 s into window
    t = await lim.acquire(2)
    clock.t += 0.01
    lim.release(t, used_header=52)  # others used 50 in this window
    assert lim.used == 52
    # others used 50 in the first half: 50 more are reserved for them, and what they have in flight
    assert lim.available() <= 100 - 52 - 50 + 2


async def test_header_from_another_window_is_ignored():
    clock = FakeClock()
    lim = WeightLimiter(100, 1.0, safety=0.0, clock=clock)
    t = await lim.acquire(2)
    clock.t += 1.0  # the window rolled while the request was in flight
    lim.release(t, used_header=95)
    assert lim.used < 95


async def test_slow_start_until_the_first_header():
    clock = FakeClock()
    lim = WeightLimiter(100, 60.0, safety=0.0, probe=0.25, clock=clock)
    t = await lim.acquire(2)
    assert lim.available() == pytest.approx(23)
    lim.release(t, used_header=2)  # alone on the IP
    assert lim.available() == pytest.approx(98)


async def test_429_blocks_every_waiter_and_418_stops_for_good():
    lim = WeightLimiter(100, 60.0)
    lim.penalize(0.05)
    assert lim.available() == 0
    t = await lim.acquire(1)  # waits out the Retry-After
    lim.release(t, None)
    assert lim.stats["waits"] == 1 and lim.stats["throttled"] == 1
    lim.ban(IPBanned("banned", status=418, retry_after=120))
    with pytest.raises(IPBanned):
        await lim.acquire(1)
    assert lim.banned


def test_rate_limits_from_exchange_info():
    info = {"rateLimits": [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
                           {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                            "limit": 6000}]}
    assert parse_rate_limits(info) == (6000, 60.0)
    assert parse_rate_limits({"rateLimits": []}) is None
    lim = WeightLimiter()
    lim.configure(*parse_rate_limits(info))
    assert (lim.limit, lim.window) == (6000, 60.0)


def test_futures_page_size_and_weights():
    assert best_page_limit(KLINE_WEIGHT_TIERS) == 499
    assert [kline_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [1, 1, 2, 2, 5, 5, 10, 10]
    with pytest.raises(ValueError, match="1500"):
        kline_weight(1501)


async def test_throttle_waves_escalate_once_and_a_success_resets_them():
    clock = FakeClock()
    lim = WeightLimiter(100, 1.0, clock=clock, probe=1.0, guard=0.0)  # no dead time: the fake clock stands still
    first = [await lim.acquire(1) for _ in range(4)]   # four requests in flight
    clock.t += 0.01
    assert [lim.strike(t) for t in first] == [1, 1, 1, 1]  # one wave: in flight when the first 429 came
    clock.t += 0.1
    lim.release(first[0])
    for t in first[1:]:
        lim.release(t)
    retry = await lim.acquire(1)
    clock.t += 0.01
    assert lim.strike(retry) == 2                      # the next wave escalates
    clock.t += 0.1
    lim.release(retry)
    ok = await lim.acquire(1)
    clock.t += 0.01
    lim.release(ok)
    lim.succeeded(ok)
    again = await lim.acquire(1)
    clock.t += 0.01
    assert lim.strike(again) == 1


async def test_after_a_throttle_one_request_probes_alone():
    clock = FakeClock()
    lim = WeightLimiter(100, 1.0, clock=clock, probe=1.0, guard=0.0)  # no dead time: the fake clock stands still
    probe = await lim.acquire(1)
    clock.t += 0.01
    lim.strike(probe)
    clock.t += 0.01
    lim.release(probe)
    alone = await lim.acquire(1)
    clock.t += 0.01
    waiter = asyncio.ensure_future(lim.acquire(1))
    await asyncio.sleep(0.05)
    assert not waiter.done()                           # held back while the probe is in flight
    lim.release(alone)
    lim.succeeded(alone)
    await asyncio.wait_for(waiter, 1.0)


def test_backoff_gives_up_within_its_documented_time():
    policy = BackoffPolicy()
    assert policy.give_up_s == 300.0 and policy.base == 0.2
