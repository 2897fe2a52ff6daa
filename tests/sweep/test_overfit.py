"""Deflated Sharpe ratio and PBO (CSCV) against hand-computed values and a direct reference."""
import math
from itertools import combinations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from nbtrade.sweep import block_stats, deflated_sharpe_ratio, expected_max_sharpe, pbo_cscv


def test_expected_max_sharpe_by_hand():
    # sqrt(0.0025) * ((1 - 0.5772157) * Z^-1(0.99) + 0.5772157 * Z^-1(1 - 1/(100 e)))
    # = 0.05 * (0.4227843 * 2.3263479 + 0.5772157 * 2.6802104) = 0.05 * 2.5306029
    assert_allclose(expected_max_sharpe(100, 0.0025), 0.12653014466008425, rtol=1e-12)
    assert expected_max_sharpe(1, 0.3) == 0.0
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, 0.1)
    with pytest.raises(ValueError, match="sharpe_var"):
        expected_max_sharpe(3, -1.0)


def test_deflated_sharpe_by_hand():
    # z = (0.1 - 0.12653014) * sqrt(999) / sqrt(1 + 0.5 * 0.1 + (5 - 1) / 4 * 0.01) = -0.81445938
    dsr = deflated_sharpe_ratio(0.1, 1000, -0.5, 5.0, n_trials=100, sharpe_var=0.0025)
    assert_allclose(dsr, 0.20769091655036542, rtol=1e-10)
    # one trial: the probabilistic Sharpe ratio against 0
    psr = deflated_sharpe_ratio(0.1, 1000, 0.0, 3.0, n_trials=1, sharpe_var=0.0)
    assert_allclose(psr, 0.5 * (1 + math.erf(0.1 * math.sqrt(999) / math.sqrt(1.005) / math.sqrt(2))), rtol=1e-12)
    with pytest.raises(ValueError, match="n_obs"):
        deflated_sharpe_ratio(0.1, 1, 0.0, 3.0, n_trials=2, sharpe_var=0.1)


def _returns(blocks_sharpe, n_per_block=50, seed=0):
    """Returns (T, N) whose block b of trial n has mean blocks_sharpe[b][n] * 0.01 and std ~0.01."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_per_block,))
    z = (z - z.mean()) / z.std(ddof=1)  # exactly mean 0, std 1 within a block
    sr = np.asarray(blocks_sharpe, float)  # (S, N)
    return np.concatenate([0.01 * (z[:, None] + sr[b][None, :]) for b in range(sr.shape[0])])


def test_pbo_hand_cases():
    # A shines in block 0 only, B in block 1 only: the in-sample winner is always the OOS loser
    r = _returns([[1.0, -1.0], [-1.0, 1.0]])
    p = pbo_cscv(block_stats(r, 2))
    assert p.n_splits == 2 and p.pbo == 1.0
    assert_allclose(p.logits, [math.log(0.5)] * 2)  # w = 1/3: logit ln(1/2)
    # A dominates everywhere: the in-sample winner is the OOS winner: w = 2/3
    r = _returns([[1.0, 0.0], [1.0, 0.0], [0.5, 0.0], [0.7, -0.1]])
    p = pbo_cscv(block_stats(r, 4))
    assert p.n_splits == 6 and p.pbo == 0.0
    assert_allclose(p.logits, [math.log(2.0)] * 6)


def _reference_pbo(r, s):
    """The paper's steps on the return matrix itself (slow, obvious)."""
    t, n = r.shape
    parts = np.array_split(np.arange(t), s)
    lam = []
    for J in combinations(range(s), s // 2):
        ins = np.concatenate([parts[j] for j in J])
        oos = np.concatenate([parts[j] for j in range(s) if j not in J])
        sr_in = r[ins].mean(0) / r[ins].std(0, ddof=1)
        sr_out = r[oos].mean(0) / r[oos].std(0, ddof=1)
        best = int(np.argmax(sr_in))
        rank = 1 + sum(sr_out[k] < sr_out[best] for k in range(n)) + sum(
            sr_out[k] == sr_out[best] for k in range(n) if k != best)
        w = rank / (n + 1)
        lam.append(math.log(w / (1 - w)))
    lam = np.array(lam)
    return float(np.mean(lam <= 0)), lam


@pytest.mark.parametrize("s", [2, 4, 6, 8])
def test_pbo_equals_reference_on_noise(s):
    r = np.random.default_rng(s).normal(0.0, 0.01, (203, 7))
    got = pbo_cscv(block_stats(r, s))
    want, lam = _reference_pbo(r, s)
    assert got.pbo == want
    assert_allclose(got.logits, lam, rtol=1e-9)


def test_pbo_bad_input():
    with pytest.raises(ValueError, match="even"):
        pbo_cscv(np.ones((3, 4, 3)))
    with pytest.raises(ValueError, match="at least 2 trials"):
        pbo_cscv(np.ones((4, 1, 3)))
    with pytest.raises(ValueError, match="n_blocks, n_trials, 3"):
        pbo_cscv(np.ones((4, 3)))
