"""backtest_chunked: runs in time chunks read from a real HDF5 store equal the in-memory run bit for bit."""
import warnings

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.data.store import Store

SYMS = ["A/USDT", "B/USDT", "C/USDT"]
H = 3_600_000
T0 = pd.Timestamp("2024-01-01", tz="UTC").value // 10**6


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """3 symbols x 336 hourly bars: B misses bars 100..106 and 180 (gaps), C lists at bar 40, A delists at 300."""
    st = Store(tmp_path_factory.mktemp("chunked") / "store")
    d = nbtrade.market(SYMS, "2024-01-01", "2024-01-15", "1h", seed=3)
    d["A/USDT"] = d["A/USDT"].iloc[:300]
    b = d["B/USDT"]
    d["B/USDT"] = b.drop(b.index[list(range(100, 107)) + [180]])
    d["C/USDT"] = d["C/USDT"].iloc[40:]
    for s, df in d.items():
        st.append("binance", s, "1h", df)
    return st


@pytest.fixture(scope="module")
def full(store):
    return store.read_market("binance", SYMS, "1h")


def cross(m):
    """SMA(3) / SMA(6) cross, both sides (lookback 5)."""
    c = m.close
    f, s = c.rolling(3).mean(), c.rolling(6).mean()
    ok = c.notna()
    return (f > s) & ok, f < s, (f < s) & ok, f > s


cross.lookback = 5


