import numpy as np
import pandas as pd
import pytest

from nbtrade.lookahead import check_lookahead, check_recursive
from nbtrade.synthetic import market


@pytest.fixture(scope="module")
def data():
    return market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-15", "1h", seed=9)


def causal(d):
    return {s: (df["close"].rolling(10).mean() < df["close"]) for s, df in d.items()}


def leaky(d):
    return {s: df["close"].shift(-1) > df["close"] for s, df in d.items()}


def centred(d):
    return d["BTC/USDT"]["close"].rolling(5, center=True).mean()


def test_causal_passes(data):
    report = check_lookahead(causal, data, cuts=10)
    assert report.ok, str(report)


@pytest.mark.parametrize("subject", [leaky, centred])
def test_leaks_are_found(data, subject):
    report = check_lookahead(subject, data, cuts=10)
    assert not report.ok
    assert "change when data ends" in str(report)
    assert len(report.frame()) >= 1


def test_recursive_measures_warmup():
    data = market(["BTC/USDT"], "2024-01-01", "2024-03-01", "1h", seed=9)
    sma = lambda d: d["BTC/USDT"]["close"].rolling(20).mean()  # noqa: E731
    ewm = lambda d: d["BTC/USDT"]["close"].ewm(span=50, adjust=False).mean()  # noqa: E731
    cum = lambda d: d["BTC/USDT"]["close"].cumsum()  # noqa: E731
    r = check_recursive(sma, data, starts=(50, 100))
    assert r.ok and max(r.warmup.values()) == 19  # the NaN warm-up of the window
    r = check_recursive(ewm, data, starts=(50,), max_warmup=100)
    assert not r.ok and "max_warmup" in str(r)
    assert 400 < r.warmup[("close", "close")] < 700  # (49/51)**k falls below 1e-9 after ~520 bars
    assert check_recursive(ewm, data, starts=(50,), max_warmup=700).ok
    r = check_recursive(cum, data, starts=(50,))
    assert not r.ok and "never agrees" in str(r)


def test_bad_subject(data):
    with pytest.raises(TypeError, match="pandas"):
        check_lookahead(lambda d: np.zeros(3), data)
    with pytest.raises(ValueError, match="min_bars"):
        check_lookahead(causal, data, min_bars=10_000)
    with pytest.raises(ValueError, match="share one time index"):
        check_lookahead(causal, {"a": data["BTC/USDT"], "b": data["ETH/USDT"].iloc[:-1]})


def test_old_module_names_still_import():
    """nbtrade.checks and nbtrade.kernels.checks are the former names of nbtrade.lookahead and
    nbtrade.kernels.input_checks; nbtrade.strategies of nbtrade.builtin_strategies."""
    import nbtrade
    import nbtrade.checks as old
    import nbtrade.kernels.checks as old_kernels
    import nbtrade.kernels.input_checks as input_checks
    import nbtrade.strategies as old_strategies
    from nbtrade import builtin_strategies, lookahead

    assert old.check_lookahead is lookahead.check_lookahead is nbtrade.check_lookahead
    assert old.LookaheadError is lookahead.LookaheadError and old._differs is lookahead._differs
    assert old_kernels.check_ohlc_nb is input_checks.check_ohlc_nb and old_kernels.OK == input_checks.OK
    assert old_strategies.load_strategy is builtin_strategies.load_strategy
    assert old_strategies.Strategy is builtin_strategies.SignalStrategy  # the type alias, renamed
    assert old_strategies.ema_cross is builtin_strategies.BUILTIN["ema_cross"]
