"""Backtests larger than memory: the signals engine run over time chunks read from the HDF5 store.

:func:`backtest_chunked` reads the candles of ``chunk_bars`` bars at a time (plus a warm-up of
``lookback`` bars for the signals), computes the chunk's signals with the user's ``signals_fn``, and
runs the signals kernel over the chunk with the engine's state (cash, positions, resting orders, stop
levels, waiting orders, counters) carried from one chunk to the next. Bar indices stay global: the
records hold the same ``idx`` as an in-memory run, and on data that fits the chunked run equals
:func:`nbtrade.backtest` on the whole panel bit for bit (same equity, cash, orders, trades, stats),
provided each signal at bar ``t`` depends only on the ``lookback`` bars before ``t`` and ``t`` itself.

How a chunk ``[a, b)`` is laid out for the kernel (rows of every bars x symbols array)::

    row 0            a sentinel row (finite prices, no signals; never a bar of the run)
    rows 1..E        the bars some column's waiting order was signalled on (carried; see below)
    row E + 1        bar a - 1 (its signals fill at bar a's open)
    rows ...         bars a .. b - 1 (the bars run)
    last row         bar b (so that bar b - 1 is not the run's last bar; not run)

The kernel indexes the local rows; between chunks the bar-index fields of the state (``entry_idx``,
``pend_bar``, ``wait``) are moved to and from local rows and the records each chunk appends get the
global bar back. A signal whose fill bar has no candle waits for the symbol's next candle and acts
there with its own bar's values: the row of that bar comes along with the next chunks until it acts.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ..kernels.records import ExitReason, Option, order_dt, trade_dt

__all__ = ["backtest_chunked"]

#: Per-bar order inputs ``signals_fn`` may return (by name, in a dict) besides the four signals.
LEVEL_KEYS = ("order_price", "limit_price", "sl_price", "tp_price", "entry_size", "ind_stop", "exit_size",
              "order_type")
SIGNAL_KEYS = ("entries", "exits", "short_entries", "short_exits")
#: Options of :func:`nbtrade.backtest` a chunked run refuses as options: per-bar arrays (they come from
#: ``signals_fn``, chunk by chunk; so do ``exit_size`` and ``order_type`` per bar).
PER_BAR_OPTIONS = LEVEL_KEYS[:6]


def backtest_chunked(store: Any, symbols: Sequence[str] | str, signals_fn: Callable, *, timeframe: str,
                     exchange: str | None = None, start: Any = None, end: Any = None, chunk_bars: int = 100_000,
                     lookback: int | None = None, client: Any = None, **options: Any) -> Any:
    """Backtest boolean signals on candles of the HDF5 store, reading ``chunk_bars`` bars at a time.

    Parameters
    ----------
    store : nbtrade.data.Store or path
        The store (or its root folder). With ``client`` every worker opens the same path: it must be
        on a filesystem the workers share.
    symbols : symbols of ``exchange`` stored at ``timeframe``
        Columns of the run, in this order (the cash-sharing order). Each must have a candle in
        ``[start, end)``.
    signals_fn : callable ``(market) -> (entries, exits)`` or ``(entries, exits, short_entries,
        short_exits)``, or a dict of those names and per-bar order inputs (``order_price``,
        ``limit_price``, ``sl_price``, ``tp_price``, ``entry_size``, ``ind_stop``, ``exit_size``,
        ``order_type``: each entry's own type, as :func:`nbtrade.backtest` takes it per bar)
        Called once per chunk on a :class:`nbtrade.Market` of the chunk's bars plus the ``lookback``
        bars before them (and one bar after: it must not look ahead); returns bars x symbols values
        of that market (DataFrames or arrays) like the sweep's signal functions.
    timeframe : str
        Series timeframe (``"1m"``); also the bar length for annualisation unless ``freq`` is given.
    exchange : str, optional
        Exchange file of the store; default: the store's only exchange.
    start, end : epoch ms, ISO string or Timestamp, optional
        Open-time range ``[start, end)``; default: everything stored.
    chunk_bars : int
        Bars run per chunk. Peak memory grows with it, not with the history: about 15 panels of
        ``chunk_bars * n_symbols * 8`` bytes (the fields read, the signals' intermediates, the kernel's
        inputs; measured with ``bench/bench_chunked.py``), plus the run's curves and records. At least
        ``lookback`` and 1.
    lookback : int
        Bars of history a signal needs before its own bar (e.g. ``slow - 1`` for a ``slow``-bar moving
        average): every chunk's signals are computed with that many bars of warm-up before it. Default:
        ``signals_fn.lookback`` when it declares one (bars, or an :class:`nbtrade.lookback.Lookback`,
        whose ``settle`` counts). Signals with unbounded memory (EMA seeded at the
        first bar) differ slightly from the in-memory run's unless the lookback covers their memory.
    client : dask.distributed.Client or scheduler address, optional
        With isolated cash (``cash_sharing=False``) the symbols are split across the cluster's
        workers, each running its symbols in chunks from the store path. Records then come in
        (bar, symbol) order, and equity and cash are the sums of the parts (equal to the one-process
        run up to float rounding of the sum).
    **options
        Options of :func:`nbtrade.backtest` (fees, stops, order_type, cash_sharing, ...). Refused
        (by name): per-bar arrays (``exit_size`` and ``order_type`` per bar included: return them from
        ``signals_fn``), an input given both here and by ``signals_fn``, and ``filters="exchange"``.
        Perpetuals (``instrument="perp"``): each chunk also reads the mark-price candles and funding
        events stored for its bars; funding is booked at its global bar (``Result.funding``).

    Returns
    -------
    Result
        As :func:`nbtrade.backtest`; its price panel (``marks``, ``stats()``'s buy & hold, the report)
        is read from the store on first use, the whole range at once.
    """
    from ..data.store import Store

    if not callable(signals_fn):
        raise TypeError(f"signals_fn must be a callable (market) -> (entries, exits, ...), got {signals_fn!r}")
    store = store if isinstance(store, Store) else Store(_path(store))
    symbols = _check_symbols(symbols)
    exchange = _exchange(store, exchange)
    chunk_bars, lookback = _check_sizes(chunk_bars, lookback, signals_fn)
    _check_options(options)
    if not isinstance(timeframe, str):
        raise TypeError(f"timeframe must be a string like '1m', got {timeframe!r}")
    if options.get("freq") is None:
        options["freq"] = timeframe
    if client is not None and options.get("cash_sharing", True) is not False:
        raise ValueError(f"client= splits the symbols across workers only with isolated cash "
                         f"(cash_sharing=False): shared cash ({options.get('cash_sharing', True)!r}) couples the "
                         f"symbols bar by bar")
    grid, last_rows = _scan(store, exchange, symbols, timeframe, start, end)
    plan = _Plan(str(store.root), exchange, list(symbols), timeframe, grid, chunk_bars, lookback, last_rows,
                 _any_perp(options.get("instrument", "spot")))
    gaps = _gaps(store, plan, options, start, end)
    if client is not None:
        return _run_distributed(client, plan, signals_fn, options, gaps)
    out = _run_plan(plan, signals_fn, options)
    return _result(plan, out, options, gaps)


# ------------------------------------------------------------------------------------------------
# checks

def _path(store: Any) -> str:
    if not isinstance(store, (str, os.PathLike)):
        raise TypeError(f"store must be an nbtrade.data.Store or the path of its folder, got {store!r}")
    path = os.path.expanduser(os.fspath(store))
    if not os.path.isdir(path):
        raise ValueError(f"store: no store folder at {path!r}")
    return path


def _check_symbols(symbols: Any) -> list:
    if isinstance(symbols, str):
        symbols = [symbols]
    symbols = list(symbols)
    if not symbols:
        raise ValueError("symbols: give at least one symbol")
    if len(set(symbols)) != len(symbols):
        dup = next(s for s in symbols if symbols.count(s) > 1)
        raise ValueError(f"symbols names {dup!r} twice")
    return symbols


def _exchange(store: Any, exchange: str | None) -> str:
    if exchange is not None:
        return exchange
    found = store.exchanges()
    if len(found) != 1:
        raise ValueError(f"exchange: the store holds {len(found)} exchanges ({', '.join(found) or 'none'}); "
                         f"name one (exchange=...)")
    return found[0]


def _check_sizes(chunk_bars: Any, lookback: Any, signals_fn: Callable) -> tuple[int, int]:
    if lookback is None:
        lookback = getattr(signals_fn, "lookback", None)
        if lookback is None:
            raise ValueError("lookback: give the bars of history the signals need before their own bar "
                             "(lookback=..., 0 for none), or declare it on signals_fn (signals_fn.lookback)")
    if hasattr(lookback, "settle"):  # an nbtrade.lookback.Lookback: the bars after which values no longer move
        lookback = lookback.settle
    if isinstance(lookback, bool) or not isinstance(lookback, (int, np.integer)) or lookback < 0:
        raise ValueError(f"lookback must be an int >= 0 (bars), got {lookback!r}")
    if isinstance(chunk_bars, bool) or not isinstance(chunk_bars, (int, np.integer)) or chunk_bars <= 0:
        raise ValueError(f"chunk_bars must be an int > 0 (bars per chunk), got {chunk_bars!r}")
    if chunk_bars < lookback:
        raise ValueError(f"chunk_bars ({chunk_bars}) must be at least lookback ({lookback}): each chunk reads "
                         f"its warm-up besides its own bars")
    return int(chunk_bars), int(lookback)


def _check_options(options: dict) -> None:
    from .options import MODE_OPTIONS

    unknown = [k for k in options if k not in MODE_OPTIONS["signals"]]
    if unknown:
        from .._names import check_kwargs

        check_kwargs("backtest_chunked", unknown, list(MODE_OPTIONS["signals"]) + [
            "store", "symbols", "signals_fn", "timeframe", "exchange", "start", "end", "chunk_bars", "lookback",
            "client"])
    per_bar = [k for k in PER_BAR_OPTIONS if options.get(k) is not None]
    if per_bar:
        raise ValueError(f"{', '.join(per_bar)}: per-bar inputs of a chunked run come from signals_fn, chunk by "
                         f"chunk (return a dict with {', '.join(map(repr, per_bar))} besides the signals)")
    if not isinstance(options.get("order_type", "market"), str):
        raise ValueError("order_type per bar: per-bar inputs of a chunked run come from signals_fn, chunk by chunk "
                         "(return a dict with 'order_type' besides the signals); as an option give one type "
                         "('market', 'limit', 'stop' or 'stop_limit')")
    xs = options.get("exit_size")
    if xs is not None and (isinstance(xs, pd.DataFrame) or np.ndim(xs) == 2):
        raise ValueError("exit_size per bar: per-bar inputs of a chunked run come from signals_fn, chunk by chunk "
                         "(return a dict with 'exit_size' besides the signals); as an option give one fraction, "
                         "or one per symbol")
    if isinstance(options.get("filters"), str):
        raise ValueError("filters='exchange' reads the filters from a market's metadata, which chunked runs do not "
                         "have: pass the filters table (nbtrade.fetch_filters_sync(exchange, symbols))")


def _any_perp(instrument: Any) -> bool:
    """Whether ``instrument`` (one kind or ``{symbol: kind}``) makes any symbol a perpetual (the run's
    configuration checks the names)."""
    if isinstance(instrument, str):
        return instrument == "perp"
    values = instrument.values() if isinstance(instrument, dict) else instrument  # a Series or sequence
    return any(isinstance(v, str) and v == "perp" for v in values)


# ------------------------------------------------------------------------------------------------
# plan and reads

class _Plan:
    """Where a chunked run reads (a picklable description: workers rebuild the store from ``root``)."""

    def __init__(self, root: str, exchange: str, symbols: list, timeframe: str, grid: np.ndarray,
                 chunk_bars: int, lookback: int, last_rows: np.ndarray, perp: bool = False):
        self.root, self.exchange, self.symbols, self.timeframe = root, exchange, symbols, timeframe
        self.grid, self.chunk_bars, self.lookback = grid, chunk_bars, lookback
        #: each symbol's last bar with a candle (where an open trade's END record ends)
        self.last_rows = last_rows
        #: perpetuals traded: chunks also read the mark-price candles and funding events stored
        self.perp = perp

    @property
    def n(self) -> int:
        return len(self.grid)

    def part(self, symbols: list) -> "_Plan":
        rows = self.last_rows[[self.symbols.index(s) for s in symbols]]
        return _Plan(self.root, self.exchange, symbols, self.timeframe, self.grid, self.chunk_bars, self.lookback,
                     rows, self.perp)

    def store(self) -> Any:
        from ..data.store import Store

        return Store(self.root)

    def read(self, lo: int, hi: int, store: Any = None) -> Any:
        """Bars ``[lo, hi)`` of the grid as a :class:`Market` (NaN where a symbol has no candle); only
        those rows are read from HDF5."""
        from ..panel import Market

        if self.perp:  # candles, mark candles and funding events of the bars (those stored)
            grid = self.grid[lo:hi]
            market = (store or self.store()).read_market(self.exchange, self.symbols, self.timeframe, int(grid[0]),
                                                         int(grid[-1]) + 1)
            if market.shape[0] != hi - lo:  # the union of the symbols' open times: the grid's rows
                raise RuntimeError(f"chunk read {market.shape[0]} bars, expected {hi - lo}")
            return market
        market = Market.from_arrays(self.grid[lo:hi], self.symbols, **self.arrays(lo, hi, store=store))
        market.meta["exchange"] = self.exchange
        return market

    def arrays(self, lo: int, hi: int, columns: Sequence[str] | None = None, store: Any = None) -> dict:
        """``{column: (hi - lo, n_symbols) float64}`` of bars ``[lo, hi)`` (NaN where a symbol has no candle)."""
        from ..data.layout import value_columns

        store = store or self.store()
        grid = self.grid[lo:hi]
        t0, t1 = int(grid[0]), int(grid[-1]) + 1
        cols = list(columns or value_columns(self.timeframe))
        parts = store.read_many(self.exchange, self.symbols, self.timeframe, t0, t1, cols, as_arrays=True)
        n, m = len(grid), len(self.symbols)
        out = {c: np.full((n, m), np.nan) for c in cols}
        for j, s in enumerate(self.symbols):
            p = parts[s]
            rows = slice(None) if len(p["time"]) == n else np.searchsorted(grid, p["time"])
            for c in cols:
                out[c][rows, j] = p[c]
            del parts[s]
        return out


def _scan(store: Any, exchange: str, symbols: list, timeframe: str, start: Any, end: Any
          ) -> tuple[np.ndarray, np.ndarray]:
    """The run's bars (the union of the symbols' open times, int64 ms) and each symbol's last bar; reads
    the time columns alone, one symbol at a time."""
    from ..data.store import NotFound

    grid, last = None, []
    for s in symbols:
        try:
            t = store.times(exchange, s, timeframe, start, end)
        except NotFound as e:
            raise ValueError(f"symbols: {s!r} has no {timeframe} series in the store for {exchange} ({e})") from None
        if len(t) == 0:
            raise ValueError(f"symbols: no candles for {s!r} in the requested range; widen start/end, fetch or "
                             f"import them first, or leave it out")
        grid = t if grid is None else (grid if np.array_equal(grid, t) else np.union1d(grid, t))
        last.append(t[-1])
    return grid, np.searchsorted(grid, last).astype(np.int64)


def _gaps(store: Any, plan: _Plan, options: dict, start: Any, end: Any) -> pd.DataFrame:
    """The run's gaps as ``Market.gaps`` finds them on the whole panel (from the open times alone, one
    symbol at a time)."""
    grid, symbols = plan.grid, plan.symbols
    from ..panel import gaps_table, missing_time_gaps
    from ..timeframes import ms_to_index
    from .options import resolve_freq_ms

    freq_ms = resolve_freq_ms(options["freq"], None)
    index = ms_to_index(grid)
    parts = missing_time_gaps(grid, index, freq_ms)
    for s in symbols:
        t = store.times(plan.exchange, s, plan.timeframe, start, end)
        if len(t) == len(grid):
            continue
        rows = np.searchsorted(grid, t)
        d = np.diff(rows)
        k = np.flatnonzero(d > 1)
        if len(k):
            syms = np.empty(len(k), dtype=object)
            syms[:] = [s] * len(k)
            parts.append(pd.DataFrame({"symbol": syms, "kind": "nan", "start": index[rows[k] + 1],
                                       "end": index[rows[k + 1] - 1], "bars": (d[k] - 1).astype(np.int64)}))
    gaps = gaps_table(parts)
    on_gap = options.get("on_gap", "warn")
    if on_gap in ("warn", "error", "skip"):
        from .run import report_gaps

        report_gaps(gaps, on_gap)
    return gaps


# ------------------------------------------------------------------------------------------------
# chunks

def _signal_inputs(out: Any, market: Any, skip: int) -> tuple[dict, dict]:
    """``signals_fn``'s output as (signals, per-bar levels) with the first ``skip`` rows dropped."""
    if isinstance(out, dict):
        bad = [k for k in out if k not in SIGNAL_KEYS + LEVEL_KEYS]
        if bad:
            raise ValueError(f"signals_fn returned unknown keys {bad}; expected some of "
                             f"{list(SIGNAL_KEYS + LEVEL_KEYS)}")
        items = dict(out)
    elif isinstance(out, (tuple, list)) and len(out) in (2, 4):
        items = dict(zip(SIGNAL_KEYS, out))
    else:
        raise TypeError("signals_fn must return (entries, exits), (entries, exits, short_entries, short_exits) or "
                        f"a dict of those and per-bar order inputs; got {type(out).__name__}")
    n = market.shape[0]
    sliced = {}
    for k, v in items.items():
        if v is None:
            continue
        if isinstance(v, (pd.DataFrame, pd.Series)):
            if len(v) != n:
                raise ValueError(f"signals_fn's {k} has {len(v)} rows, the market it was given {n}")
            v = v.iloc[skip:]
        else:
            v = np.asarray(v)
            if v.ndim == 0 or v.shape[0] != n:
                raise ValueError(f"signals_fn's {k} has shape {v.shape}, the market it was given {market.shape}")
            v = v[skip:]
        sliced[k] = v
    return ({k: v for k, v in sliced.items() if k in SIGNAL_KEYS},
            {k: v for k, v in sliced.items() if k in LEVEL_KEYS})


