"""Performance statistics of an equity curve and its trades (crypto: 365-day years).

Conventions: bar returns are ``equity[t] / equity[t-1] - 1`` with ``equity[-1]``
the initial cash; annualisation uses ``bars_per_year = 365 days / bar length``;
the risk-free rate is 0. Sharpe ``= mean / std(ddof=1) * sqrt(bars_per_year)``;
Sortino uses the downside deviation ``sqrt(mean(min(r, 0)**2))``; Calmar
``= CAGR / |max drawdown|``. Max. Drawdown [%] is negative (like backtesting.py).
Trade statistics (win rate, profit factor, expectancy) use closed trades only;
``# Trades`` counts open ones too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365.0
YEAR_MS = DAYS_PER_YEAR * 86_400_000.0


def bar_returns(equity: np.ndarray, init_cash: float) -> np.ndarray:
    prev = np.concatenate(([init_cash], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / prev - 1.0


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown as a fraction (<= 0) from the running peak."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / peak - 1.0


def max_drawdown_duration(equity: np.ndarray, index: pd.Index, init_cash: float | None = None) -> object:
    """Longest span from a peak to the bar the equity regains it (or to the end).

    With ``init_cash`` the starting balance counts as the first peak (at the first
    bar), so a curve that starts under water is measured from the start.
    """
    if init_cash is not None and len(equity):
        equity = np.concatenate(([init_cash], equity))
        index = index[:1].append(index) if isinstance(index, pd.Index) else index
        if not isinstance(index, pd.DatetimeIndex):
            index = pd.RangeIndex(-1, len(equity) - 1)
    peak = np.maximum.accumulate(equity)
    under = equity < peak
    if not under.any():
        return pd.Timedelta(0) if isinstance(index, pd.DatetimeIndex) else 0
    best, start = 0, None
    best_span = (0, 0)
    for t in range(len(equity)):
        if under[t]:
            if start is None:
                start = t - 1 if t > 0 else 0
        elif start is not None:
            if t - start > best:
                best, best_span = t - start, (start, t)
            start = None
    if start is not None and len(equity) - 1 - start > best:
        best_span = (start, len(equity) - 1)
    a, b = best_span
    if isinstance(index, pd.DatetimeIndex):
        return index[b] - index[a]
    return int(b - a)


def compute_stats(equity: np.ndarray, index: pd.Index, init_cash: float, freq_ms: float | None,
                  pnl: np.ndarray, closed: np.ndarray, fees_paid: float, exposure: np.ndarray) -> pd.Series:
    """Statistics as a Series with unit-carrying labels.

    ``pnl``: net PnL per trade; ``closed``: bool mask of closed trades;
    ``exposure``: bool per bar, True when a position is held.
    """
    n = len(equity)
    rets = bar_returns(equity, init_cash)
    out: dict[str, object] = {}
    if isinstance(index, pd.DatetimeIndex) and n:
        out["Start"] = index[0]
        out["End"] = index[-1]
        out["Duration"] = index[-1] - index[0] + (pd.Timedelta(milliseconds=freq_ms) if freq_ms else pd.Timedelta(0))
    else:
        out["Start"], out["End"], out["Duration"] = 0, n - 1, n
    final = float(equity[-1]) if n else init_cash
    out["Equity Final [$]"] = final
    out["Equity Peak [$]"] = float(max(init_cash, equity.max())) if n else init_cash
    total = final / init_cash - 1.0
    out["Total Return [%]"] = total * 100.0
    bpy = YEAR_MS / freq_ms if freq_ms else np.nan
    if isinstance(index, pd.DatetimeIndex) and n and freq_ms:
        years = (out["Duration"] / pd.Timedelta(milliseconds=YEAR_MS))  # elapsed time, not bar count
    else:
        years = n / bpy if freq_ms else np.nan
    with np.errstate(over="ignore"):
        # short samples annualise to huge (inf) numbers: that is what CAGR means there
        cagr = float(np.float64(final / init_cash) ** (1.0 / years) - 1.0) if years > 0 and final > 0 else np.nan
    out["CAGR [%]"] = cagr * 100.0
    std = float(np.std(rets, ddof=1)) if n > 1 else np.nan
    mean = float(np.mean(rets)) if n else np.nan
    out["Volatility (ann.) [%]"] = std * np.sqrt(bpy) * 100.0
    out["Sharpe Ratio"] = mean / std * np.sqrt(bpy) if std and std > 0 else np.nan
    downside = float(np.sqrt(np.mean(np.minimum(rets, 0.0) ** 2))) if n else np.nan
    out["Sortino Ratio"] = mean / downside * np.sqrt(bpy) if downside and downside > 0 else np.nan
    dd = drawdown(np.concatenate(([init_cash], equity)))[1:] if n else np.array([0.0])
    max_dd = float(dd.min()) if n else 0.0
    out["Max. Drawdown [%]"] = max_dd * 100.0
    out["Calmar Ratio"] = cagr / abs(max_dd) if max_dd < 0 else np.nan
    out["Max. Drawdown Duration"] = max_drawdown_duration(equity, index, init_cash) if n else 0
    out["Exposure Time [%]"] = float(exposure.mean()) * 100.0 if n else 0.0
    out["# Trades"] = int(len(pnl))
    done = pnl[closed]
    wins, losses = done[done > 0], done[done < 0]
    out["Win Rate [%]"] = len(wins) / len(done) * 100.0 if len(done) else np.nan
    out["Profit Factor"] = wins.sum() / -losses.sum() if len(losses) else (np.inf if len(wins) else np.nan)
    out["Expectancy [$]"] = float(done.mean()) if len(done) else np.nan
    out["Best Trade [$]"] = float(done.max()) if len(done) else np.nan
    out["Worst Trade [$]"] = float(done.min()) if len(done) else np.nan
    out["Fees Paid [$]"] = float(fees_paid)
    return pd.Series(out, dtype=object)
