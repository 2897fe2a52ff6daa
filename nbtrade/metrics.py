"""Performance statistics of an equity curve and its trades (crypto: 365-day years).

Conventions: bar returns are ``equity[t] / equity[t-1] - 1`` with ``equity[-1]``
the initial cash; annualisation uses ``bars_per_year = 365 days / bar length``;
the risk-free rate is 0. Drawdowns are negative fractions of the running peak,
the initial cash counting as the first peak. Trade statistics use closed trades
only; ``# Trades`` counts the open one too. Each label is defined in
:func:`compute_stats`, with how it differs from backtesting.py's where it does.

:class:`Stats` keeps the numbers numeric (float64): ``.round(2)``, arithmetic and
comparisons work; the timestamps and durations sit in ``Stats.times`` and are
still reachable by their labels (``s["Max. Drawdown Duration"]``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

DAYS_PER_YEAR = 365.0
YEAR_MS = DAYS_PER_YEAR * 86_400_000.0

#: display order of the labels (numbers and times interleaved, as backtesting.py prints them)
ORDER = (
    "Start", "End", "Duration", "Exposure Time [%]", "Equity Final [$]", "Equity Peak [$]",
    "Total Return [%]", "Buy & Hold Return [%]", "Return (Ann.) [%]", "CAGR [%]", "Volatility (ann.) [%]",
    "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio", "Alpha [%]", "Beta",
    "Max. Drawdown [%]", "Avg. Drawdown [%]", "Max. Drawdown Duration", "Avg. Drawdown Duration",
    "# Trades", "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]", "Avg. Trade [%]",
    "Max. Trade Duration", "Avg. Trade Duration", "Profit Factor", "Expectancy [%]", "Expectancy [$]",
    "SQN", "Kelly Criterion", "Best Trade [$]", "Worst Trade [$]", "Fees Paid [$]", "Borrow Paid [$]", "Funding Paid [$]",
    "# Rejected Orders",
)


class Stats(pd.Series):
    """Statistics as a float64 Series; timestamps and durations in :attr:`times`.

    ``s["Start"]`` and ``s["Max. Drawdown Duration"]`` still answer (from ``times``);
    :meth:`full` gives every label in display order as one object Series, which is
    also what ``print`` shows.
    """

    _metadata = ["times"]

    @property
    def _constructor(self) -> type:
        return Stats

    def __finalize__(self, other: Any, method: str | None = None, **kwargs: Any) -> "Stats":
        out = super().__finalize__(other, method=method, **kwargs)
        # times belong to the whole set of statistics: element-wise results (round, arithmetic,
        # comparisons, copies) keep them, selections of some labels do not
        if isinstance(other, Stats) and not other.index.equals(out.index):
            out.times = None
        return out

    def __getitem__(self, key: Any) -> Any:
        times = getattr(self, "times", None)
        if isinstance(key, str) and times is not None and key not in self.index and key in times.index:
            return times[key]
        return super().__getitem__(key)

    def full(self) -> pd.Series:
        """Numbers and times together, in display order (an object Series, for printing)."""
        times = getattr(self, "times", None)
        merged = {**dict(self.items()), **(dict(times.items()) if times is not None else {})}
        keys = [k for k in ORDER if k in merged] + [k for k in merged if k not in ORDER]
        counts = {k: int(v) for k, v in merged.items()
                  if str(k).startswith("#") and isinstance(v, float) and v.is_integer()}
        return pd.Series({k: counts.get(k, merged[k]) for k in keys}, dtype=object, name=self.name)

    def formatted(self) -> pd.Series:
        """Every label as text through :mod:`nbtrade.format` (``12.35%``, ``13,624.84``, ``12d 4h``)."""
        from .format import stat

        return pd.Series({k: stat(k, v) for k, v in self.full().items()}, dtype=object, name=self.name)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON values: numbers (NaN and infinities as None), times in ISO 8601
        (``2024-01-01T00:00:00+00:00``, durations ``P12DT4H0M0S``)."""
        out: dict[str, Any] = {}
        for k, v in self.full().items():
            if isinstance(v, (pd.Timestamp, pd.Timedelta)):
                out[str(k)] = v.isoformat()
            elif v is None or v is pd.NaT:
                out[str(k)] = None
            elif isinstance(v, (int, np.integer)):
                out[str(k)] = int(v)
            else:
                f = float(v)
                out[str(k)] = f if np.isfinite(f) else None
        return out

    def to_string(self, *args: Any, **kwargs: Any) -> str:
        return self.full().to_string(*args, **kwargs)

    def __repr__(self) -> str:
        name = f"Name: {self.name}, " if self.name is not None else ""
        return self.full().to_string() + f"\n{name}dtype: {self.dtype} (times in .times)"


