"""Small inline-SVG chart builders for the self-contained HTML report.

No JavaScript and no network: each function returns an ``<svg>`` string.
Long series are reduced to at most ``max_points`` per line by keeping each
bucket's first, min, max and last values, so the shape (and every drawdown
trough) survives the reduction.
"""
from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np

from .. import format as F

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9", "#64748b", "#db2777")
W, H = 900, 280
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 24, 28


def reduce_series(x: np.ndarray, y: np.ndarray, max_points: int = 1600) -> tuple[np.ndarray, np.ndarray]:
    """Keep first/min/max/last of each bucket so extremes survive down-sampling."""
    n = len(x)
    if n <= max_points:
        return x, y
    buckets = max_points // 4
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if hi <= lo:
            continue
        seg = y[lo:hi]
        finite = np.isfinite(seg)
        idx = {lo, hi - 1}
        if finite.any():
            idx.add(lo + int(np.nanargmin(np.where(finite, seg, np.nan))))
            idx.add(lo + int(np.nanargmax(np.where(finite, seg, np.nan))))
        keep.extend(sorted(idx))
    keep = np.asarray(keep)
    return x[keep], y[keep]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if not np.isfinite(lo) or not np.isfinite(hi):
        return []
    if hi == lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step) + 1)]


def _fmt(v: float) -> str:
    return F.axis_tick(v)


def pct(v: float) -> str:
    """Axis ticks of percent charts (drawdown, exposure): ``-2%``."""
    return F.axis_tick(v, "percent")


