"""Public indicator API: TA-Lib parity, pandas in/out, NaN policy, lookbacks, bad input."""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nbtrade.indicators as ind
from nbtrade.synthetic import candles, market

talib = pytest.importorskip("talib")
talib_abstract = pytest.importorskip("talib.abstract")

# name -> (nbtrade call, talib call, inputs); f(inputs, **params)
CASES = {
    "sma": (lambda d, p: ind.sma(d["close"], p), lambda d, p: talib.SMA(d["close"], p), 1),
    "ema": (lambda d, p: ind.ema(d["close"], p), lambda d, p: talib.EMA(d["close"], p), 1),
    "wma": (lambda d, p: ind.wma(d["close"], p), lambda d, p: talib.WMA(d["close"], p), 1),
    "dema": (lambda d, p: ind.dema(d["close"], p), lambda d, p: talib.DEMA(d["close"], p), 1),
    "tema": (lambda d, p: ind.tema(d["close"], p), lambda d, p: talib.TEMA(d["close"], p), 1),
    "kama": (lambda d, p: ind.kama(d["close"], p), lambda d, p: talib.KAMA(d["close"], p), 1),
    "rsi": (lambda d, p: ind.rsi(d["close"], p), lambda d, p: talib.RSI(d["close"], p), 2),
    "macd": (lambda d, p: ind.macd(d["close"], p, 2 * p + 2, max(1, p - 3)),
             lambda d, p: talib.MACD(d["close"], p, 2 * p + 2, max(1, p - 3)), 2),
    "macd_swapped": (lambda d, p: ind.macd(d["close"], p + 5, p, 3),
                     lambda d, p: talib.MACD(d["close"], p + 5, p, 3), 2),
    "bbands": (lambda d, p: ind.bbands(d["close"], p, 2.0, 1.5), lambda d, p: talib.BBANDS(d["close"], p, 2.0, 1.5), 2),
    "trange": (lambda d, p: ind.trange(d["high"], d["low"], d["close"]),
               lambda d, p: talib.TRANGE(d["high"], d["low"], d["close"]), 1),
    "atr": (lambda d, p: ind.atr(d["high"], d["low"], d["close"], p),
            lambda d, p: talib.ATR(d["high"], d["low"], d["close"], p), 1),
    "stoch": (lambda d, p: ind.stoch(d["high"], d["low"], d["close"], p, 3, 0, 3, 0),
              lambda d, p: talib.STOCH(d["high"], d["low"], d["close"], p, 3, 0, 3, 0), 1),
    "stoch_k1": (lambda d, p: ind.stoch(d["high"], d["low"], d["close"], p, 1, slowd_period=2),
                 lambda d, p: talib.STOCH(d["high"], d["low"], d["close"], p, 1, 0, 2, 0), 1),
    "obv": (lambda d, p: ind.obv(d["close"], d["volume"]), lambda d, p: talib.OBV(d["close"], d["volume"]), 1),
    "adx": (lambda d, p: ind.adx(d["high"], d["low"], d["close"], p),
            lambda d, p: talib.ADX(d["high"], d["low"], d["close"], p), 2),
}


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def assert_parity(got, want, scale):
    for g, w in zip(as_tuple(got), as_tuple(want)):
        g = np.asarray(g)
        assert_array_equal(np.isnan(g), np.isnan(w))
        # MACD and its histogram cross zero: relative error is judged against the price scale
        assert_allclose(g, w, rtol=1e-9, atol=1e-12 * scale, equal_nan=True)


@pytest.fixture(scope="module")
def btc():
    return candles("BTC/USDT", "2024-01-01", "2024-01-02 12:00", "1m", seed=7)  # 2160 bars


def scaled(d, factor, lead_nan=0):
    out = {k: v * factor for k, v in d.items() if k != "time"}
    for v in out.values():
        v[:lead_nan] = np.nan
    return out


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("period", ["min", 2, 14, 30, 5000])
def test_talib_parity(btc, name, period):
    ours, theirs, minimum = CASES[name]
    p = minimum if period == "min" else period
    for factor in (1.0, 1e12, 1e-12):
        d = scaled(btc, factor)
        assert_parity(ours(d, p), theirs(d, p), factor * 4e4)


