"""Look-ahead and warm-up-dependence checks for any strategy, indicator or model.

A *subject* is a callable taking market data (a :class:`~nbtrade.Market`, a
DataFrame, or a dict of DataFrames per symbol: it gets cuts of the same kind)
and returning outputs indexed by time: a Series, a DataFrame, a dict or a tuple
of those (signals, indicator values, predictions).

* :func:`check_lookahead` reruns the subject on data cut at many points ``t``
  and reports every output at or before ``t`` that changes when the bars after
  ``t`` are removed: the value at ``t`` used the future.
* :func:`check_recursive` reruns it on data with less history (the first ``k``
  bars dropped) and reports, per output column, how many bars after the new
  start values still differ: the warm-up a backtest must discard, and whether
  it stays within ``max_warmup``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from ._names import suggest_kwargs
from .panel import Market

Data = Market | pd.DataFrame | Mapping[str, pd.DataFrame]


def _slice(data: Data, lo: int, hi: int) -> Data:
    if isinstance(data, Market):
        return data[lo:hi]  # a view of the same panel
    if isinstance(data, pd.DataFrame):
        return data.iloc[lo:hi]
    return {k: v.iloc[lo:hi] for k, v in data.items()}


def _length(data: Data) -> int:
    if isinstance(data, (pd.DataFrame, Market)):
        return len(data)
    lengths = {len(v) for v in data.values()}
    if len(lengths) != 1:
        raise ValueError("all symbols must share one time index for the checks (align them first)")
    return lengths.pop()


def _flatten(out: Any, prefix: str = "") -> dict[str, pd.DataFrame]:
    """Every output as a DataFrame keyed by a readable name."""
    if isinstance(out, pd.Series):
        return {prefix or str(out.name or "output"): out.to_frame()}
    if isinstance(out, pd.DataFrame):
        return {prefix or "output": out}
    if isinstance(out, Mapping):
        flat: dict[str, pd.DataFrame] = {}
        for k, v in out.items():
            flat.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return flat
    if isinstance(out, (tuple, list)):
        flat = {}
        for i, v in enumerate(out):
            flat.update(_flatten(v, f"{prefix}[{i}]" if prefix else f"[{i}]"))
        return flat
    raise TypeError(f"the subject must return pandas objects (Series/DataFrame, or dicts/tuples of them), "
                    f"got {type(out).__name__}")


def _differs(a: pd.DataFrame, b: pd.DataFrame, rtol: float, atol: float) -> pd.DataFrame:
    """Boolean frame: where ``a`` and ``b`` disagree (NaN vs number counts as a change)."""
    a, b = a.align(b, join="inner")
    x = a.to_numpy(dtype=float, na_value=np.nan)
    y = b.to_numpy(dtype=float, na_value=np.nan)
    nan_x, nan_y = np.isnan(x), np.isnan(y)
    with np.errstate(invalid="ignore"):
        close = np.abs(x - y) <= atol + rtol * np.abs(y)
    same = (nan_x & nan_y) | (~nan_x & ~nan_y & close)
    return pd.DataFrame(~same, index=a.index, columns=a.columns)


@dataclass
class Finding:
    output: str
    column: Any
    time: Any
    detail: str


@dataclass
class CheckReport:
    kind: str
    cuts: list[int] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warmup: dict[tuple[str, Any], int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.findings

    def __bool__(self) -> bool:
        """Falsy when something was found, so ``assert check_lookahead(f, data)`` fails on leaking code."""
        return self.ok

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame([f.__dict__ for f in self.findings], columns=["output", "column", "time", "detail"])

    def __str__(self) -> str:
        if self.ok:
            return f"{self.kind}: OK ({len(self.cuts)} runs, no output changed)"
        lines = [f"{self.kind}: {len(self.findings)} finding(s)"]
        lines += [f"  {f.output}[{f.column}] at {f.time}: {f.detail}" for f in self.findings[:20]]
        return "\n".join(lines)


class LookaheadError(AssertionError):
    """``check_lookahead(..., strict=True)`` found outputs that use future bars."""


@suggest_kwargs
def check_lookahead(subject: Callable[[Data], Any], data: Data, cuts: int = 20, min_bars: int = 50,
                    rtol: float = 1e-9, atol: float = 1e-12, strict: bool = False) -> CheckReport:
    """Report outputs at or before ``t`` that change when bars after ``t`` are removed.

    ``cuts`` evenly spaced cut points between ``min_bars`` and the end are tried.
    One finding per (output, column): the earliest changed bar over all cuts.
    The report is falsy when it has findings (``assert check_lookahead(f, data)``
    fails on leaking code); ``strict=True`` raises :class:`LookaheadError` instead.
    """
    n = _length(data)
    if n <= min_bars:
        raise ValueError(f"need more than min_bars={min_bars} bars, got {n}")
    full = _flatten(subject(data))
    points = sorted(set(np.linspace(min_bars, n - 1, min(cuts, n - min_bars)).astype(int).tolist()))
    report = CheckReport("look-ahead", cuts=points)
    first: dict[tuple[str, Any], tuple[Any, int, int]] = {}
    for t in points:
        cut = _flatten(subject(_slice(data, 0, t)))
        for name, frame in full.items():
            if name not in cut:
                raise ValueError(f"output {name!r} missing when the data is cut at bar {t}")
            diff = _differs(frame.iloc[:t], cut[name], rtol, atol)
            for col in diff.columns[diff.any().to_numpy()]:
                idx = diff.index[diff[col].to_numpy()]
                key = (name, col)
                if key not in first or idx[0] < first[key][0]:
                    first[key] = (idx[0], t, int(diff[col].sum()))
    for (name, col), (when, t, count) in first.items():
        report.findings.append(Finding(name, col, when, f"{count} value(s) change when data ends at bar {t}"))
    if strict and report.findings:
        raise LookaheadError(str(report))
    return report


@suggest_kwargs
def check_recursive(subject: Callable[[Data], Any], data: Data, starts: tuple[int, ...] = (0, 100, 200, 400),
                    max_warmup: int = 500, rtol: float = 1e-9, atol: float = 1e-12) -> CheckReport:
    """Measure how long outputs depend on where the history starts.

    For each start ``k`` the subject runs on ``data[k:]``; for every output
    column, the bars after ``k`` until the values agree with the full run for
    good are that column's warm-up. A finding is reported when it exceeds
    ``max_warmup``, or when the values never agree over more than ``max_warmup``
    bars (with fewer bars left after a start there is nothing to conclude).
    """
    n = _length(data)
    full = _flatten(subject(data))
    report = CheckReport("warm-up dependence", cuts=[k for k in starts if 0 < k < n])
    for k in report.cuts:
        part = _flatten(subject(_slice(data, k, n)))
        for name, frame in full.items():
            diff = _differs(frame.iloc[k:], part[name], rtol, atol)
            for col in diff.columns:
                flags = diff[col].to_numpy()
                last = int(np.flatnonzero(flags)[-1]) + 1 if flags.any() else 0
                key = (name, col)
                report.warmup[key] = max(report.warmup.get(key, 0), last)
                if last >= len(flags) and len(flags):
                    if len(flags) <= max_warmup:
                        continue  # too little data after the new start to tell: not a finding
                    report.findings.append(Finding(name, col, diff.index[0],
                                                   f"never agrees with the full run after dropping {k} bars "
                                                   f"({len(flags)} bars compared)"))
                elif last > max_warmup:
                    report.findings.append(Finding(name, col, diff.index[last - 1],
                                                   f"differs for {last} bars after dropping {k} bars "
                                                   f"(> max_warmup={max_warmup})"))
    return report
