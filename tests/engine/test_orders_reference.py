"""The signals kernel equals the pure-Python reference engine on random cases drawing the options of
issue 15 (accumulation, same-bar re-entry, per-entry sizes, absolute stops per entry, the indicator
stop, time stops, the minimal-ROI table, finalize, short borrow costs) together with the older ones."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import random_market, random_signals
from .reference_engine import run_reference
from .test_orders_kernel import assert_same, run_kernel

SIZES = {"amount": (0.05, 4.0), "value": (20.0, 600.0), "percent": (0.05, 0.6), "target_percent": (0.05, 1.2)}

case = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "n": st.integers(1, 25),
    "m": st.integers(1, 3),
    "density": st.sampled_from([0.1, 0.3, 0.5]),
    "nan_prob": st.sampled_from([0.0, 0.0, 0.1]),
    "shorts": st.booleans(),
    "fill": st.sampled_from(["next_open", "close"]),
    "intrabar": st.sampled_from(["pessimistic", "optimistic"]),
    "size_type": st.sampled_from(sorted(SIZES)),
    "size_u": st.floats(0.0, 1.0),
    "fees": st.sampled_from([0.0, 0.001]),
    "fixed_fees": st.sampled_from([0.0, 0.5]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "sl_stop": st.sampled_from([np.nan, np.nan, 0.03]),
    "tp_stop": st.sampled_from([np.nan, np.nan, 0.05]),
    "trail_stop": st.sampled_from([np.nan, np.nan, 0.03]),
    "lot_size": st.sampled_from([0.0, 0.0, 0.01]),
    "min_notional": st.sampled_from([0.0, 0.0, 30.0]),
    "leverage": st.sampled_from([1.0, 1.0, 2.0, 20.0]),
    "groups": st.sampled_from(["shared", "shared", "isolated"]),
    "order_type": st.sampled_from(["market", "market", "market", "limit", "stop", "mixed"]),
    "abs_stops": st.sampled_from([False, False, True]),
    "exit_size": st.sampled_from([False, False, True]),
    # issue 15
    "accumulate": st.booleans(),
    "reenter": st.booleans(),
    "finalize": st.booleans(),
    "entry_size": st.booleans(),
    "stop_price": st.booleans(),
    "roi": st.sampled_from([None, None, ((0, 0.08), (3, 0.02)), ((1, 0.03), (4, 0.0), (6, -0.02))]),
    "td_stop": st.sampled_from([0, 0, 2, 5]),
    "borrow": st.sampled_from([0.0, 0.0, 0.0005, 0.01]),
})


@settings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case)
def test_kernel_matches_reference_with_issue15_options(cfg):
    rng = np.random.default_rng(cfg["seed"])
    n, m = cfg["n"], cfg["m"]
    o, h, l, c = random_market(rng, n, m, nan_prob=cfg["nan_prob"])
    p = cfg["density"]
    le, lx = random_signals(rng, c, p), random_signals(rng, c, p)
    if cfg["shorts"]:
        se, sx = random_signals(rng, c, p), random_signals(rng, c, p)
    else:
        se = sx = None
    size_type = cfg["size_type"]
    if cfg["accumulate"] and size_type == "target_percent":
        size_type = "percent"  # refused by the front end: accumulation sizes each add on its own
    lo_, hi_ = SIZES[size_type]
    size = lo_ + (hi_ - lo_) * cfg["size_u"]
    if size_type == "target_percent":
        size = min(size, cfg["leverage"])
    order_type = "market" if cfg["accumulate"] else cfg["order_type"]
    kw = dict(size_type=size_type, leverage=cfg["leverage"], init_cash=1000.0, fill=cfg["fill"],
              intrabar=cfg["intrabar"], accumulate=cfg["accumulate"], reenter=cfg["reenter"],
              finalize=cfg["finalize"])
    per = dict(size=[size] * m, fees=[cfg["fees"] * (1 + 0.5 * j) for j in range(m)],
               fixed_fees=[cfg["fixed_fees"]] * m, slippage=[cfg["slippage"]] * m, sl_stop=[cfg["sl_stop"]] * m,
               tp_stop=[cfg["tp_stop"]] * m, trail_stop=[cfg["trail_stop"]] * m, lot_size=[cfg["lot_size"]] * m,
               min_qty=[0.0] * m, min_notional=[cfg["min_notional"]] * m)
    arrays = {}
    groups = list(range(m)) if cfg["groups"] == "isolated" else [0] * m
    types = None
    if order_type == "mixed":  # each entry its own type: market, limit, stop, stop-limit
        types = rng.choice(np.array(["market", "limit", "stop", "stop_limit"], dtype=object), c.shape).tolist()
        arrays["order_price"] = np.where(np.isnan(c), np.nan, c * rng.uniform(0.95, 1.05, c.shape))
        arrays["limit_price"] = arrays["order_price"] * rng.uniform(0.97, 1.03, c.shape)
        kw.update(tif=2)
    elif order_type != "market":
        arrays["order_price"] = np.where(np.isnan(c), np.nan, c * rng.uniform(0.95, 1.05, c.shape))
        kw.update(order_type=order_type, tif=2)
    if cfg["abs_stops"]:
        # below the close for longs and above for shorts mostly; unset (NaN) now and then
        arrays["sl_price"] = np.where(rng.random(c.shape) < 0.3, np.nan, c * rng.uniform(0.9, 1.0, c.shape))
        arrays["tp_price"] = np.where(rng.random(c.shape) < 0.3, np.nan, c * rng.uniform(1.0, 1.1, c.shape))
    if cfg["exit_size"]:
        arrays["exit_size"] = np.where(rng.random(c.shape) < 0.2, 1.0, rng.uniform(0.05, 1.0, c.shape))
    if cfg["entry_size"]:
        arrays["entry_size"] = np.where(rng.random(c.shape) < 0.3, np.nan, size * rng.uniform(0.3, 1.5, c.shape))
        if size_type in ("percent", "target_percent"):
            arrays["entry_size"] = np.minimum(arrays["entry_size"], 1.0 if size_type == "percent" else cfg["leverage"])
    if cfg["stop_price"]:
        # an ATR-like trail under the close (over it for columns drawn short), NaN here and there
        side = np.where(rng.random(m) < (0.5 if cfg["shorts"] else 0.0), 1.0, -1.0)
        arrays["stop_price"] = np.where(rng.random(c.shape) < 0.15, np.nan,
                                        c * (1 + side * rng.uniform(0.01, 0.06, c.shape)))
    roi = None if cfg["roi"] is None else [list(r) for r in cfg["roi"]]
    td = [float(cfg["td_stop"])] * m
    borrow = [cfg["borrow"] * (1 + j) for j in range(m)]
    got = run_kernel(o, h, l, c, le, lx, se, sx, groups=groups, roi=roi, td_stop=td, borrow=borrow,
                     order_types=types, **per, **arrays, **kw)
    zeros = np.zeros_like(le)
    ref = run_reference(o.tolist(), h.tolist(), l.tolist(), c.tolist(), le.tolist(), lx.tolist(),
                        (zeros if se is None else se).tolist(), (zeros if sx is None else sx).tolist(),
                        groups=groups, roi=roi, td_stop=td, borrow=borrow, order_types=types,
                        **per, **{k: v.tolist() for k, v in arrays.items()}, **kw)
    assert_same(got, ref)


def test_random_cases_reach_every_new_exit_reason():
    """The draws above are not vacuous: each new exit reason and accumulation happen."""
    seen, adds = set(), 0
    rng = np.random.default_rng(5)
    for k in range(80):
        o, h, l, c = random_market(rng, 25, 2)
        le, lx = random_signals(rng, c, 0.3), random_signals(rng, c, 0.1)
        stop = c * (1 - rng.uniform(0.01, 0.04, c.shape))
        _, trades, _, _ = run_kernel(o, h, l, c, le, lx, accumulate=True, finalize=k % 2 == 0,
                                     stop_price=stop if k % 3 == 0 else None, td_stop=[6.0, 0.0][k % 2],
                                     roi=[[0, 0.06], [3, 0.01]] if k % 4 == 1 else None, size=1.0)
        seen |= {t["exit_reason"] for t in trades}
        adds += sum(1 for t in trades if t["size"] > 1.0)
    assert {"time", "roi", "ind_stop", "final", "end", "signal"} <= seen
    assert adds > 0