@pytest.mark.parametrize("name", CASES)
def test_talib_parity_edge_cases(btc, name):
    ours, theirs, minimum = CASES[name]
    p = max(minimum, 5)
    n = len(btc["close"])
    cases = {
        "leading_nans": scaled(btc, 1.0, lead_nan=37),
        "short": {k: v[:p - 1].copy() for k, v in scaled(btc, 1.0).items()},
        "all_nan": {k: np.full(50, np.nan) for k in ("high", "low", "close", "volume")},
        "constant": {k: np.full(200, 7.3) for k in ("high", "low", "close", "volume")},
        "flat_ohlc_after_moves": {k: np.concatenate([v[:300], np.full(100, 12345.5)]) for k, v in btc.items()
                                  if k != "time"},
        "empty": {k: np.empty(0) for k in ("high", "low", "close", "volume")},
    }
    assert n > 300
    for case, d in cases.items():
        assert_parity(ours(d, p), theirs(d, p), 4e4)


@pytest.mark.parametrize("name", CASES)
def test_frames_columns_run_like_series(name):
    ours = CASES[name][0]
    p = max(CASES[name][2], 6)
    mk = market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-01-01 06:00", "1m", seed=3)
    frames = {col: pd.DataFrame({s: df[col] for s, df in mk.items()}) for col in ("high", "low", "close", "volume")}
    frames["close"].iloc[50, 1] = np.nan
    got = as_tuple(ours(frames, p))
    for g in got:
        assert isinstance(g, pd.DataFrame)
        assert g.index.equals(frames["close"].index) and g.columns.equals(frames["close"].columns)
    for sym in frames["close"].columns:
        series = {k: v[sym] for k, v in frames.items()}
        want = as_tuple(ours(series, p))
        for g, w in zip(got, want):
            assert isinstance(w, pd.Series) and w.index.equals(frames["close"].index)
            assert_array_equal(g[sym].to_numpy(), w.to_numpy())
    # numpy 2-D in C and F order gives the same values
    for order in ("C", "F"):
        arrays = {k: np.asarray(v.to_numpy(), order=order) for k, v in frames.items()}
        for g, w in zip(got, as_tuple(ours(arrays, p))):
            assert_array_equal(g.to_numpy(), w)


def test_any_dtype_and_contiguity():
    x = np.arange(200, dtype=np.int32)[::2]  # int, strided
    assert_array_equal(ind.sma(x, 3), ind.sma(x.astype(float).copy(), 3))
    assert_allclose(ind.ema(x.astype(np.float32), 5), talib.EMA(x.astype(float), 5), rtol=1e-9)
    s = pd.Series(x, dtype="Int64", name="px")
    r = ind.rsi(s)
    assert r.name == "px" and r.index.equals(s.index)


def test_out_argument():
    x = np.linspace(1.0, 2.0, 50)
    buf = np.empty(50)
    res = ind.ema(x, 10, out=buf)
    assert res is buf
    assert_allclose(buf, talib.EMA(x, 10), rtol=1e-12)
    h, lo = x + 0.1, x - 0.1
    for fn, args in [(ind.sma, (x, 5)), (ind.wma, (x, 5)), (ind.dema, (x, 5)), (ind.tema, (x, 5)),
                     (ind.kama, (x, 5)), (ind.rsi, (x, 5)), (ind.trange, (h, lo, x)), (ind.atr, (h, lo, x, 5)),
                     (ind.obv, (x, x)), (ind.adx, (h, lo, x, 5))]:
        buf = np.full(50, -1.0)
        assert fn(*args, out=buf) is buf
        assert_array_equal(buf, fn(*args))
    two = np.column_stack([x, x[::-1]])  # row-major input: computed in Fortran order
    for order in ("F", "C"):
        buf2 = np.empty((50, 2), order=order)
        assert ind.sma(two, 4, out=buf2) is buf2
        assert_array_equal(buf2[:, 1], ind.sma(x[::-1], 4))
    with pytest.raises(ValueError, match="out"):
        ind.sma(x, 5, out=np.empty(49))


