"""Whole runs of the margin rules (issue 17): the numba engine equals the pure-Python reference engine
(``reference_engine.run_reference`` with ``reference_perp``) on random cases of spot with leverage,
isolated perpetuals and cross-margined perpetuals: per-symbol leverage and maintenance tiers, mark
candles with wicks that liquidate and gaps through the liquidation price, funding of both signs at bar
opens and inside bars, stops, both fill modes. Orders, trades (exit reason ``liquidation`` included),
cash, equity and funding flows agree within 1e-9."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.margin import Tiers

from .helpers import compare_with_reference, random_market, random_signals
from .reference_engine import run_reference

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")

MODES = ("spot", "isolated", "cross")
CASES_PER_MODE = 350  # 1,050 cases in all
SYMBOLS = ("A", "B", "C")
HOUR_MS = 3_600_000


def _tiers(rng):
    """A small maintenance table whose tiers random positions reach (cum by Binance's recurrence)."""
    base = float(rng.choice([300.0, 2_000.0, 10_000.0]))
    last = math.inf if rng.random() < 0.5 else 200 * base
    return Tiers.build([(0, base, 0.01, 50), (base, 5 * base, 0.02, 25), (5 * base, 25 * base, 0.04, 12),
                        (25 * base, last, 0.08, 6)])


def make_case(mode, seed):
    """Inputs of one random run: ``(market, backtest kwargs, reference kwargs)``."""
    from nbtrade.data.panels import _attach_events
    from nbtrade.engine.run import prepare_data

    rng = np.random.default_rng([MODES.index(mode), seed])
    n, m = int(rng.integers(6, 26)), int(rng.integers(1, 4))
    syms = list(SYMBOLS[:m])
    o, h, l, c = random_market(rng, n, m)
    if rng.random() < 0.3:  # missing candles (never on the first bar)
        gone = rng.random((n, m)) < 0.12
        gone[0] = False
        for a in (o, h, l, c):
            a[gone] = np.nan
    valid = ~np.isnan(c)
    # instruments
    if mode == "spot":
        perp = [False] * m
        instrument = "spot"
    elif mode == "cross":
        perp = [True] * m
        instrument = "perp"
    else:
        perp = [bool(x) for x in rng.random(m) < 0.75]
        perp[int(rng.integers(m))] = True
        instrument = "perp" if all(perp) else {s: ("perp" if p else "spot") for s, p in zip(syms, perp)}
    # mark candles: a basis around the price, wicks that sometimes go deep, gaps of the mark open
    marks = None
    if mode != "spot" and rng.random() < 0.8:
        mo = o * np.exp(rng.normal(0, 0.004, (n, m)))
        gap = rng.random((n, m)) < 0.06
        mo[gap] *= np.exp(rng.choice([-1.0, 1.0], gap.sum()) * rng.uniform(0.05, 0.2, gap.sum()))
        mc = c * np.exp(rng.normal(0, 0.004, (n, m)))
        deep = rng.random((n, m)) < 0.2
        up = np.where(deep & (rng.random((n, m)) < 0.5), rng.uniform(0.02, 0.3, (n, m)), rng.uniform(0, 0.01, (n, m)))
        down = np.where(deep & (rng.random((n, m)) < 0.5), rng.uniform(0.02, 0.3, (n, m)),
                        rng.uniform(0, 0.01, (n, m)))
        mh = np.fmax(mo, mc) * (1 + up)
        ml = np.fmin(mo, mc) * (1 - down)
        no_mark = rng.random((n, m)) < 0.04  # a price candle without a mark candle
        for a in (mo, mh, ml, mc):
            a[~valid | no_mark] = np.nan
        marks = (mo, mh, ml, mc)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    fields = {"open": o, "high": h, "low": l, "close": c}
    if marks is not None:
        fields.update(mark_open=marks[0], mark_high=marks[1], mark_low=marks[2], mark_close=marks[3])
    market = prepare_data({k: pd.DataFrame(v, idx, syms) for k, v in fields.items()})
    # funding events of the perpetuals: at bar opens and inside bars, both signs, with or without a mark
    events, rows = {}, []
    if mode != "spot":
        t0 = np.asarray(market.time_ms)
        for j, s in enumerate(syms):
            k = int(rng.integers(0, n // 2 + 1))
            bars = np.sort(rng.choice(np.arange(n), k, replace=False))
            offset = np.where(rng.random(k) < 0.5, 0, int(rng.integers(1, 60)) * 60_000)
            rate = rng.normal(0, 0.004, k) * np.where(rng.random(k) < 0.2, 5.0, 1.0)
            mark = np.where(rng.random(k) < 0.5, np.nan, c[bars, j] * rng.uniform(0.98, 1.02, k))
            events[s] = {"time": t0[bars] + offset, "rate": rate, "mark_price": mark}
            rows += [(int(b), j, int(off) == 0, float(r), float(mk), int(b) * HOUR_MS + int(off))
                     for b, off, r, mk in zip(bars, offset, rate, mark)]
        _attach_events(market, events)
    rows.sort(key=lambda r: (r[5], r[1]))  # time order, ties by column
    # signals
    p = float(rng.choice([0.1, 0.25, 0.4]))
    shorts = mode != "spot" or rng.random() < 0.6
    le, lx = random_signals(rng, c, p), rng.random((n, m)) < p / 2
    se, sx = (random_signals(rng, c, p), rng.random((n, m)) < p / 2) if shorts else (None, None)
    # leverage and tiers per symbol
    choices = [1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0]
    lev = [float(x) for x in rng.choice(choices[3:] if mode == "cross" else choices, m)]
    if rng.random() < 0.3:
        lev = [lev[0]] * m
    if mode == "spot" and not shorts and max(lev) <= 1.0:
        lev[0] = 3.0  # spot with leverage (an unlevered long-only run has no margin rule)
    leverage = lev[0] if len(set(lev)) == 1 and rng.random() < 0.5 else dict(zip(syms, lev))
    tier_kind = rng.choice(["default", "one", "per_symbol"])
    if tier_kind == "default":
        maintenance, tiers = None, None
    elif tier_kind == "one":
        t = _tiers(rng)
        maintenance, tiers = t, [t.rows()] * m
    else:
        ts = [_tiers(rng) for _ in syms]
        maintenance, tiers = dict(zip(syms, ts)), [t.rows() for t in ts]
    liq_fee = rng.choice([None, None, 0.005, 0.02])
    size_type = str(rng.choice(["percent", "value", "amount", "target_percent"]))
    size = {"percent": rng.uniform(0.1, 1.0), "value": rng.uniform(50, 3000), "amount": rng.uniform(0.5, 30),
            "target_percent": rng.uniform(0.1, min(lev))}[size_type]
    fees = float(rng.choice([0.0, 0.0004, 0.001]))
    fixed = float(rng.choice([0.0, 0.0, 0.5]))
    slip = float(rng.choice([0.0, 0.001]))
    sl = rng.choice([np.nan, np.nan, 0.02, 0.06, 0.2])
    tp = rng.choice([np.nan, np.nan, 0.03, 0.1])
    trail = rng.choice([np.nan, np.nan, np.nan, 0.04])
    fill = str(rng.choice(["next_open", "close"]))
    intrabar = str(rng.choice(["pessimistic", "optimistic"]))
    cash_sharing = mode == "cross" or bool(rng.random() < 0.6)
    margin = {"cross": "cross", "isolated": rng.choice([None, "isolated"]), "spot": None}[mode]
    kw = dict(entries=le, exits=lx, size=float(size), size_type=size_type, fees=fees, fixed_fees=fixed,
              slippage=slip, sl_stop=None if np.isnan(sl) else float(sl), tp_stop=None if np.isnan(tp) else float(tp),
              trail_stop=None if np.isnan(trail) else float(trail), leverage=leverage, init_cash=1000.0, fill=fill,
              intrabar=intrabar, cash_sharing=cash_sharing, instrument=instrument, on_gap="skip")
    if shorts:
        kw.update(short_entries=se, short_exits=sx)
    # the order paths' margin bookkeeping: adds (margin added, entry averaged), partial exits (margin
    # released pro rata), resting entries (filled inside a bar after the liquidation check). (Not
    # finalize_trades: a market close at the end, nothing of margin, and 4 more kernel variants to compile.)
    extra = {}
    path = rng.choice(["plain", "plain", "accumulate", "partial", "limit", "stop"])
    if path == "accumulate" and size_type != "target_percent":
        kw["accumulate"] = extra["accumulate"] = True
    elif path == "partial":
        kw["exit_size"] = 0.5
        extra["exit_size"] = np.full((n, m), 0.5).tolist()
    elif path in ("limit", "stop"):
        order_price = np.where(valid, c * rng.uniform(0.97, 1.03, (n, m)), np.nan)
        kw.update(order_type=str(path), order_price=order_price, tif=int(rng.choice([0, 2])))
        extra.update(order_type=str(path), order_price=order_price.tolist(), tif=kw["tif"])
    if maintenance is not None:
        kw["maintenance"] = maintenance
    if liq_fee is not None:
        kw["liquidation_fee"] = float(liq_fee)
    if margin is not None:
        kw["margin"] = str(margin)
    none = np.zeros((n, m), dtype=bool)
    ref = dict(size=[float(size)] * m, size_type=size_type, fees=[fees] * m, fixed_fees=[fixed] * m,
               slippage=[slip] * m, sl_stop=[float(sl)] * m, tp_stop=[float(tp)] * m, trail_stop=[float(trail)] * m,
               lot_size=[0.0] * m, min_qty=[0.0] * m, min_notional=[0.0] * m, leverage=lev, init_cash=1000.0,
               fill=fill, intrabar=intrabar, cash_sharing=cash_sharing, margin=True, tiers=tiers,
               liquidation_fee=math.nan if liq_fee is None else float(liq_fee),
               marks=None if marks is None else tuple(a.tolist() for a in marks), perp=perp,
               cross=mode == "cross", funding_events=[r[:5] for r in rows], **extra)
    signals = [x.tolist() for x in (le, lx, se if shorts else none, sx if shorts else none)]
    return market, kw, dict(prices=[x.tolist() for x in (o, h, l, c)], signals=signals, **ref)


def run_case(mode, seed):
    """``(market, backtest kwargs, reference inputs, reference outputs, reference funding flows)``."""
    market, kw, ref = make_case(mode, seed)
    flows = []
    args = [*ref["prices"], *ref["signals"]]
    out = run_reference(*args, funding_out=flows, **{k: v for k, v in ref.items() if k not in ("prices", "signals")})
    return market, kw, ref, out, flows


CHUNK = 25  # cases per test item (fewer items: less pytest overhead; a failure names its case)


@pytest.mark.parametrize("chunk", range(CASES_PER_MODE // CHUNK))
@pytest.mark.parametrize("mode", MODES)
def test_margin_runs_equal_the_reference(mode, chunk):
    for seed in range(chunk * CHUNK, (chunk + 1) * CHUNK):
        market, kw, _, out, flows = run_case(mode, seed)
        try:
            res = nbtrade.backtest(market, **kw)
            compare_with_reference(res, *out)
            np.testing.assert_allclose(res.funding.to_numpy(), np.array(flows), rtol=1e-9, atol=1e-9,
                                       err_msg="funding flows")
        except AssertionError as e:
            raise AssertionError(f"case make_case({mode!r}, {seed}): {e}") from e


def margin_events(ref, out, flows):
    """What one case exercises (labels), read from the reference's inputs and records."""
    orders, trades, _, _ = out
    o, h, l, _ = ref["prices"]
    seen = set()
    for t in trades:
        if t["exit_reason"] != "liquidation":
            continue
        c, i, px = t["col"], t["exit_idx"], t["exit_price"]
        seen.add(f"liquidation_{t['direction']}")
        seen.add(f"liquidation_{ref['fill']}")
        marked = ref["perp"][c] and ref["marks"] is not None
        if marked and math.isnan(ref["marks"][0][i][c]):
            seen.add("price_fallback")  # a price candle without a mark candle: checked on the price candle
            marked = False
        mo = ref["marks"][0][i][c] if marked else o[i][c]
        seen.add("gap" if px == mo else "inside")
        if marked and (px < l[i][c] if t["direction"] == "long" else px > h[i][c]):
            seen.add("mark_beyond_price")  # the mark candle liquidates where the price candle does not reach
        book = (1 if t["direction"] == "long" else -1) * (px - t["entry_price"]) * t["size"] - t["entry_fees"] \
            - t["exit_fees"]
        if t["pnl"] - book > 1e-9:
            seen.add("absorbed")  # a loss past the margin (isolated) or the wallet (cross) taken off
        if ref["tiers"] is not None and t["size"] * px > ref["tiers"][c][0][1]:
            seen.add("upper_tier")
        if len(set(ref["leverage"])) > 1:
            seen.add("per_symbol_leverage")
        if sum(u["exit_reason"] == "liquidation" and u["exit_idx"] == i for u in trades) > 1:
            seen.add("several_at_once")
        if not math.isnan(ref["liquidation_fee"]):
            seen.add("fee_rate")
    if any(x < 0 for row in flows for x in row):
        seen.add("funding_paid")
    if any(x > 0 for row in flows for x in row):
        seen.add("funding_received")
    if any(x["reason"] == "leverage" for x in orders):
        seen.add("rejected_leverage")
    return seen


def test_random_cases_reach_every_margin_event():
    """The compared cases above liquidate longs and shorts in both fill modes, inside bars and through gaps, on
    mark wicks the price candle does not reach, on price candles of bars without a mark candle, with losses past the margin absorbed, in upper maintenance tiers
    and at per-symbol leverage; cross runs close several positions at once; funding is paid and received."""
    common = {"liquidation_long", "liquidation_short", "liquidation_next_open", "liquidation_close", "gap",
              "inside", "absorbed", "upper_tier", "per_symbol_leverage", "fee_rate", "rejected_leverage",
              "several_at_once"}
    perp = {"mark_beyond_price", "funding_paid", "funding_received", "price_fallback"}
    want = {"spot": common, "isolated": common | perp, "cross": common | perp}
    for mode in MODES:
        seen = set()
        for seed in range(CASES_PER_MODE):
            _, _, ref, out, flows = run_case(mode, seed)
            seen |= margin_events(ref, out, flows)
        assert want[mode] <= seen, (mode, want[mode] - seen)
