import numpy as np
import pandas as pd
import pytest

from nbtrade.metrics import compute_stats, max_drawdown_duration


def _stats(equity, index, init=100.0, freq_ms=86_400_000.0):
    n = len(equity)
    return compute_stats(np.asarray(equity, float), index, init, freq_ms, np.array([]), np.array([], bool), 0.0,
                         np.zeros(n, bool))


def test_drawdown_duration_counts_from_initial_cash():
    idx = pd.date_range("2024-01-01", periods=3, freq="D")
    assert max_drawdown_duration(np.array([90.0, 95.0, 96.0]), idx, 100.0) == pd.Timedelta(days=2)
    assert max_drawdown_duration(np.array([101.0, 102.0, 103.0]), idx, 100.0) == pd.Timedelta(0)


def test_cagr_uses_elapsed_time_not_bar_count():
    full = pd.date_range("2024-01-01", periods=731, freq="D")
    eq = np.linspace(100.0, 200.0, 731)
    gappy = full.delete(np.arange(100, 465))  # a year of rows missing
    a = _stats(eq, full)["CAGR [%]"]
    b = _stats(np.linspace(100.0, 200.0, len(gappy)), gappy)["CAGR [%]"]
    assert a == pytest.approx(b, rel=1e-9)
    assert a == pytest.approx((2.0 ** (365 / 731) - 1) * 100, rel=1e-9)
