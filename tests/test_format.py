import doctest

import numpy as np
import pandas as pd
import pytest

from nbtrade import format as F


def test_doctests():
    assert doctest.testmod(F).failed == 0


@pytest.mark.parametrize("label, value, text", [
    ("Equity Final [$]", 13624.83860586427, "13,624.84"),
    ("Equity Final [$]", 54480.0, "54,480.00"),
    ("Total Return [%]", -2.0, "-2.00%"),
    ("Max. Drawdown [%]", float("nan"), "–"),
    ("# Trades", 8655, "8,655"),
    ("# Trades", 8655.0, "8,655"),
    ("Sharpe Ratio", 3.4123, "3.41"),
    ("Sharpe Ratio", 11925.0, "11,925"),
    ("Profit Factor", np.inf, "∞"),
    ("Beta", 0.045678, "0.0457"),
    ("return", 0.0123, "1.23%"),
    ("entry_price", 42123.456, "42,123.5"),
    ("entry_price", 0.000123456789, "0.000123457"),
    ("Max. Drawdown Duration", pd.Timedelta(days=12, hours=4, minutes=3), "12d 4h"),
    ("duration", pd.Timedelta(minutes=45), "45m"),
    ("duration", pd.Timedelta(hours=3), "3h"),
    ("Start", pd.Timestamp("2024-01-01 13:00", tz="UTC"), "2024-01-01 13:00"),
    ("Avg. Trade Duration", pd.NaT, "–"),
    ("anything", None, "–"),
])
def test_stat_formats_by_unit(label, value, text):
    assert F.stat(label, value) == text


def test_no_exponent_anywhere():
    for v in (1.19e4, 5.448e4, 1e-7, 123456789.0, -0.000_004_2):
        for text in (F.number(v), F.price(v), F.money(v), F.axis_tick(v)):
            assert "e" not in text.lower(), text


def test_rounding_carry_keeps_digits():
    assert F.number(9.9996) == "10.0" and F.number(0.99996) == "1.00" and F.number(999.7) == "1,000"


def test_tone_colours_gains_not_risk():
    assert F.tone("Total Return [%]", 5.0) == "pos" and F.tone("pnl", -1.0) == "neg"
    assert F.tone("Sharpe Ratio", -0.2) == "neg" and F.tone("Alpha [%]", 1.0) == "pos"
    for label in ("Volatility (ann.) [%]", "Exposure Time [%]", "Fees Paid [$]", "Beta", "Max. Drawdown [%]",
                  "# Trades", "Profit Factor"):
        assert F.tone(label, 12.0) is None and F.tone(label, -12.0) is None, label


def test_seconds_and_ticks():
    assert F.seconds(0.85) == "850ms" and F.seconds(2.414) == "2.41s" and F.seconds(185) == "3m 5s"
    assert F.axis_tick(-2.0, "percent") == "-2%" and F.axis_tick(15000) == "15k" and F.axis_tick(2.5e6) == "2.5M"
