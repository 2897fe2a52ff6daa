"""The interactive part of the HTML report: candles, volume, trades, equity, drawdown, exposure
(funding and margin for perpetuals).

One `TradingView Lightweight Charts <https://github.com/tradingview/lightweight-charts>`_ chart
(Apache-2.0, vendored unmodified in ``vendor/``, inlined so the page needs no network) with four
panes on one time axis: zoom and pan are linked by construction. Every trade's entry and exit is
a marker at its fill price with a tooltip (time, price, size, PnL, exit reason); when more than
150 events are in view they are clustered into counted dots. A symbol selector switches the
candles and markers of multi-symbol runs. Series longer than ``max_bars`` are merged into
coarser bars (OHLC: first/max/min/last, volume summed, drawdown: deepest, exposure: mean) so the
page stays light; the header says so. Perpetual and other margined runs add two panes on the
same axis: cumulative funding paid (portfolio and per symbol) and margin used over equity; their
liquidations are red squares, shown even among clustered markers.
"""
from __future__ import annotations

import html
import json
import math
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .. import format as F

LWC_VERSION = "5.2.1"
#: funding pane: the portfolio's line and at most this many symbols' (those with the largest amounts)
MAX_FUNDING_LINES = 8
_HERE = Path(__file__).parent

CSS = """
.ix{position:relative}.ix-bar{display:flex;gap:12px;align-items:center;font-size:13px;margin-bottom:6px}
#nbtrade-chart{height:760px;position:relative}
#nbtrade-legend{font:12px ui-monospace,monospace;color:#334155;min-height:16px}
#nbtrade-tooltip{display:none;position:absolute;z-index:10;background:#0f172a;color:#f8fafc;padding:6px 8px;
 border-radius:6px;font-size:12px;max-width:340px;pointer-events:none;line-height:1.4}
#nbtrade-tooltip hr{border:0;border-top:1px solid #334155;margin:4px 0}
.ix-note{color:#64748b;font-size:12px}
"""


@lru_cache(maxsize=1)
def _library() -> str:
    return (_HERE / "vendor" / "lightweight-charts.standalone.production.js").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _app() -> str:
    return (_HERE / "report.js").read_text(encoding="utf-8")


def _seconds(index: pd.Index) -> np.ndarray:
    if isinstance(index, pd.DatetimeIndex):
        idx = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
        return idx.values.astype("datetime64[s]").astype(np.int64)
    return np.asarray(index, dtype=np.int64)  # bar numbers shown as seconds since 1970


