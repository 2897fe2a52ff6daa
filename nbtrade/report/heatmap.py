"""A heat map of a metric over two parameters (a sweep's grid) for the HTML report and the terminal.

The report's own chart layer draws it: lightweight-charts (the price, equity and drawdown panes)
has no heat-map series, so ``heatmap.js`` paints the cells on a canvas, with a tooltip per cell
(the parameter pair and the metric). Without scripts the same cells show as a shaded table
(``<noscript>``). Every number is formatted by :mod:`nbtrade.format` (the metric by its label's
unit, e.g. ``Total Return [%]`` as ``12.35%``), so the page, the terminal and the CLI agree.
Cells are shaded from red (worst) to green (best) over the finite values.
"""
from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import format as F

CSS = """
.nbtrade-heatmap{position:relative}.hm-box{display:none;position:relative;overflow-x:auto}
.hm-tooltip{display:none;position:absolute;z-index:10;background:#0f172a;color:#f8fafc;padding:6px 8px;
 border-radius:6px;font-size:12px;max-width:340px;pointer-events:none;line-height:1.4;white-space:nowrap}
table.heatmap{width:auto}table.heatmap td,table.heatmap th{border:1px solid #e2e8f0;padding:3px 8px}
"""


@lru_cache(maxsize=1)
def _app() -> str:
    return (Path(__file__).parent / "heatmap.js").read_text(encoding="utf-8")


def shades(values: np.ndarray) -> np.ndarray:
    """Per cell 0 (worst finite value) .. 1 (best); NaN where the value is missing; 1 when all equal."""
    vals = np.asarray(values, dtype=float)
    ok = np.isfinite(vals)
    if not ok.any():
        return np.full(vals.shape, np.nan)
    lo, hi = np.nanmin(np.where(ok, vals, np.nan)), np.nanmax(np.where(ok, vals, np.nan))
    span = hi - lo
    with np.errstate(invalid="ignore"):
        f = (vals - lo) / span if span > 0 else np.ones(vals.shape)
    return np.where(ok, f, np.nan)


def rgb(f: float) -> str:
    """The cell colour of shade ``f`` (0 red .. 1 green), as in ``heatmap.js``."""
    return f"rgb({int(round(255 * (1 - f)))},{int(round(200 * f + 55))},90)"


def label(name: Any, value: Any) -> str:
    """A parameter value as shown on an axis: :func:`nbtrade.format.param` (durations and
    timestamps through :func:`nbtrade.format.stat`)."""
    if isinstance(value, (pd.Timedelta, pd.Timestamp, np.timedelta64, np.datetime64)):
        return F.stat(name, value)
    return F.param(value)


def payload(hm: pd.DataFrame, metric: str, agg: str | None = None) -> dict[str, Any]:
    """The heat map as JSON-ready lists: axis labels, formatted cell texts, shades (None: empty cell)."""
    vals = hm.to_numpy(dtype=float)
    f = shades(vals)
    ok = np.isfinite(vals)
    return {
        "x": str(hm.columns.name), "y": str(hm.index.name), "metric": str(metric),
        "xs": [label(hm.columns.name, v) for v in hm.columns], "ys": [label(hm.index.name, v) for v in hm.index],
        "text": [[F.stat(metric, v) for v in row] for row in vals.tolist()],
        "shade": [[None if np.isnan(s) else round(float(s), 4) for s in row] for row in f],
        "lo": F.stat(metric, float(vals[ok].min())) if ok.any() else F.NA,
        "hi": F.stat(metric, float(vals[ok].max())) if ok.any() else F.NA,
        "agg": agg,
    }


def table(hm: pd.DataFrame, metric: str) -> str:
    """The static heat map: a shaded HTML table, cells formatted by :mod:`nbtrade.format`."""
    vals = hm.to_numpy(dtype=float)
    f = shades(vals)
    head = ("<tr><th>" + html.escape(f"{hm.index.name} \\ {hm.columns.name}") + "</th>"
            + "".join(f"<th>{html.escape(label(hm.columns.name, c))}</th>" for c in hm.columns) + "</tr>")
    rows = [head]
    for r, vrow, frow in zip(hm.index, vals, f):
        cells = ("<td></td>" if np.isnan(s) else
                 f"<td style='background:{rgb(s)}'>{html.escape(F.stat(metric, v))}</td>" for v, s in zip(vrow, frow))
        rows.append(f"<tr><th>{html.escape(label(hm.index.name, r))}</th>{''.join(cells)}</tr>")
    return "<table class='heatmap'>" + "".join(rows) + "</table>"


def section(hm: pd.DataFrame, metric: str, agg: str | None = None) -> str:
    """The interactive heat map (canvas, tooltips) with the static table as its no-script fallback."""
    from .interactive import _json_for_script

    return (f"<div class='nbtrade-heatmap'><div class='hm-box'><canvas></canvas></div><div class='hm-tooltip'></div>"
            f"<script type='application/json' class='nbtrade-heatmap-data'>"
            f"{_json_for_script(payload(hm, metric, agg))}</script>"
            f"<noscript>{table(hm, metric)}</noscript></div>")


def script() -> str:
    """The drawing script (once per page, after the heat maps)."""
    return f"<script>{_app()}</script>"
