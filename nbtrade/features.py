"""Declarative features: many indicators on many symbols, batched, parallel, cached.

A feature set is a list of specs, each ``(kind, params)``, ``(kind, period)``
or just ``kind``::

    specs = [("ema", 20), ("ema", 50), ("rsi", 14), ("ret", 1), ("vol", 24),
             ("zscore", {"window": 48}), ("volume_ratio", 24), ("corr", {"window": 72, "to": "BTC/USDT"})]
    X = compute_features(frames, specs)       # columns: (symbol, feature)

Every kind runs the 2-D kernels over a ``time x symbols`` panel, so symbols
are computed in parallel (``prange``); all ``ema``/``sma`` spans of one set are
computed in a single pass (``ema_many``/``sma_many``). Moving averages and
ATR are expressed relative to the close (``close / ema - 1``, ``atr / close``)
unless ``relative=False``, so features are comparable across symbols and
time, as a model needs.

Causality: every feature at bar ``t`` uses bars up to ``t`` only. Missing
candles stay missing (NaN): they are never forward-filled.

Caching: :class:`FeatureCache` keys results by (data fingerprint, specs, code
version). When the same symbols gain new candles, only the tail is recomputed,
starting ``settle`` bars (the largest lookback of the set) before the first
new bar, and the result equals a full recompute to ~1e-11 relative: recursive
indicators forget their start below 1e-12 by then, and running window sums
round slightly differently from another starting bar.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .lookback import Lookback
from .panel import Market, _instants

FIELDS = ("open", "high", "low", "close", "volume")
Spec = str | tuple[str, Any]
Panel = Mapping[str, np.ndarray]  # field -> (n_bars, n_symbols) float64, Fortran order


@dataclass(frozen=True)
class Feature:
    """One normalised spec: ``kind``, sorted ``params`` and the output column names."""

    kind: str
    params: tuple[tuple[str, Any], ...]

    @property
    def kw(self) -> dict[str, Any]:
        return dict(self.params)

    def names(self) -> list[str]:
        return _KINDS[self.kind].names(self.kw)

    def lookback(self) -> Lookback:
        return _KINDS[self.kind].lookback(self.kw)


@dataclass(frozen=True)
class _Kind:
    defaults: dict[str, Any]
    period_arg: str | None
    names: Callable[[dict[str, Any]], list[str]]
    lookback: Callable[[dict[str, Any]], Lookback]
    compute: Callable[[Panel, dict[str, Any], list[str]], list[np.ndarray]]


# --------------------------------------------------------------------------- kinds

def _ind():
    from . import indicators
    return indicators


def _st():
    from . import stats
    return stats


def _rel(values: np.ndarray, close: np.ndarray, relative: bool) -> np.ndarray:
    if not relative:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        return close / values - 1.0


def _ma_kind(name: str) -> _Kind:
    def compute(p: Panel, kw: dict[str, Any], symbols: list[str]) -> list[np.ndarray]:
        fn = getattr(_ind(), name)
        src = p[kw["field"]]
        return [_rel(fn(src, kw["timeperiod"]), p["close"], kw["relative"])]

    return _Kind({"timeperiod": 30, "field": "close", "relative": True}, "timeperiod",
                 lambda kw: [f"{name}_{kw['timeperiod']}" + ("" if kw["relative"] else "_abs")
                             + ("" if kw["field"] == "close" else f"_{kw['field']}")],
                 lambda kw: _ind().lookback(name, timeperiod=kw["timeperiod"]), compute)


def _simple(fn_name: str, names: Callable[[dict], list[str]], defaults: dict[str, Any], period_arg: str | None,
            inputs: tuple[str, ...], post: Callable[[Any, Panel, dict], list[np.ndarray]] | None = None,
            lb: Callable[[dict], Lookback] | None = None) -> _Kind:
    def compute(p: Panel, kw: dict[str, Any], symbols: list[str]) -> list[np.ndarray]:
        args = {k: v for k, v in kw.items() if k != "relative"}
        res = getattr(_ind(), fn_name)(*(p[f] for f in inputs), **args)
        return post(res, p, kw) if post else [res]

    return _Kind(defaults, period_arg, names,
                 lb or (lambda kw: _ind().lookback(fn_name, **{k: v for k, v in kw.items() if k != "relative"})),
                 compute)


def _macd_post(res: tuple, p: Panel, kw: dict) -> list[np.ndarray]:
    return [_rel_div(v, p["close"]) for v in res]


def _rel_div(values: np.ndarray, close: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return values / close


def _bb_post(res: tuple, p: Panel, kw: dict) -> list[np.ndarray]:
    upper, middle, lower = res
    with np.errstate(divide="ignore", invalid="ignore"):
        width = upper - lower
        return [(p["close"] - lower) / width, width / middle]


def _log_returns(close: np.ndarray) -> np.ndarray:
    return _st().ret(close, 1, log=True)


def _window_lb(extra: int = 0) -> Callable[[dict], Lookback]:
    return lambda kw: Lookback(kw["window"] - 1 + extra, kw["window"] - 1 + extra)


def _compute_ret(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    return [_st().ret(p["close"], kw["n"], log=kw["log"])]


def _compute_vol(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    return [_st().rolling_std(_log_returns(p["close"]), kw["window"])]


def _compute_zscore(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    return [_st().rolling_zscore(p[kw["field"]], kw["window"])]


def _compute_volume_ratio(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    mean = _st().rolling_mean(p["volume"], kw["window"])
    with np.errstate(divide="ignore", invalid="ignore"):
        return [p["volume"] / mean]


def _compute_corr(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    to = kw["to"]
    if to not in symbols:
        raise ValueError(f"corr feature refers to symbol {to!r}, which is not in the data ({symbols})")
    r = _log_returns(p["close"])
    ref = np.asfortranarray(np.repeat(r[:, [symbols.index(to)]], r.shape[1], axis=1))
    return [_st().rolling_corr(r, ref, kw["window"])]


def _compute_range(p: Panel, kw: dict, symbols: list[str]) -> list[np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return [(p["high"] - p["low"]) / p["close"]]


_KINDS: dict[str, _Kind] = {
    **{k: _ma_kind(k) for k in ("sma", "ema", "wma", "dema", "tema", "kama")},
    "rsi": _simple("rsi", lambda kw: [f"rsi_{kw['timeperiod']}"], {"timeperiod": 14}, "timeperiod", ("close",)),
    "adx": _simple("adx", lambda kw: [f"adx_{kw['timeperiod']}"], {"timeperiod": 14}, "timeperiod",
                   ("high", "low", "close")),
    "atr": _simple("atr", lambda kw: [f"natr_{kw['timeperiod']}"], {"timeperiod": 14}, "timeperiod",
                   ("high", "low", "close"), post=lambda r, p, kw: [_rel_div(r, p["close"])]),
    "macd": _simple("macd", lambda kw: [f"macd_{kw['fastperiod']}_{kw['slowperiod']}_{kw['signalperiod']}{s}"
                                        for s in ("", "_signal", "_hist")],
                    {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}, None, ("close",), post=_macd_post),
    "bbands": _simple("bbands", lambda kw: [f"bb_pctb_{kw['timeperiod']}", f"bb_width_{kw['timeperiod']}"],
                      {"timeperiod": 20, "nbdevup": 2.0, "nbdevdn": 2.0}, "timeperiod", ("close",), post=_bb_post),
    "stoch": _simple("stoch", lambda kw: [f"stoch_k_{kw['fastk_period']}", f"stoch_d_{kw['fastk_period']}"],
                     {"fastk_period": 14, "slowk_period": 3, "slowd_period": 3}, "fastk_period",
                     ("high", "low", "close"), post=lambda r, p, kw: list(r)),
    "ret": _Kind({"n": 1, "log": False}, "n", lambda kw: [f"{'logret' if kw['log'] else 'ret'}_{kw['n']}"],
                 lambda kw: Lookback(kw["n"], kw["n"]), _compute_ret),
    "vol": _Kind({"window": 24}, "window", lambda kw: [f"vol_{kw['window']}"], _window_lb(1), _compute_vol),
    "zscore": _Kind({"window": 50, "field": "close"}, "window", lambda kw: [f"zscore_{kw['field']}_{kw['window']}"],
                    _window_lb(), _compute_zscore),
    "volume_ratio": _Kind({"window": 24}, "window", lambda kw: [f"volume_ratio_{kw['window']}"], _window_lb(),
                          _compute_volume_ratio),
    "corr": _Kind({"window": 72, "to": None}, "window",
                  lambda kw: [f"corr_{str(kw['to']).split('/')[0].lower()}_{kw['window']}"], _window_lb(1),
                  _compute_corr),
    "range": _Kind({}, None, lambda kw: ["range"], lambda kw: Lookback(0, 0), _compute_range),
}

KINDS: tuple[str, ...] = tuple(_KINDS)


def parse_spec(spec: Spec) -> Feature:
    """Normalise one spec: ``"rsi"``, ``("rsi", 14)`` or ``("rsi", {"timeperiod": 14})``."""
    if isinstance(spec, Feature):
        return spec
    if isinstance(spec, str):
        kind, arg = spec, None
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
        kind, arg = spec
    else:
        raise TypeError(f"a feature spec is a kind or (kind, params), got {spec!r}")
    if kind not in _KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; known: {', '.join(KINDS)}")
    info = _KINDS[kind]
    params = dict(info.defaults)
    if isinstance(arg, Mapping):
        unknown = set(arg) - set(params)
        if unknown:
            raise ValueError(f"feature {kind!r}: unknown parameters {sorted(unknown)}; known: {sorted(params)}")
        params.update(arg)
    elif arg is not None:
        if info.period_arg is None:
            raise ValueError(f"feature {kind!r} takes no period; pass a dict of parameters")
        params[info.period_arg] = arg
    for key, value in params.items():
        if key in ("timeperiod", "window", "n", "fastperiod", "slowperiod", "signalperiod", "fastk_period",
                   "slowk_period", "slowd_period"):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"feature {kind!r}: {key} must be an integer >= 1, got {value!r}")
        if key == "field" and value not in FIELDS:
            raise ValueError(f"feature {kind!r}: field must be one of {FIELDS}, got {value!r}")
    if kind == "corr" and params["to"] is None:
        raise ValueError("feature 'corr' needs the reference symbol: ('corr', {'window': 72, 'to': 'BTC/USDT'})")
    return Feature(kind, tuple(sorted((k, int(v) if isinstance(v, np.integer) else v) for k, v in params.items())))


class FeatureSet:
    """An ordered, de-duplicated list of features."""

    def __init__(self, specs: Iterable[Spec]) -> None:
        feats: list[Feature] = []
        for spec in specs:
            f = parse_spec(spec)
            if f not in feats:
                feats.append(f)
        if not feats:
            raise ValueError("a feature set needs at least one spec")
        self.features = feats
        names = [n for f in feats for n in f.names()]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"feature names collide: {sorted(dup)}")

    def names(self) -> list[str]:
        return [n for f in self.features for n in f.names()]

    def lookback(self) -> Lookback:
        """The set's history needs: the largest warm-up and settle of its features."""
        lbs = [f.lookback() for f in self.features]
        return Lookback(max(lb.warmup for lb in lbs), max(lb.settle for lb in lbs))

    def key(self) -> tuple:
        return tuple((f.kind, f.params) for f in self.features)

    def compute_panel(self, panel: Panel, symbols: list[str]) -> dict[str, np.ndarray]:
        """Feature name -> ``(n_bars, n_symbols)`` array, batching EMA/SMA spans into one pass each."""
        out: dict[str, np.ndarray] = {}
        batched = self._batch_mas(panel, out)
        for f in self.features:
            if f in batched:
                continue
            for name, values in zip(f.names(), _KINDS[f.kind].compute(panel, f.kw, symbols)):
                out[name] = np.asarray(values, dtype=np.float64)
        return out

    def _batch_mas(self, panel: Panel, out: dict[str, np.ndarray]) -> set[Feature]:
        done: set[Feature] = set()
        for kind in ("ema", "sma"):
            group = [f for f in self.features if f.kind == kind and f.kw["field"] == "close"]
            if len(group) < 2:
                continue
            periods = [f.kw["timeperiod"] for f in group]
            many = _st().ema_many if kind == "ema" else _st().sma_many
            res = many(panel["close"], periods)  # (n, m, k)
            for j, f in enumerate(group):
                out[f.names()[0]] = _rel(np.ascontiguousarray(res[:, :, j]), panel["close"], f.kw["relative"])
                done.add(f)
        return done