def _values(a: Any, digits: int = 8) -> list:
    """JSON-ready floats rounded to ``digits`` significant digits (short text); NaN as null."""
    a = np.asarray(a, dtype=float)
    finite = np.isfinite(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.floor(np.log10(np.abs(np.where(finite & (a != 0), a, 1.0))))
        scale = 10.0 ** (digits - 1 - mag)
        rounded = np.where(finite, np.round(a * scale) / scale, 0.0)
    out = rounded.tolist()
    for i in np.flatnonzero(~finite).tolist():
        out[i] = None
    return out


def funding_columns(funding: pd.DataFrame, max_lines: int | None = None) -> list:
    """The columns of a funding-paid frame to draw: ``"portfolio"`` and at most ``max_lines``
    (default :data:`MAX_FUNDING_LINES`) symbols, those with the largest final |amount|, in column order."""
    max_lines = MAX_FUNDING_LINES if max_lines is None else max_lines
    cols = list(funding.columns)
    symbols = [c for c in cols if c != "portfolio"]
    if len(symbols) <= max_lines:
        return cols
    last = funding[symbols].ffill().iloc[-1].abs().fillna(0.0)
    keep = set(last.sort_values(ascending=False, kind="stable").index[:max_lines])
    return [c for c in cols if c == "portfolio" or c in keep]


class _Bins:
    """Merges every ``k`` consecutive bars into one (``k = 1``: nothing to do)."""

    def __init__(self, n: int, max_bars: int) -> None:
        self.k = max(1, math.ceil(n / max_bars)) if n else 1
        self.starts = np.arange(0, n, self.k)

    def _reduce(self, a: np.ndarray, how: str) -> np.ndarray:
        a = np.asarray(a, float)
        if self.k == 1:
            return a
        if how == "first":
            return a[self.starts]
        if how == "last":
            return a[np.minimum(self.starts + self.k - 1, len(a) - 1)]
        pad = len(self.starts) * self.k - len(a)
        blocks = np.concatenate([a, np.full(pad, np.nan)]).reshape(-1, self.k)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks (before a listing) stay NaN
            return {"max": np.nanmax, "min": np.nanmin, "mean": np.nanmean, "sum": np.nansum}[how](blocks, axis=1)

    def first(self, a): return self._reduce(a, "first")  # noqa: E704
    def last(self, a): return self._reduce(a, "last")  # noqa: E704
    def max(self, a): return self._reduce(a, "max")  # noqa: E704
    def min(self, a): return self._reduce(a, "min")  # noqa: E704
    def mean(self, a): return self._reduce(a, "mean")  # noqa: E704
    def sum(self, a): return self._reduce(a, "sum")  # noqa: E704


def _trade_texts(trades: pd.DataFrame, symbol: str) -> list[str]:
    """One tooltip line per trade (direction, entry, exit and reason, PnL, holding time), formatted
    by :mod:`nbtrade.format`; built column-wise (iterrows costs seconds per 10k trades)."""
    n = len(trades)

    def col(name: str, default: Any = None) -> list:
        return trades[name].tolist() if name in trades.columns else [default] * n

    ids = trades.index.tolist() if pd.api.types.is_integer_dtype(trades.index) else [None] * n
    out = []
    def when(c: str) -> list:
        if c not in trades.columns:
            return [None] * n
        if pd.api.types.is_datetime64_any_dtype(trades[c]):
            return F.timestamps(trades[c])
        return [f"bar {F.number(v)}" for v in trades[c].tolist()]  # data without timestamps

    times = {c: when(c) for c in ("entry_time", "exit_time")}
    for tid, d, size, et, ep, xt, xp, reason, pnl, ret, dur in zip(
            ids, col("direction", "long"), col("size"), times["entry_time"], col("entry_price"), times["exit_time"],
            col("exit_price"), col("exit_reason", ""), col("pnl"), col("return"), col("duration")):
        reason = "" if reason is None else str(reason)
        parts = [f"{d} {symbol}" + (f" #{tid}" if tid is not None else ""),
                 f"in {et} @ {F.price(ep)}" + (f", size {F.price(size)}" if size is not None else "")]
        if reason == "end":
            parts.append("still open at the end")
        else:
            parts.append(f"out {xt} @ {F.price(xp)}" + (f" ({reason})" if reason else ""))
        if pnl is not None:
            pct = f" ({F.percent(ret, fraction=True)})" if ret is not None else ""
            parts.append(f"{'PnL at the end' if reason == 'end' else 'PnL'} {F.money(pnl)}{pct}")
        if dur is not None and reason != "end":
            parts.append(f"held {F.duration(dur)}")
        out.append(" · ".join(parts))
    return out


def payload(equity: pd.Series, *, benchmarks: Mapping[str, pd.Series] | None = None,
            candles: Mapping[str, pd.DataFrame] | None = None, price: pd.Series | None = None,
            trades: pd.DataFrame | None = None, exposure: pd.Series | None = None,
            funding: pd.DataFrame | None = None, margin: pd.Series | None = None,
            max_bars: int = 20_000, max_values: int = 600_000, max_trades: int = 20_000) -> dict[str, Any]:
    """The chart data as plain JSON-ready lists (times in UTC seconds, one row per merged bar).

    ``funding``: cumulative funding paid [quote] per bar, one column per symbol and optionally a
    ``"portfolio"`` column (:meth:`Result.funding_paid`): a pane of lines. ``margin``: margin used
    over equity [%] (:meth:`Result.margin_usage`): a pane. Liquidated trades (exit reason
    ``liquidation``) get their own exit marker, shown even when the others are clustered.

    Budgets keep the page light: at most ``max_bars`` bars on the time axis, fewer when the
    candles of all symbols would exceed ``max_values`` numbers, and markers for the first
    ``max_trades`` trades, evenly spaced (the page says so; the trades table is separate).
    """
    index = equity.index
    n_symbols = max(1, len(candles or {}) or (1 if price is not None else 0))
    bins = _Bins(len(index), min(max_bars, max(1_000, max_values // (5 * n_symbols))))
    t_all = _seconds(index)
    out: dict[str, Any] = {"t": t_all[bins.starts].tolist(), "merged": bins.k}
    eq = {str(equity.name or "strategy"): _values(bins.last(equity.to_numpy(float)))}
    for name, bench in (benchmarks or {}).items():
        eq[str(name)] = _values(bins.last(bench.reindex(index).to_numpy(float)))
    out["equity"] = eq
    dd = (equity / equity.cummax() - 1.0).to_numpy(float) * 100.0
    out["drawdown"] = _values(bins.min(dd), 4)
    if exposure is not None:
        ex = exposure.reindex(index).to_numpy(float)
        # per-bar exposure of a busy strategy flips between 0 and 100 %: a wall of spikes.
        # A centred-free (trailing) mean over ~1/150 of the view reads as "how invested, when".
        window = max(1, len(ex) // 150)
        smooth = pd.Series(ex).rolling(window, min_periods=1).mean().to_numpy()
        out["exposure"] = _values(bins.mean(smooth), 4)
        unit = F.duration(index[window] - index[0]) if isinstance(index, pd.DatetimeIndex) and window < len(index) \
            else f"{window} bars"
        out["exposure_title"] = f"exposure, mean of {unit}" if window > 1 else "exposure"
    if funding is not None and len(funding.columns):
        fund = funding.reindex(index)
        cols = funding_columns(fund)
        n_symbols = sum(c != "portfolio" for c in fund.columns)
        if n_symbols > MAX_FUNDING_LINES:
            out["funding_cut"] = [MAX_FUNDING_LINES, n_symbols]
        out["funding"] = {str(c): _values(bins.last(fund[c].to_numpy(float)), 6) for c in cols}
    if margin is not None:
        out["margin"] = _values(bins.max(margin.reindex(index).to_numpy(float)), 4)  # the peak of merged bars
    if candles is None and price is not None:
        candles = {str(price.name or "price"): pd.DataFrame({"close": price})}
    candles = dict(candles or {})
    out["ohlc"] = bool(candles) and all({"open", "high", "low", "close"} <= set(f.columns) for f in candles.values())
    out["symbols"] = [str(s) for s in candles]
    out["candles"] = {}
    for sym, frame in candles.items():
        f = frame.reindex(index)
        c = {"c": _values(bins.last(f["close"].to_numpy(float)))}
        if out["ohlc"]:
            c.update(o=_values(bins.first(f["open"].to_numpy(float))), h=_values(bins.max(f["high"].to_numpy(float))),
                     l=_values(bins.min(f["low"].to_numpy(float))))
        if "volume" in f.columns:
            c["v"] = _values(bins.sum(f["volume"].to_numpy(float)), 6)
        out["candles"][str(sym)] = c
    out["trades"] = {}
    if trades is not None and len(trades) > max_trades:
        step = math.ceil(len(trades) / max_trades)  # every step-th trade: markers still span the whole run
        out["trades_cut"] = [step, math.ceil(len(trades) / step), len(trades)]
        trades = trades.iloc[::step]
    if trades is not None and len(trades) and {"entry_time", "entry_price", "exit_time", "exit_price"} <= set(trades):
        for sym in candles:
            mine = trades[trades["symbol"] == sym] if "symbol" in trades.columns else trades
            if not len(mine):
                continue

            def bar_time(times: pd.Series) -> list:
                pos = index.get_indexer(pd.DatetimeIndex(times) if isinstance(index, pd.DatetimeIndex) else times)
                pos = np.where(pos >= 0, pos // bins.k * bins.k, -1)
                return [int(t_all[p]) if p >= 0 else None for p in pos.tolist()]

            is_open = mine.get("exit_reason", pd.Series("", index=mine.index)).astype(str).eq("end").to_numpy()
            exit_t = bar_time(mine["exit_time"])
            out["trades"][str(sym)] = {
                "entry_t": bar_time(mine["entry_time"]), "entry_p": _values(mine["entry_price"]),
                "exit_t": [None if o else e for o, e in zip(is_open, exit_t)], "exit_p": _values(mine["exit_price"]),
                "long": (mine["direction"].astype(str) != "short").tolist() if "direction" in mine else [True] * len(mine),
                "liq": mine.get("exit_reason", pd.Series("", index=mine.index)).astype(str).eq("liquidation").tolist(),
                "text": _trade_texts(mine, str(sym)),
            }
            keep = [e is not None for e in out["trades"][str(sym)]["entry_t"]]
            if not all(keep):
                out["trades"][str(sym)] = {k: [v for v, ok in zip(vals, keep) if ok]
                                           for k, vals in out["trades"][str(sym)].items()}
    return out


def _json_for_script(data: Any) -> str:
    # "</" would close the script element; "<!--" could open a comment in it
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")


def section(data: dict[str, Any]) -> str:
    """The interactive chart as an HTML fragment: selector, chart box, data, library and app scripts."""
    symbols = data.get("symbols", [])
    selector = ""
    if len(symbols) > 1:
        opts = "".join(f'<option value="{html.escape(s)}">{html.escape(s)}</option>' for s in symbols)
        selector = f'<label>symbol <select id="nbtrade-symbol">{opts}</select></label>'
    note = ""
    notes = []
    if data.get("merged", 1) > 1:
        notes.append(f"every {data['merged']} bars merged into one")
    if data.get("funding_cut"):
        shown, total = data["funding_cut"]
        notes.append(f"funding lines of the {shown} of {total:,} symbols with the largest amounts")
    if data.get("trades_cut"):
        step, shown, total = data["trades_cut"]
        notes.append(f"markers for every {step}th trade ({shown:,} of {total:,})")
    if notes:
        note = f'<span class="ix-note">{html.escape("; ".join(notes))}, to keep the page light</span>'
    panes = ["price and volume", "equity", "drawdown"] + (["exposure"] if "exposure" in data else [])
    panes += ["funding paid (cumulative)"] if "funding" in data else []
    panes += ["margin usage"] if "margin" in data else []
    liq = sum(sum(tr.get("liq", [])) for tr in data.get("trades", {}).values())
    help_text = ('<span class="ix-note">drag to pan, wheel to zoom (all panes follow); point at a trade '
                 f'marker for its details; panes: {", ".join(panes)}'
                 + (f"; {liq:,} liquidation{'s' if liq != 1 else ''} marked with red squares" if liq else "")
                 + '</span>')
    extra = ("funding" in data) + ("margin" in data)
    height = f' style="height:{760 + 150 * extra}px"' if extra else ""
    return (f'<div class="ix"><div class="ix-bar">{selector}{help_text}{note}</div>'
            f'<div id="nbtrade-legend"></div><div id="nbtrade-chart"{height}><div id="nbtrade-tooltip"></div></div></div>'
            f'<script type="application/json" id="nbtrade-data">{_json_for_script(data)}</script>'
            f'<script>/* lightweight-charts {LWC_VERSION}, Apache-2.0, TradingView, Inc. */\n{_library()}</script>'
            f'<script>{_app()}</script>')
