"""Forgiving names (issue 13): "did you mean" for unknown keywords, clean module namespaces."""
from __future__ import annotations

import doctest
import inspect

import numpy as np
import pytest

import nbtrade._names as N
from nbtrade import indicators as ind
from nbtrade import rolling

X = np.linspace(100.0, 120.0, 60)
INDICATORS = {
    "sma": (X,), "ema": (X,), "wma": (X,), "dema": (X,), "tema": (X,), "kama": (X,), "rsi": (X,), "macd": (X,),
    "bbands": (X,), "trange": (X + 1, X - 1, X), "atr": (X + 1, X - 1, X), "stoch": (X + 1, X - 1, X),
    "obv": (X, X), "adx": (X + 1, X - 1, X),
}
ROLLING = {
    "rolling_sum": (X,), "rolling_mean": (X,), "rolling_var": (X,), "rolling_std": (X,), "rolling_min": (X,),
    "rolling_max": (X,), "rolling_zscore": (X,), "rolling_corr": (X, X), "rolling_beta": (X, X),
    "rolling_cov": (X, X), "rolling_vwap": (X, X), "ret": (X,), "ema_many": (X,), "sma_many": (X,),
}


def test_doctests():
    assert doctest.testmod(N).failed == 0


@pytest.mark.parametrize("name", [*INDICATORS, *ROLLING])
@pytest.mark.parametrize("wrong", ["period", "span", "window", "length", "windw", "timeperod"])
def test_every_indicator_and_rolling_function_suggests(name, wrong):
    fn = getattr(ind, name)
    args = {**INDICATORS, **ROLLING}[name]
    params = [p for p in inspect.signature(fn).parameters if p not in ("out",)]
    if wrong in params:
        return
    with pytest.raises(TypeError, match=rf"{name}\(\) got an unexpected keyword argument '{wrong}'; "
                                        r"(did you mean \w+=\?|it takes )"):
        fn(*args, **{wrong: 5})


@pytest.mark.parametrize("fn, wrong, right", [
    (ind.sma, "period", "timeperiod"), (ind.ema, "span", "timeperiod"), (ind.rsi, "window", "timeperiod"),
    (ind.atr, "length", "timeperiod"), (rolling.rolling_mean, "period", "window"),
    (rolling.rolling_mean, "min_periods", "minp"), (rolling.ret, "periods", "n"),
    (rolling.ema_many, "periods", "spans"), (rolling.sma_many, "spans", "windows"),
    (ind.macd, "fast", "fastperiod"), (ind.bbands, "std", "nbdevup"),
])
def test_synonyms_point_at_the_parameter(fn, wrong, right):
    args = {**INDICATORS, **ROLLING}[fn.__name__]
    with pytest.raises(TypeError, match=rf"did you mean {right}=\?"):
        fn(*args, **{wrong: 3})


def test_errors_inside_the_function_are_untouched():
    with pytest.raises(TypeError, match="timeperiod must be an integer"):
        ind.sma(X, 2.5)
    with pytest.raises(TypeError, match="positional"):
        ind.sma(X, 3, "extra", 4)


def test_lookback_suggests_names_and_parameters():
    with pytest.raises(TypeError, match=r"lookback\('sma'\) got an unexpected keyword argument 'period'; did you "
                                        r"mean timeperiod=\?"):
        ind.lookback("sma", period=3)
    with pytest.raises(TypeError, match=r"did you mean window=\?"):
        ind.lookback("rolling_mean", windw=3)
    with pytest.raises(ValueError, match="unknown indicator 'emaa'; did you mean 'ema'"):
        ind.lookback("emaa")
    with pytest.raises(ValueError, match="did you mean 'rolling_std'"):
        rolling.lookback("rolling_stdev", window=3)
    with pytest.raises(TypeError, match="name must be"):
        ind.lookback(3)


def test_walk_forward_suggests():
    from nbtrade.model.walkforward import walk_forward

    with pytest.raises(TypeError, match=r"walk_forward\(\) got an unexpected keyword argument 'train_size'; "
                                        r"did you mean train_window=\?"):
        walk_forward(None, np.zeros((10, 2)), np.zeros(10), train_size=5, test_window=2)
    with pytest.raises(TypeError, match="did you mean estimator=|did you mean seed="):
        walk_forward(X=np.zeros((10, 2)), y=np.zeros(10), train_window=5, test_window=2, model=None)


def test_signatures_survive_the_wrapper():
    assert list(inspect.signature(ind.ema).parameters) == ["close", "timeperiod", "seed", "out"]
    assert ind.ema.__doc__.startswith("Exponential moving average")


@pytest.mark.parametrize("module", ["nbtrade.indicators", "nbtrade.rolling", "nbtrade.stats", "nbtrade.lookback",
                                    "nbtrade.timeframes", "nbtrade.model", "nbtrade.model.walkforward",
                                    "nbtrade.model.labels", "nbtrade.model.signals", "nbtrade.model.modelcache",
                                    "nbtrade.model.forest"])
def test_public_namespaces_are_clean(module):
    import importlib

    mod = importlib.import_module(module)
    listed = dir(mod)
    assert sorted(listed) == sorted(mod.__all__)
    for private in ("np", "pd", "sys", "Any", "math", "annotations", "Callable"):
        assert private not in listed
    for name in mod.__all__:
        assert hasattr(mod, name), name


def test_labels_and_signals_suggest():
    import pandas as pd

    from nbtrade.model.labels import forward_return, triple_barrier
    from nbtrade.model.signals import proba_to_signals

    with pytest.raises(TypeError, match=r"forward_return\(\) got an unexpected keyword argument 'horizon'; "
                                        r"did you mean n=\?"):
        forward_return(X, horizon=3)
    with pytest.raises(TypeError, match=r"did you mean horizon=\?"):
        triple_barrier(X, n=3)
    proba = pd.DataFrame({0: [0.4, 0.6], 1: [0.6, 0.4]})
    with pytest.raises(TypeError, match=r"did you mean long_threshold=\?"):
        proba_to_signals(proba, threshold=0.6)