def _chunk_levels(level_in: dict, options: dict, market: Any) -> dict:
    """``signals_fn``'s per-bar order inputs of one chunk as :func:`nbtrade.backtest` takes them. Refused:
    one given both as an option and by ``signals_fn``. ``order_type`` per bar becomes its codes; a chunk
    without a stop-limit entry type drops ``limit_price`` (only stop-limit entries read it; the whole run's
    check that some entry is one is not made)."""
    from ..kernels.records import OrderType
    from .options import entry_type_codes

    both = [k for k in level_in if k in options]
    if both:
        raise ValueError(f"{', '.join(both)} given twice: as an option of backtest_chunked and by signals_fn; give "
                         f"{'it' if len(both) == 1 else 'them'} once")
    if "order_type" in level_in and not isinstance(level_in["order_type"], str):
        codes = entry_type_codes(level_in["order_type"], market)
        level_in = dict(level_in, order_type=codes)
        if level_in.get("limit_price") is not None and not (codes == OrderType.STOP_LIMIT).any():
            del level_in["limit_price"]
    return level_in


def _event_marks(market: Any, last_mark: np.ndarray, k: int) -> tuple[Any, np.ndarray]:
    """``market`` with the mark price of each funding event that has none, lies in a bar without a mark
    candle and has no valid mark close before it in the chunk set to ``last_mark`` (the column's last valid
    mark close before the chunk), as the in-memory run takes it from the whole history
    (:func:`nbtrade.engine.signals.perp_marks`); and the last valid mark closes before the chunk's row ``k``
    (the next chunk's first row). Without mark candles the price candles stand for them, as there."""
    from ..data.panels import FundingEvents, funding_schedule

    mo, mc = (market.array(f) for f in (("mark_open", "mark_close") if market.has_mark else ("open", "close")))
    if market.has_mark:  # a bar without a mark candle reads its price candle (nbtrade.margin.mark_or_price)
        gone = np.isnan(mo)
        mo, mc = np.where(gone, market.array("open"), mo), np.where(gone, market.array("close"), mc)
    seen = pd.DataFrame(mc).ffill().to_numpy()  # last valid mark close up to each row
    out = last_mark.copy()
    if k > 0:
        out = np.where(np.isnan(seen[k - 1]), last_mark, seen[k - 1])
    if "funding_events" not in market.meta.columns or not np.isfinite(last_mark).any():
        return market, out
    ev = funding_schedule(market)
    bar, col = ev["bar"], ev["symbol"]
    before = np.vstack([np.full((1, mc.shape[1]), np.nan), seen[:-1]])[bar, col]
    fix = np.isnan(ev["mark_price"]) & np.isnan(mo[bar, col]) & np.isnan(before) & np.isfinite(last_mark[col])
    if not fix.any():
        return market, out
    events = list(market.meta["funding_events"])
    for j in np.unique(col[fix]):
        e = events[j]
        mp = e.mark_price.copy()
        at = np.isin(e.time, ev["time"][fix & (col == j)])
        mp[at] = last_mark[j]
        events[j] = FundingEvents(e.time, e.rate, mp)
    meta = market.meta.copy()
    meta["funding_events"] = events
    market = market[0:market.shape[0]]  # a view of the chunk with its own metadata
    market.meta = meta
    return market, out


