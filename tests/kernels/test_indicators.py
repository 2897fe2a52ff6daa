"""Indicator kernels against slow references, causality, NaN restarts and 2-D forms."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from nbtrade.kernels import indicators as K
from tests import reference as R


@dataclass(frozen=True)
class Spec:
    k1: Callable
    k2: Callable
    n_in: int  # 1: close; 2: close, volume; 3: high, low, close
    n_out: int
    params: Callable[[int], tuple]  # period -> kernel params
    ref: Callable
    ref_params: Callable[[int], tuple]
    min_period: int = 1


SPECS = {
    "sma": Spec(K.sma_1d_nb, K.sma_nb, 1, 1, lambda p: (p,), R.sma, lambda p: (p,)),
    "ema": Spec(K.ema_1d_nb, K.ema_nb, 1, 1, lambda p: (p, False), R.ema, lambda p: (p,)),
    "ema_first": Spec(K.ema_1d_nb, K.ema_nb, 1, 1, lambda p: (p, True), R.ema, lambda p: (p, "first")),
    "wma": Spec(K.wma_1d_nb, K.wma_nb, 1, 1, lambda p: (p,), R.wma, lambda p: (p,)),
    "dema": Spec(K.dema_1d_nb, K.dema_nb, 1, 1, lambda p: (p,), R.dema, lambda p: (p,)),
    "tema": Spec(K.tema_1d_nb, K.tema_nb, 1, 1, lambda p: (p,), R.tema, lambda p: (p,)),
    "kama": Spec(K.kama_1d_nb, K.kama_nb, 1, 1, lambda p: (p,), R.kama, lambda p: (p,)),
    "rsi": Spec(K.rsi_1d_nb, K.rsi_nb, 1, 1, lambda p: (p,), R.rsi, lambda p: (p,), 2),
    "macd": Spec(K.macd_1d_nb, K.macd_nb, 1, 3, lambda p: (p, p + 3, max(1, p - 1)), R.macd,
                 lambda p: (p, p + 3, max(1, p - 1)), 2),
    "bbands": Spec(K.bbands_1d_nb, K.bbands_nb, 1, 3, lambda p: (p, 2.0, 1.5), R.bbands, lambda p: (p, 2.0, 1.5), 2),
    "trange": Spec(K.trange_1d_nb, K.trange_nb, 3, 1, lambda p: (), R.trange, lambda p: ()),
    "atr": Spec(K.atr_1d_nb, K.atr_nb, 3, 1, lambda p: (p,), R.atr, lambda p: (p,)),
    "stoch": Spec(K.stoch_1d_nb, K.stoch_nb, 3, 2, lambda p: (p, max(1, p - 1), 2), R.stoch,
                  lambda p: (p, max(1, p - 1), 2)),
    "obv": Spec(K.obv_1d_nb, K.obv_nb, 2, 1, lambda p: (), R.obv, lambda p: ()),
    "adx": Spec(K.adx_1d_nb, K.adx_nb, 3, 1, lambda p: (p,), R.adx, lambda p: (p,), 2),
}


def make_inputs(n_in: int, n: int, seed: int, shape_tail: tuple = ()) -> list[np.ndarray]:
    """Random-walk close with consistent high/low (or a volume), shape (n, *shape_tail)."""
    rng = np.random.default_rng(seed)
    shape = (n, *shape_tail)
    close = 100.0 + np.cumsum(rng.normal(size=shape), axis=0)
    # a few repeated closes and flat bars exercise ties and zero ranges
    close[rng.random(shape) < 0.1] = 100.0
    if n_in == 1:
        return [close]
    if n_in == 2:
        return [close, rng.uniform(0.0, 10.0, size=shape)]
    high = close + rng.exponential(1.0, size=shape) * (rng.random(shape) > 0.1)
    low = close - rng.exponential(1.0, size=shape) * (rng.random(shape) > 0.1)
    return [high, low, close]


def run(spec: Spec, inputs: list[np.ndarray], period: int, two_d: bool = False) -> list[np.ndarray]:
    outs = [np.full_like(inputs[0], -7.0) for _ in range(spec.n_out)]
    (spec.k2 if two_d else spec.k1)(*inputs, *spec.params(period), *outs)
    return outs


def run_ref(spec: Spec, inputs: list[np.ndarray], period: int) -> list[np.ndarray]:
    res = spec.ref(*[a.tolist() for a in inputs], *spec.ref_params(period))
    if spec.n_out == 1:
        res = (res,)
    return [np.asarray(r, dtype=float) for r in res]


def assert_same(a: np.ndarray, b: np.ndarray, scale: float = 100.0) -> None:
    assert_array_equal(np.isnan(a), np.isnan(b))
    assert_allclose(a, b, rtol=1e-9, atol=1e-9 * scale, equal_nan=True)


@pytest.mark.parametrize("name", SPECS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_matches_reference(name, data):
    spec = SPECS[name]
    n = data.draw(st.integers(0, 70), label="n")
    period = data.draw(st.integers(spec.min_period, 12), label="period")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    nan_at = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=4), label="nan_at") if n else []
    inputs = make_inputs(spec.n_in, n, seed)
    for k, i in enumerate(nan_at):
        inputs[k % spec.n_in][i] = np.nan
    for got, want in zip(run(spec, inputs, period), run_ref(spec, inputs, period)):
        assert_same(got, want)


@pytest.mark.parametrize("name", SPECS)
def test_no_look_ahead(name):
    spec = SPECS[name]
    n = 120
    base = make_inputs(spec.n_in, n, seed=1)
    for period in (spec.min_period, 5, 14):
        full = run(spec, base, period)
        for t in (0, 7, 30, 60, 119):
            changed = [a.copy() for a in base]
            rng = np.random.default_rng(t)
            for a in changed:
                a[t + 1:] = rng.normal(100.0, 30.0, size=n - t - 1)
                a[t + 1::7] = np.nan
            for f, c in zip(full, run(spec, changed, period)):
                assert_array_equal(f[:t + 1], c[:t + 1])


@pytest.mark.parametrize("name", SPECS)
def test_nan_restarts_the_indicator(name):
    """After a NaN the output equals the indicator run on the data after the NaN."""
    spec = SPECS[name]
    base = make_inputs(spec.n_in, 150, seed=2)
    j = 60
    for k in range(spec.n_in):
        inputs = [a.copy() for a in base]
        inputs[k][j] = np.nan
        period = max(spec.min_period, 6)
        whole = run(spec, inputs, period)
        before = run(spec, [a[:j] for a in inputs], period)
        after = run(spec, [a[j + 1:] for a in inputs], period)
        for w, b, a in zip(whole, before, after):
            assert_array_equal(w[:j], b)
            assert np.isnan(w[j])
            assert_array_equal(w[j + 1:], a)
            assert np.isfinite(w[-1])  # recovered


# Fortran order is what DataFrames give and what the Python layer passes; row-major
# arrays work through the same column loop (checked on a few kernels to keep
# compile time down: every layout is a separate compilation of a parallel kernel)
_LAYOUTS = [(name, "F") for name in SPECS] + [(name, "C") for name in ("sma", "macd", "stoch", "adx")]


@pytest.mark.parametrize("name, order", _LAYOUTS)
def test_2d_equals_1d_per_column(name, order):
    spec = SPECS[name]
    inputs = [np.asarray(a, order=order) for a in make_inputs(spec.n_in, 90, seed=3, shape_tail=(5,))]
    inputs[0][10, 2] = np.nan
    inputs[0][:4, 4] = np.nan
    period = max(spec.min_period, 4)
    got = run(spec, inputs, period, two_d=True)
    for j in range(5):
        want = run(spec, [np.ascontiguousarray(a[:, j]) for a in inputs], period)
        for g, w in zip(got, want):
            assert_array_equal(g[:, j], w)


@pytest.mark.parametrize("name", SPECS)
def test_empty_and_all_nan(name):
    spec = SPECS[name]
    period = max(spec.min_period, 3)
    for n in (0, 1, 5):
        inputs = [np.full(n, np.nan) for _ in range(spec.n_in)]
        for out in run(spec, inputs, period):
            assert out.shape == (n,)
            assert np.isnan(out).all()
    inputs = [np.empty((0, 3)) for _ in range(spec.n_in)]
    for out in run(spec, inputs, period, two_d=True):
        assert out.shape == (0, 3)


def test_kama_flat_window_after_moves_has_efficiency_one():
    # the running path length must not keep rounding residue after a flat window
    x = np.concatenate([100.0 + np.cumsum(np.random.default_rng(0).normal(size=50)) * 0.1, np.full(20, 97.3)])
    got = K.kama_1d_nb(x, 5, np.empty_like(x))
    want = np.asarray(R.kama(x.tolist(), 5))
    assert_allclose(got, want, rtol=1e-12)