def test_ema_seed_first_matches_pandas_ewm():
    c = candles("ETH/USDT", "2024-01-01", "2024-01-02", "1m", seed=1)["close"]
    for span in (1, 2, 12, 30, 200):
        want = pd.Series(c).ewm(span=span, adjust=False).mean().to_numpy()
        assert_allclose(ind.ema(c, span, seed="first"), want, rtol=1e-9)
    x = np.concatenate([[np.nan, np.nan], c[:100]])  # leading NaNs are skipped by both
    want = pd.Series(x).ewm(span=10, adjust=False).mean().to_numpy()
    assert_allclose(ind.ema(x, 10, seed="first"), want, rtol=1e-9)


def test_inner_nan_does_not_poison():
    c = candles("BTC/USDT", "2024-01-01", "2024-01-02", "1m", seed=2)
    h, lo, cl, v = c["high"], c["low"], c["close"].copy(), c["volume"]
    cl[500] = np.nan
    outs = [ind.sma(cl, 20), ind.ema(cl, 20), ind.wma(cl, 20), ind.dema(cl, 20), ind.tema(cl, 20), ind.kama(cl, 20),
            ind.rsi(cl), *ind.macd(cl), *ind.bbands(cl, 20), ind.trange(h, lo, cl), ind.atr(h, lo, cl),
            *ind.stoch(h, lo, cl), ind.obv(cl, v), ind.adx(h, lo, cl)]
    for o in outs:
        assert np.isnan(o[500])
        assert np.isfinite(o[600:]).all()
    # windowed: NaN exactly while the NaN is in the window
    s = ind.sma(cl, 20)
    assert np.isnan(s[500:520]).all() and np.isfinite(s[520]) and np.isfinite(s[499])
    # recursive: re-seeded as if the series started after the NaN
    assert_allclose(ind.ema(cl, 20)[501:], talib.EMA(cl[501:], 20), rtol=1e-12)
    assert_allclose(ind.rsi(cl)[501:], talib.RSI(cl[501:]), rtol=1e-12)


@pytest.mark.parametrize("name, params", [
    ("sma", {"timeperiod": 20}), ("ema", {"timeperiod": 20}), ("ema", {"timeperiod": 20, "seed": "first"}),
    ("wma", {"timeperiod": 20}), ("dema", {"timeperiod": 10}), ("tema", {"timeperiod": 10}),
    ("kama", {"timeperiod": 10}), ("rsi", {"timeperiod": 14}), ("macd", {}), ("bbands", {"timeperiod": 20}),
    ("trange", {}), ("atr", {"timeperiod": 14}), ("stoch", {}), ("adx", {"timeperiod": 14}),
])
def test_values_past_settle_do_not_depend_on_history(name, params):
    lb = ind.lookback(name, **params)
    d = candles("BTC/USDT", "2024-01-01", "2024-01-09", "1m", seed=5)  # 11520 bars
    n_extra = 1500
    assert lb.settle + 100 < len(d["close"]) - n_extra
    fn = getattr(ind, name)
    inputs = {"close": ["close"], "trange": ["high", "low", "close"], "atr": ["high", "low", "close"],
              "stoch": ["high", "low", "close"], "adx": ["high", "low", "close"]}.get(name, ["close"])
    long_ = as_tuple(fn(*[d[k] for k in inputs], **params))
    short = as_tuple(fn(*[d[k][n_extra:] for k in inputs], **params))
    for lo_, sh in zip(long_, short):
        assert np.isnan(sh[:lb.warmup]).all() and not np.isnan(sh[lb.warmup:]).any()
        assert_allclose(sh[lb.settle:], lo_[n_extra + lb.settle:], rtol=1e-9, atol=1e-9)


def test_lookback_registry():
    assert ind.lookback("sma") == (29, 29)
    assert ind.lookback("EMA", timeperiod=10).warmup == 9
    assert ind.lookback("ema", timeperiod=10, seed="first").warmup == 0
    assert ind.lookback("macd").warmup == np.isnan(talib.MACD(np.arange(100.0))[0]).sum() == 33
    assert ind.lookback("adx", timeperiod=14).warmup == 27
    assert ind.lookback("stoch").warmup == 8
    assert ind.lookback("obv").settle == ind.NEVER_SETTLES
    assert ind.lookback("rsi").settle > ind.lookback("rsi").warmup
    with pytest.raises(ValueError, match="unknown indicator"):
        ind.lookback("foo")
    with pytest.raises(TypeError, match="lookback"):
        ind.lookback("sma", period=3)
    with pytest.raises(ValueError, match="timeperiod"):
        ind.lookback("rsi", timeperiod=1)


