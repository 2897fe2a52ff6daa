"""The fused SMA-crossing pass equals the crossings of the stored averages, gaps included."""
import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.kernels.sweep import crossings_nb, sma_cross_clean_nb, sma_cross_rows_nb, sma_rows_nb
from nbtrade.sweep.native import sma_cross


def _reference(x, fast, slow):
    f, s = sma_rows_nb(x, fast, np.empty(x.shape)), sma_rows_nb(x, slow, np.empty(x.shape))
    e, x_ = np.empty(x.shape, bool), np.empty(x.shape, bool)
    crossings_nb(f, s, e, x_)
    return e, x_


@pytest.mark.parametrize("fast, slow", [(3, 9), (9, 3), (1, 5), (5, 5), (4, 400)])
def test_fused_equals_stored_averages_with_gaps(fast, slow):
    rng = np.random.default_rng(1)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 4)), axis=0))
    x[50:53, 1] = np.nan  # a gap restarts the warm-up
    x[120, 2] = np.inf
    x[:30, 3] = np.nan  # listed late
    e, ex = np.empty(x.shape, bool), np.empty(x.shape, bool)
    sma_cross_rows_nb(x, fast, slow, e, ex)
    ref_e, ref_x = _reference(x, fast, slow)
    np.testing.assert_array_equal(e, ref_e)
    np.testing.assert_array_equal(ex, ref_x)


def test_native_sma_cross_one_column_and_bad_period():
    idx = pd.date_range("2024-01-01", periods=200, freq="1min", tz="UTC")
    close = pd.Series(100 + np.sin(np.arange(200) / 7.0), index=idx)
    e, ex = sma_cross(close, 3, 12)
    ref_e, ref_x = _reference(close.to_numpy()[:, None].copy(), 3, 12)
    np.testing.assert_array_equal(e, ref_e[:, 0])
    np.testing.assert_array_equal(ex, ref_x[:, 0])
    with pytest.raises(ValueError, match="slow"):
        sma_cross(nbtrade.prepare(close.to_frame("A")), 3, 0)


@pytest.mark.parametrize("fast, slow", [(3, 9), (9, 3), (1, 5), (5, 5), (4, 400), (300, 2)])
def test_clean_path_equals_general(fast, slow):
    rng = np.random.default_rng(2)
    x = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (300, 3)), axis=0))
    got = [np.empty(x.shape, bool) for _ in range(4)]
    sma_cross_clean_nb(x, fast, slow, got[0], got[1])
    sma_cross_rows_nb(x, fast, slow, got[2], got[3])
    np.testing.assert_array_equal(got[0], got[2])
    np.testing.assert_array_equal(got[1], got[3])
    ref_e, ref_x = _reference(x, fast, slow)
    np.testing.assert_array_equal(got[0], ref_e)
    np.testing.assert_array_equal(got[1], ref_x)