class _Frame:
    """Maps data coordinates to pixels for one chart."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, width: int = W, height: int = H) -> None:
        if x1 == x0:
            x1 = x0 + 1
        if y1 == y0:
            y0, y1 = y0 - 1, y1 + 1
        self.x0, self.x1, self.y0, self.y1, self.w, self.h = x0, x1, y0, y1, width, height

    def px(self, x: np.ndarray) -> np.ndarray:
        return PAD_L + (np.asarray(x, float) - self.x0) / (self.x1 - self.x0) * (self.w - PAD_L - PAD_R)

    def py(self, y: np.ndarray) -> np.ndarray:
        return PAD_T + (self.y1 - np.asarray(y, float)) / (self.y1 - self.y0) * (self.h - PAD_T - PAD_B)

    def axes(self, x_labels: Sequence[tuple[float, str]], y_fmt=_fmt) -> str:
        parts = []
        for t in _nice_ticks(self.y0, self.y1):
            yy = self.py(t)
            parts.append(f'<line x1="{PAD_L}" x2="{self.w - PAD_R}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>'
                         f'<text x="{PAD_L - 6}" y="{yy + 4:.1f}" class="tick" text-anchor="end">{y_fmt(t)}</text>')
        for i, (xv, label) in enumerate(x_labels):
            xx = self.px(xv)
            anchor = "start" if i == 0 else "end" if i == len(x_labels) - 1 else "middle"
            parts.append(f'<text x="{xx:.1f}" y="{self.h - 8}" class="tick" text-anchor="{anchor}">'
                         f'{html.escape(label)}</text>')
        return "".join(parts)


def _time_labels(t_ns: np.ndarray, count: int = 6) -> list[tuple[float, str]]:
    if len(t_ns) == 0:
        return []
    span_days = (t_ns[-1] - t_ns[0]) / 86_400e9
    fmt = "%Y-%m-%d" if span_days > 2 else "%m-%d %H:%M"
    picks = np.linspace(t_ns[0], t_ns[-1], count)
    return [(p, np.datetime64(int(p), "ns").astype("datetime64[s]").item().strftime(fmt)) for p in picks]


def _svg(body: str, title: str, legend: Sequence[tuple[str, str]] = (), width: int = W, height: int = H) -> str:
    leg = "".join(
        f'<rect x="{PAD_L + 10 + i * 150}" y="6" width="10" height="10" fill="{c}"/>'
        f'<text x="{PAD_L + 24 + i * 150}" y="15" class="legend">{html.escape(n)}</text>'
        for i, (n, c) in enumerate(legend))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
            f'role="img" aria-label="{html.escape(title)}" class="chart">{body}{leg}</svg>')


def line_chart(t_ns: np.ndarray, lines: dict[str, np.ndarray], title: str, fill_zero: bool = False,
               y_fmt=_fmt, markers: Sequence[tuple[str, np.ndarray, np.ndarray, str]] = ()) -> str:
    """Lines sharing a time axis (int64 ns). ``markers``: (name, t_ns, y, shape) with shape '^', 'v' or 'x'
    (a square: liquidations)."""
    t_ns = np.asarray(t_ns, dtype=np.int64)
    ys = [np.asarray(v, float) for v in lines.values()]
    finite = [v[np.isfinite(v)] for v in ys]
    lo = min((f.min() for f in finite if f.size), default=0.0)
    hi = max((f.max() for f in finite if f.size), default=1.0)
    if fill_zero:
        lo, hi = min(lo, 0.0), max(hi, 0.0)
    pad = (hi - lo) * 0.05 or 1.0
    frame = _Frame(float(t_ns[0]) if len(t_ns) else 0.0, float(t_ns[-1]) if len(t_ns) else 1.0, lo - pad, hi + pad)
    body = [frame.axes(_time_labels(t_ns), y_fmt)]
    legend = []
    for i, (name, y) in enumerate(zip(lines, ys)):
        color = PALETTE[i % len(PALETTE)]
        legend.append((name, color))
        xr, yr = reduce_series(t_ns.astype(float), y)
        ok = np.isfinite(yr)
        if not ok.any():
            continue
        px, py = frame.px(xr[ok]), frame.py(yr[ok])
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py))
        if fill_zero:
            z = frame.py(0.0)
            body.append(f'<polygon points="{px[0]:.1f},{z:.1f} {pts} {px[-1]:.1f},{z:.1f}" fill="{color}" '
                        f'fill-opacity="0.25" stroke="none"/>')
        body.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.4"/>')
    for name, mt, my, shape in markers:
        mt, my = np.asarray(mt, float), np.asarray(my, float)
        color = {"^": "#16a34a", "x": "#7f1d1d"}.get(shape, "#dc2626")
        legend.append((name, color))
        for a, b in zip(frame.px(mt), frame.py(my)):
            if shape == "x":  # liquidations: a dark red square
                body.append(f'<rect x="{a - 5:.1f}" y="{b - 5:.1f}" width="10" height="10" fill="{color}"/>')
                continue
            d = 5 if shape == "^" else -5
            body.append(f'<polygon points="{a:.1f},{b - d:.1f} {a - 4:.1f},{b + d:.1f} {a + 4:.1f},{b + d:.1f}" '
                        f'fill="{color}"/>')
    return _svg("".join(body), title, legend)


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, y_fmt=_fmt) -> str:
    """Vertical bars, e.g. feature importances or fold scores."""
    values = np.asarray(values, float)
    n = len(values)
    lo, hi = min(0.0, float(np.nanmin(values)) if n else 0.0), max(0.0, float(np.nanmax(values)) if n else 1.0)
    frame = _Frame(0, max(n, 1), lo, hi + (hi - lo) * 0.08)
    body = [frame.axes([], y_fmt)]
    bw = (W - PAD_L - PAD_R) / max(n, 1)
    z = frame.py(0.0)
    for i, (lab, v) in enumerate(zip(labels, values)):
        x = PAD_L + i * bw
        y = frame.py(v)
        body.append(f'<rect x="{x + bw * 0.1:.1f}" y="{min(y, z):.1f}" width="{bw * 0.8:.1f}" '
                    f'height="{abs(z - y):.1f}" fill="{PALETTE[0]}"><title>{html.escape(str(lab))}: {F.number(v)}</title></rect>')
        if n <= 12:
            body.append(f'<text x="{x + bw / 2:.1f}" y="{H - 8}" class="tick" text-anchor="middle">'
                        f'{html.escape(str(lab))[:10]}</text>')
        elif n <= 60:  # many bars: labels slanted so neighbours do not overlap
            body.append(f'<text x="{x + bw / 2:.1f}" y="{H - PAD_B + 12}" class="tick" text-anchor="end" '
                        f'transform="rotate(-40 {x + bw / 2:.1f} {H - PAD_B + 12})">{html.escape(str(lab))[:14]}</text>')
    return _svg("".join(body), title, height=H + 60 if 12 < n <= 60 else H)


def heatmap(rows: Sequence[str], cols: Sequence[str], values: np.ndarray, title: str) -> str:
    """A diverging heat map (red < 0 < green) with values printed in cells, e.g. monthly returns [%]."""
    values = np.asarray(values, float)
    nr, nc = values.shape
    cw, ch = (W - PAD_L - PAD_R) / max(nc, 1), 22
    height = PAD_T + nr * ch + PAD_B
    vmax = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    vmax = vmax or 1.0
    body = []
    for j, c in enumerate(cols):
        body.append(f'<text x="{PAD_L + (j + 0.5) * cw:.1f}" y="{PAD_T - 6}" class="tick" '
                    f'text-anchor="middle">{html.escape(str(c))}</text>')
    for i, r in enumerate(rows):
        y = PAD_T + i * ch
        body.append(f'<text x="{PAD_L - 6}" y="{y + 15}" class="tick" text-anchor="end">{html.escape(str(r))}</text>')
        for j in range(nc):
            v = values[i, j]
            if not np.isfinite(v):
                color, label = "#f1f5f9", ""
            else:
                a = min(abs(v) / vmax, 1.0)
                color = (f"rgba(22,163,74,{0.15 + 0.75 * a:.2f})" if v >= 0 else f"rgba(220,38,38,{0.15 + 0.75 * a:.2f})")
                label = f"{v:.1f}"  # cells are narrow: one decimal, the title carries the unit
            body.append(f'<rect x="{PAD_L + j * cw:.1f}" y="{y}" width="{cw - 1:.1f}" height="{ch - 1}" fill="{color}"/>'
                        f'<text x="{PAD_L + (j + 0.5) * cw:.1f}" y="{y + 15}" class="cell" text-anchor="middle">{label}</text>')
    return _svg("".join(body), title, width=W, height=height)