def _prepare(market: Any, cfg: Any, sig_in: dict) -> dict:
    """The kernel's inputs of one chunk: :func:`nbtrade.engine.signals.signals_inputs`, the preparation of
    :func:`nbtrade.backtest` (gaps are found once for the whole run, not per chunk). Exit fractions given per
    bar stay per bar in every chunk (a chunk whose exits all close whole positions still has its rows: an
    exit waiting for a candle may act in a later chunk with them); a fraction of 1 closes the whole position
    either way, so the records equal the in-memory run's."""
    from .signals import signals_inputs

    p = signals_inputs(market, cfg, **sig_in, run_data=False)
    partial, exit_frac, kcfg, levels = p.partial, p.exit_frac, p.kcfg, p.levels
    if cfg.exit_size_per_bar and exit_frac.shape[0] == 1:
        exit_frac = np.ones(market.shape)
        kcfg = kcfg._replace(partial=True)
        levels = levels._replace(exit_size=exit_frac)
    return dict(inputs=p.inputs, counts=p.counts, has_short=p.has_short, partial=p.partial, exit_frac=p.exit_frac,
                kcfg=kcfg, params=p.params, margin_on=p.margin_on, prices=p.prices, signals=p.signals,
                levels=levels, mark_note=p.mark_note)


#: Tuple fields (in order) of the kernel's per-bar inputs: prices, signals, levels (``extra``: size, stop_price).
def _per_bar(d: dict, n: int) -> list[tuple[str, int, np.ndarray]]:
    out = []
    for group in ("prices", "signals", "levels"):
        for k, arr in enumerate(d[group]):
            if group == "levels" and k == 6:  # marks: the mark candles are per bar (funding rows are sparse)
                if arr is not None:
                    for kk in (0, 1, 2):
                        if arr[kk].ndim == 2 and arr[kk].shape[0] == n and n > 1:
                            out.append(("marks", kk, arr[kk]))
                continue
            if group == "levels" and k == 5:  # extra: per-order arrays; the ROI table is not per bar
                if arr is not None:
                    for kk in (0, 1, 3):  # size, stop_price, entry_type (roi is a table)
                        a = arr[kk] if kk < len(arr) else None
                        if a is not None and a.ndim == 2 and a.shape[0] == n and n > 1:
                            out.append(("extra", kk, a))
                continue
            if isinstance(arr, np.ndarray) and arr.ndim == 2 and arr.shape[0] == n and n > 1:
                out.append((group, k, arr))
    return out