def bar_returns(equity: np.ndarray, init_cash: float) -> np.ndarray:
    prev = np.concatenate(([init_cash], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / prev - 1.0


def drawdown(equity: np.ndarray) -> np.ndarray:
    """Drawdown as a fraction (<= 0) from the running peak."""
    peak = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / peak - 1.0


def _with_start(equity: np.ndarray, index: pd.Index, init_cash: float | None) -> tuple[np.ndarray, Any]:
    """Prepend the initial cash as a point at the first bar's time (bar ``-1`` without times)."""
    if init_cash is None or not len(equity):
        return equity, index
    equity = np.concatenate(([init_cash], equity))
    if isinstance(index, pd.DatetimeIndex):
        return equity, index[:1].append(index)
    return equity, pd.RangeIndex(-1, len(equity) - 1)


def drawdown_episodes(equity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each drawdown: the peak bar it starts from, the bar it is regained (or the last bar), its depth.

    Returns ``(start, end, depth)``: int64 bar positions and negative fractions. The
    same episodes as backtesting.py's ``compute_drawdown_duration_peaks``.
    """
    if not len(equity):
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    peak = np.maximum.accumulate(equity)
    at_peak = np.flatnonzero(equity >= peak)
    marks = np.unique(np.r_[at_peak, len(equity) - 1])
    gaps = np.flatnonzero(np.diff(marks) > 1)
    start, end = marks[gaps], marks[gaps + 1]
    if not len(start):
        return start, end, np.empty(0)
    dd = drawdown(equity)
    # between episodes the drawdown is 0, so each minimum over [start_k, start_k+1) is episode k's
    depth = np.minimum.reduceat(dd, start)
    return start.astype(np.int64), end.astype(np.int64), depth


def _spans(index: Any, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    if isinstance(index, pd.DatetimeIndex):
        return np.asarray(index[end] - index[start])
    return (end - start).astype(np.int64)


def max_drawdown_duration(equity: np.ndarray, index: pd.Index, init_cash: float | None = None) -> object:
    """Longest span from a peak to the bar the equity regains it (or to the end).

    With ``init_cash`` the starting balance counts as the first peak (at the first
    bar), so a curve that starts under water is measured from the start.
    """
    eq, idx = _with_start(equity, index, init_cash)
    start, end, _ = drawdown_episodes(eq)
    if not len(start):
        return pd.Timedelta(0) if isinstance(idx, pd.DatetimeIndex) else 0
    spans = _spans(idx, start, end)
    return pd.Timedelta(spans.max()) if isinstance(idx, pd.DatetimeIndex) else int(spans.max())


def geometric_mean(returns: np.ndarray) -> float:
    """``prod(1 + r) ** (1 / n) - 1``; 0 when a return is -100 % or worse (as backtesting.py)."""
    r = np.nan_to_num(np.asarray(returns, float)) + 1.0
    if not len(r):
        return np.nan
    if np.any(r <= 0):
        return 0.0
    return float(np.exp(np.log(r).sum() / len(r)) - 1.0)


def _annual_return(equity: np.ndarray, index: pd.Index) -> float:
    """Geometric mean of daily returns (last equity of each UTC day) compounded over 365 days."""
    if not isinstance(index, pd.DatetimeIndex) or len(equity) < 2:
        return np.nan
    if index.tz is None or str(index.tz) == "UTC":
        # numpy, as pandas' resample("D").last().dropna(): the last valid equity of each UTC day that has one
        # (an optimize run ranks every combination by these statistics: ~0.7 ms less per call)
        eq = np.asarray(equity, dtype=np.float64)
        ok = ~np.isnan(eq)
        eq, day = eq[ok], index.as_unit("ns").asi8[ok] // 86_400_000_000_000
        last = np.flatnonzero(np.append(day[1:] != day[:-1], True)) if len(day) else np.empty(0, np.int64)
        closes = eq[last]
        with np.errstate(divide="ignore", invalid="ignore"):
            daily = closes[1:] / closes[:-1] - 1.0
        daily = daily[~np.isnan(daily)]
    else:
        daily = pd.Series(equity, index=index).resample("D").last().dropna().pct_change().dropna().to_numpy()
    if not len(daily):
        return np.nan
    with np.errstate(over="ignore"):  # a huge daily mean compounds to inf (Python floats would raise)
        return float(np.float64(1.0 + geometric_mean(daily)) ** DAYS_PER_YEAR - 1.0)


def _beta(equity: np.ndarray, market: np.ndarray) -> float:
    ok = (equity[1:] > 0) & (equity[:-1] > 0) & (market[1:] > 0) & (market[:-1] > 0)
    if ok.sum() < 2:
        return np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(equity[1:] / equity[:-1])[ok]
        b = np.log(market[1:] / market[:-1])[ok]
    cov = np.cov(a, b)
    return float(cov[0, 1] / cov[1, 1]) if cov[1, 1] > 0 else np.nan


def compute_stats(equity: np.ndarray, index: pd.Index, init_cash: float, freq_ms: float | None,
                  pnl: np.ndarray, closed: np.ndarray, fees_paid: float, exposure: np.ndarray, *,
                  returns: np.ndarray | None = None, durations: np.ndarray | None = None,
                  market: np.ndarray | None = None, borrow_paid: float = 0.0,
                  funding_paid: float = 0.0, rejected_orders: int | None = None) -> Stats:
    """Statistics with unit-carrying labels.

    Parameters
    ----------
    equity : ndarray
        Equity per bar after the bar's orders (quote currency); ``init_cash`` precedes it.
    pnl, closed : ndarray
        Net PnL per trade [$] and a bool mask of the closed ones (trade statistics use those).
    exposure : ndarray of bool
        True on bars that end with a position.
    returns, durations : ndarray, optional
        Per trade: return on entry notional (fraction, net of fees) and exit time minus
        entry time (timedelta64, or bar counts without timestamps).
    market : ndarray, optional
        A buy-and-hold value curve on the same bars (any scale), for Buy & Hold, Alpha, Beta.
    borrow_paid : float
        Borrow cost of short positions (``borrow_rate``) over the run [$], shown as
        ``Borrow Paid [$]`` (0 without borrow costs; already in the equity and the trades' pnl).
    funding_paid : float
        Funding paid by perpetual positions minus funding received [$], shown as ``Funding Paid [$]``
        (0 without perpetuals; already in the equity, not in the trades' pnl).
    rejected_orders : int, optional
        Orders the run refused, shown as ``# Rejected Orders`` (left out when None).

    Definitions (``r`` bar returns, ``bpy`` bars per 365-day year, "same" = as backtesting.py 0.6.6):

    - ``Duration``: last minus first bar time plus one bar (backtesting.py: without the bar).
    - ``Total Return [%]``: ``final / init_cash - 1`` (backtesting.py's ``Return [%]`` starts at
      the first bar's equity instead of the cash).
    - ``Buy & Hold Return [%]``: ``market[-1] / market[0] - 1``; same for one symbol.
    - ``Return (Ann.) [%]``: ``(1 + g) ** 365 - 1``, ``g`` the geometric mean of daily returns;
      same for data that trades on weekends (backtesting.py uses 252 days otherwise).
    - ``CAGR [%]``: ``(final / init_cash) ** (1 / years) - 1`` over elapsed time, 365-day years
      (backtesting.py: 365.25-day years, first bar's equity).
    - ``Volatility (ann.) [%]``: ``std(r, ddof=1) * sqrt(bpy)``; ``Sharpe Ratio``:
      ``mean(r) / std(r) * sqrt(bpy)``; ``Sortino Ratio``: ``mean(r) / sqrt(mean(min(r, 0)**2))
      * sqrt(bpy)``. backtesting.py instead takes daily returns, a geometric 252- or 365-day
      annual return and its compounded volatility: its Sharpe is ``Return (Ann.) / Volatility (Ann.)``.
    - ``Calmar Ratio``: ``CAGR / |Max. Drawdown|`` (backtesting.py: ``Return (Ann.)``).
    - ``Beta``: ``cov(log equity returns, log market returns) / var(log market returns)`` bar to
      bar; ``Alpha [%]``: ``Total Return - Beta * Buy & Hold Return``; same (up to Total Return).
    - ``Max. Drawdown [%]``, ``Avg. Drawdown [%]``: deepest and mean trough of the drawdown
      episodes (peak to recovery or end; negative); ``Max./Avg. Drawdown Duration``: longest and
      mean episode, peak bar to recovery bar. Same (backtesting.py rounds durations up to a bar).
    - ``# Trades``: closed trades plus the one open at the end (backtesting.py: closed only).
    - ``Win Rate [%]``: share of closed trades with ``pnl > 0``; same.
    - ``Best/Worst Trade [%]``: extreme trade returns; ``Avg. Trade [%]``: their geometric mean;
      ``Expectancy [%]``: their arithmetic mean; ``Max./Avg. Trade Duration``: exit minus entry
      time. Same.
    - ``Profit Factor``: gross profit / gross loss in $ (backtesting.py: sums of % returns).
    - ``Expectancy [$]``, ``Best/Worst Trade [$]``: mean and extremes of trade PnL.
    - ``SQN``: ``sqrt(n) * mean(pnl) / std(pnl, ddof=1)``; ``Kelly Criterion``:
      ``W - (1 - W) / (mean win / mean loss)`` in $, ``W`` the win rate. Same.
    - ``Exposure Time [%]``: share of bars ending with a position (backtesting.py counts the
      entry bar through the exit bar).
    """
    n = len(equity)
    rets = bar_returns(equity, init_cash)
    out: dict[str, float] = {}
    times: dict[str, Any] = {}
    dated = isinstance(index, pd.DatetimeIndex) and n > 0
    if dated:
        times["Start"] = index[0]
        times["End"] = index[-1]
        times["Duration"] = index[-1] - index[0] + (pd.Timedelta(milliseconds=freq_ms) if freq_ms else pd.Timedelta(0))
    else:
        out["Start"], out["End"], out["Duration"] = 0, n - 1, n
    out["Exposure Time [%]"] = float(exposure.mean()) * 100.0 if n else 0.0
    final = float(equity[-1]) if n else init_cash
    out["Equity Final [$]"] = final
    out["Equity Peak [$]"] = float(max(init_cash, equity.max())) if n else init_cash
    total = final / init_cash - 1.0
    out["Total Return [%]"] = total * 100.0
    bh = np.nan
    if market is not None and n and market[0] > 0:
        bh = float(market[-1] / market[0] - 1.0)
    out["Buy & Hold Return [%]"] = bh * 100.0
    out["Return (Ann.) [%]"] = _annual_return(equity, index) * 100.0
    bpy = YEAR_MS / freq_ms if freq_ms else np.nan
    if dated and freq_ms:
        years = times["Duration"] / pd.Timedelta(milliseconds=YEAR_MS)  # elapsed time, not bar count
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
    eq0, idx0 = _with_start(equity, index, init_cash)
    start, end, depth = drawdown_episodes(eq0)
    max_dd = float(depth.min()) if len(depth) else 0.0
    out["Calmar Ratio"] = cagr / abs(max_dd) if max_dd < 0 else np.nan
    beta = _beta(equity, np.asarray(market, float)) if market is not None and n > 2 else np.nan
    out["Alpha [%]"] = (total - beta * bh) * 100.0
    out["Beta"] = beta
    out["Max. Drawdown [%]"] = max_dd * 100.0
    out["Avg. Drawdown [%]"] = float(depth.mean()) * 100.0 if len(depth) else np.nan
    spans = _spans(idx0, start, end)
    if dated:
        times["Max. Drawdown Duration"] = pd.Timedelta(spans.max()) if len(spans) else pd.Timedelta(0)
        times["Avg. Drawdown Duration"] = pd.Timedelta(spans.mean()) if len(spans) else pd.NaT
    else:
        out["Max. Drawdown Duration"] = int(spans.max()) if len(spans) else 0
        out["Avg. Drawdown Duration"] = float(spans.mean()) if len(spans) else np.nan
    out["# Trades"] = int(len(pnl))
    closed = np.asarray(closed, bool)
    done = np.asarray(pnl, float)[closed]
    wins, losses = done[done > 0], done[done < 0]
    win_rate = len(wins) / len(done) if len(done) else np.nan
    out["Win Rate [%]"] = win_rate * 100.0
    ret = np.asarray(returns, float)[closed] if returns is not None else np.empty(0)
    out["Best Trade [%]"] = float(ret.max()) * 100.0 if len(ret) else np.nan
    out["Worst Trade [%]"] = float(ret.min()) * 100.0 if len(ret) else np.nan
    out["Avg. Trade [%]"] = geometric_mean(ret) * 100.0 if len(ret) else np.nan
    dur = np.asarray(durations)[closed] if durations is not None else np.empty(0)
    if dated:
        times["Max. Trade Duration"] = pd.Timedelta(dur.max()) if len(dur) else pd.NaT
        times["Avg. Trade Duration"] = pd.Timedelta(dur.astype("timedelta64[ns]").astype(np.int64).mean()) \
            if len(dur) else pd.NaT
    else:
        out["Max. Trade Duration"] = float(dur.max()) if len(dur) else np.nan
        out["Avg. Trade Duration"] = float(dur.mean()) if len(dur) else np.nan
    out["Profit Factor"] = wins.sum() / -losses.sum() if len(losses) else (np.inf if len(wins) else np.nan)
    out["Expectancy [%]"] = float(ret.mean()) * 100.0 if len(ret) else np.nan
    out["Expectancy [$]"] = float(done.mean()) if len(done) else np.nan
    sd = float(np.std(done, ddof=1)) if len(done) > 1 else np.nan
    out["SQN"] = np.sqrt(len(done)) * float(done.mean()) / sd if sd and sd > 0 else np.nan
    out["Kelly Criterion"] = (win_rate - (1.0 - win_rate) / (wins.mean() / -losses.mean())
                              if len(wins) and len(losses) else np.nan)
    out["Best Trade [$]"] = float(done.max()) if len(done) else np.nan
    out["Worst Trade [$]"] = float(done.min()) if len(done) else np.nan
    out["Fees Paid [$]"] = float(fees_paid)
    out["Borrow Paid [$]"] = float(borrow_paid)
    out["Funding Paid [$]"] = float(funding_paid)
    if rejected_orders is not None:
        out["# Rejected Orders"] = int(rejected_orders)
    s = Stats(out, dtype=np.float64)
    s.times = pd.Series(times, dtype=object)
    return s
