"""The self-contained HTML report: charts inline as SVG, no scripts, no network.

``write_report`` takes plain pandas objects (what a backtest ``Result`` and a
walk-forward run hold), so any stage can be reported on its own.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import format as F
from ..timeframes import to_epoch_ms
from . import svg

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}
main{max-width:1100px;margin:0 auto;padding:18px 28px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:14px 18px;margin:14px 0}
h2{font-size:16px;margin:0 0 10px}
table{border-collapse:collapse;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #f1f5f9;text-align:right}
th:first-child,td:first-child{text-align:left}
.grid{stroke:#e2e8f0;stroke-width:1}.tick{font-size:11px;fill:#64748b}.legend{font-size:12px;fill:#0f172a}
.cell{font-size:10px;fill:#0f172a}.boxes{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.kv td{text-align:left}.kv td:first-child{color:#475569;width:40%}
.pos{color:#15803d}.neg{color:#b91c1c}.scroll{max-height:420px;overflow:auto}
tr.liq td{background:#fee2e2}
"""


def _t_ns(index: pd.Index) -> np.ndarray:
    """Chart x positions in epoch ns (the svg module's axis) for times in any resolution or zone;
    an integer index is used as it is."""
    idx = pd.Index(index)
    if idx.dtype.kind in "iu":
        return idx.to_numpy(np.int64)
    return to_epoch_ms(pd.DatetimeIndex(idx), "index") * 1_000_000


STATIC_MARKERS = 2_000


def _kv_table(items: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_fmt_value(v, k))}</td></tr>"
                   for k, v in items.items())
    return f'<table class="kv">{rows}</table>'


def _fmt_value(v: Any, label: Any = "") -> str:
    if isinstance(v, (list, tuple)):
        return ", ".join(map(str, v))
    if isinstance(v, dict):
        return ", ".join(f"{k}={x}" for k, x in v.items())
    return F.stat(label, v)


def _display(df: pd.DataFrame) -> pd.DataFrame:
    """Trade returns are fractions in :attr:`Result.trades`; the report shows them in % like the stats."""
    if "return" in df.columns:
        df = df.rename(columns={"return": "return [%]"})
        df["return [%]"] = df["return [%]"] * 100.0
    return df