def _stack(d: dict, n: int, carry: dict | None) -> dict:
    """``d``'s per-bar arrays with the sentinel row and the carried rows before their rows."""
    new = {g: list(d[g]) for g in ("prices", "signals", "levels")}
    extra = list(d["levels"][5]) if d["levels"][5] is not None else None
    marks = list(d["levels"][6]) if d["levels"][6] is not None else None
    subs = {"extra": extra, "marks": marks}
    done: dict[int, np.ndarray] = {}  # one copy of an array passed twice (the close as order price...)
    for group, k, arr in _per_bar(d, n):
        key = (group, k)
        if id(arr) in done:
            stacked = done[id(arr)]
            (subs[group] if group in subs else new[group])[k] = stacked
            continue
        if arr.dtype == np.bool_:
            sentinel = np.zeros((1, arr.shape[1]), dtype=np.bool_)
        elif arr.dtype.kind == "i":  # entry types: < 0 is the run's type (no signal reads it)
            sentinel = np.full((1, arr.shape[1]), -1, dtype=arr.dtype)
        elif group == "prices":
            sentinel = np.ones((1, arr.shape[1]))
        else:
            sentinel = np.full((1, arr.shape[1]), np.nan)
        rows = [sentinel]
        if carry is not None and carry["rows"]:
            rows.append(carry["arrays"][key])
        rows.append(arr)
        stacked = done[id(arr)] = np.ascontiguousarray(np.concatenate(rows, axis=0))
        (subs[group] if group in subs else new[group])[k] = stacked
    out = dict(d)
    out.pop("inputs", None)  # the chunk's market: its arrays are copied above, let them go
    if extra is not None:
        new["levels"][5] = type(d["levels"][5])(*extra)
    if marks is not None:  # funding rows: bars to local rows (after the sentinel and the carried rows)
        shift = 1 + (len(carry["rows"]) if carry is not None else 0)
        marks[3] = marks[3] + shift
        new["levels"][6] = type(d["levels"][6])(*marks)
    for g in ("prices", "signals", "levels"):
        out[g] = type(d[g])(*new[g])
    return out