# --------------------------------------------------------------------------- panels

class _Panel(Mapping):
    """Field -> ``(n_bars, n_symbols)`` float64 Fortran-order array (each symbol's history contiguous, as
    the column-walking indicator kernels want), converted from the market on first use."""

    def __init__(self, market: Market):
        self.market = market
        self._arrays: dict[str, np.ndarray] = {}

    def __getitem__(self, field: str) -> np.ndarray:
        if field not in self._arrays:
            self._arrays[field] = np.asfortranarray(self.market.array(field))
        return self._arrays[field]

    def __iter__(self):
        return iter(f for f in FIELDS if self.market.has(f))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _market(data: Any) -> Market:
    """``data`` as a Market (a single DataFrame is the symbol ``"data"``)."""
    return data if isinstance(data, Market) else Market(data, symbol="data", copy=False)


def to_panel(data: Any) -> tuple[pd.Index, list, Panel]:
    """``(index, symbols, {field: (n_bars, n_symbols) array})`` of a :class:`~nbtrade.Market` (or of
    anything it accepts: frames are joined on the union of their indexes, bars a symbol lacks are
    NaN, never forward-filled). Fields are converted on first use; volume only where a feature reads it."""
    m = _market(data)
    return m.index, list(m.symbols), _Panel(m)


