"""Overfitting statistics of a search: the deflated Sharpe ratio and the probability of backtest overfitting.

Sharpe ratios here are per bar (not annualised): ``mean(r) / std(r, ddof=1)`` of the
bar returns, as the formulas below assume.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import combinations
from statistics import NormalDist

import numpy as np

#: Euler-Mascheroni constant.
EULER_GAMMA = 0.5772156649015329

_N = NormalDist()


def expected_max_sharpe(n_trials: int, sharpe_var: float) -> float:
    """Expected maximum Sharpe ratio of ``n_trials`` unskilled trials (Bailey and López de Prado 2014, eq. 6).

    ``SR0 = sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))``, ``g`` the
    Euler-Mascheroni constant, ``Z^-1`` the standard normal quantile, ``V`` the variance
    of the trials' Sharpe ratios. 0 for a single trial (nothing was selected).
    """
    if isinstance(n_trials, bool) or int(n_trials) != n_trials or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1, got {n_trials!r}")
    if not sharpe_var >= 0:
        raise ValueError(f"sharpe_var must be >= 0, got {sharpe_var!r}")
    if n_trials == 1:
        return 0.0
    n = float(n_trials)
    return math.sqrt(sharpe_var) * ((1.0 - EULER_GAMMA) * _N.inv_cdf(1.0 - 1.0 / n)
                                    + EULER_GAMMA * _N.inv_cdf(1.0 - 1.0 / (n * math.e)))


def deflated_sharpe_ratio(sharpe: float, n_obs: int, skew: float, kurtosis: float, *, n_trials: int,
                          sharpe_var: float) -> float:
    """Deflated Sharpe ratio (Bailey and López de Prado 2014, "The Deflated Sharpe Ratio", eq. 2 and 6).

    The probability that the true Sharpe ratio exceeds what the best of ``n_trials``
    unskilled trials would show:
    ``DSR = Z((SR - SR0) * sqrt(T - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2))``,
    ``SR0 = expected_max_sharpe(n_trials, sharpe_var)``.

    Parameters
    ----------
    sharpe : per-bar Sharpe ratio of the chosen combination (``SR``).
    n_obs : number of bar returns (``T``).
    skew, kurtosis : skewness ``g3`` and (Pearson, normal = 3) kurtosis ``g4`` of its returns.
    n_trials : combinations tried (``N``).
    sharpe_var : variance across trials of their per-bar Sharpe ratios (``V``).
    """
    if not n_obs > 1:
        raise ValueError(f"n_obs must be > 1, got {n_obs!r}")
    sr0 = expected_max_sharpe(n_trials, sharpe_var)
    den = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe ** 2
    if not den > 0 or not math.isfinite(sharpe):
        return float("nan")
    return _N.cdf((sharpe - sr0) * math.sqrt(n_obs - 1.0) / math.sqrt(den))


@dataclass
class PBO:
    """Probability of backtest overfitting: ``pbo`` and the logits of every split."""

    pbo: float
    logits: np.ndarray
    n_splits: int
    n_blocks: int

    def __float__(self) -> float:
        return self.pbo


def block_stats(returns: np.ndarray, n_blocks: int) -> np.ndarray:
    """``(n_blocks, n_trials, 3)`` count, sum and sum of squares of ``returns`` ``(T, n_trials)``
    over ``n_blocks`` contiguous row blocks (``np.array_split`` sizes)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be (n_bars, n_trials), got shape {r.shape}")
    parts = np.array_split(r, n_blocks, axis=0)
    return np.stack([np.stack([np.full(r.shape[1], float(len(p))), p.sum(0), (p * p).sum(0)], axis=-1)
                     for p in parts])


def pbo_cscv(blocks: np.ndarray, *, max_splits: int | None = None) -> PBO:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    Bailey, Borwein, López de Prado and Zhu (2015), "The probability of backtest
    overfitting": the ``T`` bars are cut into ``S`` blocks; for each of the ``C(S, S/2)``
    ways to pick half the blocks as in-sample ``J`` (the rest ``Jc`` out-of-sample) the
    trial ``n*`` with the best in-sample Sharpe ratio is found, its out-of-sample
    relative rank ``w = rank(n*) / (N + 1)`` (ranks 1..N ascending, ties ranked
    highest) gives the logit ``l = ln(w / (1 - w))``, and
    ``PBO = #{l <= 0} / C(S, S/2)``: how often the in-sample winner does no better than
    the median out of sample.

    Parameters
    ----------
    blocks : ``(S, N, 3)`` per block and trial: count, sum and sum of squares of the bar
        returns (:func:`block_stats`; a sweep keeps these). ``S`` even, ``N >= 2``.
    max_splits : use only the first this many splits (in ``itertools.combinations`` order).
    """
    b = np.asarray(blocks, dtype=np.float64)
    if b.ndim != 3 or b.shape[2] != 3:
        raise ValueError(f"blocks must be (n_blocks, n_trials, 3), got shape {b.shape}")
    s, n = b.shape[:2]
    if s < 2 or s % 2:
        raise ValueError(f"the number of blocks must be even and >= 2, got {s}")
    if n < 2:
        raise ValueError(f"PBO needs at least 2 trials, got {n}")
    splits = list(combinations(range(s), s // 2))
    if max_splits is not None:
        splits = splits[:max_splits]
    logits = np.empty(len(splits))
    full = b.sum(axis=0)  # (N, 3)
    for k, J in enumerate(splits):
        ins = b[list(J)].sum(axis=0)
        oos = full - ins
        p_in, p_out = _sharpe(ins), _sharpe(oos)
        best = int(np.argmax(p_in))
        rank = int(np.count_nonzero(p_out <= p_out[best]))
        w = rank / (n + 1.0)
        logits[k] = math.log(w / (1.0 - w))
    return PBO(float(np.mean(logits <= 0.0)), logits, len(splits), s)


def _sharpe(stats: np.ndarray) -> np.ndarray:
    """Per-bar Sharpe ``mean / std(ddof=1)`` from (count, sum, sum of squares); -inf when undefined."""
    cnt, s1, s2 = stats[:, 0], stats[:, 1], stats[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / cnt
        var = (s2 - s1 * mean) / (cnt - 1.0)
        sr = mean / np.sqrt(var)
    return np.where(np.isfinite(sr) & (var > 0), sr, -np.inf)