def _run_plan(plan: _Plan, signals_fn: Callable, options: dict) -> dict:
    """Run every chunk of ``plan`` in this process; the raw outputs for :func:`_result`."""
    from ..kernels.records import Books, counts_dt, new_state
    from .options import RunConfig
    from .run import grow
    from ..margin import n_mark_fallbacks
    from .signals import signals_kernels

    store = plan.store()
    n, m, lb = plan.n, len(plan.symbols), plan.lookback
    cash, equity = np.empty(n), np.empty(n)
    state = acct = None
    counts = np.zeros(1, dtype=counts_dt)
    order_parts, trade_parts, funding_parts = [], [], []
    last_mark = np.full(m, np.nan)  # each column's last valid mark close before the chunk (perpetuals)
    carry = None  # {"rows": [global bars], "arrays": {key: rows}}
    n_orders = n_trades = 0
    cfg = d = tail = None
    for a in range(0, n, plan.chunk_bars):
        b = min(n, a + plan.chunk_bars)
        last = b == n
        lo, hi = max(0, a - 1 - lb), min(n, b + 1)
        r0 = max(0, a - 1)
        d = warm = market = sig_in = level_in = cfg = None  # the previous chunk's arrays go before the next read
        warm = plan.read(lo, hi, store=store)
        sig_in, level_in = _signal_inputs(signals_fn(warm), warm, r0 - lo)
        market = warm[r0 - lo:] if r0 > lo else warm
        level_in = _chunk_levels(level_in, options, market)
        if plan.perp:
            market, last_mark = _event_marks(market, last_mark, b - 1 - r0)
        cfg = RunConfig.build(market, "signals", **options, **level_in)
        own = 0  # the chunk's own bars checked on the price candle (no mark candle), not its warm-up's
        if plan.perp and market.has_mark:
            rows = slice(a - r0, b - r0)
            own = n_mark_fallbacks(cfg.margin.is_perp(), market.array("mark_open")[rows], market.array("close")[rows])
        d = _prepare(market, cfg, sig_in)
        del warm, market, sig_in, level_in
        n_run = hi - r0
        if n_run < 2:
            raise ValueError("a chunked run needs at least 2 bars")
        if state is None:
            state = new_state(cfg.groups)
            acct = np.full(cfg.n_groups, cfg.init_cash)
        d = _stack(d, n_run, carry)
        vcfg, run_bars, finish = signals_kernels(d["kcfg"], d["params"])  # the variant one call would compile
        if tail is None or (d["partial"] and not tail["partial"]):  # exits closing parts somewhere: say so
            tail = dict(exit_frac=d["exit_frac"], partial=d["partial"], margin_on=d["margin_on"],
                        mark_note=tail["mark_note"] if tail else None)
        if d["mark_note"] is not None:
            tail["mark_note"] = d["mark_note"]._replace(n_fallback=own).merge(tail["mark_note"])
        n_carry = len(carry["rows"]) if carry is not None else 0
        rowmap = np.concatenate([[-1], carry["rows"] if n_carry else np.zeros(0, np.int64),
                                 np.arange(r0, hi)]).astype(np.int64)
        start = 1 + n_carry + (a - r0)
        stop = start + (b - a)
        offset = a - start
        n_local = len(rowmap)
        # state to local rows
        state["entry_idx"] -= offset
        state["pend_bar"] -= offset
        w = state["wait"]
        waiting = w >= 0
        if waiting.any():
            local = {int(g): k for k, g in enumerate(rowmap) if k > 0}
            state["wait"][waiting] = [local[int(g)] for g in w[waiting]]
        m_est = _buffer(d, cfg, m, n_run)
        orders = np.empty(m_est[0], dtype=order_dt)
        trades = np.empty(m_est[1], dtype=trade_dt)
        counts[0]["orders"] = 0
        counts[0]["trades"] = 0
        cash_l, eq_l = np.empty(n_local), np.empty(n_local)
        i = start
        while True:
            i = run_bars(d["prices"], d["signals"], d["levels"], vcfg, d["params"], i, stop,
                                   Books(state, acct, counts, orders, trades), cash_l, eq_l)
            if i >= stop:
                break
            orders, trades = grow(orders, trades, counts, m)
        if last:
            books = Books(state, acct, counts, orders, trades)
            finish(d["prices"], vcfg, d["params"], books, cash_l, eq_l)
        cash[a:b] = cash_l[start:stop]
        equity[a:b] = eq_l[start:stop]
        k_o, k_t = int(counts[0]["orders"]), int(counts[0]["trades"])
        o, t = orders[:k_o].copy(), trades[:k_t].copy()
        o["id"] += n_orders
        o["idx"] += offset
        t["id"] += n_trades
        t["entry_idx"] += offset
        t["exit_idx"] += offset
        if last:  # an open trade ends at its symbol's last candle, maybe in an earlier chunk (the kernel
            # looks for it in the chunk's rows: the sentinel row stops it there)
            end = t["exit_reason"] == ExitReason.END
            t["exit_idx"][end] = plan.last_rows[t["col"][end]]
        order_parts.append(o)
        trade_parts.append(t)
        marks = d["levels"].marks
        if marks is not None:  # funding booked at the bars run (rows of other bars are not run here)
            g = rowmap[marks.f_bar]
            run = (g >= a) & (g < b)
            funding_parts.append((g[run], marks.flows[run]))
        n_orders += k_o
        n_trades += k_t
        # state back to global bars
        state["entry_idx"] += offset
        state["pend_bar"] += offset
        w = state["wait"]
        waiting = w >= 0
        if waiting.any():
            state["wait"][waiting] = rowmap[w[waiting]]
        carry = None if last else _carry(d, n_run, n_carry, rowmap, state, b)
    orders = np.concatenate(order_parts)
    trades = np.concatenate(trade_parts)
    counts[0]["orders"], counts[0]["trades"] = n_orders, n_trades
    funding = None
    if funding_parts:  # sparse rows of the bars holding funding, as the in-memory run's Result keeps them
        funding = (np.concatenate([f[0] for f in funding_parts]).astype(np.int64),
                   np.concatenate([f[1] for f in funding_parts]).reshape(-1, m))
    return dict(orders=orders, trades=trades, cash=cash, equity=equity, counts=counts, cfg=cfg, funding=funding,
                **tail)