def _assemble(index: pd.Index, symbols: list[str], names: list[str], values: dict[str, np.ndarray],
              dtype: Any) -> pd.DataFrame:
    n, m, k = len(index), len(symbols), len(names)
    block = np.empty((n, m * k), dtype=dtype)
    for j in range(m):
        for i, name in enumerate(names):
            block[:, j * k + i] = values[name][:, j]
    cols = pd.MultiIndex.from_product([symbols, names], names=["symbol", "feature"])
    return pd.DataFrame(block, index=index, columns=cols, copy=False)


def compute_features(data: "Market | pd.DataFrame | Mapping[str, pd.DataFrame]", specs: Iterable[Spec] | FeatureSet,
                     dtype: Any = np.float64, cache: "FeatureCache | None" = None,
                     as_array: bool = False, timeframe: str | None = None,
                     available: str = "close", incomplete: str = "nan",
                     client: Any = None) -> pd.DataFrame | np.ndarray:
    """Compute a feature set on one or many symbols: a :class:`~nbtrade.Market`, or anything it
    accepts (a dict of OHLCV DataFrames, one DataFrame...).

    Returns a DataFrame indexed by time with columns ``(symbol, feature)``
    (float64 by default, ``dtype=np.float32`` halves memory), or with
    ``as_array=True`` a ``(n_bars, n_symbols, n_features)`` array.

    ``timeframe="4h"`` computes the set on the data resampled to 4h bars and aligns it back to
    the data's bars without look-ahead (a 4h bar's features from the lower bar that closes with
    it on; ``available``/``incomplete``: :func:`nbtrade.resample_apply`); features are then named
    ``"<name>@4h"`` so they join the lower timeframe's own.

    ``client`` (a ``dask.distributed.Client`` or a scheduler address; ``[dask]`` extra): symbols are
    computed in groups on the cluster (the market scattered once to every worker, one task per
    group; a ``corr`` feature's reference symbol goes with every group); the frame equals the local
    one. Not combined with ``cache`` (a cache computes here).
    """
    fs = specs if isinstance(specs, FeatureSet) else FeatureSet(specs)
    if np.dtype(dtype) not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be float64 or float32, got {dtype}")
    if timeframe is not None:
        from .multitimeframe import informative, resample_market

        market = _market(data)
        higher = compute_features(resample_market(market, timeframe, incomplete=incomplete), fs, cache=cache,
                                  client=client)
        frame = informative(higher, market, timeframe, available=available)
        frame.columns = pd.MultiIndex.from_tuples([(s, f"{f}@{timeframe}") for s, f in frame.columns],
                                                  names=frame.columns.names)
    elif client is not None and cache is None:
        frame = _compute_dask(data, fs, client)
    else:
        frame = cache.compute(data, fs) if cache is not None else _compute(data, fs)
    if np.dtype(dtype) != np.float64:
        frame = frame.astype(dtype)
    if as_array:
        n, (m, k) = len(frame), (frame.columns.levshape)
        return frame.to_numpy().reshape(n, m, k)
    return frame