@pytest.mark.parametrize("name, talib_name, params", [
    ("sma", "SMA", {"timeperiod": 7}), ("ema", "EMA", {"timeperiod": 7}), ("wma", "WMA", {"timeperiod": 7}),
    ("dema", "DEMA", {"timeperiod": 7}), ("tema", "TEMA", {"timeperiod": 7}), ("kama", "KAMA", {"timeperiod": 7}),
    ("rsi", "RSI", {"timeperiod": 7}), ("macd", "MACD", {"fastperiod": 5, "slowperiod": 9, "signalperiod": 4}),
    ("bbands", "BBANDS", {"timeperiod": 7}), ("trange", "TRANGE", {}), ("atr", "ATR", {"timeperiod": 7}),
    ("stoch", "STOCH", {"fastk_period": 6, "slowk_period": 4, "slowd_period": 2}), ("obv", "OBV", {}),
    ("adx", "ADX", {"timeperiod": 7}),
])
def test_warmup_is_talib_lookback(name, talib_name, params):
    fn = talib_abstract.Function(talib_name)
    fn.set_parameters(params)
    assert ind.lookback(name, **params).warmup == fn.lookback


def test_bad_input():
    x = np.arange(10.0)
    with pytest.raises(ValueError, match="timeperiod"):
        ind.sma(x, 0)
    with pytest.raises(ValueError, match="timeperiod"):
        ind.rsi(x, 1)
    with pytest.raises(ValueError, match="timeperiod"):
        ind.adx(x, x, x, 1)
    with pytest.raises(ValueError, match="timeperiod"):
        ind.bbands(x, 1)
    with pytest.raises(ValueError, match="fastperiod"):
        ind.macd(x, 1)
    with pytest.raises(ValueError, match="signalperiod"):
        ind.macd(x, 12, 26, 0)
    with pytest.raises(ValueError, match="slowk_period"):
        ind.stoch(x, x, x, 5, 0)
    with pytest.raises(ValueError, match="slowd_matype"):
        ind.stoch(x, x, x, 5, 3, 0, 3, 1)
    with pytest.raises(ValueError, match="matype"):
        ind.bbands(x, 5, 2.0, 2.0, 1)
    with pytest.raises(TypeError, match="timeperiod"):
        ind.ema(x, 2.5)
    with pytest.raises(TypeError, match="nbdevup"):
        ind.bbands(x, 5, "2")
    with pytest.raises(ValueError, match="seed"):
        ind.ema(x, 5, seed="pandas")
    with pytest.raises(ValueError, match="low"):
        ind.atr(x, x[:9], x)
    with pytest.raises(ValueError, match="volume"):
        ind.obv(x, x[:-1])
    with pytest.raises(ValueError, match="close"):
        ind.ema(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="close"):
        ind.sma(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="high"):
        ind.trange(np.array([True, False]), x[:2], x[:2])


def test_empty_input_gives_empty_output():
    e = np.empty(0)
    assert ind.sma(e).shape == (0,)
    assert [o.shape for o in ind.macd(e)] == [(0,)] * 3
    assert ind.adx(e, e, e).shape == (0,)
    frame = pd.DataFrame({"a": [], "b": []}, dtype=float)
    assert ind.rsi(frame).shape == (0, 2)