def _buffer(d: dict, cfg: Any, m: int, n_run: int) -> tuple[int, int]:
    c = d["counts"]
    n_entry = c["entries"] + c["short_entries"]
    n_exit = c["exits"] + c["short_exits"]
    per_entry = (2 if cfg.order_type == "market" else 4) + (1 if cfg.has_stops else 0)
    return per_entry * n_entry + n_exit + 8 * m + 16, n_entry + (n_exit if d["partial"] else 0) + 6 * m + 16


def _carry(d: dict, n_run: int, n_carry: int, rowmap: np.ndarray, state: np.ndarray, b: int) -> dict:
    """The rows the next chunk needs besides its own: bars some column's waiting order was signalled on
    (before the next chunk's first row, bar ``b - 1``)."""
    w = state["wait"]
    bars = np.unique(w[(w >= 0) & (w < b - 1)])
    if not len(bars):
        return {"rows": [], "arrays": {}}
    where = {int(g): k for k, g in enumerate(rowmap) if k > 0}
    local = np.array([where[int(g)] for g in bars], dtype=np.int64)
    arrays = {}
    full = len(rowmap)
    for group, k, arr in _per_bar_local(d, full):
        arrays[(group, k)] = arr[local]
    return {"rows": bars.astype(np.int64), "arrays": arrays}