def _compute(data: Any, fs: FeatureSet) -> pd.DataFrame:
    index, symbols, panel = to_panel(data)
    return _assemble(index, symbols, fs.names(), fs.compute_panel(panel, symbols), np.float64)


class _SubPanel(_Panel):
    """The panel of some columns of a market (a Dask task's symbols)."""

    def __init__(self, market: Market, cols: list[int]):
        super().__init__(market)
        self.cols = cols

    def __getitem__(self, field: str) -> np.ndarray:
        if field not in self._arrays:
            self._arrays[field] = np.asfortranarray(self.market.array(field)[:, self.cols])
        return self._arrays[field]


def _compute_columns(market: Market, fs: FeatureSet, cols: list[int], keep: int) -> dict[str, np.ndarray]:
    """Features of the market's columns ``cols`` (a Dask task); the first ``keep`` are returned (the others
    are references of ``corr`` features)."""
    symbols = [market.symbols[c] for c in cols]
    values = fs.compute_panel(_SubPanel(market, cols), symbols)
    return {k: np.ascontiguousarray(v[:, :keep]) for k, v in values.items()}


def _compute_dask(data: Any, fs: FeatureSet, client: Any) -> pd.DataFrame:
    """:func:`_compute` with groups of symbols as tasks on a Dask cluster (equal frames)."""
    from .sweep.distributed import map_on_dask, resolve_client

    market = _market(data)
    index, symbols = market.index, list(market.symbols)
    refs = list(dict.fromkeys(f.kw["to"] for f in fs.features if f.kind == "corr"))
    missing = [r for r in refs if r not in symbols]
    if missing:
        raise ValueError(f"corr feature refers to symbol {missing[0]!r}, which is not in the data ({symbols})")
    client_obj, owned = resolve_client(client)
    try:
        workers = max(1, sum(client_obj.nthreads().values()))
        size = max(1, -(-len(symbols) // (2 * workers)))
        groups = [list(range(a, min(a + size, len(symbols)))) for a in range(0, len(symbols), size)]
        tasks = [(g + [symbols.index(r) for r in refs if symbols.index(r) not in g], len(g)) for g in groups]
        parts: dict[int, dict[str, np.ndarray]] = {}

        def collect(got: tuple[int, dict]) -> None:
            parts[got[0]] = got[1]

        map_on_dask(client_obj, market, _numbered_columns, [(k, fs, c, keep) for k, (c, keep) in enumerate(tasks)],
                    collect)
    finally:
        if owned:
            client_obj.close()
    names = fs.names()
    values = {name: np.hstack([parts[k][name] for k in range(len(tasks))]) for name in names}
    return _assemble(index, symbols, names, values, np.float64)


def _numbered_columns(market: Market, k: int, fs: FeatureSet, cols: list[int], keep: int) -> tuple[int, dict]:
    return k, _compute_columns(market, fs, cols, keep)


def stack(features: pd.DataFrame) -> pd.DataFrame:
    """``(time, symbol)`` rows x feature columns: the pooled layout for one model over all symbols."""
    return features.stack(level="symbol", future_stack=True).sort_index()


# --------------------------------------------------------------------------- cache

class FeatureCache:
    """Feature results keyed by (data, feature set, code version), recomputing only new tails.

    Backed by :class:`nbtrade.cache.Cache` (memory, and disk when ``path`` is
    given). ``stats`` counts full hits, tail updates and full computations.
    """

    def __init__(self, cache: Any = None, path: Any = None, maxsize: int = 32) -> None:
        from .cache import Cache

        self.store = cache if cache is not None else Cache(path, maxsize=maxsize, name="features")
        self.stats = {"hit": 0, "tail": 0, "full": 0}

    def compute(self, data: Any, fs: FeatureSet) -> pd.DataFrame:
        from .cache import fingerprint, make_key

        if isinstance(data, Market):
            data = data.to_frames()
        frames = {"data": data} if isinstance(data, pd.DataFrame) else dict(data)
        # key on instants: the same bars in another zone (or naive = UTC) are the same data
        frames = {s: f.set_axis(_instants(f.index)) if isinstance(f, pd.DataFrame) and
                  isinstance(f.index, pd.DatetimeIndex) and not (f.index.tz is not None and str(f.index.tz) == "UTC")
                  else f for s, f in frames.items()}
        symbols = list(frames)
        full_key = make_key("features", fs.key(), fingerprint(frames))
        hit = self.store.get(full_key)
        if hit is not None:
            self.stats["hit"] += 1
            return hit
        series_key = make_key("features-series", fs.key(), symbols)
        last = self.store.get(series_key)
        result = self._extend(frames, fs, last) if last is not None else None
        if result is None:
            self.stats["full"] += 1
            result = _compute(frames, fs)
        else:
            self.stats["tail"] += 1
        self.store.set(full_key, result)
        index = result.index
        self.store.set(series_key, {"end": index[-1] if len(index) else None, "result": result,
                                    "prefix": fingerprint({s: f.loc[:index[-1]] for s, f in frames.items()})
                                    if len(index) else None})
        return result

    def _extend(self, frames: dict[str, pd.DataFrame], fs: FeatureSet, last: dict) -> pd.DataFrame | None:
        from .cache import fingerprint

        end, old = last["end"], last["result"]
        if end is None:
            return None
        prefix = {s: f.loc[:end] for s, f in frames.items()}
        if fingerprint(prefix) != last["prefix"]:
            return None  # history changed (not just appended): recompute everything
        index, symbols, panel = to_panel(frames)
        pos = int(index.searchsorted(end, side="right"))
        if pos >= len(index):
            return old
        settle = fs.lookback().settle
        if settle >= sys.maxsize // 2:
            return None  # an indicator that never settles (OBV): only a full recompute is exact
        start = max(0, pos - settle - 1)
        part = {f: a[start:] for f, a in panel.items()}
        values = fs.compute_panel({f: np.asfortranarray(a) for f, a in part.items()}, symbols)
        tail = _assemble(index[start:], symbols, fs.names(), values, np.float64).iloc[pos - start:]
        return pd.concat([old, tail])


def feature_lookback(specs: Sequence[Spec]) -> Lookback:
    """The lookback of a list of specs (see :meth:`FeatureSet.lookback`)."""
    return FeatureSet(specs).lookback()