def clock(m):
    """Signals from the bar's time alone (lookback 0): entries every 10 bars, exits 5 bars later, shorts between."""
    h = (m.index.asi8 // 10**6 // H) % 10
    ok = m.close.notna().to_numpy()
    col = np.arange(len(m.symbols))[None, :]
    h = (h[:, None] + col) % 10  # symbols out of phase
    t = m.index.asi8 // 10**6
    before_gap = ((t == T0 + 99 * H) | (t == T0 + 179 * H))[:, None] & (col == 1)  # B's fill bar has no candle
    return ok & ((h == 0) | before_gap), h == 5, ok & (h == 7), (h == 9) | before_gap


def clock_long(m):
    return clock(m)[:2]


def limits(m):
    """Limit entries 1 % below the close with per-bar stop levels (dict form)."""
    e, x, _, _ = cross(m)
    c = m.close
    return {"entries": e, "exits": x, "order_price": c * 0.99, "sl_price": c * 0.95, "ind_stop": c * 0.97}


def same_records(a, b):
    assert len(a) == len(b)
    for f in a.dtype.names:
        np.testing.assert_array_equal(a[f], b[f], err_msg=f)


def check_same(got, ref):
    np.testing.assert_array_equal(got.equity.to_numpy(), ref.equity.to_numpy())
    np.testing.assert_array_equal(got.cash.to_numpy(), ref.cash.to_numpy())
    assert got.equity.index.equals(ref.equity.index)
    same_records(got.order_records, ref.order_records)
    same_records(got.trade_records, ref.trade_records)
    pd.testing.assert_series_equal(got.stats(), ref.stats())
    pd.testing.assert_frame_equal(got.gaps.reset_index(drop=True), ref.gaps.reset_index(drop=True),
                                  check_dtype=False)


def run_both(store, full, fn, chunk_bars, lookback=None, **opts):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(full)
        ref = nbtrade.backtest(full, **out, **opts) if isinstance(out, dict) else nbtrade.backtest(full, *out, **opts)
        got = nbtrade.backtest_chunked(store, SYMS, fn, timeframe="1h", chunk_bars=chunk_bars, lookback=lookback,
                                       **opts)
    return got, ref


@pytest.mark.parametrize("chunk_bars", [1, 2, 3, 7, 64, 1000])
def test_clock_signals_with_stops_and_gaps(store, full, chunk_bars):
    got, ref = run_both(store, full, clock, chunk_bars, lookback=0, fees=0.001, sl_stop=0.01, tp_stop=0.02,
                        trail_stop=0.015)
    assert ref.assumptions["delayed_signals"] > 0  # waits on B's missing candles (across chunk boundaries)
    check_same(got, ref)


@pytest.mark.parametrize("chunk_bars", [5, 6, 13, 101, 336])
def test_cross_shorts(store, full, chunk_bars):
    got, ref = run_both(store, full, cross, chunk_bars, fees=0.001, sl_stop=0.03, slippage_range=0.1)
    assert (ref.trade_records["direction"] == 1).any()  # shorts traded
    check_same(got, ref)


@pytest.mark.parametrize("chunk_bars", [5, 9, 50])
def test_resting_orders_and_per_bar_levels(store, full, chunk_bars):
    got, ref = run_both(store, full, limits, chunk_bars, lookback=5, order_type="limit", tif=4, fees=0.001)
    assert (ref.order_records["status"] == 3).any() or (ref.order_records["status"] == 2).any()
    check_same(got, ref)


@pytest.mark.parametrize("opts", [
    dict(fill="close", cash_sharing=False, size=0.5),
    dict(accumulate=True, size=0.2, finalize_trades=True, td_stop=9),
    dict(reenter=True, min_roi={0: 0.02, 10: 0.005}, leverage=2.0),
    dict(borrow_rate=0.5, slippage=0.001, slippage_volume=0.2),
])
@pytest.mark.parametrize("chunk_bars", [3, 11])
def test_options(store, full, opts, chunk_bars):
    fn = clock_long if opts.get("accumulate") else clock  # no shorts with accumulation of longs
    got, ref = run_both(store, full, fn, chunk_bars, lookback=0, fees=0.0005, **opts)
    check_same(got, ref)


def test_open_trade_of_a_delisted_symbol(store, full):
    """A's last candle is bar 299: its END trade ends there even though the last chunk starts later."""
    def hold(m):
        e = np.zeros(m.shape, dtype=bool)
        e[m.index == full.index[290], 0] = True
        return e, np.zeros(m.shape, dtype=bool)

    got, ref = run_both(store, full, hold, 4, lookback=0)
    assert (ref.trade_records["exit_idx"] == 299).any()
    check_same(got, ref)


def test_store_path_and_declared_lookback(store, full):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = nbtrade.backtest_chunked(str(store.root), SYMS, cross, timeframe="1h", chunk_bars=20, fees=0.001)
        b = nbtrade.backtest(full, *cross(full), fees=0.001)
    check_same(a, b)
    assert "chunks" in a.assumptions


def test_time_range(store, full):
    lo, hi = full.index[30], full.index[200]
    part = store.read_market("binance", SYMS, "1h", lo, hi)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = nbtrade.backtest(part, *cross(part))
        got = nbtrade.backtest_chunked(store, SYMS, cross, timeframe="1h", start=lo, end=hi, chunk_bars=17)
    check_same(got, ref)


def test_store_times(store, full):
    t = store.times("binance", "B/USDT", "1h", full.index[95], full.index[110])
    assert t.dtype == np.int64
    want = full.time_ms[95:110][~np.isnan(full.array("close")[95:110, 1])]
    np.testing.assert_array_equal(t, want)
    assert len(store.times("binance", "C/USDT", "1h", None, full.index[10])) == 0


# ---------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw, match", [
    (dict(chunk_bars=0), "chunk_bars"),
    (dict(chunk_bars=-3), "chunk_bars"),
    (dict(chunk_bars=4, lookback=5), "chunk_bars .4. must be at least lookback"),
    (dict(lookback=-1), "lookback"),
    (dict(sl_price=1.0), "sl_price"),
    (dict(instrument="future"), "instrument"),
    (dict(filters="exchange"), "filters"),
    (dict(exit_size=np.ones((3, 3))), "exit_size"),
    (dict(client="tcp://x:1"), "client=.*cash_sharing=False"),
])
def test_bad_input(store, kw, match):
    kw = {"chunk_bars": 10, "lookback": 5, **kw}
    with pytest.raises(ValueError, match=match):
        nbtrade.backtest_chunked(store, SYMS, cross, timeframe="1h", **kw)