def _per_bar_local(d: dict, n_local: int) -> list:
    return _per_bar(d, n_local)


# ------------------------------------------------------------------------------------------------
# result

class _StoreInputs:
    """The run's price panel for :class:`nbtrade.Result`, read from the store on first use."""

    def __init__(self, plan: _Plan):
        from ..timeframes import ms_to_index

        self._plan = plan
        self._fields: dict = {}
        self.index = ms_to_index(plan.grid)
        self.symbols = list(plan.symbols)
        self.shape = (plan.n, len(plan.symbols))

    def _field(self, name: str) -> np.ndarray | None:
        from ..data.layout import value_columns

        if name not in value_columns(self._plan.timeframe):
            return None
        if name not in self._fields:
            self._fields[name] = self._plan.arrays(0, self._plan.n, [name])[name]
        return self._fields[name]

    open = property(lambda self: self._field("open"))
    high = property(lambda self: self._field("high"))
    low = property(lambda self: self._field("low"))
    close = property(lambda self: self._field("close"))
    volume = property(lambda self: self._field("volume"))


def _merged_notes(results: list) -> Any:
    """The mark note of parts run apart (``signals.MarkNote``: fallback bars summed), or None."""
    note = None
    for _, out in results:
        if out.get("mark_note") is not None:
            note = out["mark_note"].merge(note)
    return note


