"""The margin kernels equal the pure-Python reference (``reference_margin``) within 1e-9 on random
positions, tier tables and marks (hypothesis draws a seed and the shape; numpy builds the case)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.kernels import margin as km
from nbtrade.margin import Tiers, pack_tiers

from . import reference_margin as ref

RTOL = 1e-9
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def close(a, b, scale=1.0):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= RTOL * max(1.0, abs(a), abs(b), scale)


def random_tiers(rng, n_tiers, unit):
    """A valid table: increasing caps (last one maybe infinite), rising mmr, falling max leverage."""
    caps = np.cumsum(rng.uniform(0.2, 3.0, n_tiers) * unit)
    if rng.random() < 0.3:
        caps[-1] = math.inf
    mmr = np.minimum(np.cumsum(rng.uniform(0.0, 0.06, n_tiers)) + rng.uniform(0.001, 0.02), 0.9)
    rows, lev, floor = [], 200.0, 0.0
    for k in range(n_tiers):
        lev = min(lev, math.floor(0.999 / mmr[k])) if mmr[k] > 0 else lev
        lev = max(float(lev) * rng.choice([1.0, 1.0, 0.5]), 1.0)
        rows.append((floor, caps[k], mmr[k], lev))
        floor = caps[k]
    return Tiers.build(rows)


def random_position(rng):
    side = float(rng.choice([-1.0, 1.0]))
    qty = float(10 ** rng.uniform(-3, 3))
    entry = float(10 ** rng.uniform(0, 5))
    notional = qty * entry
    wallet = float(notional * rng.uniform(-0.3, 2.5))
    return side, qty, entry, wallet, notional


case = st.fixed_dictionaries({"seed": st.integers(0, 2**32 - 1), "tiers": st.integers(1, 6),
                              "m": st.integers(1, 4)})


@SETTINGS
@given(case)
def test_isolated_rules_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    side, qty, entry, wallet, notional = random_position(rng)
    tiers = random_tiers(rng, cfg["tiers"], unit=notional * rng.uniform(0.1, 2.0))
    rows = tiers.rows()
    f, c, m, cum, lev = tiers.arrays()
    n = len(tiers)
    other = float(notional * rng.uniform(-0.5, 0.5)) if rng.random() < 0.5 else 0.0
    for x in (0.0, notional * rng.uniform(0, 3), notional, float(c[0]), float(c[0]) * (1 + 1e-15)):
        x = float(x)
        if not math.isfinite(x):
            continue
        assert km.tier_index_nb(f, c, n, x) == ref.tier_of(rows, x)
        assert close(km.maintenance_margin_nb(f, c, m, cum, n, x), ref.maintenance(rows, x), notional)
        assert km.max_leverage_nb(f, c, lev, n, x) == ref.max_leverage(rows, x)
    assert km.initial_margin_nb(notional, float(lev[0])) == ref.initial_margin(notional, float(lev[0]))

    lp = km.liquidation_price_nb(side, qty, entry, wallet, other, f, c, m, cum, n)
    want = ref.liquidation_price(side, qty, entry, wallet, other, rows)
    assert close(lp, want, entry), (lp, want)
    scale = notional + abs(wallet) + abs(other)
    if lp > 0:  # at the liquidation price the margin balance equals the maintenance margin
        assert abs(ref.surplus(side, qty, entry, wallet, other, rows, lp)) <= 1e-9 * scale
    bp = km.bankruptcy_price_nb(side, qty, entry, wallet, other)
    assert close(bp, ref.bankruptcy_price(side, qty, entry, wallet, other), entry)

    # one bar of marks around the entry; the pessimistic check, gap rule and settlement
    o = entry * rng.uniform(0.8, 1.2)
    hi = max(o, entry * rng.uniform(0.8, 1.3))
    lo = min(o, entry * rng.uniform(0.7, 1.2))
    fill = km.liquidation_fill_nb(side, lp, o, hi, lo)
    assert close(fill, ref.liquidation_fill(side, lp, o, hi, lo), entry)
    stop = float(entry * rng.uniform(0.7, 1.3)) if rng.random() < 0.8 else math.nan
    assert km.liquidation_first_nb(side, lp, stop) == ref.liquidation_first(side, lp, stop)
    px = fill if fill == fill else lo
    maint = ref.maintenance(rows, qty * px)
    fee_rate = float(rng.choice([math.nan, 0.0, 0.005, 0.02]))
    got = km.settle_isolated_nb(side * qty, entry, wallet, px, fee_rate, maint)
    exp = ref.settle_isolated(side * qty, entry, wallet, px, fee_rate, maint)
    assert all(close(a, b, scale) for a, b in zip(got, exp)), (got, exp)
    assert got[0] >= 0.0  # an isolated balance never goes below zero

    rate = float(rng.normal(0, 0.001))
    assert close(km.funding_flow_nb(side * qty, o, rate), ref.funding_flow(side * qty, o, rate), scale)
    flows = rng.normal(0, notional * 1e-3, 3)
    assert close(km.funding_check_margin_nb(wallet, flows, 3), ref.funding_check_margin(wallet, list(flows)), scale)


@SETTINGS
@given(case)
def test_cross_rules_match_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    m = cfg["m"]
    tables, books = [], []
    for _ in range(m):
        side, qty, entry, _, notional = random_position(rng)
        t = random_tiers(rng, int(rng.integers(1, cfg["tiers"] + 1)), unit=notional * rng.uniform(0.1, 2.0))
        size = 0.0 if rng.random() < 0.2 else side * qty
        books.append(dict(size=size, entry=entry, mark=entry * rng.uniform(0.7, 1.3), tiers=t.rows(),
                          high=entry * rng.uniform(1.0, 1.4), low=entry * rng.uniform(0.6, 1.0)))
        tables.append(t)
    sizes = np.array([b["size"] for b in books])
    entries = np.array([b["entry"] for b in books])
    marks = np.array([b["mark"] for b in books])
    gross = float(np.sum(np.abs(sizes) * entries)) + 1.0
    wallet = float(gross * rng.uniform(-0.1, 1.0))
    f, c, mm, cum, _, counts = pack_tiers(tables)

    assert close(km.margin_balance_nb(sizes, entries, marks, wallet), ref.margin_balance(books, wallet), gross)
    assert close(km.total_maintenance_nb(sizes, marks, f, c, mm, cum, counts), ref.total_maintenance(books), gross)
    assert km.cross_liquidated_nb(sizes, entries, marks, wallet, f, c, mm, cum, counts) == \
        ref.cross_liquidated(books, wallet)
    for j in range(m):
        got = km.cross_liquidation_price_nb(j, sizes, entries, marks, wallet, f, c, mm, cum, counts)
        assert close(got, ref.cross_liquidation_price(j, books, wallet), float(entries[j])), j

    # the pessimistic point of a bar: every position at its adverse extreme
    highs = np.array([b["high"] for b in books])
    lows = np.array([b["low"] for b in books])
    adverse = km.adverse_marks_nb(sizes, highs, lows, np.empty(m))
    assert adverse.tolist() == [ref.adverse_mark(b["size"], b["high"], b["low"]) for b in books]
    worst = [dict(b, mark=float(a)) for b, a in zip(books, adverse)]
    hit = km.cross_liquidated_nb(sizes, entries, adverse, wallet, f, c, mm, cum, counts)
    assert hit == ref.cross_liquidated(worst, wallet)
    if hit:  # each position's cross price given the others at their extremes lies in its bar or past its open
        for j in range(m):
            if sizes[j] == 0:
                continue
            side = 1.0 if sizes[j] > 0 else -1.0
            lp = km.cross_liquidation_price_nb(j, sizes, entries, adverse, wallet, f, c, mm, cum, counts)
            o = float(np.clip(marks[j], lows[j], highs[j]))
            fill = km.liquidation_fill_nb(side, lp, o, highs[j], lows[j])
            assert fill == fill, (j, lp, lows[j], highs[j])
