"""The market panel: candles of many symbols as bars x symbols arrays on one UTC time index.

:class:`Market` is built once from whatever produces candles (a dict of DataFrames, one
DataFrame, a ``(field, symbol)`` or ``(symbol, field)`` MultiIndex frame, a dict of fields,
close prices alone, or raw arrays through :meth:`Market.from_arrays` for the store, fetch
and CSV layers), validated once and consumed by every engine mode, the features and the
checks. Conventions:

* time runs along axis 0: ``(n_bars, n_symbols)`` float64 arrays, C-contiguous (the
  engine's bar loop reads one row per bar);
* the index is a UTC ``DatetimeIndex`` (a tz-naive input means UTC; every time zone and
  resolution is converted, so the same instant is the same bar), or a plain integer index
  for array input; ``time_ms`` holds the same instants as int64 epoch milliseconds;
* a bar has a candle when its close is a number; NaN marks a bar without one (not listed
  yet, delisted, an outage). Nothing is forward-filled;
* fields are converted lazily, one at a time, the first time something reads them, and
  validated then (close: finite and > 0; the four prices together: every candle complete
  and ``low <= open, close <= high``): a run that reads only closes never pays for the rest;
* time slices (``m["2024-01-02":]``, ``m[100:]``) are views; selecting symbols
  (``m[["BTC", "ETH"]]``) copies.

This module imports the check kernels and pandas only: no engine, features, model or report code.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ._arrays import _writeable

FIELDS = ("open", "high", "low", "close", "volume")
PRICES = ("open", "high", "low", "close")
#: Perpetual-futures fields (see nbtrade.data.panels.perp_fields): mark-price candles and funding.
PERP_MARK_FIELDS = ("mark_open", "mark_high", "mark_low", "mark_close")
PERP_FUNDING_FIELDS = ("funding_rate", "funding_time")
#: Per-symbol metadata columns, filled by later layers (exchange filters, margin tiers).
META_COLUMNS = ("kind", "exchange", "tick_size", "lot_size", "min_notional")
#: Exchange filter columns of ``Market.with_filters`` (``nbtrade.fetch_filters``' table).
FILTER_COLUMNS = ("tick_size", "step_size", "min_qty", "max_qty", "min_notional")
#: Price arrays of at least this many values are checked in parallel blocks.
PARALLEL_CHECK = 1 << 20
#: Bool frames of at least this many values are transposed to bars x symbols by a kernel (numpy's copy below).
_BYTE_TRANSPOSE = 1 << 18

_SIGNAL_HINT = ("; to turn a -1/0/1 position signal into signals use entries = sig == 1, exits = sig != 1 "
                "(and short_entries = sig == -1, short_exits = sig != -1)")


class Market:
    """Candles of one or many symbols as ``(n_bars, n_symbols)`` float64 arrays on one time index.

    Parameters
    ----------
    data
        ``{symbol: DataFrame}`` with open/high/low/close (any case; volume and other numeric
        columns optional), one such DataFrame (one symbol, named ``symbol``), a DataFrame with
        ``(field, symbol)`` or ``(symbol, field)`` MultiIndex columns, a dict of fields
        ``{"open": ..., "close": ...}`` of ``(n_bars, n_symbols)`` frames or arrays, close prices
        alone (Series, DataFrame of symbols, array: open = high = low = close), or a Market.
        Frames are joined on the union of their timestamps (a symbol's missing bars are NaN).
    symbol : str
        Name of the symbol of a single DataFrame or Series without a name (``"asset"``).
    copy : bool
        Keep private copies of arrays given as numpy arrays (default), so later writes by the
        caller cannot change the market. Frames are always converted into new arrays.

    Attributes
    ----------
    index : DatetimeIndex (UTC) or integer Index
    time_ms : int64 ndarray or None
        Bar open times in epoch milliseconds (None for an integer index).
    symbols : list
    meta : DataFrame
        One row per symbol (``kind``, ``exchange``, filters...: empty until a layer fills them).

    Examples
    --------
    >>> import nbtrade
    >>> m = nbtrade.Market(nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-02", "1h"))
    >>> m.shape, m.timeframe
    ((24, 2), '1h')
    >>> fast = nbtrade.indicators.sma(m.close, 5)     # a DataFrame, bars x symbols
    """

    def __init__(self, data: Any, *, symbol: Any = "asset", copy: bool = True):
        if isinstance(data, Market):
            self.__dict__.update(data.__dict__)
            self._arrays = dict(data._arrays)
            self._cache = dict(data._cache)
            self._checked = set(data._checked)
            return
        index, symbols, sources, close_only = _parse(data, symbol, copy)
        self._init(index, symbols, sources, close_only, copy)

    # ---------------------------------------------------------------- construction
    def _init(self, index: pd.Index, symbols: list, sources: dict[str, Any], close_only: bool,
              copy: bool = True, meta: pd.DataFrame | None = None) -> None:
        n, m = len(index), len(symbols)
        if n == 0 or m == 0:
            raise ValueError(f"data is empty ({n} bars x {m} symbols)")
        if len(set(symbols)) != m:
            dup = next(s for s in symbols if symbols.count(s) > 1)
            raise ValueError(f"data names symbol {dup!r} twice")
        self.index = index
        self.symbols = list(symbols)
        self._sources = sources  # field -> _Columns | ndarray (not converted yet)
        self._arrays: dict[str, np.ndarray] = {}
        self._cache: dict[Any, Any] = {}
        self._checked: set[str] = set()  # "close", "ohlc"
        self.close_only = close_only
        self.frozen = copy
        self.meta = meta if meta is not None else pd.DataFrame(
            {c: pd.Series([None] * m, dtype=object) for c in META_COLUMNS}).set_axis(pd.Index(symbols, name="symbol"))

    @classmethod
    def from_arrays(cls, time_ms: Any, symbols: Sequence, *, open: Any = None, high: Any = None,  # noqa: A002
                    low: Any = None, close: Any = None, volume: Any = None, copy: bool = False,
                    **extra: Any) -> "Market":
        """A market from int64 epoch-ms open times ``(n_bars,)`` and ``(n_bars, n_symbols)`` arrays
        (``(n_bars,)`` for one symbol). ``close`` is required; open/high/low come together or not
        at all (close only); ``extra`` fields (funding, mark price...) are kept as they are.
        Arrays are used as given (``copy=False``) when already C-contiguous float64."""
        t = np.asarray(time_ms)
        if t.ndim != 1 or t.dtype.kind not in "iu":
            raise TypeError(f"time_ms must be a 1-D integer array of epoch milliseconds, got {t.dtype} {t.shape}")
        from .timeframes import ms_to_index

        index = ms_to_index(t)
        _check_sorted(index, "time_ms")
        if close is None:
            raise ValueError("from_arrays needs close prices (close=...)")
        given = {"open": open, "high": high, "low": low}
        have = [f for f, v in given.items() if v is not None]
        if have and len(have) != 3:
            raise ValueError(f"from_arrays got {', '.join(have)} but not "
                             f"{', '.join(f for f in given if f not in have)}: give all of open/high/low or none")
        fields = {"close": close, **{f: v for f, v in given.items() if v is not None}}
        if volume is not None:
            fields["volume"] = volume
        fields.update(extra)
        sources = {}
        for f, v in fields.items():
            arr = _float_2d(v, f"{f}")
            if arr.shape != (len(index), len(symbols)):
                raise ValueError(f"{f} has shape {arr.shape} but time_ms and symbols make {(len(index), len(symbols))}")
            sources[f] = arr.copy() if copy else arr
        out = cls.__new__(cls)
        out._init(index, list(symbols), sources, close_only=not have, copy=copy)
        return out

    # ---------------------------------------------------------------- shape and time
    @property
    def shape(self) -> tuple[int, int]:
        return len(self.index), len(self.symbols)

    @property
    def time_ms(self) -> np.ndarray | None:
        if "time_ms" not in self._cache:
            from .timeframes import index_to_ms

            self._cache["time_ms"] = index_to_ms(self.index) if isinstance(self.index, pd.DatetimeIndex) else None
        return self._cache["time_ms"]

    @property
    def freq_ms(self) -> float | None:
        """Bar length in ms: the median step between timestamps (None for an integer index)."""
        if "freq_ms" not in self._cache:
            t = self.time_ms
            self._cache["freq_ms"] = float(np.median(np.diff(t))) if t is not None and len(t) > 1 else None
        return self._cache["freq_ms"]

    @property
    def timeframe(self) -> str | None:
        """The bar length as a timeframe string (``"1m"``, ``"1h"``...), a pandas offset for others."""
        if "timeframe" in self._cache:  # set by resample (calendar months have no fixed length)
            return self._cache["timeframe"]
        f = self.freq_ms
        if f is None:
            return None
        from .timeframes import TIMEFRAME_MS

        for name, ms in TIMEFRAME_MS.items():
            if ms == f:
                return name
        return pd.tseries.frequencies.to_offset(pd.Timedelta(milliseconds=f)).freqstr

    @property
    def fields(self) -> tuple[str, ...]:
        """Fields this market holds (open/high/low stand for the close on close-only data)."""
        names = list(self._sources) + [f for f in self._arrays if f not in self._sources]
        if self.close_only:
            names += ["open", "high", "low"]
        return tuple(f for f in FIELDS if f in names) + tuple(f for f in names if f not in FIELDS)

    def has(self, field: str) -> bool:
        return field in self.fields

    # ---------------------------------------------------------------- fields
    def array(self, field: str) -> np.ndarray:
        """Field ``field`` as a C-contiguous ``(n_bars, n_symbols)`` float64 array (converted and
        validated on first use). Do not write into it: it is shared by every run."""
        arr = self._arrays.get(field)
        if arr is not None:
            return arr
        if self.close_only and field in ("open", "high", "low"):
            return self.array("close")
        if field in ("open", "high", "low"):
            self._convert_ohlc()
            return self._arrays[field]
        if field not in self._sources:
            hint = " (give OHLCV frames with a 'volume' column)" if field == "volume" else ""
            raise AttributeError(f"the market has no field {field!r}{hint}; fields: {', '.join(self.fields)}")
        scan: list = [] if field == "close" else None  # the close is scanned while it is converted
        arr = _convert(self._sources[field], self.shape, field, scan)
        self._arrays[field] = arr
        if field == "close":
            self._check("close", scan[0] if scan else None)
        return arr

    def validate(self) -> "Market":
        """Convert and check every price field now (instead of on first use); returns the market."""
        self.array("close")
        if not self.close_only:
            self._convert_ohlc()
        return self

    def prices(self, ohlc: bool = True, volume: bool = False) -> "Prices":
        """The arrays one run reads: the close, and open/high/low when ``ohlc`` (else the close stands
        in for them, as for close-only data: for runs that never read them), volume when asked."""
        c = self.array("close")
        o, h, l = (self.array(f) for f in ("open", "high", "low")) if ohlc else (c, c, c)
        v = self.array("volume") if volume and self.has("volume") else None
        return Prices(self, o, h, l, c, v)

    def frame(self, field: str) -> pd.DataFrame:
        """Field ``field`` as a DataFrame (bars x symbols) viewing the array."""
        return pd.DataFrame(self.array(field), index=self.index, columns=self.symbols, copy=False)

    @property
    def open(self) -> pd.DataFrame:
        return self.frame("open")

    @property
    def high(self) -> pd.DataFrame:
        return self.frame("high")

    @property
    def low(self) -> pd.DataFrame:
        return self.frame("low")

    @property
    def close(self) -> pd.DataFrame:
        return self.frame("close")

    @property
    def volume(self) -> pd.DataFrame:
        return self.frame("volume")

    def _convert_ohlc(self) -> None:
        for f in ("open", "high", "low", "close"):
            if f not in self._arrays:
                self._arrays[f] = _convert(self._sources[f], self.shape, f)
        self._check("ohlc")

    def _check(self, what: str, scan: tuple | None = None) -> None:
        if what in self._checked:
            return
        from .kernels.input_checks import INCONSISTENT, NOT_FINITE, NOT_POSITIVE

        c = self._arrays["close"]
        o, h, l = (c, c, c) if what == "close" else (self._arrays[f] for f in ("open", "high", "low"))
        code, t, j, field, n_missing, n_partial = scan if scan is not None else check_prices(o, h, l, c)
        at = f"at {self.index[t]} ({self.symbols[j]})" if t >= 0 else ""
        if code == NOT_FINITE:
            raise ValueError(f"data prices contain inf {at}: mark a bar without a candle with NaN")
        if code == NOT_POSITIVE:
            f = PRICES[field]
            raise ValueError(f"data {f} prices must be > 0; got {(o, h, l, c)[field][t, j]} {at}. Prices are in "
                             f"quote currency: drop the bar or set its prices to NaN (no candle)")
        if code == INCONSISTENT:
            raise ValueError(f"data has an inconsistent candle {at}: need low <= open, close <= high "
                             f"(got open {o[t, j]}, high {h[t, j]}, low {l[t, j]}, close {c[t, j]})")
        if n_partial:
            part = np.isnan(o) | np.isnan(h) | np.isnan(l) | np.isnan(c)
            part &= ~(np.isnan(o) & np.isnan(h) & np.isnan(l) & np.isnan(c))
            t, j = np.argwhere(part)[0]
            raise ValueError(f"data has {n_partial} partial candle(s) (some prices NaN, others not); first at "
                             f"{self.index[t]} ({self.symbols[j]}): a bar has all four prices or none. Set all "
                             f"four to NaN to mark a bar without a candle, or fix the missing price")
        self._checked.add(what)
        if what == "ohlc":
            self._checked.add("close")
        if "n_missing" not in self._cache and what == "close":
            self._cache["n_missing"] = int(n_missing)

    # ---------------------------------------------------------------- candles and gaps
    @property
    def missing(self) -> np.ndarray:
        """Bars without a candle: ``(n_bars, n_symbols)`` bool, True where the close is NaN."""
        if "missing" not in self._cache:
            self._cache["missing"] = np.isnan(self.array("close"))
        return self._cache["missing"]

    @property
    def n_missing(self) -> int:
        """How many bar-steps have no candle."""
        if "n_missing" not in self._cache:
            self.array("close")
            if "n_missing" not in self._cache:
                self._cache["n_missing"] = int(np.count_nonzero(self.missing))
        return self._cache["n_missing"]

    def gaps(self, freq_ms: float | None = None) -> pd.DataFrame:
        """Gaps: missing timestamps (``kind="missing_time"``, all symbols) and NaN runs inside a
        symbol's history (``kind="nan"``; bars before its first or after its last candle are not
        gaps). Columns ``symbol, kind, start, end, bars``; computed once per ``freq_ms``."""
        freq_ms = self.freq_ms if freq_ms is None else freq_ms
        key = ("gaps", freq_ms)
        if key not in self._cache:
            self._cache[key] = _find_gaps(self, freq_ms)
        return self._cache[key]

    # ---------------------------------------------------------------- selection
    def __getitem__(self, key: Any) -> "Market":
        """``m[a:b]``: bars by position or time (a view); ``m["BTC"]``, ``m[["BTC", "ETH"]]``: symbols."""
        if isinstance(key, slice):
            return self._time_slice(key)
        names = [key] if not isinstance(key, (list, tuple, pd.Index, np.ndarray)) else list(key)
        cols = []
        for s in names:
            if s not in self.symbols:
                raise KeyError(f"unknown symbol {s!r}; the market has {self.symbols}")
            cols.append(self.symbols.index(s))
        return self._take(cols)

    def _time_slice(self, key: slice) -> "Market":
        if key.step not in (None, 1):
            raise ValueError("a time slice takes no step (resample the data instead)")
        ints = all(v is None or isinstance(v, (int, np.integer)) for v in (key.start, key.stop))
        if ints and isinstance(self.index, (pd.DatetimeIndex, pd.RangeIndex)):
            lo, hi, _ = key.indices(len(self.index))
        else:
            lo, hi = self.index.slice_locs(_utc(key.start), _utc(key.stop))
        if hi <= lo:
            raise ValueError(f"the slice {key} selects no bar")
        out = Market.__new__(Market)
        sources = {f: _slice_source(s, lo, hi, self.shape, f) for f, s in self._sources.items()}
        out._init(self.index[lo:hi], self.symbols, sources, self.close_only, self.frozen, self.meta)
        out._arrays = {f: a[lo:hi] for f, a in self._arrays.items()}
        out._checked = set(self._checked)
        return out

    def _take(self, cols: list[int]) -> "Market":
        out = Market.__new__(Market)
        sources = {f: _take_source(s, cols) for f, s in self._sources.items()}
        out._init(self.index, [self.symbols[j] for j in cols], sources, self.close_only, self.frozen,
                  self.meta.iloc[cols])
        out._arrays = {f: np.ascontiguousarray(a[:, cols]) for f, a in self._arrays.items()}
        out._checked = set(self._checked)
        return out

    # ---------------------------------------------------------------- higher timeframes
    def resample(self, timeframe: str, *, incomplete: str = "nan") -> "Market":
        """The candles on ``timeframe`` bars (``"4h"``, ``"1d"``...: a whole multiple of these bars),
        labelled by their open time; a higher bar missing lower candles is NaN (``incomplete="nan"``)
        or built from those there are (``"keep"``); field ``n_candles`` counts them. Cached.
        See :mod:`nbtrade.multitimeframe`."""
        from .multitimeframe import resample_market

        return resample_market(self, timeframe, incomplete=incomplete)

    def informative(self, timeframe: str, func: Any = None, *args: Any, field: Any = "close",
                    available: str = "close", incomplete: str = "nan", **kwargs: Any) -> Any:
        """``func(self.resample(timeframe).<field>, *args, **kwargs)`` aligned back to these bars without
        look-ahead: a higher bar's value is used from the lower bar that closes with it on
        (``available="next"``: one bar later, as backtesting.py). Returns bars x symbols DataFrame(s).
        See :func:`nbtrade.resample_apply`."""
        from .multitimeframe import resample_apply

        return resample_apply(timeframe, func, self, *args, field=field, available=available,
                              incomplete=incomplete, **kwargs)

    # ---------------------------------------------------------------- metadata
    def with_filters(self, table: Any) -> "Market":
        """A market sharing this one's arrays whose ``meta`` holds each symbol's exchange filters.

        Parameters
        ----------
        table : DataFrame or ``{symbol: {column: value}}``
            One row per symbol (index ``symbol``), as :func:`nbtrade.fetch_filters` returns it:
            ``tick_size`` (price step, quote), ``step_size`` (quantity step, base), ``min_qty``,
            ``max_qty`` (base), ``min_notional`` (quote); NaN or 0 = no such rule. Provenance
            columns (``exchange``, ``source``, ``fetched_at``) are kept when present. Rows of
            other symbols are ignored; symbols without a row keep no filters (a backtest with
            ``filters="exchange"`` then refuses, naming them).

        Examples
        --------
        >>> import nbtrade, pandas as pd
        >>> m = nbtrade.Market(nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-02", "1h"), symbol="BTC/USDT")
        >>> t = pd.DataFrame({"tick_size": [0.01], "step_size": [1e-5], "min_qty": [1e-5],
        ...                   "max_qty": [9000.0], "min_notional": [5.0]}, index=["BTC/USDT"])
        >>> float(m.with_filters(t).meta.loc["BTC/USDT", "step_size"])
        1e-05
        """
        if isinstance(table, Mapping):
            table = pd.DataFrame.from_dict(dict(table), orient="index")
        if not isinstance(table, pd.DataFrame):
            raise TypeError(f"filters table must be a DataFrame indexed by symbol (nbtrade.fetch_filters(exchange, "
                            f"symbols)) or a dict {{symbol: {{column: value}}}}, got {type(table).__name__}")
        missing = [c for c in FILTER_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"filters table lacks column(s) {missing}; expected {list(FILTER_COLUMNS)} "
                             f"(as nbtrade.fetch_filters returns them)")
        rows = table.reindex([s for s in self.symbols])
        values = rows[list(FILTER_COLUMNS)].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = np.isinf(values) | (values < 0)
        if bad.any():
            i, k = np.argwhere(bad)[0]
            raise ValueError(f"filters table: {FILTER_COLUMNS[k]} of {self.symbols[i]} is {values[i, k]}; filters "
                             f"must be finite and >= 0 (NaN or 0 = no rule)")
        out = Market(self)
        meta = self.meta.copy()
        for k, col in enumerate(FILTER_COLUMNS):
            meta[col] = values[:, k]
        meta["lot_size"] = meta["step_size"]
        for col in ("exchange", "source", "fetched_at"):
            if col in rows.columns:
                meta["filters_" + col if col != "exchange" else col] = rows[col].to_numpy(dtype=object)
        meta["has_filters"] = np.array([s in table.index for s in self.symbols])
        out.meta = meta
        return out

    # ---------------------------------------------------------------- perpetuals (mark price, funding)
    # Fields filled by Store.read_market / FetchResult.to_market (nbtrade.data.panels.perp_fields
    # documents the representation): mark_open/high/low/close, funding_rate, funding_time.
    @property
    def has_mark(self) -> bool:
        """True when the market carries mark-price candles (``mark_open`` .. ``mark_close``)."""
        return all(f in self.fields for f in PERP_MARK_FIELDS)

    @property
    def has_funding(self) -> bool:
        """True when the market carries funding rates (``funding_rate`` and ``funding_time``)."""
        return all(f in self.fields for f in PERP_FUNDING_FIELDS)

    def mark(self, field: str = "close") -> pd.DataFrame:
        """Mark-price ``field`` (open/high/low/close) as a bars x symbols frame; NaN where a bar
        has no mark candle. AttributeError when the market has no mark candles."""
        if field not in PRICES:
            raise ValueError(f"field must be one of {', '.join(PRICES)}, got {field!r}")
        return self.frame("mark_" + field)

    @property
    def funding_rate(self) -> pd.DataFrame:
        """Funding rate at the bar containing each funding timestamp (NaN elsewhere), bars x symbols."""
        return self.frame("funding_rate")

    def funding_events(self, symbol: Any) -> pd.DataFrame:
        """One symbol's exact funding events inside this market's time span: index ``time`` (UTC),
        columns ``rate`` and ``mark_price`` (NaN when the exchange gives none). Empty when the
        symbol has no funding series."""
        if symbol not in self.symbols:
            raise KeyError(f"unknown symbol {symbol!r}; the market has {self.symbols}")
        ev = self.meta["funding_events"].get(symbol) if "funding_events" in self.meta.columns else None
        from .timeframes import ms_to_index

        if ev is None:
            return pd.DataFrame({"rate": [], "mark_price": []}, index=ms_to_index(np.empty(0, np.int64)))
        t, rate, mark = ev[0], ev[1], ev[2]
        keep = np.ones(t.shape[0], dtype=bool)
        if self.time_ms is not None and len(self.time_ms):
            keep = t >= self.time_ms[0]
            if "funding_time" in self.fields:  # up to the last event placed in a bar of this span
                last = np.nanmax(self.array("funding_time")[:, self.symbols.index(symbol)], initial=-np.inf)
                keep &= t <= last
        frame = pd.DataFrame({"rate": rate[keep], "mark_price": mark[keep]}, index=ms_to_index(t[keep]))
        frame.index.name = "time"
        return frame

    # ---------------------------------------------------------------- conversions
    def to_frames(self) -> dict[Any, pd.DataFrame]:
        """``{symbol: DataFrame}`` of the fields (the layout of :func:`nbtrade.market`)."""
        names = [f for f in FIELDS if f in self.fields]
        arrays = {f: self.array(f) for f in names}
        return {s: pd.DataFrame({f: arrays[f][:, j] for f in names}, index=self.index)
                for j, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        n, m = self.shape
        span = f"{self.index[0]} .. {self.index[-1]}" if n else "empty"
        tf = f", {self.timeframe}" if self.timeframe else ""
        missing = f", {self.n_missing} bar-steps without a candle" if "close" in self._arrays else ""
        return f"<nbtrade Market: {n} bars x {m} symbols ({span}{tf}){missing}>"


class Prices:
    """Price arrays of one run (``(n_bars, n_symbols)`` float64, C-contiguous) with the market's
    index and symbols: what the kernels and :class:`nbtrade.Result` read."""

    __slots__ = ("market", "index", "symbols", "open", "high", "low", "close", "volume")

    def __init__(self, market: Market, open_: np.ndarray, high: np.ndarray, low: np.ndarray, close: np.ndarray,
                 volume: np.ndarray | None):
        self.market = market
        self.index, self.symbols = market.index, market.symbols
        self.open, self.high, self.low, self.close, self.volume = open_, high, low, close, volume

    @property
    def shape(self) -> tuple[int, int]:
        return self.close.shape

    @property
    def n_missing(self) -> int:
        return self.market.n_missing


def as_market(data: Any) -> Market:
    """``data`` itself when it is a Market, else a Market viewing it for one run (no private copies)."""
    return data if isinstance(data, Market) else Market(data, copy=False)


# --------------------------------------------------------------------------------------------
# label alignment

def align(x: Any, market: Market, name: str, kind: str = "float", fill: Any = None) -> np.ndarray:
    """``x`` as a C-contiguous ``(n_bars, n_symbols)`` array matching ``market`` by label.

    DataFrame columns are matched by symbol in any order; a subset of the symbols is allowed
    (the others get ``fill``: False for signals, NaN for numbers); a column for a symbol not in
    the market is an error naming it (symbols compare exactly: "btc" is not "BTC"). A Series is
    the market's only symbol, or with several the symbol it is named after. Timestamps are
    matched as instants (any time zone or resolution; tz-naive means UTC): every bar of the data
    must be there, and no other. Arrays are matched by position
    and must have the data's shape (``(n_bars,)`` for one symbol).

    ``kind="bool"`` (signals): booleans, or integers 0/1; ``kind="float"``: real numbers (NaN
    kept, booleans refused).
    """
    n, m = market.shape
    if fill is None:
        fill = False if kind == "bool" else np.nan
    if isinstance(x, Market):
        raise TypeError(f"{name} must be bars x symbols values, got a Market")
    if isinstance(x, pd.Series):
        sym = x.name
        if m == 1:  # one symbol: a Series is its column, whatever its name ("close" from df.close > ...)
            x = x.to_frame(market.symbols[0])
        elif sym is not None and sym in market.symbols:
            x = x.to_frame(sym)
        else:
            raise ValueError(f"{name} is a Series (named {sym!r}) but the data has {m} symbols: pass a DataFrame "
                             f"with one column per symbol ({market.symbols[:3]}...)")
    if isinstance(x, pd.DataFrame):
        rows = _rows(x.index, market, name)
        cols = _columns(x.columns, market, name)
        values = _values(x, name, kind)
        if rows is None and cols is None:  # writeable-typed like the copies below: one kernel specialization
            if values.dtype == np.bool_ and values.size >= _BYTE_TRANSPOSE and values.T.flags.c_contiguous \
                    and values.ndim == 2:
                from .kernels.panel import transpose_bytes_nb  # a frame's (symbols, bars) block: transpose it

                out = np.empty(values.shape, dtype=np.bool_)
                transpose_bytes_nb(values.T.view(np.uint8), out.view(np.uint8))
                return out
            return _writeable(np.ascontiguousarray(values))
        out = np.full((n, m), fill, dtype=values.dtype)
        c = np.arange(m) if cols is None else cols
        if rows is None:
            out[:, c] = values
        else:
            out[np.ix_(rows, c)] = values
        return out
    arr = np.asarray(x)
    if arr.ndim == 1 and m == 1:
        arr = arr[:, None]
    if arr.shape != (n, m):
        raise ValueError(f"{name} has shape {arr.shape} but data has shape {(n, m)} (bars, symbols); "
                         f"pass a DataFrame to match symbols and timestamps by label")
    return _writeable(np.ascontiguousarray(_check_values(arr, name, kind)))


def _rows(idx: pd.Index, market: Market, name: str) -> np.ndarray | None:
    """Positions in the market of each row of ``idx`` (None when it is the market's index)."""
    mi = market.index
    if idx is mi or (len(idx) == len(mi) and _instants(idx).equals(mi)):
        return None
    if isinstance(mi, pd.DatetimeIndex) != isinstance(idx, pd.DatetimeIndex):
        raise ValueError(f"{name} index ({type(idx).__name__}) is not aligned with data's index "
                         f"({type(mi).__name__}): give it the data's timestamps")
    inst = _instants(idx)
    if inst.has_duplicates:
        raise ValueError(f"{name} index has duplicate timestamps (first: {inst[inst.duplicated()][0]})")
    pos = mi.get_indexer(inst)
    if (pos < 0).any():
        first = idx[int(np.argmax(pos < 0))]
        raise ValueError(f"{name} index is not aligned with data's index: {int((pos < 0).sum())} timestamp(s) "
                         f"not in the data, first {first}; reindex it on the data's index")
    if len(pos) != len(mi):
        lacking = mi[~np.isin(np.arange(len(mi)), pos)]
        raise ValueError(f"{name} index is not aligned with data's index: it lacks {len(lacking)} of the data's "
                         f"bars, first {lacking[0]}; reindex it on the data's index (fill_value=False for signals)")
    return pos


def _columns(cols: pd.Index, market: Market, name: str) -> np.ndarray | None:
    """Position in the market of each column (None when they are the market's symbols in order)."""
    syms = market.symbols
    if list(cols) == syms:
        return None
    if len(cols) == 1 and len(syms) == 1 and (syms[0] == "asset" or isinstance(cols, pd.RangeIndex)):
        return None  # one unnamed symbol (or an unnamed column): the only column is it
    keys = {s: j for j, s in enumerate(syms)}
    unknown = [c for c in cols if c not in keys]
    if unknown:
        raise ValueError(f"{name} columns {list(cols)} name symbol(s) not in the data: {unknown} (data's symbols: "
                         f"{syms}); drop those columns or add the symbols to the data")
    if cols.has_duplicates:
        raise ValueError(f"{name} has duplicate columns {list(cols[cols.duplicated()])}")
    return np.array([keys[c] for c in cols], dtype=np.int64)


def _values(x: pd.DataFrame, name: str, kind: str) -> np.ndarray:
    if kind == "bool":
        if all(dt == np.bool_ for dt in x.dtypes):
            return x.to_numpy(dtype=np.bool_)
        if x.isna().to_numpy().any():
            raise ValueError(f"{name} contains NaN; signals must be boolean{_SIGNAL_HINT}")
        return _check_values(x.to_numpy(), name, kind)
    for dtype in x.dtypes:
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise TypeError(f"{name} must be numeric, got dtype {dtype}")
    return x.to_numpy(dtype=np.float64, na_value=np.nan)


def _check_values(arr: np.ndarray, name: str, kind: str) -> np.ndarray:
    if kind == "bool":
        if arr.dtype == np.bool_:
            return arr
        if arr.dtype == object:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must be boolean, got dtype object") from None
        if arr.dtype.kind == "f" and np.isnan(arr).any():
            raise ValueError(f"{name} contains NaN; signals must be boolean{_SIGNAL_HINT}")
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise TypeError(f"{name} must be boolean (or 0/1 integers), got dtype {arr.dtype}"
                            + (" with values other than 0/1" if arr.dtype.kind in "iuf" else "") + _SIGNAL_HINT)
        if arr.dtype.kind == "f":
            raise TypeError(f"{name} must be boolean (or 0/1 integers), got dtype {arr.dtype}{_SIGNAL_HINT}")
        return arr.astype(np.bool_)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr.astype(np.float64, copy=False)


def _instants(idx: pd.Index) -> pd.Index:
    """A DatetimeIndex in UTC (naive = UTC); other indexes unchanged."""
    if not isinstance(idx, pd.DatetimeIndex):
        return idx
    if idx.tz is not None and str(idx.tz) == "UTC":
        return idx  # already UTC: keep the object (frames sharing it then compare by identity)
    # any resolution is kept: pandas compares, joins and looks up instants across units
    return idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")


def _utc(t: Any) -> Any:
    if t is None or isinstance(t, (int, np.integer)):
        return t
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# --------------------------------------------------------------------------------------------
# parsing

class _Columns:
    """One field as a list of per-symbol 1-D arrays (None: the symbol lacks it), with each
    symbol's row positions in the joined index (None when its index is the joined one)."""

    __slots__ = ("cols", "pos", "labels")

    def __init__(self, cols: list, pos: list, labels: list):
        self.cols, self.pos, self.labels = cols, pos, labels


def _parse(data: Any, symbol: Any, copy: bool) -> tuple[pd.Index, list, dict[str, Any], bool]:
    if isinstance(data, Mapping) and len(data) and all(k in data for k in PRICES):
        return _from_fields(data, copy)
    if isinstance(data, Mapping):
        if not data:
            raise ValueError("data is empty")
        return _from_frames(dict(data))
    if isinstance(data, pd.DataFrame) and isinstance(data.columns, pd.MultiIndex):
        return _from_multiindex(data)
    if isinstance(data, pd.DataFrame) and not _is_price_like(data):
        return _from_frames({symbol: data}, single=True)
    if _is_price_like(data):
        return _from_fields({"close": data}, copy, close_only=True, symbol=symbol)
    raise TypeError(f"data must be a dict of OHLCV DataFrames, a DataFrame, a dict of fields or arrays, "
                    f"got {type(data).__name__}")


def _is_price_like(x: Any) -> bool:
    return isinstance(x, (pd.Series, np.ndarray, list)) or (
        isinstance(x, pd.DataFrame) and "close" not in {str(c).lower() for c in x.columns})


def _frame_columns(df: pd.DataFrame, name: str) -> dict[str, Any]:
    cols = {}
    for c in df.columns:
        cols.setdefault(str(c).lower(), c)
    if not all(f in cols for f in PRICES):
        if "close" in cols:
            raise ValueError(f"{name} has a close column but lacks "
                             f"{', '.join(f for f in PRICES if f not in cols)}")
        raise ValueError(f"{name} needs columns open, high, low, close (got {list(df.columns)})")
    return cols


def _check_sorted(index: pd.Index, name: str) -> None:
    if not (isinstance(index, pd.DatetimeIndex) or pd.api.types.is_numeric_dtype(index)):
        raise TypeError(f"{name} index must be a DatetimeIndex or numeric, got {type(index).__name__}")
    if index.is_monotonic_increasing and index.is_unique:
        return
    if index.has_duplicates:
        dup = index[index.duplicated()][0]
        raise ValueError(f"{name} has duplicate timestamps (first: {dup}); keep one row per bar, "
                         f"e.g. df[~df.index.duplicated()]")
    k = int(np.argmax(np.diff(np.asarray(index.asi8 if isinstance(index, pd.DatetimeIndex) else index)) < 0))
    raise ValueError(f"{name} index is not sorted in increasing time order (first: {index[k + 1]} after "
                     f"{index[k]}); sort it with .sort_index()")


def _step_ms(index: pd.DatetimeIndex) -> float | None:
    """Typical bar length of a time index (median of the first 10,000 steps; None for < 2 bars)."""
    if len(index) < 2:
        return None
    t = index.asi8[:10_001]
    return float(np.median(np.diff(t))) / _NS_PER[index.unit]


def _timeframe(ms: float) -> str:
    from .timeframes import TIMEFRAME_MS

    return next((k for k, v in TIMEFRAME_MS.items() if v == ms), str(pd.Timedelta(milliseconds=ms)))


_NS_PER = {"s": 1e-3, "ms": 1.0, "us": 1e3, "ns": 1e6}


def _from_frames(frames: dict, single: bool = False) -> tuple[pd.Index, list, dict[str, Any], bool]:
    label = (lambda s: "data") if single else (lambda s: f"data[{s!r}]")
    indexes, fieldcols = [], []
    for sym, df in frames.items():
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"{label(sym)} must be a DataFrame with open/high/low/close columns, "
                            f"got {type(df).__name__}")
        cols = _frame_columns(df, label(sym))
        _check_sorted(df.index, label(sym))
        indexes.append(_instants(df.index))
        fieldcols.append(cols)
    first = indexes[0]
    same = all(ix is first or ix.equals(first) for ix in indexes[1:])
    if same:
        index, positions = first, [None] * len(frames)
    else:
        kinds = {isinstance(ix, pd.DatetimeIndex) for ix in indexes}
        if len(kinds) > 1:
            raise ValueError("data mixes time and integer indexes across symbols; give every frame a DatetimeIndex")
        steps = {sym: _step_ms(ix) for sym, ix in zip(frames, indexes) if isinstance(ix, pd.DatetimeIndex)}
        known = {s: v for s, v in steps.items() if v is not None}
        if len(set(known.values())) > 1:
            (a, fa), *rest = known.items()
            b, fb = next((s, v) for s, v in rest if v != fa)
            raise ValueError(f"data mixes timeframes: {a!r} has {_timeframe(fa)} bars, {b!r} {_timeframe(fb)} bars; "
                             f"resample them to one timeframe first (e.g. df.resample('1h').agg(...))")
        index = indexes[0]
        for ix in indexes[1:]:
            index = index.union(ix)
        positions = [index.get_indexer(ix) for ix in indexes]
    symbols = list(frames)
    names = list(PRICES)
    if all("volume" in c for c in fieldcols):
        names.append("volume")
    extra = set.intersection(*(set(c) for c in fieldcols)) - set(FIELDS)
    names += sorted(e for e in extra if all(pd.api.types.is_numeric_dtype(df.dtypes[c[e]]) and
                                            not pd.api.types.is_bool_dtype(df.dtypes[c[e]])
                                            for df, c in zip(frames.values(), fieldcols)))
    sources = {}
    for f in names:
        cols = []
        for (sym, df), c in zip(frames.items(), fieldcols):
            s = df[c[f]]
            if s.dtype != np.float64:
                _check_dtype(s.dtype, f"{label(sym)}[{c[f]!r}]")
            cols.append(s)
        sources[f] = _Columns(cols, positions, [f"{label(sym)}[{c[f]!r}]" for sym, c in zip(frames, fieldcols)])
    if isinstance(index, pd.DatetimeIndex):
        index = index.rename(index.name)
    return index, symbols, sources, False


def _from_multiindex(data: pd.DataFrame) -> tuple[pd.Index, list, dict[str, Any], bool]:
    for level in range(data.columns.nlevels):
        values = {str(v).lower(): v for v in data.columns.get_level_values(level)}
        if set(PRICES) <= set(values):
            other = 1 - level if data.columns.nlevels == 2 else None
            if other is None:
                raise ValueError("data has MultiIndex columns of more than two levels; use (field, symbol)")
            symbols = list(dict.fromkeys(data.columns.get_level_values(other)))
            frames = {s: data.xs(s, axis=1, level=other) for s in symbols}
            return _from_frames(frames)
    raise ValueError("data has MultiIndex columns but no level holds open/high/low/close")


def _from_fields(fields: Mapping, copy: bool, close_only: bool = False,
                 symbol: Any = "asset") -> tuple[pd.Index, list, dict[str, Any], bool]:
    names = [f for f in FIELDS if f in fields] + [f for f in fields if f not in FIELDS]
    index, symbols, sources = None, None, {}
    for f in names:
        value = fields[f]
        label = f"data[{f!r}]"
        if isinstance(value, pd.Series):
            value = value.to_frame(symbol if value.name is None else value.name)
        if isinstance(value, pd.DataFrame):
            _check_sorted(value.index, label)
            if index is None:
                index, symbols = _instants(value.index), list(value.columns)
            else:
                if not _instants(value.index).equals(index):
                    raise ValueError(f"{label} index differs from data[{names[0]!r}]'s")
                if list(value.columns) != symbols:
                    raise ValueError(f"{label} columns differ from data[{names[0]!r}]'s")
        arr = _float_2d(value, label)
        if copy and not isinstance(value, pd.DataFrame) and np.shares_memory(arr, np.asarray(value)):
            arr = arr.copy()
        sources[f] = arr
    shape = sources["close"].shape
    for f, arr in sources.items():
        if arr.shape != shape:
            raise ValueError(f"data[{f!r}] has shape {arr.shape} but data['close'] has shape {shape}")
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"data is empty (shape {shape})")
    if index is None:
        index = pd.RangeIndex(shape[0])
        symbols = list(range(shape[1])) if shape[1] > 1 else [symbol]
    return index, symbols, sources, close_only


def _float_2d(x: Any, label: str) -> np.ndarray:
    """A numeric DataFrame or array as float64 (NaN kept), a 1-D one as a column; booleans and
    text are refused (prices and weights are numbers)."""
    if isinstance(x, pd.DataFrame):
        for dtype in x.dtypes:
            if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
                raise TypeError(f"{label} must be numeric, got dtype {dtype}")
        return _writeable(x.to_numpy(dtype=np.float64, na_value=np.nan))
    arr = np.asarray(x)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{label} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{label} must be 1-D or 2-D (time x symbols), got shape {arr.shape}")
    return arr[:, None] if arr.ndim == 1 else arr


def _check_dtype(dtype: Any, label: str) -> None:
    if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        raise TypeError(f"{label} must be numeric, got dtype {dtype}")


# --------------------------------------------------------------------------------------------
# conversion

def _convert(src: Any, shape: tuple[int, int], field: str, scan: list | None = None) -> np.ndarray:
    """A source as a new (or, for a C-contiguous float64 array, the same) C-contiguous array; when the
    transposing kernel runs and ``scan`` is a list, the close check's result is appended to it."""
    n, m = shape
    if isinstance(src, np.ndarray):
        return _writeable(np.ascontiguousarray(src))
    cols = [None if c is None else c.to_numpy(dtype=np.float64, na_value=np.nan) if c.dtype != np.float64
            else c.to_numpy() for c in src.cols]
    if all(p is None for p in src.pos):
        # one shared index: stack the columns (contiguous copies), then one transposing copy
        return _transpose(np.stack(cols), scan)
    out = np.full((m, n), np.nan)
    for j, (c, p) in enumerate(zip(cols, src.pos)):
        if p is None:
            out[j] = c
        else:
            out[j, p] = c
    return _transpose(out)


def _transpose(src: np.ndarray, scan: list | None = None) -> np.ndarray:
    """``(n_symbols, n_bars)`` -> C-contiguous ``(n_bars, n_symbols)`` (in parallel blocks when large,
    scanning the block just written with the close check when ``scan`` is a list)."""
    if src.size < PARALLEL_CHECK:
        return np.ascontiguousarray(src.T)
    from .kernels.panel import transpose_check_nb

    out = np.empty(src.shape[::-1])
    blocks = transpose_check_nb(src, out, scan is not None, np.zeros((16, 6), dtype=np.int64))
    if scan is not None:
        scan.append(_reduce_blocks(blocks))
    return out


def _slice_source(src: Any, lo: int, hi: int, shape: tuple[int, int], field: str) -> Any:
    if isinstance(src, np.ndarray):
        return src[lo:hi]
    if all(p is None for p in src.pos):
        return _Columns([c.iloc[lo:hi] for c in src.cols], src.pos, src.labels)
    return _convert(src, shape, field)[lo:hi]


def _take_source(src: Any, cols: list[int]) -> Any:
    if isinstance(src, np.ndarray):
        return src[:, cols]
    return _Columns([src.cols[j] for j in cols], [src.pos[j] for j in cols], [src.labels[j] for j in cols])


def check_prices(o: np.ndarray, h: np.ndarray, l: np.ndarray, c: np.ndarray) -> tuple[int, ...]:
    """``(code, bar, column, field, n_missing, n_partial)`` of one scan of the prices (close only
    when all four are one array); large inputs are scanned in blocks on all cores."""
    from .kernels.input_checks import check_blocks_nb, check_close_nb, check_ohlc_nb

    close_only = o is c and h is c and l is c
    if c.size < PARALLEL_CHECK:
        return tuple(int(v) for v in (check_close_nb(c) if close_only else check_ohlc_nb(o, h, l, c)))
    return _reduce_blocks(check_blocks_nb(o, h, l, c, close_only, np.zeros((16, 6), dtype=np.int64)))


def _reduce_blocks(blocks: np.ndarray) -> tuple[int, ...]:
    """One check result from per-block results (the first block with a problem wins)."""
    from .kernels.input_checks import OK

    bad = np.flatnonzero(blocks[:, 0] != OK)
    if len(bad):
        return tuple(int(v) for v in blocks[bad[0]][:4]) + (0, 0)
    return (OK, -1, -1, 0, int(blocks[:, 4].sum()), int(blocks[:, 5].sum()))


# --------------------------------------------------------------------------------------------
# gaps

_GAP_COLUMNS = ["symbol", "kind", "start", "end", "bars"]


def missing_time_gaps(time_ms: np.ndarray, index: pd.DatetimeIndex, freq_ms: float) -> list[pd.DataFrame]:
    """The ``missing_time`` rows of a gaps table: open times more than 1.5 bars apart (``[]`` or one frame)."""
    if len(time_ms) < 2:
        return []
    step = np.diff(time_ms).astype(np.float64)
    k = np.flatnonzero(step > freq_ms * 1.5)
    if not len(k):
        return []
    td = pd.Timedelta(milliseconds=freq_ms)
    return [pd.DataFrame({"symbol": [None] * len(k), "kind": "missing_time", "start": index[k] + td,
                          "end": index[k + 1] - td, "bars": np.round(step[k] / freq_ms).astype(np.int64) - 1})]


def gaps_table(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """One gaps table (``_GAP_COLUMNS``) from its parts, empty when there are none."""
    if not parts:
        return pd.DataFrame(columns=_GAP_COLUMNS)
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return out[_GAP_COLUMNS]


def _find_gaps(market: Market, freq_ms: float | None) -> pd.DataFrame:
    """Missing timestamps and inner NaN runs, vectorised (one pass over the mask, no row loop)."""
    index = market.index
    parts = []
    if isinstance(index, pd.DatetimeIndex) and freq_ms:
        parts += missing_time_gaps(market.time_ms, index, freq_ms)
    if market.n_missing:
        miss = market.missing
        n = miss.shape[0]
        valid = ~miss
        has = valid.any(axis=0)
        first = np.where(has, valid.argmax(axis=0), n)
        last = np.where(has, n - 1 - valid[::-1].argmax(axis=0), -1)
        rows = np.arange(n)[:, None]
        inner = miss & (rows > first) & (rows < last)
        if inner.any():
            prev = np.zeros_like(inner)
            prev[1:] = inner[:-1]
            nxt = np.zeros_like(inner)
            nxt[:-1] = inner[1:]
            cs, rs = np.nonzero((inner & ~prev).T)  # by symbol, then time
            ce, re = np.nonzero((inner & ~nxt).T)
            syms = np.empty(len(cs), dtype=object)
            syms[:] = [market.symbols[j] for j in cs]
            parts.append(pd.DataFrame({"symbol": syms, "kind": "nan", "start": index[rs], "end": index[re],
                                       "bars": (re - rs + 1).astype(np.int64)}))
    return gaps_table(parts)
