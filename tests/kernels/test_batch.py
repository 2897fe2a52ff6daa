"""kernels.batch: ema_many / sma_many against TA-Lib, pandas and the references."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import reference_rolling as ref
from nbtrade.kernels import batch as B

SPANS = np.array([2, 3, 5, 9, 10, 20, 50, 200, 7, 4, 13], dtype=np.int64)  # > 8: two register groups


def _walk(n, rng, lead_nan=0):
    x = 100.0 + rng.standard_normal(n).cumsum()
    x[:lead_nan] = np.nan
    return x


def _ema(x, spans, seed_first=False):
    out = np.full((x.size, spans.size), 123.0)
    B.ema_many_1d_nb(x, spans, seed_first, out)
    return out


def _sma(x, windows):
    out = np.full((x.size, windows.size), 123.0)
    B.sma_many_1d_nb(x, windows, out)
    return out


@pytest.mark.parametrize("lead_nan", [0, 7])
@pytest.mark.parametrize("k", [1, 2, 4, 5, 8, 11])
def test_ema_many_matches_talib(lead_nan, k, rng):
    talib = pytest.importorskip("talib")
    x = _walk(5000, rng, lead_nan)  # > CHUNK: crosses chunk boundaries
    spans = SPANS[:k]
    out = _ema(x, spans)
    for j, p in enumerate(spans):
        # TA-Lib's formula, FMA-contracted like the TA-Lib wheel: bit-identical on x86-64
        np.testing.assert_allclose(out[:, j], talib.EMA(x, int(p)), rtol=1e-15, equal_nan=True)


@pytest.mark.parametrize("lead_nan", [0, 7])
def test_sma_many_matches_talib(lead_nan, rng):
    talib = pytest.importorskip("talib")
    x = _walk(5000, rng, lead_nan)
    out = _sma(x, SPANS)
    for j, p in enumerate(SPANS):
        # TA-Lib's running sum drifts slightly; nbtrade re-sums
        np.testing.assert_allclose(out[:, j], talib.SMA(x, int(p)), rtol=1e-9, atol=1e-9, equal_nan=True)


def test_ema_seed_first_matches_pandas(rng):
    x = _walk(3000, rng, lead_nan=3)
    out = _ema(x, SPANS, seed_first=True)
    for j, p in enumerate(SPANS):
        want = pd.Series(x).ewm(span=int(p), adjust=False).mean().to_numpy()
        np.testing.assert_allclose(out[:, j], want, rtol=1e-12, equal_nan=True)


def test_inner_nan_is_skipped_not_poisoning(rng):
    x = _walk(400, rng)
    x[100] = np.nan
    x[200:205] = np.nan
    spans = np.array([3, 10], dtype=np.int64)
    for seed_first in (False, True):
        out = _ema(x, spans, seed_first)
        assert np.isnan(out[100]).all() and np.isnan(out[200:205]).all()
        assert np.isfinite(out[205:]).all()
        for j, p in enumerate(spans):
            want = ref.ema(x, int(p), "first" if seed_first else "sma")
            np.testing.assert_allclose(out[:, j], want, rtol=1e-13, equal_nan=True)
        if seed_first:  # pandas ignore_na=True skips NaNs the same way (and holds the value)
            want = pd.Series(x).ewm(span=10, adjust=False, ignore_na=True).mean().to_numpy(copy=True)
            want[np.isnan(x)] = np.nan
            np.testing.assert_allclose(out[:, 1], want, rtol=1e-12, equal_nan=True)
    sma = _sma(x, spans)
    assert np.isnan(sma[100:110, 1]).all() and np.isfinite(sma[110:200, 1]).all()


@pytest.mark.parametrize("n", [0, 1, 5, 19])
def test_short_inputs(n, rng):
    x = _walk(n, rng)
    spans = np.array([5, 20], dtype=np.int64)
    out = _ema(x, spans)
    for j, p in enumerate(spans):
        np.testing.assert_allclose(out[:, j], ref.ema(x, int(p)), equal_nan=True)
    out = _sma(x, spans)
    for j, p in enumerate(spans):
        np.testing.assert_allclose(out[:, j], ref.sma(x, int(p)), equal_nan=True)


def test_all_nan_and_constant():
    spans = np.array([1, 3], dtype=np.int64)
    assert np.isnan(_ema(np.full(10, np.nan), spans)).all()
    assert np.isnan(_sma(np.full(10, np.nan), spans)).all()
    c = np.full(10, 2.5)
    np.testing.assert_array_equal(_ema(c, spans)[2:], 2.5)
    np.testing.assert_array_equal(_sma(c, spans)[2:], 2.5)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 120), spans=st.lists(st.integers(1, 40), min_size=1, max_size=10, unique=True),
       nan_frac=st.floats(0, 0.5), seed=st.integers(0, 2**16), first=st.booleans())
def test_property_matches_reference(n, spans, nan_frac, seed, first):
    rng = np.random.default_rng(seed)
    x = 50 + rng.standard_normal(n).cumsum()
    x[rng.random(n) < nan_frac] = np.nan
    spans = np.array(spans, dtype=np.int64)
    out = _ema(x, spans, first)
    sma = _sma(x, spans)
    for j, p in enumerate(spans):
        np.testing.assert_allclose(out[:, j], ref.ema(x, int(p), "first" if first else "sma"), rtol=1e-12,
                                   equal_nan=True)
        np.testing.assert_allclose(sma[:, j], ref.sma(x, int(p)), rtol=1e-10, atol=1e-10, equal_nan=True)


@pytest.mark.parametrize("order", ["F"])
def test_2d_equals_per_column(order, rng):
    x = np.asarray(100 + rng.standard_normal((3000, 4)).cumsum(axis=0), order=order)
    x[5:9, 1] = np.nan
    spans = np.array([3, 10, 30], dtype=np.int64)
    for kernel, kernel1, args in ((B.ema_many_nb, B.ema_many_1d_nb, (spans, False)),
                                  (B.sma_many_nb, B.sma_many_1d_nb, (spans,))):
        out = np.empty((3000, 4, 3))
        kernel(x, *args, out)
        for c in range(4):
            col = np.ascontiguousarray(x[:, c])
            want = np.empty((3000, 3))
            kernel1(col, *args, want)
            np.testing.assert_array_equal(out[:, c, :], want)


def test_sma_many_long_series_mixed_chunks(rng):
    # NaN-free chunks take the register-group path, others the per-window path
    x = _walk(3 * B.CHUNK + 500, rng)
    x[B.CHUNK + 100] = np.nan
    x[2 * B.CHUNK + 7: 2 * B.CHUNK + 40] = np.nan
    out = _sma(x, SPANS)
    for j, p in enumerate(SPANS):
        want = pd.Series(x).rolling(int(p)).mean().to_numpy()
        np.testing.assert_allclose(out[:, j], want, rtol=1e-10, atol=1e-10, equal_nan=True)
