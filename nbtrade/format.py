"""The one number formatter: CLI tables, live dashboards and the HTML report all print through here.

Rules (the unit comes from a statistic's label or a column's name):

- money ``[$]``: thousands separators, 2 decimals (``13,624.84``);
- percent ``[%]``: 2 decimals and a ``%`` sign (``-12.34%``); fractions given with
  ``unit="fraction"`` are multiplied by 100 first;
- counts (labels starting with ``#``, Python ints): thousands separators (``8,655``);
- prices and sizes: 6 significant digits, never an exponent (``42,123.5``, ``0.00012345``);
- other numbers (ratios): 3 significant digits below 1,000, whole numbers with
  separators above (``1.23``, ``0.0457``, ``11,925``);
- durations as ``12d 4h``, ``3h 15m``, ``45m``, ``12s``; timestamps as ``2024-01-01 13:00`` (UTC);
- NaN and None as ``–`` (en dash), infinities as ``∞`` / ``-∞``.

:func:`tone` says which values are coloured like gains and losses: returns,
PnL, risk-adjusted ratios, alpha. Volatility, exposure, fees, counts, beta
and drawdowns are never green.

>>> stat("Equity Final [$]", 13624.83860586427), stat("Return [%]", 12.345), stat("# Trades", 8655)
('13,624.84', '12.35%', '8,655')
>>> number(11925.4), number(0.045678), duration(pd.Timedelta(hours=292)), number(float("nan"))
('11,925', '0.0457', '12d 4h', '–')
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

NA = "–"

#: labels (lower case, substrings) of values coloured like gains (> 0) and losses (< 0)
_TONED = ("return", "pnl", "cagr", "sharpe", "sortino", "calmar", "sqn", "alpha", "expectancy",
          "trade [%]", "profit")
_UNTONED = ("volatility", "exposure", "fees", "beta", "drawdown", "duration", "kelly", "#", "profit factor")


def _bad(v: Any) -> str | None:
    if v is None or v is pd.NaT or v is pd.NA:
        return NA
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return NA
        if math.isinf(v):
            return "∞" if v > 0 else "-∞"
    return None


def _sig(v: float, digits: int) -> str:
    """``digits`` significant digits, fixed point, thousands separators; whole numbers at or above
    10**digits (no exponent ever)."""
    bad = _bad(v)
    if bad:
        return bad
    a = abs(v)
    if a == 0:
        return "0"
    mag = math.floor(math.log10(a))
    if round(a, max(digits - 1 - mag, 0)) >= 10 ** (mag + 1):  # rounding carries into one more digit
        mag += 1
    places = digits - 1 - mag
    return f"{v:,.0f}" if places <= 0 else f"{v:,.{places}f}"


def number(v: Any, digits: int = 3) -> str:
    """A plain number: ``digits`` significant digits below 1,000, whole numbers with separators above."""
    bad = _bad(v)
    if bad:
        return bad
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    v = float(v)
    if abs(v) >= 10 ** digits:
        return f"{v:,.0f}"
    return _sig(v, digits)


def money(v: Any) -> str:
    """Quote-currency amounts: separators and 2 decimals."""
    return _bad(v) or f"{float(v):,.2f}"


def percent(v: Any, fraction: bool = False) -> str:
    """A percentage with 2 decimals and ``%``; ``fraction=True`` multiplies by 100 first."""
    bad = _bad(v)
    if bad:
        return bad
    return f"{float(v) * (100.0 if fraction else 1.0):,.2f}%"


def price(v: Any) -> str:
    """Prices and sizes: 6 significant digits, separators, no exponent."""
    bad = _bad(v)
    if bad:
        return bad
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return _sig(float(v), 6)


def param(v: Any) -> str:
    """A parameter value as a user wrote it: up to 6 significant digits, separators, no trailing
    zeros, no exponent (``0.5``, ``20``, ``1,000``, ``0.00125``); strings and other values as they are."""
    bad = _bad(v)
    if bad:
        return bad
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    text = _sig(float(v), 6)
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration(v: Any) -> str:
    """``12d 4h``, ``3h 15m``, ``45m 10s``, ``12s`` (the two largest units); bar counts as ``N bars``."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return NA
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,} bars"
    td = pd.Timedelta(v)
    if td is pd.NaT:
        return NA
    sign = "-" if td < pd.Timedelta(0) else ""
    secs = abs(td.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        q = int(secs // size)
        if q or (parts and len(parts) < 2):
            parts.append(f"{q}{unit}")
            secs -= q * size
        if len(parts) == 2:
            break
    if not parts:
        return "0" if secs < 0.001 else f"{secs * 1e3:.0f}ms"
    while len(parts) > 1 and parts[-1][0] == "0":
        parts.pop()
    return sign + " ".join(parts)


def timestamp(v: Any) -> str:
    """``2024-01-01 13:00`` (seconds shown only when present); UTC, as bars are keyed."""
    if v is None or v is pd.NaT:
        return NA
    ts = pd.Timestamp(v)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.strftime("%Y-%m-%d %H:%M:%S" if ts.second else "%Y-%m-%d %H:%M")


def timestamps(values: Any) -> list[str]:
    """:func:`timestamp` of many times at once (vectorised; NaT as ``–``)."""
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    fmt = "%Y-%m-%d %H:%M:%S" if (idx.second[~idx.isna()] != 0).any() else "%Y-%m-%d %H:%M"
    return [NA if t is None or (isinstance(t, float) and math.isnan(t)) else t
            for t in idx.strftime(fmt).to_numpy(dtype=object, na_value=None)]


def seconds(s: Any) -> str:
    """Wall times: ``850ms``, ``2.41s``, ``3m 5s``."""
    bad = _bad(s)
    if bad:
        return bad
    s = float(s)
    if s < 1:
        return f"{s * 1e3:.0f}ms"
    if s < 60:
        return f"{s:.2f}s"
    return duration(pd.Timedelta(seconds=round(s)))


def unit_of(label: Any) -> str:
    """The unit a label or column name implies: ``money``, ``percent``, ``fraction``, ``count``,
    ``duration``, ``time``, ``price`` or ``number``."""
    text = str(label).strip().lower()
    if text.endswith("[$]") or text in ("pnl", "fees", "value", "cash", "equity"):
        return "money"
    if text.endswith("[%]"):
        return "percent"
    if text in ("return", "ret"):
        return "fraction"
    if text.startswith("#") or text in ("calls", "rows", "bars", "trades"):
        return "count"
    if "duration" in text:
        return "duration"
    if text in ("start", "end") or text.endswith("time"):
        return "time"
    if "price" in text or text in ("size", "open", "high", "low", "close", "volume"):
        return "price"
    return "number"


def stat(label: Any, value: Any) -> str:
    """Format ``value`` by the unit its ``label`` implies (see :func:`unit_of`)."""
    if value is None or value is pd.NaT or value is pd.NA:
        return NA
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return timestamp(value)
    if isinstance(value, (pd.Timedelta, np.timedelta64)):
        return duration(value)
    if isinstance(value, str):
        return value
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return NA if value is None else str(value)
    kind = unit_of(label)
    if kind == "money":
        return money(value)
    if kind == "percent":
        return percent(value)
    if kind == "fraction":
        return percent(value, fraction=True)
    if kind == "count":
        return number(int(value)) if _bad(value) is None and float(value).is_integer() else number(value)
    if kind == "duration":
        return duration(int(value)) if _bad(value) is None else NA
    if kind == "price":
        return price(value)
    return number(value)


def tone(label: Any, value: Any) -> str | None:
    """``"pos"``/``"neg"`` for gain-like values (returns, PnL, Sharpe, alpha...), else None.

    Volatility, exposure, fees, beta, drawdowns, durations and counts are not coloured.
    """
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, (bool, np.bool_)):
        return None
    text = str(label).lower()
    if any(k in text for k in _UNTONED) or not any(k in text for k in _TONED):
        return None
    v = float(value)
    if not math.isfinite(v) or v == 0:
        return None
    return "pos" if v > 0 else "neg"


def axis_tick(v: float, unit: str = "number") -> str:
    """Compact chart-axis labels: ``12k``, ``1.5M``, ``-2%``, ``0.25``."""
    bad = _bad(v)
    if bad:
        return bad
    a = abs(v)
    if unit == "percent":
        return f"{v:,.0f}%" if a >= 10 or v == int(v) else f"{v:.1f}%"
    if a >= 1e6:
        return f"{v / 1e6:,.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:,.3g}k"
    return _sig(v, 3) if a < 1000 else f"{v:,.0f}"