def test_doctests():
    res = doctest.testmod(ind, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 10


def test_out_may_alias_the_input():
    c = candles("BTC/USDT", "2024-01-01", "2024-01-01 06:00", "1m", seed=4)
    for fn in (ind.sma, ind.wma, ind.ema, ind.kama, ind.rsi):
        x = c["close"].copy()
        want = fn(x, 10)
        assert fn(x, 10, out=x) is x
        assert_array_equal(x, want)
    h, lo, cl = c["high"].copy(), c["low"].copy(), c["close"].copy()
    want = ind.atr(h, lo, cl, 5)
    ind.atr(h, lo, cl, 5, out=cl)
    assert_array_equal(cl, want)


def test_micro_prices_scale_exactly():
    """Exact zero tests: a power-of-two rescale changes nothing (TA-Lib's |v| < 1e-14 band would)."""
    c = candles("PEPE/USDT", "2024-01-01", "2024-01-02", "1m", seed=9)
    f = 2.0 ** -70  # prices ~1e-21: ranges and variances far below TA-Lib's zero band
    h, lo, cl = c["high"], c["low"], c["close"]
    hs, ls, cs = h * f, lo * f, cl * f
    assert_array_equal(ind.rsi(cs), ind.rsi(cl))
    assert_array_equal(ind.adx(hs, ls, cs), ind.adx(h, lo, cl))
    assert_array_equal(ind.kama(cs, 10), ind.kama(cl, 10) * f)
    assert_array_equal(ind.atr(hs, ls, cs), ind.atr(h, lo, cl) * f)
    for a, b in zip(ind.bbands(cs, 20), ind.bbands(cl, 20)):
        assert_array_equal(a, b * f)
    for a, b in zip(ind.stoch(hs, ls, cs), ind.stoch(h, lo, cl)):
        assert_array_equal(a, b)


def test_bbands_accurate_where_squares_cancel():
    """Large price, tiny spread: E[x^2] - mean^2 would lose every digit."""
    rng = np.random.default_rng(0)
    x = 1e8 + rng.standard_normal(3000) * 1e-3
    x = np.concatenate([x, np.full(30, 1e8 + 0.5)])  # then a flat stretch: exactly zero width
    k = 1e6  # a wide band, so that u - m keeps the digits of the deviation
    u, m, lo = ind.bbands(x, 20, k, 1.0)
    win = np.lib.stride_tricks.sliding_window_view(x, 20)
    assert_allclose((u - m)[19:] / k, win.std(axis=1), rtol=1e-8)
    assert_allclose(m[19:], win.mean(axis=1), rtol=1e-15)
    assert (u[-1] - m[-1]) == 0.0 and m[-1] == 1e8 + 0.5


def test_running_sums_do_not_drift():
    rng = np.random.default_rng(1)
    x = 30_000.0 * np.exp(np.cumsum(rng.standard_normal(1_000_000) * 1e-3))
    tail = x[-100:]
    assert_allclose(ind.sma(x, 50)[-51:], np.lib.stride_tricks.sliding_window_view(x[-100:], 50).mean(axis=1),
                    rtol=1e-12)
    u, m, _ = ind.bbands(x, 50, 1e6, 1.0)
    assert_allclose((u - m)[-51:] / 1e6, np.lib.stride_tricks.sliding_window_view(tail, 50).std(axis=1), rtol=1e-9)
    w = np.arange(1.0, 31.0)
    assert_allclose(ind.wma(x, 30)[-1], (x[-30:] * w).sum() / w.sum(), rtol=1e-12)


_SUBJECTS = {
    "sma": lambda d: ind.sma(d["close"], 20), "ema": lambda d: ind.ema(d["close"], 20),
    "wma": lambda d: ind.wma(d["close"], 20), "dema": lambda d: ind.dema(d["close"], 10),
    "tema": lambda d: ind.tema(d["close"], 10), "kama": lambda d: ind.kama(d["close"], 10),
    "rsi": lambda d: ind.rsi(d["close"]), "macd": lambda d: ind.macd(d["close"]),
    "bbands": lambda d: ind.bbands(d["close"], 20), "trange": lambda d: ind.trange(d["high"], d["low"], d["close"]),
    "atr": lambda d: ind.atr(d["high"], d["low"], d["close"]),
    "stoch": lambda d: ind.stoch(d["high"], d["low"], d["close"]),
    "obv": lambda d: ind.obv(d["close"], d["volume"]), "adx": lambda d: ind.adx(d["high"], d["low"], d["close"]),
}
_PARAMS = {"sma": {"timeperiod": 20}, "ema": {"timeperiod": 20}, "wma": {"timeperiod": 20}, "dema": {"timeperiod": 10},
           "tema": {"timeperiod": 10}, "kama": {"timeperiod": 10}, "bbands": {"timeperiod": 20}}


@pytest.fixture(scope="module")
def frame():
    return market(["BTC/USDT"], "2024-01-01", "2024-01-06", "1m", seed=11)["BTC/USDT"]  # 7200 bars


@pytest.mark.parametrize("name", _SUBJECTS)
def test_checks_no_lookahead_and_settle_within_lookback(frame, name):
    from nbtrade.checks import check_lookahead, check_recursive

    subject = _SUBJECTS[name]
    assert check_lookahead(subject, frame, cuts=8).ok
    lb = ind.lookback(name, **_PARAMS.get(name, {}))
    if name == "obv":  # a running total never forgets its start: any finite warm-up is exceeded
        assert not check_recursive(subject, frame, starts=(150, 500), max_warmup=100, atol=1e-9).ok
        return
    report = check_recursive(subject, frame, starts=(150, 500), max_warmup=lb.settle, atol=1e-9)
    assert report.ok, str(report)
    assert max(report.warmup.values()) >= lb.warmup


@pytest.mark.parametrize("name", ["sma", "ema", "wma", "dema", "tema", "kama", "rsi", "macd", "bbands", "trange",
                                  "atr", "stoch", "obv", "adx"])
def test_signature_follows_talib(name):
    import inspect

    fn = talib_abstract.Function(name.upper())
    ours = inspect.signature(getattr(ind, name)).parameters
    n_inputs = {"trange": 3, "atr": 3, "stoch": 3, "adx": 3, "obv": 2}.get(name, 1)
    params = [p for p in list(ours)[n_inputs:] if p not in ("out", "seed")]
    assert params == list(fn.parameters)
    for p, default in fn.parameters.items():
        if (name, p) != ("bbands", "timeperiod"):  # TA-Lib's C default is 5; the Python wrapper's metadata says 20
            assert ours[p].default == default, p


# ------------------------------------------------------------------ hostile input (issue 14)
_ALL_CALLS = {
    "sma": lambda h, lo, c, v: ind.sma(c, 10), "ema": lambda h, lo, c, v: ind.ema(c, 10),
    "ema_first": lambda h, lo, c, v: ind.ema(c, 10, seed="first"), "wma": lambda h, lo, c, v: ind.wma(c, 10),
    "dema": lambda h, lo, c, v: ind.dema(c, 5), "tema": lambda h, lo, c, v: ind.tema(c, 5),
    "kama": lambda h, lo, c, v: ind.kama(c, 10), "rsi": lambda h, lo, c, v: ind.rsi(c),
    "macd": lambda h, lo, c, v: ind.macd(c, 5, 10, 4), "bbands": lambda h, lo, c, v: ind.bbands(c, 10),
    "trange": lambda h, lo, c, v: ind.trange(h, lo, c), "atr": lambda h, lo, c, v: ind.atr(h, lo, c),
    "stoch": lambda h, lo, c, v: ind.stoch(h, lo, c), "obv": lambda h, lo, c, v: ind.obv(c, v),
    "adx": lambda h, lo, c, v: ind.adx(h, lo, c),
    "rolling_mean": lambda h, lo, c, v: ind.rolling_mean(c, 10), "rolling_std": lambda h, lo, c, v: ind.rolling_std(c, 10),
    "rolling_max": lambda h, lo, c, v: ind.rolling_max(c, 10), "ret": lambda h, lo, c, v: ind.ret(c, 2),
    "rolling_vwap": lambda h, lo, c, v: ind.rolling_vwap(c, v, 10),
    "ema_many": lambda h, lo, c, v: ind.ema_many(c, [3, 10]), "sma_many": lambda h, lo, c, v: ind.sma_many(c, [3, 10]),
}


@pytest.mark.parametrize("name", _ALL_CALLS)
@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_inf_is_a_missing_value_like_nan(name, bad):
    """One policy: +-inf anywhere (any input) gives exactly what NaN there gives; never poisons later bars."""
    c = candles("BTC/USDT", "2024-01-01", "2024-01-01 04:00", "1m", seed=8)
    base = [c["high"], c["low"], c["close"], c["volume"]]
    for k, pos in ((2, 100), (0, 50), (1, 70), (3, 90), (2, 0)):
        if name in ("trange", "atr", "stoch", "adx") and k == 3 or name in ("obv", "rolling_vwap") and k in (0, 1):
            continue
        with_inf = [a.copy() for a in base]
        with_nan = [a.copy() for a in base]
        with_inf[k][pos] = bad
        with_nan[k][pos] = np.nan
        for g, w in zip(as_tuple(_ALL_CALLS[name](*with_inf)), as_tuple(_ALL_CALLS[name](*with_nan))):
            assert_array_equal(np.asarray(g), np.asarray(w))
            assert not np.isinf(np.asarray(g)).any()
            assert np.isfinite(np.asarray(g)[-1]).all()


def test_one_inf_no_longer_poisons_an_ema():
    x = np.linspace(100.0, 110.0, 50)
    x[10] = np.inf
    out = ind.ema(x, 5)
    assert np.isinf(out).sum() == 0 and np.isfinite(out[20:]).all()
    assert_allclose(out[11:], talib.EMA(x[11:], 5), rtol=1e-12)


@pytest.mark.parametrize("fn", [lambda h, lo, c: ind.atr(h, lo, c), lambda h, lo, c: ind.adx(h, lo, c),
                                lambda h, lo, c: ind.stoch(h, lo, c), lambda h, lo, c: ind.trange(h, lo, c)])
def test_high_below_low_is_refused_naming_the_arguments(fn):
    c = candles("BTC/USDT", "2024-01-01", "2024-01-01 02:00", "1m", seed=3)
    h, lo, cl = c["high"], c["low"], c["close"]
    with pytest.raises(ValueError, match=r"high < low at bar 0 .*swapped.*\(high, low, close"):
        fn(lo, h, cl)  # swapped
    h2 = h.copy()
    h2[37] = lo[37] - 1.0
    with pytest.raises(ValueError, match="at bar 37"):
        fn(h2, lo, cl)
    frame = {k: pd.DataFrame({"A": v, "B": v}, index=pd.date_range("2024-01-01", periods=len(v), freq="min"))
             for k, v in (("h", h2), ("lo", lo), ("c", cl))}
    frame["h"]["A"] = h
    with pytest.raises(ValueError, match=r"2024-01-01 00:37:00.*column 'B'"):
        fn(frame["h"], frame["lo"], frame["c"])
    h3, lo3 = h.copy(), lo.copy()
    h3[5], lo3[6] = np.nan, np.nan  # missing bars are not inconsistent ones
    fn(h3, lo3, cl)


def test_one_row_2d_array_is_explained():
    x = np.arange(1.0, 51.0)[None, :]
    for call in (lambda: ind.ema(x, 5), lambda: ind.rolling_mean(x, 5), lambda: ind.atr(x, x, x)):
        with pytest.raises(ValueError, match=r"shape \(1, 50\): 2-D inputs are time x symbols.*ravel"):
            call()
    one_bar = pd.DataFrame(x, columns=[f"S{i}" for i in range(50)])  # one bar of 50 symbols: allowed, labelled
    assert ind.sma(one_bar, 1).shape == (1, 50)
    assert ind.sma(x.T, 5).shape == (50, 1)  # one symbol as a column


@pytest.mark.parametrize("call, arg", [
    (lambda x: ind.ema(x, 2 ** 64), "timeperiod"), (lambda x: ind.sma(x, 2 ** 33), "timeperiod"),
    (lambda x: ind.macd(x, 12, 2 ** 63), "slowperiod"), (lambda x: ind.rolling_mean(x, 2 ** 40), "window"),
    (lambda x: ind.ema_many(x, [5, 2 ** 64]), "spans"), (lambda x: ind.ret(x, -1), "n"),
    (lambda x: ind.lookback("ema", timeperiod=2 ** 62), "timeperiod"),
    (lambda x: ind.lookback("rolling_std", window=2 ** 62), "window"),
])
def test_huge_periods_name_the_parameter_and_range(call, arg):
    with pytest.raises(ValueError, match=rf"{arg} must be an integer in \[\d+, 4294967296\]"):
        call(np.arange(10.0))


def test_largest_period_runs_and_settles():
    x = np.arange(1.0, 11.0)
    assert np.isnan(ind.ema(x, 2 ** 32)).all() and np.isnan(ind.stoch(x + 1, x, x, 3, 2 ** 32)[0]).all()
    lb = ind.lookback("ema", timeperiod=2 ** 32)
    assert lb.warmup == 2 ** 32 - 1 and lb.settle > lb.warmup
    assert ind.rolling_max(x, 2 ** 32, minp=1)[-1] == 10.0
