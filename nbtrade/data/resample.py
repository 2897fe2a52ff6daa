"""Higher timeframes from stored lower ones: first open, max high, min low, last close, sum volume.

Buckets follow the exchange grid of the target timeframe (:mod:`nbtrade.data._grid`:
epoch multiples, Monday weeks, calendar months), labelled by their open time,
closed on the left, as ``DataFrame.resample(rule, label="left", closed="left")``.
A bucket without any source candle is not produced (a gap stays a gap, nothing
is forward-filled). A bucket the source only partly covers at either end of the
range read (its first or last source candle missing because the read starts or
ends inside it, e.g. the hour still running) is left out: it would be a candle
that is not finished. Inside the range, a bucket with some source candles
missing (an exchange outage) is built from the candles there are and counted in
``partial``.

Mark-price candles (``mark_1m`` -> ``mark_1h``; the target may be named ``1h``) resample the
same way without a volume (first open, max high, min low, last close). Funding rows have no
grid and are refused here: the panel sums them per bar (:func:`nbtrade.data.panels.perp_fields`).

>>> resample_store(store, "binance", "BTC/USDT", "1m", "1h")     # doctest: +SKIP
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from . import _grid
from .layout import FUNDING, VALUE_COLUMNS, check_timeframe, is_mark, mark_timeframe


@dataclass
class ResampleResult:
    """What :func:`resample_store` did: target rows built and stored, buckets with missing source
    candles inside the range (``partial``), unfinished buckets left out at the ends (``dropped``)."""

    symbol: str
    source: str
    target: str
    rows: int = 0
    added: int = 0
    partial: int = 0
    dropped: int = 0


def _bucket(times: np.ndarray, timeframe: str) -> np.ndarray:
    """Open time of the target candle holding each source open time (vectorised ``floor_open``)."""
    if timeframe == "1M":
        return times.astype("datetime64[ms]").astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    step = check_timeframe(timeframe)
    off = _grid.WEEK_OFFSET_MS if timeframe == "1w" else 0
    return (times - off) // step * step + off


def _check_pair(source: str, target: str) -> None:
    src, dst = check_timeframe(source), check_timeframe(target)
    if source == "1M" or not src:
        raise ValueError(f"source timeframe {source!r} cannot be resampled (no fixed length)")
    if target == "1M":
        if 86_400_000 % src:
            raise ValueError(f"timeframe {source!r} does not divide a day, so not a month; pick a source such as 1d")
        return
    if dst <= src or dst % src:
        raise ValueError(f"target timeframe {target!r} must be a whole multiple of the source {source!r} "
                         f"(e.g. 1m -> 5m, 1h -> 1d)")
    off = _grid.WEEK_OFFSET_MS if target == "1w" else 0
    if off % src:
        raise ValueError(f"{target!r} candles open on Mondays, which is not on the {source!r} grid")


def resample_panel(time: np.ndarray, fields: Mapping[str, np.ndarray], source: str, target: str
                   ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Resample ``(n_bars, n_symbols)`` candle arrays on the ``source`` grid to ``target`` buckets.

    ``time`` holds int64 epoch-ms open times (sorted); ``fields`` any of open/high/low/close/
    volume (close required), NaN where a symbol has no candle. Per symbol and bucket: first
    open, max high, min low and last close of the candles there are (NaN ignored), summed volume;
    NaN when the bucket holds none of its candles.

    Returns ``(opens, arrays, n_candles, expected)``: each bucket's open time ``(k,)`` (one per
    bucket holding at least one source time), the target arrays ``(k, n_symbols)``, how many
    source candles each bucket holds per symbol (int64 ``(k, n_symbols)``) and how many it
    should hold (``(k,)``, source slots in the bucket). Nothing is dropped or flagged here.
    """
    _check_pair(source, target)
    t = np.asarray(time, dtype=np.int64)
    close = np.asarray(fields["close"], dtype=np.float64)
    n, m = close.shape
    if not n:
        return np.empty(0, np.int64), {f: np.empty((0, m)) for f in fields}, np.empty((0, m), np.int64), \
            np.empty(0, np.int64)
    b = _bucket(t, target)
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    opens = b[starts]
    nexts = np.array([_grid.next_open(int(x), target) for x in opens], dtype=np.int64) if target == "1M" \
        else opens + check_timeframe(target)
    expected = (nexts - opens) // check_timeframe(source)
    from ..kernels.panel import resample_ohlcv_nb

    unknown = [f for f in fields if f not in VALUE_COLUMNS]
    if unknown:
        raise ValueError(f"cannot resample field {unknown[0]!r}: candles aggregate open, high, low, close and volume")
    have_ohlc = all(f in fields for f in ("open", "high", "low"))
    if not have_ohlc and any(f in fields for f in ("open", "high", "low")):
        raise ValueError("resample needs open, high and low together (or the close alone)")
    none = np.empty((0, m))
    src = {f: np.ascontiguousarray(fields[f], dtype=np.float64) if f in fields and (f == "volume" or have_ohlc)
           else none for f in VALUE_COLUMNS}
    src["close"] = np.ascontiguousarray(close)
    k = opens.shape[0]
    out = {f: np.empty((k, m)) if src[f] is not none else none for f in VALUE_COLUMNS}
    n_candles = np.empty((k, m), dtype=np.int64)
    resample_ohlcv_nb(starts.astype(np.int64), src["open"], src["high"], src["low"], src["close"], src["volume"],
                      out["open"], out["high"], out["low"], out["close"], out["volume"], n_candles)
    out = {f: out[f] for f in fields}
    return opens, out, n_candles, expected


