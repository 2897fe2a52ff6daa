"""Compiled variants of the signals kernel (``records.config_variant``): a run compiles only the phases its
capabilities need, with the same results as the all-capable ``Config``; ``run_bars_nb`` in chunks equals one
``simulate_signals_nb`` call (the contract of chunked runs)."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.engine import signals as front
from nbtrade.kernels.records import ALL_CAPS, Cap, Config, config_variant, make_config, param_dt, run_caps


def _frames():
    frames = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-06", "1h", seed=3, gaps=0.05)
    close = pd.DataFrame({s: f["close"] for s, f in frames.items()})
    up = close.rolling(3).mean() > close.rolling(8).mean()
    entries = (up & ~up.shift(1, fill_value=False)) & close.notna()
    exits = (~up & up.shift(1, fill_value=False)) & close.notna()
    return frames, close, entries, exits


CASES = {
    "plain": {},
    "sl_stop": {"sl_stop": 0.01, "tp_stop": 0.02},
    "limit": {"order_type": "limit", "order_price": "close"},
    "options": {"accumulate": True, "td_stop": 12, "min_roi": {0: 0.03, 6: 0.005}, "finalize_trades": True},
    "shorts": {"short": True, "leverage": 2.0, "borrow_rate": 0.1, "freq": "1h"},
}


def _same(a, b):
    """Record arrays equal field by field (NaN equal to NaN)."""
    assert a.dtype == b.dtype and len(a) == len(b)
    for f in a.dtype.names:
        np.testing.assert_array_equal(a[f], b[f], err_msg=f)


def _run(frames, close, entries, exits, kw):
    kw = dict(kw)
    if kw.pop("short", False):
        kw.update(short_entries=exits, short_exits=entries)
    if kw.get("order_price") == "close":
        kw["order_price"] = close * 0.999
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nbtrade.backtest(frames, entries, exits, fees=0.001, size=0.4, **kw)


@pytest.mark.parametrize("case", list(CASES))
def test_variant_equals_all_capable_config(case, monkeypatch):
    frames, close, entries, exits = _frames()
    res = _run(frames, close, entries, exits, CASES[case])
    monkeypatch.setattr(front, "kernel_variant", lambda kcfg, params: kcfg)  # the all-capable Config
    ref = _run(frames, close, entries, exits, CASES[case])
    np.testing.assert_array_equal(res.equity.to_numpy(), ref.equity.to_numpy())
    _same(res.order_records, ref.order_records)
    _same(res.trade_records, ref.trade_records)


def test_run_caps():
    params = np.zeros(2, dtype=param_dt)
    params["sl"] = params["tp"] = params["trail"] = np.nan
    cfg = make_config(2, 1.0, 0, 0, 0, 0, False, False, False)
    assert run_caps(cfg, params) == 0
    assert type(config_variant(cfg, 0)).__name__ == "Config_0"
    assert type(config_variant(cfg, ALL_CAPS)) is Config
    params["sl"][1] = 0.05
    assert run_caps(cfg, params) == Cap.STOPS
    cfg = make_config(2, 1.0, 0, 0, 1, 0, False, True, False, finalize=True, borrow=True, roi=True, margin=True)
    assert run_caps(cfg, params) == ALL_CAPS
    v = config_variant(cfg, Cap.STOPS)
    assert tuple(v) == tuple(cfg) and v._replace(options=0).CAPS == Cap.STOPS


@pytest.mark.parametrize("case", ["plain", "sl_stop"])
def test_run_bars_in_chunks_equals_one_call(case):
    from nbtrade.kernels import engine
    from nbtrade.kernels.records import Books, counts_dt, new_state

    frames, close, entries, exits = _frames()
    calls = []
    real = engine.simulate_signals_nb

    def spy(*args):
        calls.append(args)
        return real(*args)

    engine.simulate_signals_nb = spy
    try:
        _run(frames, close, entries, exits, CASES[case])
    finally:
        engine.simulate_signals_nb = real
    prices, signals, levels, kcfg, params, start, books, cash, equity = calls[0]
    n = prices.close.shape[0]

    def fresh():
        return Books(new_state(books.state["group"]), np.full(len(books.acct), 10_000.0), np.zeros(1, counts_dt),
                     np.empty_like(books.orders), np.empty_like(books.trades)), np.empty(n), np.empty(n)

    b1, c1, e1 = fresh()
    assert real(prices, signals, levels, kcfg, params, 0, b1, c1, e1) == n
    cfg, run_bars, finish = front.signals_kernels(kcfg, params)
    assert type(cfg) is type(kcfg)
    b2, c2, e2 = fresh()
    at = 0
    for stop in (n // 3, n // 2, n):
        at = run_bars(prices, signals, levels, cfg, params, at, stop, b2, c2, e2)
        assert at == stop
    finish(prices, cfg, params, b2, c2, e2)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(e1, e2)
    k1, k2 = b1.counts[0], b2.counts[0]
    assert k1 == k2
    _same(b1.orders[:k1["orders"]], b2.orders[:k2["orders"]])
    _same(b1.trades[:k1["trades"]], b2.trades[:k2["trades"]])


def test_large_bool_frame_aligns_by_kernel_transpose():
    from nbtrade.panel import _BYTE_TRANSPOSE, Market, align

    n, m = _BYTE_TRANSPOSE // 4 + 7, 4
    idx = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    syms = [f"S{j}/USDT" for j in range(m)]
    rng = np.random.default_rng(0)
    close = pd.DataFrame(100.0 + rng.random((n, m)), index=idx, columns=syms)
    market = Market(close)
    values = rng.random((n, m)) > 0.7
    frame = pd.DataFrame(values, index=idx, columns=syms)
    out = align(frame, market, "entries", "bool")
    assert out.flags.c_contiguous and out.flags.writeable and out.dtype == np.bool_
    np.testing.assert_array_equal(out, values)
