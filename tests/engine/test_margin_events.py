"""Liquidation events of both margin modes equal the pure-Python reference (``reference_margin``) within
1e-9 on random books, tiers and mark candles: 1,000 isolated and 1,000 cross cases (hypothesis draws a
seed and the shape, numpy builds the case; derandomized, so the cases are the same on every run)."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.kernels import margin as km
from nbtrade.margin import pack_tiers

from . import reference_margin as ref
from .test_margin_reference import close, random_position, random_tiers

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
case = st.fixed_dictionaries({"seed": st.integers(0, 2**32 - 1), "tiers": st.integers(1, 5),
                              "m": st.integers(1, 4)})


def _candle(rng, entry):
    """A mark candle around ``entry`` (sometimes gapping far), or none (NaN open) 1 time in 8."""
    o = entry * rng.uniform(0.6, 1.4)
    h, lo = o * rng.uniform(1.0, 1.3), o * rng.uniform(0.7, 1.0)
    if rng.random() < 0.125:
        o = math.nan
    return o, h, lo


@SETTINGS
@given(case)
def test_isolated_events_match_reference(cfg):
    """Isolated: liquidation price with the tier at that price, its fill in the bar (gap rule), settlement."""
    rng = np.random.default_rng(cfg["seed"])
    side, qty, entry, margin, notional = random_position(rng)
    margin = abs(margin) + 1e-9 * notional
    tiers = random_tiers(rng, cfg["tiers"], unit=notional * rng.uniform(0.1, 2.0))
    rows = tiers.rows()
    fl, cp, mm, cm, _ = tiers.arrays()
    n = len(rows)
    o, h, lo = _candle(rng, entry)
    fee_rate = math.nan if rng.random() < 0.5 else float(rng.uniform(0, 0.02))
    lp = km.liquidation_price_nb(side, qty, entry, margin, 0.0, fl, cp, mm, cm, n)
    assert close(lp, ref.liquidation_price(side, qty, entry, margin, 0.0, rows), entry)
    if o != o:
        return
    fill = km.liquidation_fill_nb(side, lp, o, h, lo)
    want = ref.liquidation_fill(side, lp, o, h, lo)
    assert close(fill, want, entry)
    if fill == fill:
        maint = km.maintenance_margin_nb(fl, cp, mm, cm, n, qty * fill)
        assert close(maint, ref.maintenance(rows, qty * fill), notional)
        got = km.settle_isolated_nb(side * qty, entry, margin, fill, fee_rate, maint)
        exp = ref.settle_isolated(side * qty, entry, margin, fill, fee_rate, maint)
        for a, b in zip(got, exp):
            assert close(a, b, notional)


@SETTINGS
@given(case, st.booleans())
def test_cross_events_match_reference(cfg, open_only):
    """Cross: the wallet check at the open or at the adverse extremes, every position's fill, fee and
    the part of the loss past zero absorbed."""
    rng = np.random.default_rng(cfg["seed"])
    m = cfg["m"]
    tables, books = [], []
    for _ in range(m):
        side, qty, entry, _, notional = random_position(rng)
        t = random_tiers(rng, int(rng.integers(1, cfg["tiers"] + 1)), unit=notional * rng.uniform(0.1, 2.0))
        o, h, lo = _candle(rng, entry)
        size = 0.0 if rng.random() < 0.2 else side * qty
        books.append(dict(size=size, entry=entry, open=o, high=h, low=lo, last=entry * rng.uniform(0.8, 1.2),
                          tiers=t.rows()))
        tables.append(t)
    sizes = np.array([b["size"] for b in books])
    entries = np.array([b["entry"] for b in books])
    gross = float(np.sum(np.abs(sizes) * entries)) + 1.0
    wallet = float(gross * rng.uniform(-0.05, 0.6))
    fee_rate = math.nan if rng.random() < 0.5 else float(rng.uniform(0, 0.02))
    f, c, mm, cum, _, counts = pack_tiers(tables)
    col = lambda k: np.array([b[k] for b in books])  # noqa: E731
    fills, fees, absorbed = np.empty(m), np.empty(m), np.empty(m)
    hit = km.cross_event_nb(sizes, entries, wallet, col("open"), col("high"), col("low"), col("last"), f, c, mm,
                            cum, counts, fee_rate, open_only, fills, fees, absorbed, np.empty(m))
    want = ref.cross_event(books, wallet, open_only, fee_rate)
    assert hit == (want is not None)
    if want is None:
        return
    for j, (wf, wfee, wab) in enumerate(want):
        assert close(float(fills[j]), wf, float(entries[j])), j
        assert close(float(fees[j]), wfee, gross), j
        assert close(float(absorbed[j]), wab, gross), j
    # the wallet never ends below zero
    pnl = float(np.sum(sizes * (fills - entries)))
    assert wallet + pnl - fees.sum() + absorbed.sum() >= -1e-9 * gross