def _bare(source: str, target: str) -> tuple[str, str, bool]:
    """``(source, target, mark)`` with the mark prefix taken off (both or neither are mark keys)."""
    if source == FUNDING or target == FUNDING:
        raise ValueError("funding rows have no timeframe grid and are not resampled; Market.resample sums "
                         "them per higher bar (funding_rate) and keeps the exact events")
    if is_mark(source):
        return source[len("mark_"):], target[len("mark_"):] if is_mark(target) else target, True
    if is_mark(target):
        raise ValueError(f"target {target!r} is a mark-price key but source {source!r} is not: resample "
                         f"{mark_timeframe(source)!r} to it")
    return source, target, False


def resample(a: Mapping[str, np.ndarray], source: str, target: str) -> tuple[dict[str, np.ndarray], int, int]:
    """Resample candle arrays (``time`` ms + OHLCV, sorted, on the ``source`` grid).

    Mark-price candles (no ``volume``; ``source`` ``"mark_1m"`` or ``"1m"``) give OHLC without
    volume. Returns ``(arrays, partial, dropped)``: the target candles, how many were
    built from a bucket with source candles missing inside it, and how many
    unfinished buckets at the two ends were left out. One symbol of :func:`resample_panel`.
    """
    source, target, _ = _bare(source, target)
    _check_pair(source, target)
    names = tuple(c for c in VALUE_COLUMNS if c in a) if "volume" not in a else VALUE_COLUMNS
    t = np.asarray(a["time"], dtype=np.int64)
    empty = {c: np.empty(0, np.int64 if c == "time" else np.float64) for c in ("time",) + names}
    if not t.size:
        return empty, 0, 0
    opens, cols, have, expected = resample_panel(
        t, {c: np.asarray(a[c], dtype=np.float64)[:, None] for c in names}, source, target)
    have = have[:, 0]
    src = check_timeframe(source)
    last_open = _bucket(t[-1:], target)[0]
    last_next = _grid.next_open(int(last_open), target) if target == "1M" else last_open + check_timeframe(target)
    keep = np.ones(opens.size, dtype=bool)
    # unfinished buckets at the ends of what was read: the first must start at its bucket's open,
    # the last must reach its bucket's last source slot
    if t[0] != opens[0]:
        keep[0] = False
    if t[-1] != last_next - src:
        keep[-1] = False
    partial = int(((have < expected) & keep).sum())
    dropped = int((~keep).sum())
    out = {"time": opens, **{c: cols[c][:, 0] for c in names}}
    return {c: np.ascontiguousarray(v[keep]) for c, v in out.items()}, partial, dropped


def resample_store(store: Any, exchange: str, symbol: str, source: str, target: str, start: Any = None,
                   end: Any = None, *, write: bool = True, on_conflict: str | None = None
                   ) -> tuple[ResampleResult, dict[str, np.ndarray]]:
    """Build ``target`` candles from the stored ``source`` series (``[start, end)``) and, with
    ``write``, append them to the store as their own series. Returns the report and the arrays."""
    from .store import Store

    bare_src, bare_dst, mark = _bare(source, target)
    _check_pair(bare_src, bare_dst)
    if mark:
        target = mark_timeframe(bare_dst)  # mark candles are filed beside their own kind
    if not isinstance(store, Store):
        store = Store(store)
    a = store.read(exchange, symbol, source, start, end, as_arrays=True)
    out, partial, dropped = resample(a, source, target)
    res = ResampleResult(symbol, source, target, rows=int(out["time"].shape[0]), partial=partial, dropped=dropped)
    if write and res.rows:
        res.added = store.append(exchange, symbol, target, out, on_conflict=on_conflict).added
    return res, out


__all__ = ["resample", "resample_panel", "resample_store", "ResampleResult"]
