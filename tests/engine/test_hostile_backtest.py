"""Hostile backtest inputs (issue 14): refused with the argument, the range and the fix, never a silent result."""
import warnings

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade import backtest, backtest_weights


@pytest.fixture(scope="module")
def df():
    return nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-04", "1h", seed=1)


def _signals(df):
    e = df.close > df.close.rolling(5).mean()
    return e, ~e


def test_all_nan_prices_refused(df):
    nan = df.copy()
    nan[["open", "high", "low", "close"]] = np.nan
    e, x = _signals(df)
    with pytest.raises(ValueError, match="no candle at all: every price of asset is NaN"):
        backtest(nan, entries=e & nan.close.notna(), exits=x)
    with pytest.raises(ValueError, match="no candle at all"):
        backtest(nan)
    with pytest.raises(ValueError, match="no candle at all"):
        backtest_weights(nan, np.ones((len(nan), 1)))


def test_symbol_without_candles_reported(df):
    nan = df.copy()
    nan[["open", "high", "low", "close"]] = np.nan
    e, x = _signals(df)
    data = {"BTC": df, "ETH": nan}
    with pytest.warns(UserWarning, match=r"1 symbol\(s\) have no candle at all in the data \(ETH\)"):
        res = backtest(data, entries=pd.DataFrame({"BTC": e, "ETH": False}), exits=pd.DataFrame({"BTC": x}),
                       size=0.5)
    assert res.assumptions["symbols_without_candles"] == ["ETH"]
    assert len(res.trades) > 0
    with pytest.warns(UserWarning, match=r"\(ETH\)"):
        res = backtest_weights(data, np.full((len(df), 2), 0.5), fees=0.001)
    assert res.assumptions["symbols_without_candles"] == ["ETH"]


@pytest.mark.parametrize("kw", [dict(fees=1.0), dict(fees=5.0), dict(maker_fees=1.0), dict(fees={"asset": 2.0})])
def test_fee_rates_bounded(df, kw):
    e, x = _signals(df)
    name = next(iter(kw))
    with pytest.raises(ValueError, match=rf"{name} must be < 1.0, got .*valid range \[0, 1\)"):
        backtest(df, entries=e, exits=x, **kw)


def test_fee_rates_bounded_in_weights(df):
    with pytest.raises(ValueError, match=r"fees must be < 1.0, got 1.0 \(valid range \[0, 1\)"):
        backtest_weights(df, np.ones((len(df), 1)), fees=1.0)


def test_fixed_fees_below_cash(df):
    e, x = _signals(df)
    with pytest.raises(ValueError, match=r"fixed_fees \(1000000000.0, asset\) must be below init_cash"):
        backtest(df, entries=e, exits=x, fixed_fees=1e9)
    with pytest.raises(ValueError, match="fixed_fees"):
        backtest_weights(df, np.ones((len(df), 1)), fixed_fees=20_000, init_cash=10_000)
    assert len(backtest(df, entries=e, exits=x, fixed_fees=1.0).trades)  # sane values still run


@pytest.mark.parametrize("kw", [dict(slippage=0.01), dict(fees=0.01), dict()])
def test_overflowing_prices_blame_the_price(df, kw):
    big = df.copy()
    big[["open", "high", "low", "close"]] = 1.7e308
    e, x = _signals(df)
    with pytest.raises(ValueError, match="prices of asset reach 1.7e\\+308.*not cash: rescale the prices"):
        backtest(big, entries=e, exits=x, **kw)
    with pytest.raises(ValueError, match="prices of asset reach"):
        backtest_weights(big, np.ones((len(df), 1)), **kw)


def test_large_but_safe_prices_run(df):
    big = df.copy()
    big[["open", "high", "low", "close"]] = df[["open", "high", "low", "close"]] * 1e290
    e, x = _signals(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = backtest(big, entries=e, exits=x, slippage=0.001, fees=0.001)
    assert np.isfinite(res.equity).all()


@pytest.mark.parametrize("lev", [0, -1, 0.0, float("nan")])
def test_leverage_must_be_positive(df, lev):
    e, x = _signals(df)
    with pytest.raises(ValueError, match="leverage must be a finite number > 0"):
        backtest(df, entries=e, exits=x, leverage=lev)
    with pytest.raises(ValueError, match="leverage must be a finite number > 0"):
        backtest_weights(df, np.ones((len(df), 1)), leverage=lev)