def _result(plan: _Plan, out: dict, options: dict, gaps: pd.DataFrame) -> Any:
    from ..result import Result
    from .run import warn_rejected
    from .signals import margin_assumption

    cfg, counts = out["cfg"], out["counts"]
    k = counts[0]
    assumptions = cfg.assumptions(gaps=len(gaps), delayed=int(k["delayed"]),
                                  exit_frac=out["exit_frac"] if out["partial"] else None, no_candles=[])
    if out.get("mark_note") is not None:
        assumptions["mark"] = str(out["mark_note"])
    margin_assumption(assumptions, out["margin_on"], cfg.margin)
    assumptions["chunks"] = (f"run in chunks of {plan.chunk_bars} bars read from the store, signals with a "
                             f"warm-up of {plan.lookback} bars")
    res = Result(inputs=_StoreInputs(plan), orders=out["orders"], trades=out["trades"], cash=out["cash"],
                 equity=out["equity"], init_cash=cfg.init_cash * cfg.n_groups, freq_ms=cfg.freq_ms, gaps=gaps,
                 assumptions=assumptions, symbol_init_cash=None if cfg.n_groups == 1 else cfg.init_cash)
    res.funding_rows = out.get("funding")
    warn_rejected(res.order_records, k["rejected"], cfg.size_type, market_only=cfg.order_type == "market")
    return res


# ------------------------------------------------------------------------------------------------
# Dask: symbols split across workers (isolated cash)

def _run_part(plan: _Plan, signals_fn: Callable, options: dict) -> dict:
    """One worker's symbols run in chunks (a task)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rejections and gaps are reported once, by the caller
        out = _run_plan(plan, signals_fn, options)
    del out["cfg"]  # a RunConfig holds mapping proxies (not picklable); the caller builds its own
    return out


def _run_distributed(client: Any, plan: _Plan, signals_fn: Callable, options: dict, gaps: pd.DataFrame) -> Any:
    from ..sweep.distributed import _import_distributed, resolve_client

    client, opened = resolve_client(client)
    distributed = _import_distributed()
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        m = len(plan.symbols)
        k = min(m, n_workers)
        bounds = [round(i * m / k) for i in range(k + 1)]
        parts = [list(range(bounds[i], bounds[i + 1])) for i in range(k)]
        opts = {key: v for key, v in options.items()}
        futures = {client.submit(_run_part, plan.part([plan.symbols[j] for j in cols]), signals_fn,
                                 _part_options(opts, plan.symbols, cols), pure=False): cols for cols in parts}
        results = []
        for fut in distributed.as_completed(list(futures), loop=client.loop):
            results.append((futures[fut], fut.result()))
            fut.release()
    finally:
        if opened:
            client.close()
    return _result(plan, _merge(plan, results, options), options, gaps)


def _part_options(options: dict, symbols: list, cols: list) -> dict:
    """``options`` for a subset of the symbols: per-symbol dicts keep their keys of the subset."""
    names = [symbols[j] for j in cols]
    out = {}
    for k, v in options.items():
        if isinstance(v, dict) and k not in ("min_roi",) and set(v) <= set(symbols):
            v = {s: x for s, x in v.items() if s in names}
        elif isinstance(v, (list, tuple, np.ndarray, pd.Series)) and k not in ("min_roi",) and np.ndim(v) == 1 \
                and len(v) == len(symbols):
            v = v[list(cols)] if isinstance(v, np.ndarray) else (
                v.iloc[list(cols)] if isinstance(v, pd.Series) else type(v)(v[j] for j in cols))
        out[k] = v
    return out


def _merge(plan: _Plan, results: list, options: dict) -> dict:
    """The parts' outputs as one run's: columns back to the run's, records in (bar, symbol) order."""
    from .options import RunConfig

    results.sort(key=lambda r: r[0][0])
    cash = np.zeros(plan.n)
    equity = np.zeros(plan.n)
    orders, trades = [], []
    counts = None
    for cols, out in results:
        cash += out["cash"]
        equity += out["equity"]
        cmap = np.asarray(cols, dtype=np.int64)
        o, t = out["orders"].copy(), out["trades"].copy()
        o["col"] = cmap[o["col"]]
        t["col"] = cmap[t["col"]]
        orders.append(o)
        trades.append(t)
        c = out["counts"]
        if counts is None:
            counts = c.copy()
        else:
            for f in ("orders", "trades", "delayed", "waiting", "rejected"):
                counts[f] += c[f]
    o = np.concatenate(orders)
    o = o[np.lexsort((o["col"], o["idx"]))]
    o["id"] = np.arange(len(o))
    t = np.concatenate(trades)
    t = t[np.lexsort((t["col"], t["exit_idx"]))]
    t["id"] = np.arange(len(t))
    funding = None
    parts = [(np.asarray(cols, dtype=np.int64), out["funding"]) for cols, out in results
             if out.get("funding") is not None]
    if parts:  # the parts' sparse funding rows on the union of their bars
        bars = np.unique(np.concatenate([f[0] for _, f in parts]))
        flows = np.zeros((len(bars), len(plan.symbols)))
        for cmap, (fb, fl) in parts:
            flows[np.ix_(np.searchsorted(bars, fb), cmap)] = fl
        funding = (bars, flows)
    # the whole run's configuration (its assumptions), built on one bar of every symbol
    cfg = RunConfig.build(plan.read(0, min(plan.n, 2)), "signals", **options)
    first = results[0][1]
    return dict(orders=o, trades=t, cash=cash, equity=equity, counts=counts, cfg=cfg, exit_frac=first["exit_frac"],
                partial=first["partial"], margin_on=first["margin_on"], mark_note=_merged_notes(results),
                funding=funding)