def test_bad_symbol_and_lookback_missing(store):
    with pytest.raises(ValueError, match="'X/USDT' has no 1h series"):
        nbtrade.backtest_chunked(store, ["A/USDT", "X/USDT"], cross, timeframe="1h", chunk_bars=10)
    with pytest.raises(ValueError, match="lookback"):
        nbtrade.backtest_chunked(store, SYMS, clock, timeframe="1h", chunk_bars=10)
    with pytest.raises(ValueError, match="no candles for 'C/USDT'"):
        nbtrade.backtest_chunked(store, SYMS, clock, timeframe="1h", chunk_bars=10, lookback=0, end="2024-01-02")
    with pytest.raises(TypeError, match="signals_fn"):
        nbtrade.backtest_chunked(store, SYMS, None, timeframe="1h", chunk_bars=10, lookback=0)
    with pytest.raises(TypeError, match="signals_fn must return"):
        nbtrade.backtest_chunked(store, SYMS, lambda m: m.close > 0, timeframe="1h", chunk_bars=10, lookback=0,
                                 on_gap="skip")
    with pytest.raises(ValueError, match="unknown keys"):
        nbtrade.backtest_chunked(store, SYMS, lambda m: {"entries": m.close > 0, "foo": 1}, timeframe="1h",
                                 chunk_bars=10, lookback=0, on_gap="skip")
    with pytest.raises(ValueError, match="store"):
        nbtrade.backtest_chunked("/nonexistent/nbtrade-store", SYMS, cross, timeframe="1h", chunk_bars=10)
    with pytest.raises(TypeError, match="fees|unexpected"):
        nbtrade.backtest_chunked(store, SYMS, cross, timeframe="1h", chunk_bars=10, feez=0.1)


# ---------------------------------------------------------------------------------------------- Dask

