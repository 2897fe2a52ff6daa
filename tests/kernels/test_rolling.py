"""kernels.rolling and kernels.returns against pandas and the slow references."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_rolling as ref
from nbtrade.kernels import returns as K_ret
from nbtrade.kernels import rolling as K

RTOL = 1e-9


def _series(kind, n, rng):
    if kind == "walk":
        return 100.0 + rng.standard_normal(n).cumsum()
    if kind == "nan_runs":
        x = 100.0 + rng.standard_normal(n).cumsum()
        x[:3] = np.nan
        x[n // 3: n // 3 + 25] = np.nan  # longer than typical windows
        x[rng.random(n) < 0.1] = np.nan
        return x
    if kind == "constant":
        x = np.full(n, 7.25)
        x[n // 2:] = -3.5
        return x
    if kind == "all_nan":
        return np.full(n, np.nan)
    if kind == "integers":
        return rng.integers(-3, 4, n).astype(float)  # many ties for min/max
    raise ValueError(kind)


KINDS = ["walk", "nan_runs", "constant", "all_nan", "integers"]
WINDOWS = [1, 2, 7, 30, 500]  # 500 > len
N = 300


def _minps(window):
    return sorted({window, max(1, window // 2), 1})


# name -> (kernel, pandas(series, window, minp), needs ddof)
UNARY = {
    "sum": (K.rolling_sum_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).sum(), False),
    "mean": (K.rolling_mean_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).mean(), False),
    "var": (K.rolling_var_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).var(ddof=d), True),
    "std": (K.rolling_std_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).std(ddof=d), True),
    "min": (K.rolling_min_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).min(), False),
    "max": (K.rolling_max_1d_nb, lambda s, w, m, d: s.rolling(w, min_periods=m).max(), False),
    "zscore": (K.rolling_zscore_1d_nb, None, True),
}


def _call(name, x, window, minp, ddof):
    kernel, _, with_ddof = UNARY[name]
    out = np.full_like(x, 123.0)
    if with_ddof:
        kernel(x, window, minp, ddof, out)
    else:
        kernel(x, window, minp, out)
    return out


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("window", WINDOWS)
def test_unary_matches_pandas_and_reference(name, kind, window, rng):
    x = _series(kind, N, rng)
    s = pd.Series(x)
    mag = np.nanmax(np.abs(x)) if np.isfinite(x).any() else 1.0
    for minp in _minps(window):
        for ddof in ((0, 1) if UNARY[name][2] else (1,)):
            got = _call(name, x, window, minp, ddof)
            # strict against the exact reference
            np.testing.assert_allclose(got, ref.rolling(x, window, minp, name, ddof), rtol=RTOL,
                                       atol=RTOL * mag * window, equal_nan=True, err_msg="reference")
            # against pandas: its Welford updates leave residues of ~eps * x**2 in the
            # variance of windows with 0 or 1 spread (e.g. one value left: pandas 6e-8 std)
            if name == "zscore":
                r = s.rolling(window, min_periods=minp)
                std = r.std(ddof=ddof)
                want = ((s - r.mean()) / std.where(std > 1e-6 * mag)).to_numpy(copy=True)
                mask = ~np.isnan(want)
                assert np.isnan(got[~mask & (std.fillna(0).to_numpy(copy=True) > 1e-6 * mag)]).all()
                np.testing.assert_allclose(got[mask], want[mask], rtol=1e-7, atol=1e-9)
                continue
            want = UNARY[name][1](s, window, minp, ddof).to_numpy(copy=True)
            atol = {"var": 1e-12 * mag**2, "std": 1e-6 * mag}.get(name, RTOL * mag * window)
            np.testing.assert_allclose(got, want, rtol=RTOL, atol=atol, equal_nan=True, err_msg="pandas")


def test_constant_windows_are_exact(rng):
    x = np.full(50, 1e9 + 0.1)
    out = np.empty_like(x)
    K.rolling_var_1d_nb(x, 10, 10, 1, out)
    assert np.all(out[9:] == 0.0)
    K.rolling_zscore_1d_nb(x, 10, 10, 1, out)
    assert np.isnan(out).all()
    K.rolling_min_1d_nb(x, 10, 10, out)
    assert np.all(out[9:] == x[0])


@pytest.mark.parametrize("name", list(UNARY))
def test_empty_input(name):
    x = np.empty(0)
    assert _call(name, x, 3, 1, 1).shape == (0,)


@pytest.mark.parametrize("stat", ["corr", "beta", "cov"])
@pytest.mark.parametrize("kind", ["walk", "nan_runs", "constant"])
@pytest.mark.parametrize("window", [1, 2, 7, 30, 500])
def test_pair_stats(stat, kind, window, rng):
    x = _series(kind, N, rng)
    y = 0.5 * np.nan_to_num(x, nan=100.0) + rng.standard_normal(N)
    y[rng.random(N) < 0.05] = np.nan
    # pandas pairs the NaN masks before rolling
    sx, sy = pd.Series(x), pd.Series(y)
    X, Y = sx + 0 * sy, sy + 0 * sx
    for minp in _minps(window):
        out = np.full(N, 123.0)
        if stat == "corr":
            K.rolling_corr_1d_nb(x, y, window, minp, out)
            want = X.rolling(window, min_periods=minp).corr(Y).to_numpy(copy=True)
            want[~np.isfinite(want)] = np.nan  # pandas gives inf/garbage on constant windows
        elif stat == "beta":
            K.rolling_beta_1d_nb(y, x, window, minp, out)
            var = X.rolling(window, min_periods=minp).var()
            want = (Y.rolling(window, min_periods=minp).cov(X) / var.where(var > 0)).to_numpy(copy=True)
        else:
            K.rolling_cov_1d_nb(x, y, window, minp, 1, out)
            want = X.rolling(window, min_periods=minp).cov(Y).to_numpy(copy=True)
        expect = ref.rolling_pair(x, y, window, minp, stat)
        np.testing.assert_allclose(out, expect, rtol=1e-8, atol=1e-9, equal_nan=True)
        if kind != "constant":  # pandas' corr on constant windows is float noise
            mask = ~np.isnan(want) | ~np.isnan(out)
            np.testing.assert_allclose(out[mask], want[mask], rtol=1e-8, atol=1e-9, equal_nan=True)


def test_corr_is_one_for_linear_and_beta_is_slope(rng):
    x = rng.standard_normal(200).cumsum()
    y = 3.0 * x + 1.0
    out = np.empty(200)
    K.rolling_corr_1d_nb(x, y, 20, 20, out)
    np.testing.assert_allclose(out[19:], 1.0, rtol=1e-12)
    K.rolling_beta_1d_nb(y, x, 20, 20, out)
    np.testing.assert_allclose(out[19:], 3.0, rtol=1e-12)


@pytest.mark.parametrize("window", [1, 3, 20, 500])
def test_vwap(window, rng):
    p = 100 + rng.standard_normal(N).cumsum()
    v = rng.exponential(5.0, N)
    v[50:60] = 0.0
    p[rng.random(N) < 0.05] = np.nan
    v[rng.random(N) < 0.05] = np.nan
    for minp in _minps(window):
        out = np.empty(N)
        K.rolling_vwap_1d_nb(p, v, window, minp, out)
        np.testing.assert_allclose(out, ref.rolling_vwap(p, v, window, minp), rtol=1e-9, equal_nan=True)
        ok = ~(np.isnan(p) | np.isnan(v))
        pv = pd.Series(np.where(ok, p * v, np.nan)).rolling(window, min_periods=minp).sum()
        vv = pd.Series(np.where(ok, v, np.nan)).rolling(window, min_periods=minp).sum()
        want = (pv / vv.where(vv != 0)).to_numpy(copy=True)
        np.testing.assert_allclose(out, want, rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("log", [False, True])
def test_returns(n, log, rng):
    x = 100 + rng.standard_normal(N).cumsum()
    x[10] = np.nan
    x[20] = 0.0
    out = np.empty(N)
    K_ret.ret_1d_nb(x, n, log, out)
    np.testing.assert_allclose(out, ref.ret(x, n, log), rtol=1e-12, equal_nan=True)
    s = pd.Series(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        want = (np.log(s / s.shift(n)) if log else s.pct_change(n, fill_method=None)).to_numpy(copy=True)
    want[np.roll(x == 0, n) & (np.arange(N) >= n)] = np.nan
    with np.errstate(invalid="ignore"):
        np.testing.assert_allclose(out, want, rtol=1e-12, equal_nan=True)
    assert K_ret.ret_1d_nb(x[:n], n, log, np.empty(n)).size == n  # shorter than n: all NaN


# --------------------------------------------------------------------------- numerics


def _two_pass_tail(x, window, n_windows, ddof):
    # exact mean/var of the last n_windows windows with math.fsum
    return [ref.rolling(x[-(window + n_windows):], window, window, stat, ddof)[-n_windows:]
            for stat in ("mean", "var")]


@pytest.mark.slow
def test_no_drift_over_10m_points_with_large_offset():
    # like numbagg's test_numerical_issues: bottleneck's running sums drift here
    n, window = 10_000_000, 50
    rng = np.random.default_rng(0)
    x = 1e9 + rng.standard_normal(n)
    mean = np.empty(n)
    var = np.empty(n)
    K.rolling_mean_1d_nb(x, window, window, mean)
    K.rolling_var_1d_nb(x, window, window, 1, var)
    want_mean, want_var = _two_pass_tail(x, window, 30, 1)
    np.testing.assert_allclose(mean[-30:], want_mean, rtol=1e-15)
    np.testing.assert_allclose(var[-30:], want_var, rtol=1e-6)  # x itself carries ~1e-7 of noise
    # a trending price that doubles: the var anchor must follow it
    y = np.linspace(30_000.0, 60_000.0, n) + rng.standard_normal(n)
    K.rolling_var_1d_nb(y, window, window, 1, var)
    np.testing.assert_allclose(var[-30:], _two_pass_tail(y, window, 30, 1)[1], rtol=1e-9)
    z = np.empty(n)
    K.rolling_corr_1d_nb(x, y, window, window, z)
    np.testing.assert_allclose(z[-30:], ref.rolling_pair(x[-80:], y[-80:], window, window, "corr")[-30:],
                               rtol=1e-7, atol=1e-9)


def test_sum_does_not_remember_a_huge_value():
    x = np.ones(10_000)
    x[100] = 1e16
    out = np.empty_like(x)
    K.rolling_sum_1d_nb(x, 10, 10, out)
    # after the window passes, an uncompensated running sum is off by ~1 for good until re-summed
    assert np.all(out[5000:] == 10.0)


# --------------------------------------------------------------------------- properties


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 80), window=st.integers(1, 30), minp_frac=st.floats(0.0, 1.0),
       nan_frac=st.floats(0.0, 0.6), seed=st.integers(0, 2**16), ddof=st.integers(0, 1))
def test_property_matches_reference(n, window, minp_frac, nan_frac, seed, ddof):
    rng = np.random.default_rng(seed)
    x = np.round(rng.standard_normal(n) * 10, 1)  # ties and exact repeats
    x[rng.random(n) < nan_frac] = np.nan
    minp = max(1, int(round(minp_frac * window)))
    for name in UNARY:
        np.testing.assert_allclose(_call(name, x, window, minp, ddof), ref.rolling(x, window, minp, name, ddof),
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=name)
    y = np.round(rng.standard_normal(n) * 10, 1)
    out = np.empty(n)
    K.rolling_corr_1d_nb(x, y, window, minp, out)
    np.testing.assert_allclose(out, ref.rolling_pair(x, y, window, minp, "corr"), rtol=1e-8, atol=1e-9,
                               equal_nan=True)


# --------------------------------------------------------------------------- 2-D


def _two_d_cases(rng):
    x = 100 + rng.standard_normal((200, 5)).cumsum(axis=0)
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


TWO_D = [
    ("sum", K.rolling_sum_nb, K.rolling_sum_1d_nb, (7, 3)),
    ("mean", K.rolling_mean_nb, K.rolling_mean_1d_nb, (7, 3)),
    ("var", K.rolling_var_nb, K.rolling_var_1d_nb, (7, 3, 1)),
    ("std", K.rolling_std_nb, K.rolling_std_1d_nb, (7, 3, 0)),
    ("zscore", K.rolling_zscore_nb, K.rolling_zscore_1d_nb, (7, 3, 1)),
    ("min", K.rolling_min_nb, K.rolling_min_1d_nb, (7, 3)),
    ("max", K.rolling_max_nb, K.rolling_max_1d_nb, (7, 3)),
    ("ret", K_ret.ret_nb, K_ret.ret_1d_nb, (2, True)),
]


# every kernel in F order (what DataFrames give and nbtrade.stats passes); C order
# (strided columns) for a few, to keep cold-cache compile time down
LAYOUTS = [(case, "F") for case in TWO_D] + [(case, "C") for case in TWO_D if case[0] == "mean"]


@pytest.mark.parametrize("case,order", LAYOUTS, ids=[f"{c[0]}-{o}" for c, o in LAYOUTS])
def test_2d_equals_per_column(case, order, rng):
    name, k2, k1, args = case
    x = np.asarray(_two_d_cases(rng), order=order)
    out = np.empty_like(x, order=order)
    k2(x, *args, out)
    for j in range(x.shape[1]):
        col = np.ascontiguousarray(x[:, j])
        np.testing.assert_array_equal(out[:, j], k1(col, *args, np.empty_like(col)))


@pytest.mark.parametrize("name,k2,k1", [("corr", K.rolling_corr_nb, K.rolling_corr_1d_nb),
                                         ("vwap", K.rolling_vwap_nb, K.rolling_vwap_1d_nb)])
@pytest.mark.parametrize("order", ["F"])
def test_2d_pairs_equal_per_column(name, k2, k1, order, rng):
    x = np.asarray(_two_d_cases(rng), order=order)
    y = np.asarray(np.abs(_two_d_cases(rng)), order=order)
    out = np.empty_like(x, order=order)
    k2(x, y, 9, 4, out)
    for j in range(x.shape[1]):
        a, b = np.ascontiguousarray(x[:, j]), np.ascontiguousarray(y[:, j])
        np.testing.assert_array_equal(out[:, j], k1(a, b, 9, 4, np.empty_like(a)))


@pytest.mark.parametrize("window", [5, 300])
def test_long_series_across_resum_blocks(window, rng):
    # blocks of resum_every(window) bars, each NaN-free (fast loop) or not (general loop)
    n = 25_000
    x = 50.0 + rng.standard_normal(n).cumsum()
    x[3000:3003] = np.nan
    x[12_345] = np.nan
    x[20_000:20_000 + window + 5] = np.nan  # a fully empty window
    y = x * 0.3 + rng.standard_normal(n)
    s = pd.Series(x)
    mag = np.nanmax(np.abs(x))
    for minp in (window, 2):
        r = s.rolling(window, min_periods=minp)
        for name, want in (("sum", r.sum()), ("mean", r.mean()), ("min", r.min()), ("max", r.max()),
                           ("var", r.var(ddof=1)), ("std", r.std(ddof=1))):
            atol = {"var": 1e-12 * mag**2, "std": 1e-6 * mag}.get(name, 1e-9 * mag * window)
            np.testing.assert_allclose(_call(name, x, window, minp, 1), want.to_numpy(), rtol=1e-9, atol=atol,
                                       equal_nan=True, err_msg=name)
        out = np.empty(n)
        K.rolling_corr_1d_nb(x, y, window, minp, out)
        np.testing.assert_allclose(out, s.rolling(window, min_periods=minp).corr(pd.Series(y)).to_numpy(),
                                   rtol=1e-7, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("where", [2, 9000])  # in the warm-up, in a later block
def test_infinities_are_missing_values_like_pandas(where, rng):
    # pandas' rolling turns +-inf into NaN before computing; so do the kernels
    # (a pass that meets one reruns on a cleaned copy: finite data pays nothing)
    n, window = 12_000, 10
    x = 100 + rng.standard_normal(n).cumsum()
    x[where] = np.inf
    x[where + 3] = -np.inf
    x[where + 50] = np.nan
    y = np.cos(np.arange(n) * 0.1)
    s = pd.Series(x)
    r = s.rolling(window, min_periods=3)
    for name, want in (("sum", r.sum()), ("mean", r.mean()), ("var", r.var()), ("std", r.std()),
                       ("min", r.min()), ("max", r.max())):
        np.testing.assert_allclose(_call(name, x, window, 3, 1), want.to_numpy(), rtol=1e-9, atol=1e-8,
                                   equal_nan=True, err_msg=name)
    out = np.empty(n)
    K.rolling_corr_1d_nb(x, y, window, 3, out)
    want = s.rolling(window, min_periods=3).corr(pd.Series(y)).to_numpy()
    np.testing.assert_allclose(out, want, rtol=1e-7, atol=1e-9, equal_nan=True)
    v = np.abs(y) + 1
    K.rolling_vwap_1d_nb(x, v, window, 3, out)
    np.testing.assert_allclose(out, ref.rolling_vwap(x, v, window, 3), rtol=1e-9, equal_nan=True)


@pytest.mark.parametrize("window", [1, 3, 20, 200])
@pytest.mark.parametrize("kind", ["rising", "falling", "walk_sparse_nan"])
def test_min_max_exact_on_trends_and_across_block_groups(window, kind, rng):
    # NaN-free stretches run 4 van Herk/Gil-Werman blocks at a time; groups that
    # meet a NaN fall back to one block: results equal pandas exactly either way,
    # on trends (extreme always the oldest or newest bar) and on lengths that are
    # not a multiple of 4 * window
    n = 9 * window * 4 + 7 * window + 3
    if kind == "rising":
        x = np.linspace(100.0, 200.0, n)
    elif kind == "falling":
        x = np.linspace(200.0, 100.0, n)
    else:
        x = 100.0 + rng.standard_normal(n).cumsum()
        x[rng.random(n) < 0.01] = np.nan
        x[5 * window + 1] = np.nan
    s = pd.Series(x)
    for minp in _minps(window):
        r = s.rolling(window, min_periods=minp)
        np.testing.assert_array_equal(_call("min", x, window, minp, 1), r.min().to_numpy())
        np.testing.assert_array_equal(_call("max", x, window, minp, 1), r.max().to_numpy())
