"""The numba engine equals the pure-Python reference engine on random cases (hypothesis)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.backtesting import backtest

from .helpers import compare_with_reference, random_market, random_signals
from .reference_engine import run_reference

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")

SIZES = {"amount": (0.05, 8.0), "value": (20.0, 1500.0), "percent": (0.05, 1.0), "target_percent": (0.05, 1.6)}


def maybe(strategy):
    return st.one_of(st.none(), strategy)


case = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "n": st.integers(1, 25),
    "m": st.integers(1, 3),
    "density": st.sampled_from([0.05, 0.2, 0.5]),
    "nan_prob": st.sampled_from([0.0, 0.0, 0.1, 0.3]),
    "shorts": st.booleans(),
    "fill": st.sampled_from(["next_open", "close"]),
    "intrabar": st.sampled_from(["pessimistic", "optimistic"]),
    "size_type": st.sampled_from(sorted(SIZES)),
    "size_u": st.floats(0.0, 1.0),
    "fees": st.sampled_from([0.0, 0.001, 0.01]),
    "fixed_fees": st.sampled_from([0.0, 0.5]),
    "slippage": st.sampled_from([0.0, 0.002]),
    "slippage_range": st.sampled_from([0.0, 0.0, 0.1]),
    "sl_stop": maybe(st.sampled_from([0.01, 0.03, 0.1])),
    "tp_stop": maybe(st.sampled_from([0.02, 0.05, 0.2])),
    "trail_stop": maybe(st.sampled_from([0.02, 0.05])),
    "lot_size": st.sampled_from([0.0, 0.01, 0.5]),
    "min_qty": st.sampled_from([0.0, 0.2]),
    "min_notional": st.sampled_from([0.0, 30.0]),
    "leverage": st.sampled_from([1.0, 1.0, 2.0, 0.5, 10.0, 50.0]),
    "cash_sharing": st.sampled_from([True, True, False, "groups"]),
    "order_type": st.sampled_from(["market", "market", "limit", "stop", "stop_limit", "mixed"]),
    "tif": st.sampled_from([0, 1, 3]),
    "abs_stops": st.sampled_from([False, False, True]),
    "exit_size": st.sampled_from([None, None, "scalar", "per_bar"]),
    "slippage_volume": st.sampled_from([0.0, 0.0, 0.3, 2.0]),
})


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(case)
def test_engine_matches_reference(cfg):
    rng = np.random.default_rng(cfg["seed"])
    n, m = cfg["n"], cfg["m"]
    o, h, l, c = random_market(rng, n, m, nan_prob=cfg["nan_prob"])
    p = cfg["density"]
    # exits may sit on bars with no candle (e.g. exits=~entries): they are ignored
    le, lx = random_signals(rng, c, p), rng.random(c.shape) < p
    if cfg["shorts"]:
        se, sx = random_signals(rng, c, p), rng.random(c.shape) < p
    else:
        se = sx = np.zeros_like(le)
    lo_, hi_ = SIZES[cfg["size_type"]]
    size = lo_ + (hi_ - lo_) * cfg["size_u"]
    if cfg["size_type"] == "target_percent":
        size = min(size, cfg["leverage"])  # beyond the leverage it is a ValueError
    # per-symbol variation on one parameter: the fees
    fees = np.array([cfg["fees"] * (1 + 0.5 * j) for j in range(m)])
    kw = dict(size=size, size_type=cfg["size_type"], fees=fees, fixed_fees=cfg["fixed_fees"],
              slippage=cfg["slippage"], slippage_range=cfg["slippage_range"], sl_stop=cfg["sl_stop"], tp_stop=cfg["tp_stop"],
              trail_stop=cfg["trail_stop"], lot_size=cfg["lot_size"], min_qty=cfg["min_qty"],
              min_notional=cfg["min_notional"], leverage=cfg["leverage"], init_cash=1000.0,
              fill=cfg["fill"], intrabar=cfg["intrabar"],
              cash_sharing=[j % 2 for j in range(m)] if cfg["cash_sharing"] == "groups" else cfg["cash_sharing"])
    if np.isnan(c).all():  # no candle at all: refused, never a silent run of 0 trades
        with pytest.raises(ValueError, match="no candle at all"):
            backtest({"open": o, "high": h, "low": l, "close": c}, entries=le, exits=lx, **kw)
        return
    order_price = types = None
    if cfg["order_type"] != "market":
        # resting entries a little away from the close, on either side
        order_price = np.where(np.isnan(c), np.nan, c * rng.uniform(0.95, 1.05, c.shape))
        kw.update(order_type=cfg["order_type"], order_price=order_price, tif=cfg["tif"], maker_fees=0.0002)
        if cfg["order_type"] == "mixed":  # each entry its own type (names per bar); market ones need no price
            types = rng.choice(np.array(["market", "limit", "stop", "stop_limit"], dtype=object), c.shape)
            order_price = np.where((types == "market") & (rng.random(c.shape) < 0.5), np.nan, order_price)
            kw.update(order_type=types, order_price=order_price)
        if cfg["order_type"] == "stop_limit" or (types is not None and (types == "stop_limit").any()):
            kw["limit_price"] = np.where(np.isnan(c), np.nan, order_price * rng.uniform(0.97, 1.03, c.shape))
    exit_size = None
    if cfg["exit_size"] == "scalar":
        exit_size = np.full((n, m), 0.5)
        kw["exit_size"] = 0.5
    elif cfg["exit_size"] == "per_bar":  # partial closes; 1 (close all) now and then
        exit_size = np.where(rng.random(c.shape) < 0.2, 1.0, rng.uniform(0.05, 1.0, c.shape))
        kw["exit_size"] = exit_size
    data = {"open": o, "high": h, "low": l, "close": c}
    volume = None
    if cfg["slippage_volume"]:
        # base-unit volumes comparable to the order sizes (and some bars without trades)
        volume = np.where(rng.random(c.shape) < 0.15, 0.0, rng.uniform(0.5, 40.0, c.shape))
        data["volume"] = volume
        kw["slippage_volume"] = cfg["slippage_volume"]
    res = backtest(data, le, lx, se, sx, on_gap="skip", **kw)
    nan = float("nan")
    extra = {} if order_price is None else dict(order_type=cfg["order_type"], order_price=order_price.tolist(),
                                                tif=cfg["tif"])
    if types is not None:
        extra.update(order_type="market", order_types=types.tolist())
    if "maker_fees" in kw:
        extra["maker_fees"] = [0.0002] * m
    if "limit_price" in kw:
        extra["limit_price"] = kw["limit_price"].tolist()
    if exit_size is not None:
        extra["exit_size"] = exit_size.tolist()
    if volume is not None:
        extra.update(volume=volume.tolist(), slippage_volume=[cfg["slippage_volume"]] * m)
    if cfg["abs_stops"]:
        sl_price = c * rng.uniform(0.9, 1.0, c.shape)
        tp_price = c * rng.uniform(1.0, 1.1, c.shape)
        sl_price[rng.random(c.shape) < 0.3] = np.nan
        tp_price[rng.random(c.shape) < 0.3] = np.nan
        res = backtest(data, le, lx, se, sx, on_gap="skip", sl_price=sl_price, tp_price=tp_price, **kw)
        extra.update(sl_price=sl_price.tolist(), tp_price=tp_price.tolist())
    per = {k: [float(v)] * m if np.ndim(v) == 0 else list(v) for k, v in kw.items()
           if k in ("size", "fees", "fixed_fees", "slippage", "slippage_range", "lot_size", "min_qty", "min_notional")}
    for k in ("sl_stop", "tp_stop", "trail_stop"):
        per[k] = [nan if kw[k] is None else kw[k]] * m
    ref = run_reference(o.tolist(), h.tolist(), l.tolist(), c.tolist(), le.tolist(), lx.tolist(), se.tolist(),
                        sx.tolist(), size_type=cfg["size_type"], leverage=cfg["leverage"], init_cash=1000.0,
                        fill=cfg["fill"], intrabar=cfg["intrabar"],
                        groups=[j % 2 for j in range(m)] if cfg["cash_sharing"] == "groups" else None,
                        cash_sharing=cfg["cash_sharing"] is not False, **per, **extra)
    compare_with_reference(res, *ref)


def test_reference_exercises_every_path():
    """The random cases above reach every exit reason, rejection reason and order type."""
    seen_reasons, seen_exits, seen_types = set(), set(), set()
    rng = np.random.default_rng(7)
    for k in range(300):
        n, m = 20, 2
        o, h, l, c = random_market(rng, n, m, nan_prob=0.1)
        sigs = [random_signals(rng, c, 0.3) for _ in range(4)]
        st_ = ["amount", "value", "percent", "target_percent"][k % 4]
        size = {"amount": 3.0, "value": 900.0, "percent": 0.9, "target_percent": 1.0}[st_]
        res = backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, size=size, size_type=st_,
                       sl_stop=0.03, tp_stop=0.05 if k % 2 else None, trail_stop=0.02 if k % 3 else None,
                       lot_size=[0.0, 0.5, 20.0][k % 3], min_qty=[0.0, 1.0][k % 3 == 0],
                       min_notional=[0.0, 120.0][k % 5 == 0], fees=0.001, init_cash=1000.0, on_gap="skip",
                       fill=["next_open", "close"][k % 2])
        seen_reasons |= set(res.orders["reason"])
        seen_exits |= set(res.trades["exit_reason"])
        seen_types |= set(res.orders["type"])
    assert seen_reasons >= {"none", "no_data", "insufficient_cash", "lot_size", "min_qty", "min_notional"}
    assert seen_exits >= {"signal", "sl", "tp", "trail", "end"}
    assert seen_types >= {"market", "stop_loss", "take_profit", "trailing_stop"}


def test_reference_cases_reach_every_resting_order_outcome():
    seen = set()
    rng = np.random.default_rng(11)
    for k in range(60):
        o, h, l, c = random_market(rng, 20, 2, nan_prob=0.05)
        sigs = [random_signals(rng, c, 0.2) for _ in range(4)]
        price = np.where(np.isnan(c), np.nan, c * rng.uniform(0.95, 1.05, c.shape))
        res = backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, size=0.5, order_type=["limit", "stop"][k % 2],
                       order_price=price, tif=[0, 2][k % 2], on_gap="skip", init_cash=1000.0)
        seen |= set(zip(res.orders["type"], res.orders["status"]))
    for t in ("limit", "stop"):
        assert {(t, "filled"), (t, "cancelled")} <= seen
    assert ("stop", "expired") in seen and any(s == "open" for _, s in seen)


def test_kernel_rejection_counts_match_the_records():
    """The warning's figures come from the kernel's counters: they equal the records'."""
    import re
    import warnings

    from nbtrade.backtesting import RejectedOrdersWarning

    rng = np.random.default_rng(3)
    for k in range(40):
        o, h, l, c = random_market(rng, 30, 3, nan_prob=0.1)
        sigs = [random_signals(rng, c, 0.3) for _ in range(4)]
        kw = dict(size=0.9, lot_size=[0.0, 0.5][k % 2], min_notional=[0.0, 150.0][k % 3 == 0], init_cash=1000.0,
                  exit_size=[1.0, 0.4][k % 2], sl_stop=0.05, on_gap="skip", fill=["next_open", "close"][k % 2])
        if k % 4 == 3:
            kw.update(order_type="limit", order_price=np.where(np.isnan(c), np.nan, c * 0.99))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = backtest({"open": o, "high": h, "low": l, "close": c}, *sigs, **kw)
        rec = res.order_records
        rejected = rec[rec["status"] == 1]
        msgs = [str(w.message) for w in caught if issubclass(w.category, RejectedOrdersWarning)]
        if len(rejected) == 0:
            assert not msgs
            continue
        n, total = map(int, re.match(r"(\d+) of (\d+) orders rejected", msgs[0]).groups())
        assert n == len(rejected)
        assert total == int(np.count_nonzero(rec["status"] <= 1))
        for reason, count in zip(*np.unique(res.orders.loc[res.orders.status == "rejected", "reason"],
                                            return_counts=True)):
            assert f"{reason}: {count}" in msgs[0]