@pytest.mark.filterwarnings("ignore:Port .* is already in use")
def test_isolated_cash_on_a_local_cluster(store, full, perp_store):
    """Symbols split across 2 worker processes reading the same store path: same records, same curves
    up to the rounding of the parts' sum; perpetuals too (funding merged from the parts)."""
    distributed = pytest.importorskip("distributed")
    opts = dict(cash_sharing=False, fees=0.001, sl_stop=0.02, on_gap="skip")
    ref = nbtrade.backtest(full, *cross(full), **opts)
    perp_full = perp_store.read_market("binance_futures", PERPS, "1h")
    perp_opts = dict(cash_sharing=False, instrument="perp", leverage=8.0, fees=0.0005)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        perp_ref = nbtrade.backtest(perp_full, *cross(perp_full), **perp_opts)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        got = nbtrade.backtest_chunked(store, SYMS, cross, timeframe="1h", chunk_bars=13, client=client, **opts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            perp_got = nbtrade.backtest_chunked(perp_store, PERPS, cross, timeframe="1h", chunk_bars=16,
                                                client=client, **perp_opts)
    np.testing.assert_allclose(perp_got.equity.to_numpy(), perp_ref.equity.to_numpy(), rtol=1e-13)
    assert (perp_ref.funding_flows != 0).any()
    np.testing.assert_array_equal(perp_got.funding_flows, perp_ref.funding_flows)
    assert perp_got.assumptions["mark"] == perp_ref.assumptions["mark"]
    np.testing.assert_allclose(got.equity.to_numpy(), ref.equity.to_numpy(), rtol=1e-13)
    np.testing.assert_allclose(got.cash.to_numpy(), ref.cash.to_numpy(), rtol=1e-13)

    def by_bar(r, key):
        return r[np.lexsort((r["col"], r[key]))]

    for name, key in (("order_records", "idx"), ("trade_records", "exit_idx")):
        a, b = by_bar(getattr(got, name), key), by_bar(getattr(ref, name), key)
        for f in a.dtype.names:
            if f != "id":
                np.testing.assert_array_equal(a[f], b[f], err_msg=f"{name}.{f}")
    s1, s2 = got.stats(), ref.stats()
    for k in s2.index:
        if isinstance(s2[k], float):
            assert s1[k] == pytest.approx(s2[k], rel=1e-9, nan_ok=True), k
        else:
            assert s1[k] == s2[k], k


def test_declared_lookback_object_and_freq_none(store, full):
    from nbtrade.lookback import Lookback

    def fn(m):
        return cross(m)[:2]

    fn.lookback = Lookback(5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = nbtrade.backtest_chunked(store, SYMS, fn, timeframe="1h", chunk_bars=8, freq=None, td_stop="5h")
        ref = nbtrade.backtest(full, *fn(full), td_stop="5h")
    check_same(got, ref)


def clock_levels(m):
    """clock's signals with per-bar absolute stops and entry sizes: an order waiting for B's candle acts
    with its signal bar's levels, carried across chunks."""
    e, x, se, sx = clock(m)
    c = m.close
    return {"entries": e, "exits": x, "short_entries": se, "short_exits": sx, "sl_price": c * 0.985,
            "tp_price": c * 1.02,
            "entry_size": np.where((m.index.hour % 2 == 0)[:, None], 0.3, 0.2) * np.ones(m.shape)}


@pytest.mark.parametrize("chunk_bars", [1, 2, 5])
def test_waiting_orders_keep_their_signal_bar_levels(store, full, chunk_bars):
    got, ref = run_both(store, full, clock_levels, chunk_bars, lookback=0, fees=0.001, trail_stop=0.03)
    assert ref.assumptions["delayed_signals"] > 0
    check_same(got, ref)


def clock_partial(m):
    """clock's signals with exit fractions per bar: whole exits (1.0) before bar 150, then halves and quarters
    (chunks whose exits all close whole positions keep the per-bar rows)."""
    e, x, se, sx = clock(m)
    t = m.index.asi8 // 10**6
    frac = np.where((t < T0 + 150 * H)[:, None], 1.0, np.where((m.index.hour % 2 == 0)[:, None], 0.5, 0.25))
    return {"entries": e, "exits": x, "short_entries": se, "short_exits": sx, "exit_size": frac * np.ones(m.shape)}


def test_exit_size_per_bar(store, full):
    """Per-bar exit_size from signals_fn (the stops mix of test_clock_signals_with_stops_and_gaps: no new
    compile); exits waiting for B's candle carry their signal bar's fraction across chunks."""
    for chunk_bars in (2, 7):
        got, ref = run_both(store, full, clock_partial, chunk_bars, lookback=0, fees=0.001, sl_stop=0.01,
                            tp_stop=0.02, trail_stop=0.015)
        assert ref.assumptions["exit_size"] == "per bar" and got.assumptions["exit_size"] == "per bar"
        assert (ref.trade_records["exit_idx"] >= 150).any()
        check_same(got, ref)


def clock_types(m):
    """clock's signals with an order type per entry (market, limit, stop, stop-limit by the hour) and their
    prices: chunks without a stop-limit entry drop limit_price."""
    e, x, se, sx = clock(m)
    c = m.close.to_numpy()
    h = (m.index.hour % 4).to_numpy()[:, None] * np.ones(m.shape, dtype=np.int64)
    types = np.array(["market", "limit", "stop", "stop_limit"], dtype=object)[h]
    return {"entries": e, "exits": x, "short_entries": se, "short_exits": sx, "order_type": types,
            "order_price": np.where(h == 1, c * 0.995, c * 1.004), "limit_price": c * 1.01}


def test_order_type_per_entry(store, full):
    """order_type per bar from signals_fn (one new compile of the chunked kernels: entry types)."""
    for chunk_bars in (3, 10):
        got, ref = run_both(store, full, clock_types, chunk_bars, lookback=0, fees=0.001, tif=3)
        assert len(set(ref.order_records["type"].tolist())) == 4  # every type placed
        check_same(got, ref)
    with pytest.raises(ValueError, match="order_type given twice"):
        nbtrade.backtest_chunked(store, SYMS, clock_types, timeframe="1h", chunk_bars=10, lookback=0,
                                 order_type="market", on_gap="skip")


PERPS = ["A/USDT:USDT", "B/USDT:USDT"]


@pytest.fixture(scope="module")
def perp_store(tmp_path_factory):
    """2 perpetuals x 120 hourly bars with mark candles (B's mark lacks bars 47..49) and funding every 8 h
    (inside the bar, some events without a mark price: the bar's mark open stands in)."""
    from nbtrade.synthetic import candles

    st = Store(tmp_path_factory.mktemp("chunked_perp") / "store")
    for j, s in enumerate(PERPS):
        c = candles(s, T0, T0 + 120 * H, "1h", seed=11 + j)
        st.append("binance_futures", s, "1h", c)
        keep = np.ones(120, bool)
        if j == 1:
            keep[47:50] = False
        mark = {"time": c["time"][keep], **{k: c[k][keep] * (1.001 + 0.002 * j) for k in ("open", "close")},
                "high": c["high"][keep] * 1.004, "low": c["low"][keep] * 0.994}
        st.append("binance_futures", s, "mark_1h", mark)
        t = T0 + np.arange(0, 120, 8, dtype=np.int64) * H + 5
        mp = np.where(np.arange(len(t)) % 3 == 0, np.nan, 100.0 + j)
        st.append("binance_futures", s, "funding", {"time": t, "rate": np.where(np.arange(len(t)) % 2, 1e-3, -4e-4),
                                                    "mark_price": mp})
    return st


def test_perpetuals_isolated_and_cross(perp_store):
    """Perpetuals in chunks: mark candles and funding read per chunk, funding at its global bars, isolated
    margin and the cross wallet carried between chunks (one new compile: the chunked kernels with marks)."""
    full = perp_store.read_market("binance_futures", PERPS, "1h")
    assert full.has_mark
    def hold(m):  # long from bar 3 on: B holds through its mark gap (chunk 3 starts in it at bar 48)
        e = np.zeros(m.shape, dtype=bool)
        e[m.index == full.index[3]] = True
        return e, np.zeros(m.shape, dtype=bool)

    hold.lookback = 0
    for fn, opts, chunk_bars in ((cross, dict(leverage=8.0), 7), (cross, dict(leverage=8.0, margin="cross"), 16),
                                 (hold, dict(leverage=2.0, margin="cross", size=0.4), 16)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = nbtrade.backtest(full, *fn(full), instrument="perp", fees=0.0005, **opts)
            got = nbtrade.backtest_chunked(perp_store, PERPS, fn, timeframe="1h", chunk_bars=chunk_bars,
                                           instrument="perp", fees=0.0005, **opts)
        assert (ref.funding_flows != 0).any()
        check_same(got, ref)
        np.testing.assert_array_equal(got.funding_flows, ref.funding_flows)
        assert got.assumptions["mark"] == ref.assumptions["mark"]
        assert got.assumptions["margin"] == ref.assumptions["margin"]
    assert ref.funding_flows[48, 1] != 0  # an event without a mark price in a bar without a mark candle


def test_readme_block_runs(store):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Larger than memory"):], re.S).group(1)
    code = code.replace('"~/.nbtrade/data"', repr(str(store.root))).replace('"1m"', '"1h"')
    env = {"symbols": SYMS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, "README", "exec"), env)
    assert env["res"].equity.shape == (336,)
