"""Hostile input over the public indicator and rolling API (issue 14), as properties.

Random NaN and +-inf runs, constant stretches, empty input, periods from 1 to
longer than the data, wrong parameter types, 2-D panels. Every call must either
return the reference's answer (``tests/reference.py``, ``tests/reference_rolling.py``,
TA-Lib on clean data) with +-inf read as missing, or raise a ``TypeError`` /
``ValueError`` naming the parameter: no crash, no other exception, no silent wrong value.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from nbtrade import indicators as ind
from tests import reference as R
from tests import reference_rolling as RR

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPECIAL = (math.nan, math.inf, -math.inf)


@st.composite
def hostile(draw, min_size: int = 0, max_size: int = 90) -> np.ndarray:
    """Prices in runs: random walks, constant stretches, NaN / +inf / -inf runs."""
    n = draw(st.integers(min_size, max_size))
    out: list[float] = []
    level = draw(st.floats(1.0, 1e4))
    while len(out) < n:
        kind = draw(st.sampled_from(["walk", "walk", "flat", "special"]))
        k = min(draw(st.integers(1, 25)), n - len(out))
        if kind == "walk":
            # steps of 0 or >= 1e-5: windows that differ only in the last bits are ill-conditioned
            # for var/zscore/corr (the exact answer and a float reference part ways), not hostile
            steps = draw(st.lists(st.one_of(st.just(0.0), st.floats(1e-5, 0.02), st.floats(-0.02, -1e-5)),
                                  min_size=k, max_size=k))
            for s in steps:
                level = max(level * (1.0 + s), 1e-3)
                out.append(level)
        elif kind == "flat":
            out.extend([level] * k)
        else:
            out.extend([draw(st.sampled_from(SPECIAL))] * k)
    return np.array(out, dtype=np.float64)


def missing_as_nan(*arrays: np.ndarray) -> list[np.ndarray]:
    return [np.where(np.isfinite(a), a, np.nan) for a in arrays]


def hlc(close: np.ndarray, spread: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = np.abs(spread[:close.size]) * np.where(np.isfinite(close), close, 0.0) * 1e-3
    return close + s, close - s, close


def check(got, want, scale: float = 1e4) -> None:
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        g = np.asarray(g, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        assert g.shape == w.shape
        assert not np.isinf(g).any(), "an indicator returned inf"
        assert_array_equal(np.isnan(g), np.isnan(w))
        assert_allclose(g, w, rtol=1e-8, atol=1e-9 * scale, equal_nan=True)


# ------------------------------------------------------------------ one-input indicators vs the references
ONE = {
    "sma": (1, lambda x, p: ind.sma(x, p), lambda x, p: R.sma(x, p)),
    "ema": (1, lambda x, p: ind.ema(x, p), lambda x, p: R.ema(x, p)),
    "ema_first": (1, lambda x, p: ind.ema(x, p, seed="first"), lambda x, p: R.ema(x, p, "first")),
    "wma": (1, lambda x, p: ind.wma(x, p), lambda x, p: R.wma(x, p)),
    "dema": (1, lambda x, p: ind.dema(x, p), lambda x, p: R.dema(x, p)),
    "tema": (1, lambda x, p: ind.tema(x, p), lambda x, p: R.tema(x, p)),
    "kama": (1, lambda x, p: ind.kama(x, p), lambda x, p: R.kama(x, p)),
    "rsi": (2, lambda x, p: ind.rsi(x, p), lambda x, p: R.rsi(x, p)),
    "macd": (2, lambda x, p: ind.macd(x, p, p + 3, max(1, p - 1)), lambda x, p: R.macd(x, p, p + 3, max(1, p - 1))),
    "bbands": (2, lambda x, p: ind.bbands(x, p, 2.0, 1.5), lambda x, p: R.bbands(x, p, 2.0, 1.5)),
}


@pytest.mark.parametrize("name", ONE)
@SETTINGS
@given(x=hostile(), period=st.integers(1, 100))
def test_one_input_indicators_match_the_reference(name, x, period):
    minimum, ours, ref = ONE[name]
    p = max(period, minimum)
    (clean,) = missing_as_nan(x)
    got = ours(x, p)
    want = ref(clean.tolist(), p)
    check(got, tuple(np.asarray(w) for w in want) if isinstance(want, tuple) else np.asarray(want))


HLC = {
    "trange": (1, lambda h, lo, c, v, p: ind.trange(h, lo, c), lambda h, lo, c, v, p: R.trange(h, lo, c)),
    "atr": (1, lambda h, lo, c, v, p: ind.atr(h, lo, c, p), lambda h, lo, c, v, p: R.atr(h, lo, c, p)),
    "adx": (2, lambda h, lo, c, v, p: ind.adx(h, lo, c, p), lambda h, lo, c, v, p: R.adx(h, lo, c, p)),
    "stoch": (1, lambda h, lo, c, v, p: ind.stoch(h, lo, c, p, 3, 0, 2, 0),
              lambda h, lo, c, v, p: R.stoch(h, lo, c, p, 3, 2)),
    "obv": (1, lambda h, lo, c, v, p: ind.obv(c, v), lambda h, lo, c, v, p: R.obv(c, v)),
}


@pytest.mark.parametrize("name", HLC)
@SETTINGS
@given(x=hostile(), spread=st.lists(st.floats(0.0, 5.0), min_size=90, max_size=90), period=st.integers(1, 100),
       vol_holes=st.lists(st.integers(0, 89), max_size=5))
def test_high_low_close_indicators_match_the_reference(name, x, spread, period, vol_holes):
    minimum, ours, ref = HLC[name]
    h, lo, c = hlc(x, np.array(spread))
    v = np.abs(np.where(np.isfinite(x), x, 1.0)) % 97.0
    for i in vol_holes:
        if i < v.size:
            v[i] = np.inf
    p = max(period, minimum)
    got = ours(h, lo, c, v, p)
    want = ref(*[a.tolist() for a in missing_as_nan(h, lo, c, v)], p)
    check(got, tuple(np.asarray(w) for w in want) if isinstance(want, tuple) else np.asarray(want))


@pytest.mark.parametrize("name", ["sma", "ema", "wma", "rsi", "macd", "bbands", "kama", "dema", "tema"])
@SETTINGS
@given(x=hostile(min_size=1).filter(lambda a: np.isfinite(a).all()), period=st.integers(2, 40))
def test_clean_data_equals_talib(name, x, period):
    talib = pytest.importorskip("talib")
    ours = ONE[name][1](x, period)
    theirs = {"sma": lambda: talib.SMA(x, period), "ema": lambda: talib.EMA(x, period),
              "wma": lambda: talib.WMA(x, period), "rsi": lambda: talib.RSI(x, period),
              "macd": lambda: talib.MACD(x, period, period + 3, period - 1),
              "bbands": lambda: talib.BBANDS(x, period, 2.0, 1.5), "kama": lambda: talib.KAMA(x, period),
              "dema": lambda: talib.DEMA(x, period), "tema": lambda: talib.TEMA(x, period)}[name]()
    for g, w in zip(ours if isinstance(ours, tuple) else (ours,), theirs if isinstance(theirs, tuple) else (theirs,)):
        assert_array_equal(np.isnan(g), np.isnan(w))
        assert_allclose(g, w, rtol=1e-8, atol=1e-8 * float(np.max(x)), equal_nan=True)


# ------------------------------------------------------------------ rolling statistics vs the references
ROLL = {
    "rolling_sum": lambda x, y, w, m: (ind.rolling_sum(x, w, m), RR.rolling(x, w, m, "sum")),
    "rolling_mean": lambda x, y, w, m: (ind.rolling_mean(x, w, m), RR.rolling(x, w, m, "mean")),
    "rolling_var": lambda x, y, w, m: (ind.rolling_var(x, w, m), RR.rolling(x, w, m, "var")),
    "rolling_std": lambda x, y, w, m: (ind.rolling_std(x, w, m, ddof=0), RR.rolling(x, w, m, "std", 0)),
    "rolling_min": lambda x, y, w, m: (ind.rolling_min(x, w, m), RR.rolling(x, w, m, "min")),
    "rolling_max": lambda x, y, w, m: (ind.rolling_max(x, w, m), RR.rolling(x, w, m, "max")),
    "rolling_zscore": lambda x, y, w, m: (ind.rolling_zscore(x, w, m), RR.rolling(x, w, m, "zscore")),
    "rolling_corr": lambda x, y, w, m: (ind.rolling_corr(x, y, w, m), RR.rolling_pair(x, y, w, m, "corr")),
    "rolling_beta": lambda x, y, w, m: (ind.rolling_beta(y, x, w, m), RR.rolling_pair(x, y, w, m, "beta")),
    "rolling_cov": lambda x, y, w, m: (ind.rolling_cov(x, y, w, m), RR.rolling_pair(x, y, w, m, "cov")),
    "rolling_vwap": lambda x, y, w, m: (ind.rolling_vwap(x, np.abs(y), w, m), RR.rolling_vwap(x, np.abs(y), w, m)),
    "ret": lambda x, y, w, m: (ind.ret(x, w), RR.ret(np.where(np.isfinite(x), x, np.nan), w, False)),
}


@pytest.mark.parametrize("name", ROLL)
@SETTINGS
@given(x=hostile(), y=hostile(max_size=0), window=st.integers(1, 100), minp=st.integers(1, 100), seed=st.integers(0, 9))
def test_rolling_statistics_match_the_reference(name, x, y, window, minp, seed):
    rng = np.random.default_rng(seed)
    y = x[::-1] * (1.0 + rng.standard_normal(x.size) * 0.01)  # same runs of missing values, reversed
    m = min(minp, window)
    got, want = ROLL[name](x, y, window, m)
    # the references skip NaN only: give them +-inf as NaN (pandas' and nbtrade's rule)
    if name not in ("ret",):
        xs, ys = missing_as_nan(x, y)
        got2, want = ROLL[name](xs, ys, window, m)
        assert_array_equal(np.asarray(got), np.asarray(got2))  # +-inf behaves exactly as NaN
    scale = float(np.nanmax(np.abs(np.where(np.isfinite(x), x, np.nan)))) if np.isfinite(x).any() else 1.0
    scale = scale ** 2 if name in ("rolling_var", "rolling_cov") else scale
    check(got, np.asarray(want), scale)


@SETTINGS
@given(x=hostile(), spans=st.lists(st.integers(1, 100), min_size=1, max_size=4), first=st.booleans())
def test_batched_averages_match_the_reference(x, spans, first):
    # ema_many skips a missing bar and carries on (pandas' ewm(ignore_na=True) rule, see its
    # docstring); ema restarts after one. Both read +-inf as missing.
    seed = "first" if first else "sma"
    many = ind.ema_many(x, spans, seed=seed)
    (clean,) = missing_as_nan(x)
    for j, s in enumerate(spans):
        check(many[:, j], RR.ema(clean, s, seed))
        check(ind.sma_many(x, spans)[:, j], RR.sma(clean, s) if clean.size else np.empty(0))


# ------------------------------------------------------------------ panels, parameters, types
@pytest.mark.parametrize("name", ["sma", "ema", "rsi", "macd", "bbands", "kama"])
@SETTINGS
@given(cols=st.lists(hostile(min_size=40, max_size=40), min_size=2, max_size=4), period=st.integers(2, 50),
       order=st.sampled_from(["C", "F"]))
def test_panels_equal_their_columns(name, cols, period, order):
    panel = np.array(np.column_stack(cols), order=order)
    ours = ONE[name][1]
    got = ours(panel, period)
    for j, col in enumerate(cols):
        for g, w in zip(got if isinstance(got, tuple) else (got,), ours(col, period) if isinstance(got, tuple)
                        else (ours(col, period),)):
            assert_array_equal(g[:, j], w)


BAD_PERIODS = st.one_of(st.floats(allow_nan=True), st.text(max_size=3), st.none(), st.booleans(),
                        st.integers(max_value=0), st.integers(min_value=2 ** 32 + 1), st.just([3]), st.just(3.0),
                        st.just(np.float64(5.0)))
PERIOD_CALLS = {
    "sma": (lambda x, p: ind.sma(x, p), "timeperiod"), "ema": (lambda x, p: ind.ema(x, p), "timeperiod"),
    "rsi": (lambda x, p: ind.rsi(x, p), "timeperiod"), "atr": (lambda x, p: ind.atr(x, x, x, p), "timeperiod"),
    "macd": (lambda x, p: ind.macd(x, 12, p), "slowperiod"),
    "stoch": (lambda x, p: ind.stoch(x, x, x, 5, p), "slowk_period"),
    "rolling_mean": (lambda x, p: ind.rolling_mean(x, p), "window"),
    "rolling_minp": (lambda x, p: ind.rolling_mean(x, 5, p), "minp"),
    "rolling_std_ddof": (lambda x, p: ind.rolling_std(x, 5, ddof=p), "ddof"),
    "ret": (lambda x, p: ind.ret(x, p), "n"), "ema_many": (lambda x, p: ind.ema_many(x, [3, p]), "spans"),
    "lookback": (lambda x, p: ind.lookback("ema", timeperiod=p), "timeperiod"),
}


@pytest.mark.parametrize("name", PERIOD_CALLS)
@SETTINGS
@given(bad=BAD_PERIODS)
def test_bad_parameters_are_named(name, bad):
    call, arg = PERIOD_CALLS[name]
    if name == "rolling_std_ddof" and isinstance(bad, int) and not isinstance(bad, bool) and bad == 0:
        return  # ddof=0 is valid
    if name == "rolling_minp" and bad is None:
        return  # minp=None means the window
    with pytest.raises((TypeError, ValueError), match=arg):
        call(np.linspace(1.0, 2.0, 30), bad)


BAD_INPUTS = st.one_of(st.just("abc"), st.just([["a"]]), st.just(np.zeros((2, 2, 2))), st.just(3.0),
                       st.just(np.array([True, False])), st.just(np.array(["2024-01-01"], dtype="datetime64[D]")),
                       st.just(np.array([1 + 2j])), st.just(np.ones((1, 7))), st.just(None), st.just({"a": 1}))


@pytest.mark.parametrize("name", ["sma", "ema", "rsi", "bbands", "rolling_mean", "ret", "ema_many", "atr", "obv"])
@SETTINGS
@given(bad=BAD_INPUTS)
def test_bad_inputs_are_named(name, bad):
    call = {"sma": lambda v: ind.sma(v), "ema": lambda v: ind.ema(v), "rsi": lambda v: ind.rsi(v),
            "bbands": lambda v: ind.bbands(v), "rolling_mean": lambda v: ind.rolling_mean(v, 3),
            "ret": lambda v: ind.ret(v), "ema_many": lambda v: ind.ema_many(v, [2]),
            "atr": lambda v: ind.atr(np.ones(3), np.ones(3), v), "obv": lambda v: ind.obv(np.ones(3), v)}[name]
    arg = {"rolling_mean": "x", "obv": "volume", "atr": "close"}.get(name, "close")
    with pytest.raises((TypeError, ValueError), match=arg):
        call(bad)


@SETTINGS
@given(n=st.integers(0, 5), period=st.integers(1, 2 ** 32))
def test_any_period_on_short_or_empty_data(n, period):
    x = np.linspace(1.0, 2.0, n)
    for out in (ind.sma(x, period), ind.ema(x, period), ind.kama(x, period), ind.rolling_std(x, period, minp=1),
                *ind.stoch(x + 1, x, x, 3, period, 0, period), ind.atr(x + 1, x, x, period)):
        assert out.shape == (n,)
        assert not np.isinf(out).any()
    lb = ind.lookback("ema", timeperiod=period)
    assume(lb.warmup >= 0)
    assert lb.settle >= lb.warmup == period - 1
