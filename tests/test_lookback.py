"""nbtrade.lookback: warm-up and settling lengths."""
import pytest

from nbtrade.lookback import Lookback, decay_bars


def test_lookback_decay():
    assert decay_bars(1.0) == 0
    k = decay_bars(2 / 31)
    assert (1 - 2 / 31) ** k < 1e-12 <= (1 - 2 / 31) ** (k - 1)
    assert Lookback(29, 29).settle == 29
    with pytest.raises(ValueError):
        decay_bars(0.0)


def test_decay_of_the_longest_periods_is_finite():
    k = decay_bars(2.0 / (2 ** 32 + 1))  # 1 - alpha rounds to 1 with log(); log1p keeps it
    assert 0 < k < 2 ** 40
    with pytest.raises(ValueError, match="alpha"):
        decay_bars(1.5)
