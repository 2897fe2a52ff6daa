"""nbtrade.rolling (formerly nbtrade.stats): input handling, pandas round trips, errors, look-ahead and lookback."""
from __future__ import annotations

import doctest

import numpy as np
import pandas as pd
import pytest

import nbtrade.rolling as S
from nbtrade.synthetic import market

# name -> callable(x, y, **params) using a 1- or 2-D x (y: a second aligned input)
FUNCS = {
    "rolling_sum": lambda x, y, w: S.rolling_sum(x, w),
    "rolling_mean": lambda x, y, w: S.rolling_mean(x, w, minp=max(1, w // 2)),
    "rolling_var": lambda x, y, w: S.rolling_var(x, w),
    "rolling_std": lambda x, y, w: S.rolling_std(x, w, ddof=0),
    "rolling_min": lambda x, y, w: S.rolling_min(x, w),
    "rolling_max": lambda x, y, w: S.rolling_max(x, w),
    "rolling_zscore": lambda x, y, w: S.rolling_zscore(x, w),
    "rolling_corr": lambda x, y, w: S.rolling_corr(x, y, w),
    "rolling_beta": lambda x, y, w: S.rolling_beta(y, x, w),
    "rolling_cov": lambda x, y, w: S.rolling_cov(x, y, w),
    "rolling_vwap": lambda x, y, w: S.rolling_vwap(x, np.abs(y) if isinstance(y, np.ndarray) else y.abs(), w),
    "ret": lambda x, y, w: S.ret(x, n=w % 5 + 1, log=True),
    "ema_many": lambda x, y, w: S.ema_many(x, [w, 2 * w, 3]),
    "ema_many_first": lambda x, y, w: S.ema_many(x, [w, 3], seed="first"),
    "sma_many": lambda x, y, w: S.sma_many(x, [w, 2 * w, 3]),
}


def _params(name, w):
    """Parameters that `lookback` needs for the call FUNCS[name] makes."""
    return {
        "rolling_mean": {"window": w, "minp": max(1, w // 2)},
        "rolling_std": {"window": w, "ddof": 0},
        "ret": {"n": w % 5 + 1},
        "ema_many": {"spans": [w, 2 * w, 3]},
        "ema_many_first": {"spans": [w, 3], "seed": "first"},
        "sma_many": {"windows": [w, 2 * w, 3]},
    }.get(name, {"window": w})


@pytest.fixture(scope="module")
def frame():
    data = market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-01-03", "5m", seed=1)
    close = pd.DataFrame({s: d["close"] for s, d in data.items()})
    volume = pd.DataFrame({s: d["volume"] for s, d in data.items()})
    return close, volume


def test_doctests():
    result = doctest.testmod(S, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0


@pytest.mark.parametrize("name", list(FUNCS))
def test_series_and_frame_round_trip(name, frame):
    close, volume = frame
    f = FUNCS[name]
    res = f(close, volume, 12)
    assert isinstance(res, pd.DataFrame) and res.index.equals(close.index)
    many = name.startswith(("ema_many", "sma_many"))
    for sym in close.columns:
        one = f(close[sym], volume[sym], 12)
        if many:
            assert isinstance(one, pd.DataFrame) and one.index.equals(close.index)
            assert list(one.columns)[0] == f"{name[:3]}_12"
            np.testing.assert_array_equal(res[sym].to_numpy(), one.to_numpy())
        else:
            assert isinstance(one, pd.Series) and one.name == sym
            np.testing.assert_array_equal(res[sym].to_numpy(), one.to_numpy())
    if not many:
        assert list(res.columns) == list(close.columns)
        # numpy C order, F order (what DataFrames give) and the frame agree
        c = f(np.ascontiguousarray(close.to_numpy()), np.ascontiguousarray(volume.to_numpy()), 12)
        np.testing.assert_array_equal(c, res.to_numpy())


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.int32])
def test_any_real_dtype_and_layout(dtype):
    x = (np.arange(40) % 7 + 1).astype(dtype)
    want = S.rolling_mean(x.astype(np.float64), 5)
    np.testing.assert_allclose(S.rolling_mean(x, 5), want)
    np.testing.assert_allclose(S.rolling_mean(list(x), 5), want)
    strided = np.repeat(x, 2)[::2]
    np.testing.assert_allclose(S.rolling_mean(strided, 5), want)


def test_out_is_written_and_returned():
    x = np.arange(10.0)
    out = np.empty(10)
    assert S.rolling_max(x, 3, out=out) is out
    np.testing.assert_array_equal(out[2:], x[2:])
    many = np.empty((10, 2))
    assert S.sma_many(x, [2, 2], out=many) is many  # duplicate windows: computed once, both filled
    np.testing.assert_array_equal(many[:, 0], many[:, 1])
    with pytest.raises(ValueError, match="out"):
        S.rolling_max(x, 3, out=np.empty(9))
    with pytest.raises(ValueError, match="out"):
        S.ema_many(x, [2, 3], out=np.empty((10, 3)))


def test_many_keeps_span_order_and_duplicates():
    x = 10 + np.sin(np.arange(100.0))
    res = S.ema_many(pd.Series(x), [20, 5, 20])
    assert list(res.columns) == ["ema_20", "ema_5", "ema_20"]
    np.testing.assert_array_equal(res["ema_5"].to_numpy(), S.ema_many(x, [5])[:, 0])
    np.testing.assert_array_equal(res.iloc[:, 0].to_numpy(), res.iloc[:, 2].to_numpy())
    assert S.ema_many(x, 7).shape == (100, 1)
    assert S.sma_many(np.c_[x, x], [3, 4]).shape == (100, 2, 2)


@pytest.mark.parametrize("name", list(FUNCS))
def test_empty_input_gives_empty_output(name):
    res = FUNCS[name](np.empty(0), np.empty(0), 5)
    assert res.shape[0] == 0


@pytest.mark.parametrize("call,exc,match", [
    (lambda: S.rolling_mean(np.ones(5), 0), ValueError, "window"),
    (lambda: S.rolling_mean(np.ones(5), 2.5), TypeError, "window"),
    (lambda: S.rolling_mean(np.ones(5), 3, minp=4), ValueError, "minp"),
    (lambda: S.rolling_mean(np.ones(5), 3, minp=0), ValueError, "minp"),
    (lambda: S.rolling_std(np.ones(5), 3, ddof=-1), ValueError, "ddof"),
    (lambda: S.rolling_sum(np.ones((2, 2, 2)), 3), ValueError, "x must be"),
    (lambda: S.rolling_sum(np.array(["a", "b"]), 3), TypeError, "x must be"),
    (lambda: S.rolling_min(pd.Series(["a", "b"]), 3), TypeError, "x must be"),
    (lambda: S.rolling_corr(np.ones(5), np.ones(4), 3), ValueError, "y has shape"),
    (lambda: S.rolling_beta(np.ones(5), np.ones(4), 3), ValueError, "x has shape"),
    (lambda: S.rolling_vwap(np.ones(5), np.ones(6), 3), ValueError, "volume"),
    (lambda: S.ret(np.ones(5), n=0), ValueError, "n must"),
    (lambda: S.ret(np.ones(5), log="yes"), TypeError, "log"),
    (lambda: S.ema_many(np.ones(5), []), ValueError, "spans"),
    (lambda: S.ema_many(np.ones(5), [3, 0]), ValueError, "spans"),
    (lambda: S.ema_many(np.ones(5), "abc"), TypeError, "spans"),
    (lambda: S.ema_many(np.ones(5), [3], seed="zero"), ValueError, "seed"),
    (lambda: S.sma_many(np.ones((2, 2, 2)), [3]), ValueError, "close"),
    (lambda: S.sma_many(np.ones(5), None), TypeError, "windows"),
    (lambda: S.lookback("nope"), ValueError, "unknown"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _values(res):
    return res.to_numpy() if isinstance(res, (pd.Series, pd.DataFrame)) else np.asarray(res)


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("two_d", [False, True])
def test_no_look_ahead(name, two_d, rng):
    # changing every value after bar t leaves outputs up to t unchanged
    n, t = 300, 180
    shape = (n, 3) if two_d else (n,)
    x = 100 + rng.standard_normal(shape).cumsum(axis=0)
    y = 50 + rng.standard_normal(shape).cumsum(axis=0)
    x[40:45] = np.nan
    base = _values(FUNCS[name](x, y, 10))
    x2, y2 = x.copy(), y.copy()
    x2[t + 1:] = rng.standard_normal(x2[t + 1:].shape) * 1e6
    y2[t + 1:] = np.nan
    changed = _values(FUNCS[name](x2, y2, 10))
    np.testing.assert_array_equal(base[:t + 1], changed[:t + 1])


@pytest.mark.parametrize("name", list(FUNCS))
@pytest.mark.parametrize("w", [1, 7, 30])
def test_lookback_values_settle(name, w, rng):
    # from `settle` bars into a window on, values do not depend on older history
    key = "ema_many" if name == "ema_many_first" else name
    lb = S.lookback(key, **_params(name, w))
    assert 0 <= lb.warmup <= lb.settle
    n, start = 3000, 700
    x = 100 + rng.standard_normal(n).cumsum()
    y = 50 + rng.standard_normal(n).cumsum()
    full = _values(FUNCS[name](x, y, w))[start:]
    part = _values(FUNCS[name](x[start:], y[start:], w))
    # warm-up: bars before every output column is defined (the slowest one, for *_many)
    nan_rows = np.isnan(part).reshape(len(part), -1).any(axis=1)
    assert nan_rows[:lb.warmup].all()
    if not nan_rows.all():  # (var with window <= ddof, corr with window 1: NaN by design)
        assert not nan_rows[lb.warmup]
    np.testing.assert_allclose(part[lb.settle:], full[lb.settle:], rtol=1e-10, atol=1e-10)
    if lb.settle > 0 and name.startswith("ema"):
        # and it is not much shorter than needed
        short = lb.settle // 2
        assert not np.allclose(part[short], full[short], rtol=1e-13, atol=0)


@pytest.mark.parametrize("func", [lambda a: S.rolling_std(a, 30), lambda a: S.rolling_max(a, 30),
                                  lambda a: S.rolling_corr(a, np.cos(a), 30)])
def test_parallel_panel_equals_columns(func, rng):
    # above PARALLEL_MIN_SIZE the column-parallel kernels run; C input is made F once
    rows = S.PARALLEL_MIN_SIZE // 8 + 1
    x = 100 + rng.standard_normal((rows, 8)).cumsum(axis=0)
    x[100:140, 3] = np.nan
    for arr in (np.asfortranarray(x), np.ascontiguousarray(x), pd.DataFrame(x)):
        res = _values(func(arr))
        for j in range(8):
            np.testing.assert_array_equal(res[:, j], func(np.ascontiguousarray(x[:, j])))


def test_infinities_are_missing_like_pandas():
    x = 100 + np.sin(np.arange(60.0))
    x[10] = np.inf
    x[30] = -np.inf
    s = pd.Series(x)
    for minp in (5, 2):
        r = s.rolling(5, min_periods=minp)
        for got, want in ((S.rolling_sum(x, 5, minp), r.sum()), (S.rolling_mean(x, 5, minp), r.mean()),
                          (S.rolling_std(x, 5, minp), r.std()), (S.rolling_var(x, 5, minp, ddof=0), r.var(ddof=0)),
                          (S.rolling_min(x, 5, minp), r.min()), (S.rolling_max(x, 5, minp), r.max())):
            np.testing.assert_allclose(got, want.to_numpy(), rtol=1e-9, equal_nan=True)
    corr = S.rolling_corr(x, np.cos(np.arange(60.0)), 5)
    assert np.isnan(corr[10:15]).all() and np.isfinite(corr[40:]).all()
    ema = S.ema_many(x, [3])[:, 0]
    assert np.isnan(ema[[10, 30]]).all() and np.isfinite(ema[31:]).all()


def test_old_module_name_keeps_working():
    import nbtrade
    import nbtrade.stats as old
    from nbtrade.stats import ema_many, rolling_mean  # noqa: F401

    assert old.rolling_mean is S.rolling_mean and old.ema_many is S.ema_many and old.lookback is S.lookback
    assert old.PARALLEL_MIN_SIZE == S.PARALLEL_MIN_SIZE and old.__all__ == S.__all__
    assert nbtrade.stats.rolling_std is nbtrade.rolling.rolling_std
    assert sorted(dir(old)) == sorted(S.__all__)


def test_many_small_and_large_2d_paths_agree():
    """Small 2-D inputs run the 1-D kernel per column (no parallel kernel to compile on a cold
    cache), large ones the parallel kernel: the same values either way, NaNs included."""
    from nbtrade._arrays import PARALLEL_MIN_SIZE
    from nbtrade.rolling import ema_many, sma_many

    rng = np.random.default_rng(3)
    n = PARALLEL_MIN_SIZE // 2 + 7
    x = 100 + rng.standard_normal((n, 2)).cumsum(axis=0)
    x[50, 0] = np.nan
    small = x[:500]
    for f, args in ((ema_many, ([3, 12, 3],)), (sma_many, ([2, 9],))):
        big = f(x, *args)
        np.testing.assert_array_equal(f(small, *args), big[:500])
        np.testing.assert_array_equal(f(np.ascontiguousarray(small), *args), big[:500])
        np.testing.assert_array_equal(f(small[:, 1], *args), big[:500, 1])


def test_shared_moment_kernel_modes_match_public_functions():
    from nbtrade.rolling import rolling_mean, rolling_std, rolling_sum, rolling_var, rolling_zscore

    s = pd.Series(np.random.default_rng(4).standard_normal(300)).cumsum()
    r = s.rolling(20, min_periods=5)
    np.testing.assert_allclose(rolling_var(s, 20, 5), r.var(), rtol=1e-9)
    np.testing.assert_allclose(rolling_std(s, 20, 5), r.std(), rtol=1e-9)
    np.testing.assert_allclose(rolling_zscore(s, 20, 20), (s - s.rolling(20).mean()) / s.rolling(20).std(), rtol=1e-9)
    np.testing.assert_allclose(rolling_sum(s, 20, 5), r.sum(), rtol=1e-9)
    np.testing.assert_allclose(rolling_mean(s, 20, 5), r.mean(), rtol=1e-9)
