"""Forgiving names and honest defaults of the front end (issue 13): backtest*, Backtest, research, checks."""
import warnings

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade import Backtest, Strategy, backtest, backtest_weights, check_lookahead, crossover
from nbtrade.checks import LookaheadError


@pytest.fixture(scope="module")
def df():
    return nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-06", "1h", seed=1)


@pytest.mark.parametrize("fn", ["backtest", "backtest_callback", "backtest_weights"])
@pytest.mark.parametrize("wrong, right", [("stop_loss", "sl_stop"), ("commission", "fees"), ("cash", "init_cash"),
                                          ("init_csh", "init_cash")])
def test_backtest_did_you_mean(df, fn, wrong, right):
    if fn == "backtest_weights" and right == "sl_stop":
        pytest.skip("weights take no stops")
    call = {"backtest": lambda **k: backtest(df, df.close > 0, **k),
            "backtest_callback": lambda **k: nbtrade.backtest_callback(df, lambda ctx, i: None, **k),
            "backtest_weights": lambda **k: backtest_weights(df, np.ones((len(df), 1)), **k)}[fn]
    with pytest.raises(TypeError, match=rf"{fn}\(\) got an unexpected keyword argument '{wrong}'; "
                                        rf"did you mean {right}=\?"):
        call(**{wrong: 0.01})


class Cross(Strategy):
    fast, slow = 5, 20

    def init(self):
        self.f = self.I(lambda c: pd.DataFrame(np.asarray(c)).rolling(self.fast).mean().to_numpy(), self.data.close)
        self.s = self.I(lambda c: pd.DataFrame(np.asarray(c)).rolling(self.slow).mean().to_numpy(), self.data.close)

    def next(self):
        if crossover(self.f, self.s):
            self.buy()
        elif crossover(self.s, self.f):
            self.position.close()


def test_backtest_class_did_you_mean(df):
    with pytest.raises(TypeError, match=r"Backtest\(\) got an unexpected keyword argument 'stop_loss'; did you "
                                        r"mean sl_stop=\?"):
        Backtest(df, Cross, stop_loss=0.02)
    bt = Backtest(df, Cross)
    with pytest.raises(TypeError, match=r"Cross has no parameter 'fats'; did you mean fast=\?"):
        bt.run(fats=3)
    with pytest.raises(TypeError, match=r"Cross has no parameter 'slow_period'; did you mean slow=\?"):
        bt.optimize(slow_period=[10, 20])
    with pytest.raises(TypeError, match=r"has no parameter 'stop_loss'.*sl_stop= go to Backtest\(data, strategy"):
        bt.run(stop_loss=0.02)


def test_check_lookahead_names_and_truthiness(df):
    leak = lambda d: d.close.shift(-1)  # noqa: E731
    honest = lambda d: d.close.shift(1)  # noqa: E731
    assert check_lookahead(honest, df, cuts=4)
    report = check_lookahead(leak, df, cuts=4)
    assert not report and not report.ok
    with pytest.raises(AssertionError):
        assert check_lookahead(leak, df, cuts=4)
    with pytest.raises(LookaheadError, match="look-ahead: 1 finding"):
        check_lookahead(leak, df, cuts=4, strict=True)
    check_lookahead(honest, df, cuts=4, strict=True)
    with pytest.raises(TypeError, match=r"check_lookahead\(\) got an unexpected keyword argument 'n_cuts'; "
                                        r"did you mean cuts=\?"):
        check_lookahead(honest, df, n_cuts=4)


def test_crossover_series_and_frames():
    idx = pd.date_range("2024", periods=3, freq="h", tz="UTC")
    a = pd.Series([1.0, 1.0, 3.0], index=idx)
    b = pd.Series([2.0, 2.0, 2.0], index=idx)
    assert crossover(a, b) is True and crossover(b, a) is False
    assert crossover(a, 2.0) is True and crossover(a.iloc[:1], b.iloc[:1]) is False
    fa = pd.DataFrame({"X": [1.0, 1.0, 3.0], "Y": [3.0, 3.0, 1.0]}, index=idx)
    out = crossover(fa, 2.0)
    assert out.to_dict() == {"X": True, "Y": False}
    out = crossover(2.0, fa)
    assert out.to_dict() == {"X": False, "Y": True}
    assert crossover(fa, fa[["Y", "X"]].rename(columns={"Y": "X", "X": "Y"}) * 0 + 2.0).to_dict() == \
        {"X": True, "Y": False}
    assert crossover(fa.iloc[:1], 2.0).to_dict() == {"X": False, "Y": False}


def test_research_refuses_wrong_names_before_work(df):
    with pytest.raises(TypeError, match=r"research\(\) got an unexpected keyword argument 'stop_loss'; did you "
                                        r"mean sl_stop=\?"):
        nbtrade.research(df, stop_loss=0.02)


def test_research_logistic_regression_retrains_in_full():
    from sklearn.linear_model import LogisticRegression

    data = nbtrade.planted_market(["BTC/USDT"], "2024-01-01", "2024-02-15", "1h", seed=1)
    run = nbtrade.research(data, features=[("ret", 1), ("rsi", 6)], estimator=LogisticRegression(),
                           train_window="20D", test_window="10D")
    assert run.walk_forward.meta["retrain"] == "full"


def test_warnings_point_at_the_users_line(df):
    e = df.close > df.close.rolling(5).mean()
    gappy = df.drop(df.index[10:12])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backtest(gappy, e.drop(e.index[10:12]), ~e.drop(e.index[10:12]))  # the user's line
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, str(w.message)[:60]) for w in caught]


def test_optimize_warnings_point_at_the_users_line(df):
    d = nbtrade.market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-01-06", "1h", seed=2)
    bt = Backtest(d, Cross, size=1.0)  # all-in on 3 symbols: later entries are rejected (and warned about)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bt.optimize(fast=[3, 5])  # the user's line
    assert caught and all(w.filename == __file__ for w in caught), [(w.filename, str(w.message)[:60]) for w in caught]


def test_default_size_does_not_trip_rejections_on_several_symbols():
    d = nbtrade.market(["BTC/USDT", "ETH/USDT", "SOL/USDT"], "2024-01-01", "2024-01-10", "1h", seed=1)
    close = pd.DataFrame({s: f.close for s, f in d.items()})
    e = close > close.rolling(5).mean()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = backtest(d, e, ~e, fees=0.001)
        Backtest(d, Cross, commission=0.001).run()
    assert res.assumptions["size"] == pytest.approx(1 / 3)
    assert backtest(d, e, ~e, fees=0.001, cash_sharing=False).assumptions["size"] == 1.0


def test_class_api_refuses_bad_fees_at_construction(df):
    with pytest.raises(ValueError, match=r"fees must be < 1.0, got 5.0 \(valid range \[0, 1\)"):
        Backtest(df, Cross, commission=5.0)
    with pytest.raises(ValueError, match="fixed_fees .* must be below init_cash"):
        Backtest(df, Cross, fixed_fees=50.0, cash=10.0)


def test_research_default_size_trips_no_rejection():
    data = nbtrade.planted_market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-03-01", "1h", seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nbtrade.RejectedOrdersWarning)
        run = nbtrade.research(data, features=[("ret", 1), ("rsi", 6)], train_window="20D", test_window="10D",
                               fees=0.001, slippage=0.0005)
    assert run.backtest.assumptions["size"] == pytest.approx(0.45)