def _frame_table(df: pd.DataFrame, max_rows: int = 500, what: str = "rows") -> str:
    """An HTML table; values through :mod:`nbtrade.format`, row labels as the stat labels when a
    column holds one statistic per row (the Statistics table). Trades closed by liquidation (exit
    reason ``liquidation``) are rows of class ``liq`` (shaded red)."""
    df = _display(df)
    shown = df.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [shown.index.name or ""] + list(shown.columns))
    by_row = all(isinstance(i, str) for i in shown.index) and not {"entry_time", "symbol"} & set(shown.columns)
    body = []
    for idx, row in shown.iterrows():
        cells = [f"<td>{html.escape(F.stat(shown.index.name or '', idx))}</td>"]
        for col, v in row.items():
            label = idx if by_row else col
            cls = F.tone(label, v)
            cls = f' class="{cls}"' if cls else ""
            cells.append(f"<td{cls}>{html.escape(_fmt_value(v, label))}</td>")
        liq = row.get("exit_reason") == "liquidation" if "exit_reason" in row.index else False
        body.append(("<tr class=\"liq\">" if liq else "<tr>") + "".join(cells) + "</tr>")
    more = (f"<p>First {max_rows:,} of {len(df):,} {what} shown.</p>" if len(df) > max_rows else "")
    wrap = "scroll" if len(shown) > 40 else "plain"  # short tables (statistics) are shown whole
    return f'<div class="{wrap}"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>{more}'


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return per calendar month [%], years as rows and months as columns."""
    eq = equity.dropna()
    if eq.empty:
        return pd.DataFrame()
    idx = pd.DatetimeIndex(eq.index)
    month_end = eq.groupby([idx.year, idx.month]).last()
    prev = month_end.shift(1)
    prev.iloc[0] = eq.iloc[0]
    rets = (month_end / prev - 1.0) * 100.0
    table = rets.unstack()
    table.index.name, table.columns.name = "year", "month"
    return table.reindex(columns=range(1, 13))


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown from the running peak [%] (<= 0)."""
    return (equity / equity.cummax() - 1.0) * 100.0


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def render_html(equity: pd.Series, *, title: str = "nbtrade report", benchmarks: Mapping[str, pd.Series] | None = None,
                stats: pd.Series | pd.DataFrame | None = None, trades: pd.DataFrame | None = None,
                price: pd.Series | None = None, exposure: pd.Series | None = None,
                importances: pd.Series | None = None, folds: pd.DataFrame | None = None,
                assumptions: Mapping[str, Any] | None = None, reproducibility: Mapping[str, Any] | None = None,
                monitor: list[dict[str, Any]] | None = None, candles: Mapping[str, pd.DataFrame] | None = None,
                interactive: bool = True, subtitle: str | None = None, funding: pd.DataFrame | None = None,
                margin: pd.Series | None = None) -> str:
    """Build the report page as a string. See :func:`write_report`."""
    parts = []
    if price is None and candles:
        sym, frame = next(iter(candles.items()))
        price = frame["close"].rename(str(sym))
    static = _static_charts(equity, benchmarks, price, trades, exposure, funding, margin)
    if interactive:
        from . import interactive as ix

        data = ix.payload(equity, benchmarks=benchmarks, candles=candles, price=price, trades=trades,
                          exposure=exposure, funding=funding, margin=margin)
        heading = "Price, trades, equity, drawdown and exposure" + (
            ", funding and margin" if funding is not None and margin is not None else
            ", funding" if funding is not None else ", margin" if margin is not None else "")
        parts.append(_section(heading, ix.section(data)))
        # scripts off: the same views as static pictures
        parts.append(f"<noscript>{static}</noscript>")
    else:
        parts.append(static)
    monthly = monthly_returns(equity)
    if not monthly.empty:
        cols = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        parts.append(_section("Monthly returns [%]", svg.heatmap([str(y) for y in monthly.index], cols,
                                                                  monthly.to_numpy(float), "monthly returns")))
    if stats is not None:
        if hasattr(stats, "full"):
            stats = stats.full()
        table = stats.to_frame("value") if isinstance(stats, pd.Series) else stats
        parts.append(_section("Statistics", _frame_table(table)))
    if importances is not None and len(importances):
        top = importances.sort_values(ascending=False).head(30)
        parts.append(_section("Feature importances", svg.bar_chart(list(map(str, top.index)), top.to_numpy(float),
                                                                   "feature importances", y_fmt=F.number)))
    if folds is not None and len(folds):
        score_col = next((c for c in ("score", "accuracy") if c in folds.columns), None)
        if score_col:
            parts.append(_section("Walk-forward fold scores", svg.bar_chart(
                [str(i) for i in folds.index], folds[score_col].to_numpy(float), "fold scores",
                y_fmt=F.number)))
        parts.append(_section("Walk-forward folds", _frame_table(folds)))
    if trades is not None:
        liq = trades[trades["exit_reason"] == "liquidation"] if "exit_reason" in trades.columns else trades.iloc[:0]
        if len(liq):  # every liquidation, wherever it falls in a long trades table
            parts.append(_section(f"Liquidations ({len(liq):,} of {len(trades):,} trades)",
                                  _frame_table(liq, what="liquidations")))
        parts.append(_section(f"Trades ({len(trades):,})", _frame_table(trades, what="trades")))
    boxes = []
    if assumptions:
        boxes.append(_section("Assumptions", _kv_table(assumptions)))
    repro = dict(reproducibility or {})
    repro.setdefault("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"))
    boxes.append(_section("Reproducibility", _kv_table(repro)))
    parts.append(f'<div class="boxes">{"".join(boxes)}</div>')
    if monitor:
        mon = pd.DataFrame(monitor).set_index("stage")
        keep = [c for c in ("calls", "wall_s", "share", "cpu_s", "p95_s", "peak_delta_bytes") if c in mon.columns]
        parts.append(_section("Performance monitor", _frame_table(mon[keep])))
    span = f"{F.timestamp(equity.index[0])} → {F.timestamp(equity.index[-1])}" if len(equity) else "empty"
    sub = f"{html.escape(subtitle)}<br>" if subtitle else ""
    return page(title, "".join(parts), header=f"{sub}{html.escape(span)}",
                extra_css=_ix_css() if interactive else "")


def page(title: str, body: str, *, header: str = "", extra_css: str = "") -> str:
    """The report's page frame (styles, title bar, main column) around ``body`` (HTML sections);
    ``header``: HTML under the title. Shared by backtest and sweep reports."""
    sub = f"<p>{header}</p>" if header else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}{extra_css}</style>'
            f'</head><body><header><h1>{html.escape(title)}</h1>{sub}</header><main>{body}</main></body></html>')


def _ix_css() -> str:
    from .interactive import CSS

    return CSS


def _static_charts(equity: pd.Series, benchmarks: Mapping[str, pd.Series] | None, price: pd.Series | None,
                   trades: pd.DataFrame | None, exposure: pd.Series | None, funding: pd.DataFrame | None = None,
                   margin: pd.Series | None = None) -> str:
    """Equity, drawdown, exposure, funding paid, margin usage and price with trades as inline SVG
    (no scripts needed); liquidations are marked apart from the other exits."""
    parts = []
    t = _t_ns(equity.index)
    lines = {str(equity.name or "strategy"): equity.to_numpy(float)}
    for name, bench in (benchmarks or {}).items():
        lines[name] = bench.reindex(equity.index).to_numpy(float)
    parts.append(_section("Equity", svg.line_chart(t, lines, "equity curve")))
    parts.append(_section("Drawdown [%]", svg.line_chart(t, {"drawdown": drawdown(equity).to_numpy(float)},
                                                        "drawdown", fill_zero=True, y_fmt=svg.pct)))
    if exposure is not None:
        parts.append(_section("Exposure [% of equity]", svg.line_chart(
            _t_ns(exposure.index), {"exposure": exposure.to_numpy(float)}, "exposure", fill_zero=True,
            y_fmt=svg.pct)))
    if funding is not None and len(funding.columns):
        from .interactive import funding_columns

        cols = funding_columns(funding)
        cut = (f" (the portfolio and {len(cols) - 1} of {funding.shape[1] - 1} symbols)"
               if len(cols) < funding.shape[1] else "")
        parts.append(_section(f"Funding paid, cumulative [$] (negative: received){cut}", svg.line_chart(
            _t_ns(funding.index), {str(c): funding[c].to_numpy(float) for c in cols}, "funding paid")))
    if margin is not None:
        parts.append(_section("Margin used / equity [%]", svg.line_chart(
            _t_ns(margin.index), {"margin usage": margin.to_numpy(float)}, "margin usage", fill_zero=True,
            y_fmt=svg.pct)))
    if price is not None:
        markers, cut = [], ""
        if trades is not None and len(trades) and {"entry_time", "exit_time"} <= set(trades.columns):
            mine = trades[trades["symbol"] == price.name] if "symbol" in trades.columns else trades
            if len(mine) > STATIC_MARKERS:  # each marker is a polygon: keep the picture light
                cut = f" (markers of the first {STATIC_MARKERS:,} of {len(mine):,} trades)"
                mine = mine.iloc[:STATIC_MARKERS]
            ent = mine.dropna(subset=["entry_time"])
            ext = mine.dropna(subset=["exit_time"])
            is_liq = (ext["exit_reason"] == "liquidation").to_numpy() if "exit_reason" in ext.columns else \
                np.zeros(len(ext), bool)
            markers = [("entry", _t_ns(ent["entry_time"]), ent["entry_price"].to_numpy(float), "^"),
                       ("exit", _t_ns(ext["exit_time"][~is_liq]), ext["exit_price"].to_numpy(float)[~is_liq], "v")]
            if is_liq.any():
                markers.append(("liquidation", _t_ns(ext["exit_time"][is_liq]),
                                ext["exit_price"].to_numpy(float)[is_liq], "x"))
        parts.append(_section(f"Price and trades: {price.name or ''}{cut}", svg.line_chart(
            _t_ns(price.index), {str(price.name or "price"): price.to_numpy(float)}, "price", markers=markers)))
    return "".join(parts)


def write_report(path: str, equity: pd.Series, **kwargs: Any) -> str:
    """Write a self-contained HTML report and return its path.

    Parameters
    ----------
    equity : pd.Series
        Portfolio value over time (DatetimeIndex).
    benchmarks : dict of name -> Series, optional
        Other equity curves (e.g. buy-and-hold), reindexed to ``equity``.
    stats, trades, price, exposure, importances, folds : optional
        Statistics (Series or DataFrame with one column per strategy), the
        trades table (``entry_time, entry_price, exit_time, exit_price`` columns
        give markers; ``symbol`` assigns them), exposure [%], feature importances
        and walk-forward fold scores. ``price``: one close series, when no candles.
    candles : dict of symbol -> DataFrame, optional
        ``open, high, low, close[, volume]`` per symbol on the equity's index: the
        interactive chart's candles and its symbol selector.
    interactive : bool
        True (default): the chart panes as an interactive chart (scripts inlined, no
        network; the static pictures inside ``<noscript>``); False: static pictures only.
    subtitle : str, optional
        A line under the title (e.g. what the data are).
    assumptions, reproducibility : dict, optional
        Fill timing, fees, slippage, intrabar rule, data gaps met; seed,
        package versions, data hash, command.
    monitor : list of dict, optional
        ``Monitor.summary()`` rows.
    """
    text = render_html(equity, **kwargs)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path
