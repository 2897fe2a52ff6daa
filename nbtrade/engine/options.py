"""Run options of a backtest, validated once into a frozen :class:`RunConfig`.

This is the one place where a keyword of :func:`nbtrade.backtest`, :func:`nbtrade.backtest_weights` or
:func:`nbtrade.backtest_callback` is checked, turned into what the kernels read (``param_dt`` records, enum
ids, aligned price levels) and described in ``Result.assumptions``. The front ends (``signals``,
``callback``, ``weights``) build a config, then only do what depends on the run's own inputs (signals,
weights, the callback). :class:`nbtrade.Backtest` builds one config for all its runs.

Adding an option (then add the keyword to the front end's signature and docstring):

* a per-symbol number: one line in :data:`PER_SYMBOL` (its ``param_dt`` field, default, range), its keyword in
  :data:`MODE_OPTIONS` (the modes that take it) and :data:`DEFAULTS`; it is validated, packed into the kernels'
  ``param_dt`` records (:func:`param_records`) and reported (``describe``) with no other change;
* anything else (a choice, a flag, a bars x symbols level): a field of :class:`RunConfig`, validated and set
  in :meth:`RunConfig.build` (levels in ``_levels``), handed to the kernels by :meth:`RunConfig.kernel_config`
  (scalars) or the front ends (arrays), and reported in :meth:`RunConfig._fixed_assumptions`.

``tests/engine/test_options.py`` checks that the defaults here equal the public signatures'.
"""
from __future__ import annotations

import dataclasses
import functools
import types
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd

from ..kernels.records import FillMode, Intrabar, OrderType, SizeType, param_dt
from ..panel import FILTER_COLUMNS, Market, align
from .orders import ORDER_KEYWORDS, OrderOptions, order_options

__all__ = ["RunConfig", "PER_SYMBOL", "MODE_OPTIONS", "PerSymbol"]

SIZE_TYPES = {"amount": SizeType.AMOUNT, "value": SizeType.VALUE, "percent": SizeType.PERCENT,
              "target_percent": SizeType.TARGET_PERCENT}
FILLS = {"next_open": FillMode.NEXT_OPEN, "close": FillMode.CLOSE}
INTRABAR = {"pessimistic": Intrabar.PESSIMISTIC, "optimistic": Intrabar.OPTIMISTIC}
ON_GAP = ("error", "warn", "skip")
ORDER_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
               "stop_limit": OrderType.STOP_LIMIT}

#: Valid range of a fee rate, said in every message about one.
FEE_RANGE = " (valid range [0, 1): a fraction of the order's notional, 0.001 = 0.1 %)"


@dataclass(frozen=True)
class PerSymbol:
    """A numeric option given as a scalar, ``{symbol: value}``, Series or sequence: its ``param_dt``
    field, default and valid range (``positive``: > 0; else >= 0; ``upper``: exclusive bound;
    ``allow_none``: None/NaN means unset)."""

    field: str
    default: float
    positive: bool = False
    allow_none: bool = False
    upper: float | None = None
    hint: str = ""


#: Every per-symbol numeric option, in the order they are validated (and reported on error).
PER_SYMBOL: dict[str, PerSymbol] = {
    "size": PerSymbol("size", 1.0, positive=True),
    "fees": PerSymbol("fees", 0.0, upper=1.0, hint=FEE_RANGE),
    "fixed_fees": PerSymbol("fixed_fees", 0.0),
    "maker_fees": PerSymbol("maker_fees", np.nan, allow_none=True, upper=1.0, hint=FEE_RANGE),
    "slippage": PerSymbol("slippage", 0.0, upper=1.0),
    "sl_stop": PerSymbol("sl", np.nan, positive=True, allow_none=True),
    "tp_stop": PerSymbol("tp", np.nan, positive=True, allow_none=True),
    "trail_stop": PerSymbol("trail", np.nan, positive=True, allow_none=True),
    "lot_size": PerSymbol("lot", 0.0),
    "min_qty": PerSymbol("min_qty", 0.0),
    "min_notional": PerSymbol("min_notional", 0.0),
    "slippage_range": PerSymbol("slip_range", 0.0),
    "slippage_volume": PerSymbol("slip_volume", 0.0),
}

_SIGNAL_OPTIONS = ("size", "size_type", "sl_stop", "tp_stop", "trail_stop", "fees", "fixed_fees", "slippage",
                   "init_cash", "fill", "intrabar", "freq", "lot_size", "min_qty", "min_notional", "leverage",
                   "cash_sharing", "order_type", "order_price", "limit_price", "tif", "maker_fees",
                   "slippage_range", "slippage_volume", "sl_price", "tp_price", "exit_size", "on_gap", "filters",
                   *ORDER_KEYWORDS)
#: Keywords each front end takes (the per-symbol ones among them are read through :data:`PER_SYMBOL`).
MODE_OPTIONS: dict[str, tuple[str, ...]] = {
    "signals": (*_SIGNAL_OPTIONS, "maintenance", "liquidation_fee", "instrument", "margin"),
    "callback": (*_SIGNAL_OPTIONS, "maintenance", "liquidation_fee", "instrument", "margin"),
    "weights": ("fees", "fixed_fees", "slippage", "init_cash", "fill", "freq", "lot_size", "min_qty",
                "min_notional", "leverage", "on_gap", "filters"),
}

#: Defaults of the non-numeric (and scalar) options.
DEFAULTS: dict[str, Any] = {
    "size": None, "size_type": "percent", "sl_stop": None, "tp_stop": None, "trail_stop": None, "fees": 0.0,
    "fixed_fees": 0.0, "slippage": 0.0, "init_cash": 10_000.0, "fill": "next_open", "intrabar": "pessimistic",
    "freq": None, "lot_size": 0.0, "min_qty": 0.0, "min_notional": 0.0, "leverage": 1.0, "cash_sharing": True,
    "order_type": "market", "order_price": None, "limit_price": None, "tif": 0, "maker_fees": None,
    "slippage_range": 0.0, "slippage_volume": 0.0, "sl_price": None, "tp_price": None, "exit_size": 1.0,
    "on_gap": "warn", "filters": None, **ORDER_KEYWORDS, "maintenance": None, "liquidation_fee": None,
    "instrument": "spot", "margin": None,
}

#: Largest price a run accepts: fills multiply prices by (1 + slippage) (1 + fees) and sum them into
#: equity, so prices near float64's largest value (1.8e308) would overflow to inf inside the engine.
MAX_PRICE = float(np.finfo(np.float64).max) / 64


@dataclass(frozen=True)
class RunConfig:
    """The options of backtest runs on one market, validated once (see :meth:`build`).

    Immutable by convention down to its arrays (``params`` and the levels are handed to the kernels,
    which only read them; they stay writeable-typed so that numba compiles one specialization).
    """

    mode: str
    symbols: tuple
    #: per-symbol numeric options as the kernels' ``param_dt`` records
    params: np.ndarray = dataclasses.field(repr=False)
    #: per-symbol options by keyword (``(n_symbols,)`` float64), as given or defaulted (read-only mapping)
    values: Mapping[str, np.ndarray] = dataclasses.field(repr=False)
    size_type: str = "percent"
    fill: str = "next_open"
    intrabar: str = "pessimistic"
    #: entries' order type: one of :data:`ORDER_TYPES`, or ``"mixed"`` when given per bar (``entry_types``)
    order_type: str = "market"
    on_gap: str = "warn"
    tif: int = 0
    init_cash: float = 10_000.0
    #: the highest leverage of the run (``Config.leverage``); per symbol in ``leverages`` (signals runs
    #: take a mapping; margin runs read ``param_dt.lev``)
    leverage: float = 1.0
    leverages: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0), repr=False)
    freq_ms: float | None = None
    #: cash account per symbol (0..k-1) and their number
    groups: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, dtype=np.int64), repr=False)
    n_groups: int = 1
    #: exchange filters applied (``filters=``), or None
    filters: dict | None = dataclasses.field(default=None, repr=False)
    #: aligned bars x symbols levels (None when not given)
    order_price: np.ndarray | None = dataclasses.field(default=None, repr=False)
    limit_price: np.ndarray | None = dataclasses.field(default=None, repr=False)
    sl_price: np.ndarray | None = dataclasses.field(default=None, repr=False)
    tp_price: np.ndarray | None = dataclasses.field(default=None, repr=False)
    #: exit fractions ``(1, n_symbols)`` or ``(n_bars, n_symbols)`` (NaN: 1); None: whole exits only
    exit_size: np.ndarray | None = dataclasses.field(default=None, repr=False)
    exit_size_per_bar: bool = False
    #: ``order_type`` given per bar: ``(n_bars, n_symbols)`` int64 ``OrderType`` codes (None: one type)
    entry_types: np.ndarray | None = dataclasses.field(default=None, repr=False)
    #: options of issue 15 (accumulate, reenter, finalize_trades, entry_size, ind_stop, td_stop, min_roi,
    #: borrow_rate), validated (:mod:`nbtrade.engine.orders`); None in weights runs
    orders: OrderOptions | None = None
    #: margin settings (``nbtrade.margin.MarginSettings``: maintenance tiers per symbol, liquidation fee) of
    #: runs taking ``maintenance``/``liquidation_fee`` (signals); None elsewhere (default tiers)
    margin: Any = dataclasses.field(default=None, repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, market: Market, mode: str = "signals", **options: Any) -> "RunConfig":
        """Validate ``options`` (keywords of the ``mode`` front end) against ``market``'s symbols, index and
        metadata; every refusal names the argument. Options not given take their defaults."""
        if mode not in MODE_OPTIONS:
            raise ValueError(f"unknown mode {mode!r}; expected one of {', '.join(map(repr, MODE_OPTIONS))}")
        allowed = MODE_OPTIONS[mode]
        unknown = [k for k in options if k not in allowed]
        if unknown:
            from .._names import check_kwargs

            check_kwargs(f"backtest ({mode})", unknown, allowed)
        opt = {k: options.get(k, DEFAULTS[k]) for k in allowed}
        syms = list(market.symbols)
        exch = exchange_filters(market, opt["filters"], {k: opt[k] for k in ("lot_size", "min_qty", "min_notional")})
        if exch is not None:
            opt["lot_size"], opt["min_qty"], opt["min_notional"] = exch["step_size"], exch["min_qty"], exch["min_notional"]
        size_type = opt.get("size_type", "percent")
        choice(size_type, "size_type", SIZE_TYPES)
        fill = opt["fill"]
        choice(fill, "fill", FILLS)
        intrabar = opt.get("intrabar", "pessimistic")
        choice(intrabar, "intrabar", INTRABAR)
        on_gap = choice(opt["on_gap"], "on_gap", ON_GAP)
        groups = cash_groups(opt.get("cash_sharing", True), syms)
        values: dict[str, np.ndarray] = {}
        for key, spec in PER_SYMBOL.items():
            if key not in allowed:
                continue
            if key == "size":
                values[key] = default_size(opt[key], size_type, groups, syms)
            elif key == "maker_fees" and opt[key] is None:
                values[key] = np.full(len(syms), np.nan)
            else:
                values[key] = per_symbol(opt[key], key, syms, spec.default, positive=spec.positive,
                                         allow_none=spec.allow_none, upper=spec.upper, hint=spec.hint)
            if key == "fixed_fees":
                check_fixed_fees(values[key], scalar(opt["init_cash"], "init_cash"), syms)
        init_cash = scalar(opt["init_cash"], "init_cash")
        leverages = per_symbol_leverage(opt["leverage"], syms, per_symbol="maintenance" in allowed)
        leverage = float(leverages.max()) if len(leverages) else 1.0
        if "size" in values:
            check_sizing(values["size"], size_type, leverages if len(leverages) else leverage, syms)
        freq_ms = resolve_freq_ms(opt["freq"], market)
        margin = None
        if "maintenance" in allowed:  # validates the tiers and leverage <= the first tier's max_leverage
            from ..margin import margin_settings

            lev_arg = opt["leverage"].to_dict() if isinstance(opt["leverage"], pd.Series) else opt["leverage"]
            margin = margin_settings(syms, instrument=opt["instrument"], leverage=lev_arg,
                                     maintenance=opt["maintenance"], liquidation_fee=opt["liquidation_fee"],
                                     margin=opt["margin"])
        params = param_records(values, len(syms))
        # per column only when they differ (0: the run's leverage; the kernel then skips the per-column reads)
        params["lev"] = leverages if len(leverages) and np.ptp(leverages) > 0 else 0.0
        fields: dict[str, Any] = dict(
            mode=mode, symbols=tuple(syms), params=params, values=types.MappingProxyType(values), size_type=size_type, fill=fill,
            intrabar=intrabar, on_gap=on_gap, init_cash=init_cash, leverage=leverage, leverages=leverages,
            freq_ms=freq_ms,
            groups=groups, n_groups=int(groups.max()) + 1 if len(groups) else 1, filters=exch, margin=margin)
        if mode != "weights":
            fields.update(_levels(market, mode, opt))
            orders = order_options(market, size_type=size_type, order_type=fields["order_type"], freq_ms=freq_ms,
                                   mode=mode, **{k: opt[k] for k in ORDER_KEYWORDS})
            fields["orders"] = orders
            fields["params"] = orders.apply_params(params)
        return cls(**fields)

    def check_market(self, market: Market, mode: str) -> None:
        """Refuse to run with a configuration built for another mode or market (other symbols or bars)."""
        if self.mode != mode:
            raise ValueError(f"this RunConfig was built for mode {self.mode!r}, not {mode!r}: "
                             f"RunConfig.build(market, {mode!r}, ...)")
        if self.symbols != tuple(market.symbols):
            raise ValueError(f"this RunConfig was built for symbols {list(self.symbols)[:5]}, the market has "
                             f"{list(market.symbols)[:5]}: build it on the market it runs on")
        for level in (self.order_price, self.limit_price, self.sl_price, self.tp_price, self.entry_types):
            if level is not None and level.shape[0] != market.shape[0]:
                raise ValueError(f"this RunConfig's price levels have {level.shape[0]} bars, the market "
                                 f"{market.shape[0]}: build it on the market it runs on")

    def replace(self, **changes: Any) -> "RunConfig":
        """A copy with some fields changed (no validation: for callers that validated them)."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ what the kernels read
    @property
    def size_type_id(self) -> int:
        return int(SIZE_TYPES[self.size_type])

    @property
    def fill_id(self) -> int:
        return int(FILLS[self.fill])

    @property
    def intrabar_id(self) -> int:
        return int(INTRABAR[self.intrabar])

    @property
    def order_type_id(self) -> int:
        """``Config.order_type``: the run's type (``MARKET`` with per-bar types: the codes say each entry's)."""
        return int(ORDER_TYPES.get(self.order_type, OrderType.MARKET))

    @property
    def abs_stops(self) -> bool:
        """Whether absolute stop levels (``sl_price`` / ``tp_price``) are set."""
        return self.sl_price is not None or self.tp_price is not None

    @property
    def has_stops(self) -> bool:
        """Whether any symbol has attached stops (each entry may then end in one more order)."""
        if self.orders is not None and self.orders.has_stops:
            return True
        return self.abs_stops or any(bool(np.isfinite(self.values[k]).any())
                                     for k in ("sl_stop", "tp_stop", "trail_stop") if k in self.values)

    @property
    def reads_volume(self) -> bool:
        """Whether fills read the volume (``slippage_volume``)."""
        v = self.values.get("slippage_volume")
        return v is not None and bool((v > 0).any())

    def reads_ohlc(self) -> bool:
        """Whether a run reads open, high or low: fills at the open, resting entries, stops (checked on
        highs and lows, gaps filled at the open), range slippage, or a callback (``ctx`` shows them)."""
        if self.mode == "weights":
            return self.fill == "next_open"
        return (self.mode == "callback" or self.fill != "close" or self.order_type != "market" or self.has_stops
                or bool((self.values.get("slippage_range", np.zeros(1)) != 0).any()))

    def kernel_config(self, has_short: bool, partial: bool, per_order: bool = False) -> Any:
        """The kernels' ``Config`` record of a run (``has_short``, ``partial`` depend on its signals;
        ``per_order``: a callback run writing per-order sizes and absolute stops)."""
        from ..kernels.records import make_config

        extra = self.orders.config() if self.orders is not None else {}
        if per_order:
            extra["sizes"] = True
        if self.entry_types is not None:
            extra["entry_types"] = True
        return make_config(self.size_type_id, self.leverage, self.fill_id, self.intrabar_id, self.order_type_id,
                           self.tif, has_short, self.abs_stops or per_order, partial, **extra)

    def check_stops(self, has_short: bool) -> None:
        """``sl_stop >= 1`` puts a long's stop at or below a price of 0: it can never trigger."""
        sl = self.values.get("sl_stop")
        if sl is None or has_short:
            return
        with np.errstate(invalid="ignore"):
            bad = sl >= 1.0
        if bad.any():
            j = int(np.argmax(bad))
            raise ValueError(f"sl_stop must be < 1 for long positions (a fraction of the entry price: {sl[j]} puts "
                             f"the stop at or below 0, it can never trigger) ({self.symbols[j]}). Only short "
                             f"positions can use sl_stop >= 1 (stop above twice the entry price)")

    # ------------------------------------------------------------------ assumptions
    def describe(self, key: str) -> Any:
        """A per-symbol option as reported: one number when all symbols share it, else ``{symbol: value}``."""
        return describe(self.values[key], list(self.symbols))

    def assumptions(self, *, gaps: int, delayed: int, exit_frac: np.ndarray | None = None,
                    no_candles: list = ()) -> dict:
        """``Result.assumptions`` of a run with this configuration (``gaps`` found, orders ``delayed``
        waiting for a candle, the fractions partial exits close (None: whole exits), symbols without any
        candle). The parts that depend on the configuration alone are computed once."""
        out = dict(self._fixed_assumptions)
        key = "delayed_orders" if self.mode == "weights" else "delayed_signals"
        out["gaps"], out[key] = int(gaps), int(delayed)
        if self.mode != "weights":
            out["exit_size"] = ("all" if exit_frac is None else "per bar" if exit_frac.shape[0] > 1
                                else describe(exit_frac[0], list(self.symbols)))
        if self.orders is not None:
            out.update(self.orders.describe(list(self.symbols)))
        if no_candles:
            out["symbols_without_candles"] = list(no_candles)
        if self.filters is not None:
            out["filters"] = self.filters["describe"]
        return out

    @functools.cached_property
    def _fixed_assumptions(self) -> dict:
        """The assumptions of every run with this configuration (in their reported order; the per-run
        entries hold placeholders)."""
        gaps = delayed = 0
        exit_frac = None
        fill = self.fill
        at = "open" if fill == "next_open" else "close"
        if self.mode == "weights":
            out = {
                "fill": fill,
                "fill_rule": ("weights at bar t fill at bar t+1's open" if fill == "next_open"
                              else "weights at bar t fill at bar t's close (optimistic)"),
                "rebalance": "w * equity / ((1 + fees) * (1 + slippage) * price) units; shrinking orders first",
                "fees": self.describe("fees"), "fixed_fees": self.describe("fixed_fees"),
                "slippage": self.describe("slippage"),
                "leverage": self.leverage, "init_cash": self.init_cash, "cash_sharing": True,
                "valuation": "last valid close (never used as a fill price)",
                "open_trades": "reported with exit_reason 'end' at the last valid close, no exit fees",
                "days_per_year": 365,
                "gaps": int(gaps),
                "missing_data": ("a target whose fill bar has no candle waits for the symbol's next candle and is "
                                 f"sized and filled at its {at} (orders record the fill bar); a newer weight "
                                 "replaces it; none before the end: rejected no_data on the last bar"),
                "delayed_orders": int(delayed),
            }
        else:
            waits = (f"an order due on a bar with no candle waits for the symbol's next candle and fills at its "
                     f"{at} (orders record the fill bar); ")
            if self.mode == "callback":  # the callback waits in both fill modes
                missing_rule = waits + "signals set while one waits, on bars with no candle, are ignored"
            else:
                missing_rule = (waits if fill == "next_open" else "") + "exits on bars with no candle are ignored"
            m = len(self.symbols)
            out = {
                "fill": fill,
                "fill_rule": ("signals at bar t fill at bar t+1's open" if fill == "next_open"
                              else "signals at bar t fill at bar t's close (optimistic)"),
                "stops": (("checked from the entry bar itself for entries at the open (the whole bar follows the "
                           "fill), " if fill == "next_open" else "active from the bar after entry, ")
                          + "and from the bar after a resting entry's fill; inclusive triggers; SL before TP in one "
                          "bar unless optimistic; gaps fill at the open; trailing level from the peak (entry price "
                          "included) before the current bar"),
                "intrabar": self.intrabar,
                "fees": self.describe("fees"), "fixed_fees": self.describe("fixed_fees"),
                "maker_fees": self.describe("maker_fees"),
                "slippage": self.describe("slippage"),
                "slippage_range": self.describe("slippage_range"),
                "slippage_volume": self.describe("slippage_volume"),
                "size": self.describe("size"), "size_type": self.size_type,
                "leverage": describe(self.leverages, list(self.symbols)) if len(self.leverages) else self.leverage, "init_cash": self.init_cash,
                "cash_sharing": (True if self.n_groups == 1 else
                                 {s: int(g) for s, g in zip(self.symbols, self.groups)} if self.n_groups < m
                                 else False),
                "order_type": "per bar" if self.entry_types is not None else self.order_type, "tif": int(self.tif), "absolute_stops": self.abs_stops,
                "exit_size": ("all" if exit_frac is None else "per bar" if exit_frac.shape[0] > 1
                              else describe(exit_frac[0], list(self.symbols))),
                "valuation": "last valid close (never used as a fill price)",
                "open_trades": "reported with exit_reason 'end' at the last valid close, no exit fees",
                "days_per_year": 365,
                "gaps": int(gaps),
                "missing_data": missing_rule,
                "delayed_signals": int(delayed),
            }
        return out


def _levels(market: Market, mode: str, opt: dict) -> dict:
    """Order type, time in force and the bars x symbols price levels and exit fractions, aligned to the
    market (the checks that depend on where the signals are happen in the run)."""
    order_type = opt["order_type"]
    tif = opt["tif"]
    if isinstance(tif, (bool, np.bool_)) or not isinstance(tif, (int, np.integer)) or tif < 0:
        raise ValueError(f"tif must be an integer >= 0 (bars; 0 = good till cancelled), got {tif!r}")
    limit_price, order_price = opt["limit_price"], opt["order_price"]
    if not isinstance(order_type, str):  # one type per entry: bars x symbols names or codes
        if mode == "callback":
            raise ValueError("order_type per bar (bars x symbols) is an input of the signals path; a callback "
                             "places each order with its own type")
        codes = entry_type_codes(order_type, market)
        out: dict[str, Any] = {"order_type": "mixed", "tif": int(tif), "entry_types": codes}
        if order_price is not None:
            out["order_price"] = float_levels(order_price, market, "order_price")
        if limit_price is not None:
            if not (codes == OrderType.STOP_LIMIT).any():
                raise ValueError("limit_price is only used by 'stop_limit' entries, and order_type has none")
            out["limit_price"] = float_levels(limit_price, market, "limit_price")
        order_type = "mixed"
    else:
        choice(order_type, "order_type", ORDER_TYPES)
        out = {"order_type": order_type, "tif": int(tif)}
    if order_type == "mixed":
        pass
    elif order_type == "stop_limit":
        if mode == "callback":
            raise ValueError("order_type='stop_limit' is not supported by backtest_callback")
        if limit_price is None:
            raise ValueError("order_type='stop_limit' needs limit_price (bars x symbols)")
        out["limit_price"] = float_levels(limit_price, market, "limit_price")
    elif limit_price is not None:
        raise ValueError("limit_price is only used with order_type='stop_limit'")
    if order_type == "mixed":
        pass
    elif order_type == "market":
        if order_price is not None:
            raise ValueError("order_price is only used with order_type='limit', 'stop' or 'stop_limit'")
    else:
        if order_price is None:
            raise ValueError(f"order_type={order_type!r} needs order_price (bars x symbols)")
        out["order_price"] = float_levels(order_price, market, "order_price")
    sl_price, tp_price = opt["sl_price"], opt["tp_price"]
    if (sl_price is not None or tp_price is not None) and mode == "callback":
        raise ValueError("sl_price / tp_price are not supported by backtest_callback; use sl_stop / tp_stop")
    for name, x in (("sl_price", sl_price), ("tp_price", tp_price)):
        if x is not None:
            arr = float_levels(x, market, name)
            with np.errstate(invalid="ignore"):
                if (arr <= 0).any():
                    raise ValueError(f"{name} must be > 0 where set (NaN = unset)")
            out[name] = arr
    if out.get("sl_price") is not None or out.get("tp_price") is not None:
        n, m = market.shape
        out.setdefault("sl_price", np.full((n, m), np.nan))
        out.setdefault("tp_price", np.full((n, m), np.nan))
    if opt["filters"] is not None and mode == "callback" and (order_type != "market"):
        raise ValueError("filters='exchange' rounds order prices by the side of each entry signal, which a "
                         "callback decides as it runs: use order_type='market' without sl_price/tp_price, or "
                         "round the prices in on_bar")
    frac, per_bar = exit_fractions(opt["exit_size"], market)
    if frac is not None and mode == "callback":
        raise ValueError("exit_size is not supported by backtest_callback: close a part with reduce_long_nb / "
                         "reduce_short_nb(ctx, i, c, fraction) in on_bar")
    out["exit_size"], out["exit_size_per_bar"] = frac, per_bar
    return out


# --------------------------------------------------------------------------------------------
# validators (each refusal names the argument)

def per_symbol(x: Any, name: str, symbols: list, default: float, *, positive: bool = False,
               allow_none: bool = False, upper: float | None = None, hint: str = "") -> np.ndarray:
    """A parameter given as scalar, ``{symbol: value}``, Series or sequence -> ``(n_symbols,)`` float64.

    ``hint`` ends the message of a value out of range (e.g. what the valid range means)."""
    m = len(symbols)
    if x is None:
        if allow_none:
            return np.full(m, np.nan)
        x = default
    if type(x) is float or type(x) is int:  # the common case, without the pandas type checks below
        v = float(x)
        if not np.isfinite(v) or (positive and v <= 0) or v < 0 or (upper is not None and v >= upper):
            return per_symbol(np.float64(v), name, symbols, default, positive=positive, allow_none=allow_none,
                              upper=upper, hint=hint)  # the general path words the error
        return np.full(m, v)
    if isinstance(x, Mapping):
        unknown = set(x) - set(symbols)
        if unknown:
            raise ValueError(f"{name} names unknown symbols {sorted(map(str, unknown))}")
        arr = np.array([np.nan if x.get(s) is None and allow_none else x.get(s, default) for s in symbols],
                       dtype=np.float64)
    elif isinstance(x, pd.Series):
        if set(x.index) != set(symbols):
            raise ValueError(f"{name} index must be data's symbols {symbols}")
        arr = x.reindex(symbols).to_numpy(dtype=np.float64)
    else:
        if isinstance(x, (bool, np.bool_)):
            raise TypeError(f"{name} must be a number, got {x!r}")
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be a number or one number per symbol, got {x!r}") from None
        if arr.ndim == 0:
            arr = np.full(m, float(arr))
        elif arr.shape != (m,):
            raise ValueError(f"{name} must be a scalar or have one value per symbol ({m}), got shape {arr.shape}")
    if np.isinf(arr).any() or (np.isnan(arr).any() and not allow_none):
        raise ValueError(f"{name} must be finite, got {arr}")
    with np.errstate(invalid="ignore"):
        if positive and (arr <= 0).any():
            raise ValueError(f"{name} must be > 0, got {arr[arr <= 0][0]}{hint}")
        if (arr < 0).any():
            raise ValueError(f"{name} must be >= 0, got {arr[arr < 0][0]}{hint}")
        if upper is not None and (arr >= upper).any():
            raise ValueError(f"{name} must be < {upper}, got {arr[arr >= upper][0]}{hint}")
    return np.ascontiguousarray(arr)


def choice(value: Any, name: str, options: Mapping | tuple) -> Any:
    """``value`` checked against ``options`` (its id when ``options`` maps names to ids)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, options))}")
    return options[value] if isinstance(options, Mapping) else value


def per_symbol_leverage(value: Any, symbols: list, *, per_symbol: bool) -> np.ndarray:
    """``leverage`` per symbol: one number for all, or (``per_symbol``: signals runs) a mapping or Series
    symbol -> leverage (symbols it lacks: 1). Each a finite number > 0; errors name ``leverage[symbol]``."""
    if isinstance(value, (Mapping, pd.Series)):
        if not per_symbol:
            raise TypeError(f"leverage must be a number in this mode (a mapping per symbol is for signals runs); "
                            f"got {type(value).__name__}")
        items = dict(value.items())
        unknown = [k for k in items if k not in symbols]
        if unknown:
            raise ValueError(f"leverage names symbols not in the data: {unknown}; symbols: {list(symbols)}")
        return np.array([scalar(items[s], f"leverage[{s!r}]") if s in items else 1.0 for s in symbols],
                        dtype=np.float64)
    return np.full(len(symbols), scalar(value, "leverage"))


def scalar(x: Any, name: str) -> float:
    """A finite number > 0."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {x!r}")
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return x


def resolve_freq_ms(freq: Any, market: Market) -> float | None:
    """Bar length in ms: from ``freq`` (timeframe string, Timedelta, pandas offset) or the market's index."""
    if freq is not None:
        from ..timeframes import TIMEFRAME_MS

        if isinstance(freq, str) and freq in TIMEFRAME_MS:
            return float(TIMEFRAME_MS[freq])
        try:
            td = pd.Timedelta(pd.tseries.frequencies.to_offset(freq)) if isinstance(freq, str) else pd.Timedelta(freq)
        except (ValueError, TypeError):
            raise ValueError(f"freq {freq!r} is not a timeframe ('1m', '1h', ...) or a timedelta") from None
        if td <= pd.Timedelta(0):
            raise ValueError(f"freq must be positive, got {freq!r}")
        return td / pd.Timedelta(milliseconds=1)
    return market.freq_ms


def cash_groups(cash_sharing: Any, symbols: list) -> np.ndarray:
    """Account number per symbol (0..k-1, in order of first appearance)."""
    m = len(symbols)
    if isinstance(cash_sharing, (bool, np.bool_)):
        return np.zeros(m, dtype=np.int64) if cash_sharing else np.arange(m, dtype=np.int64)
    if isinstance(cash_sharing, Mapping):
        missing = [s for s in symbols if s not in cash_sharing]
        if missing or len(cash_sharing) != m:
            raise ValueError(f"cash_sharing must give a group to every symbol and only to them; missing {missing}")
        labels = [cash_sharing[s] for s in symbols]
    elif isinstance(cash_sharing, (list, tuple, np.ndarray, pd.Series)):
        labels = list(cash_sharing.reindex(symbols)) if isinstance(cash_sharing, pd.Series) else list(cash_sharing)
        if len(labels) != m:
            raise ValueError(f"cash_sharing has {len(labels)} group labels for {m} symbols")
    else:
        raise TypeError(f"cash_sharing must be True, False or a group label per symbol, got {cash_sharing!r}")
    ids: dict = {}
    return np.array([ids.setdefault(label, len(ids)) for label in labels], dtype=np.int64)


def default_size(size: Any, size_type: str, groups: np.ndarray, symbols: list) -> np.ndarray:
    """``size`` per symbol; None: 1 / (symbols sharing its account) for the percent types, else 1."""
    if size is not None or size_type not in ("percent", "target_percent"):
        return per_symbol(size, "size", symbols, 1.0, positive=True)
    return 1.0 / np.bincount(groups)[groups].astype(np.float64)


def check_sizing(size: np.ndarray, size_type: str, leverage: float, symbols: list) -> None:
    """Sizes that no order could ever satisfy are an error, not a run of rejected orders."""
    if size_type == "percent" and (size > 1.0).any():
        j = int(np.argmax(size > 1.0))
        raise ValueError(f"size must be <= 1 with size_type='percent' (a fraction of the free margin, 1.0 = all-in); "
                         f"got {size[j]} ({symbols[j]}): every entry would be rejected for insufficient cash. "
                         f"For more exposure raise leverage")
    if size_type == "target_percent" and (size > leverage).any():
        j = int(np.argmax(size > leverage))
        lev = float(np.broadcast_to(leverage, size.shape)[j])
        raise ValueError(f"size must be <= leverage ({lev}) with size_type='target_percent'; got {size[j]} "
                         f"({symbols[j]}): such a position needs more margin than the equity and every entry "
                         f"would be rejected. Raise leverage or lower size")


def check_fixed_fees(fixed: np.ndarray, init_cash: float, symbols: list) -> None:
    """Fixed fees must stay below the starting cash (else no order can fill)."""
    bad = fixed >= init_cash
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"fixed_fees ({fixed[j]}, {symbols[j]}) must be below init_cash ({init_cash}): "
                         f"it is a fee per order in quote currency, and no order could ever pay it")


def param_records(values: Mapping[str, np.ndarray], m: int) -> np.ndarray:
    """The per-symbol options (``(n_symbols,)`` arrays by keyword; missing ones 0) as ``param_dt`` records."""
    packed = np.zeros(m, dtype=param_dt)
    for key, spec in PER_SYMBOL.items():
        if key in values:
            packed[spec.field] = values[key]
    return packed


def describe(arr: np.ndarray, symbols: list) -> Any:
    """One number when every symbol has the same value (None for NaN), else ``{symbol: value}``."""
    if np.all(arr == arr[0]) or np.all(np.isnan(arr)):
        v = float(arr[0])
        return None if np.isnan(v) else v
    return {s: (None if np.isnan(v) else float(v)) for s, v in zip(symbols, arr)}


def entry_type_codes(x: Any, market: Market) -> np.ndarray:
    """``order_type`` given per bar as ``(n_bars, n_symbols)`` int64 ``OrderType`` codes: a DataFrame (matched
    by label, ``panel.align``) or array of names (``"market"``, ``"limit"``, ``"stop"``, ``"stop_limit"``) or
    codes (0-3, as :data:`ORDER_TYPES`); None / NaN (and symbols left out): ``"market"``. Only the cells of
    entry signals are read. An unknown name or code is refused, naming its bar and symbol."""
    names = ", ".join(map(repr, ORDER_TYPES))
    frame = x.to_frame() if isinstance(x, pd.Series) else x
    vals = np.asarray(frame.values if isinstance(frame, pd.DataFrame) else frame)
    if vals.dtype.kind in "OUS":
        codes = np.full(vals.shape, np.nan)
        for v in pd.unique(vals.ravel()):
            cells = vals == v
            if v is None or (isinstance(v, float) and v != v):
                continue
            if isinstance(v, str) and v in ORDER_TYPES:
                codes[cells] = float(ORDER_TYPES[v])
            elif not isinstance(v, str) and isinstance(v, (int, float, np.integer, np.floating)) \
                    and not isinstance(v, (bool, np.bool_)):
                codes[cells] = float(v)
            else:
                codes[cells] = -1.0  # refused below, with its place
                bad = np.argwhere(cells)[0]
                v = v.item() if isinstance(v, np.generic) else v
                raise ValueError(f"order_type: unknown order type {v!r}{_place(frame, market, bad)}; expected one "
                                 f"of {names} (or their codes 0-{len(ORDER_TYPES) - 1}), None / NaN: 'market'")
        x = pd.DataFrame(codes, index=frame.index, columns=frame.columns) if isinstance(frame, pd.DataFrame) \
            else codes
    elif vals.dtype.kind == "b":
        raise ValueError(f"order_type per bar must hold order type names ({names}) or codes, got booleans")
    arr = align(x, market, "order_type", "float")
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(arr) & ~np.isin(arr, np.arange(len(ORDER_TYPES), dtype=np.float64))
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(f"order_type: unknown order type code {float(arr[t, j])!r} at {market.index[t]} "
                         f"({market.symbols[j]}); expected {names} or codes 0-{len(ORDER_TYPES) - 1}")
    return np.ascontiguousarray(np.where(np.isnan(arr), float(OrderType.MARKET), arr).astype(np.int64))


def _place(frame: Any, market: Market, cell: np.ndarray) -> str:
    """`` at <bar> (<symbol>)`` of a cell of an input (labels of a DataFrame, else the market's)."""
    t, j = (int(cell[0]), int(cell[1])) if len(cell) > 1 else (int(cell[0]), 0)
    if isinstance(frame, pd.DataFrame):
        return f" at {frame.index[t]} ({frame.columns[j]})"
    syms = list(market.symbols)
    return f" at {market.index[t]} ({syms[j] if j < len(syms) else j})" if t < market.shape[0] else ""


def float_levels(x: Any, market: Market, name: str) -> np.ndarray:
    """A float (bars x symbols) input matched to the data by label (``panel.align``; symbols it lacks
    get NaN); NaN allowed, inf not."""
    arr = align(x, market, name, "float")
    if np.isinf(arr).any():
        raise ValueError(f"{name} must not contain inf")
    return arr


def exit_fractions(x: Any, market: Market) -> tuple[np.ndarray | None, bool]:
    """``exit_size`` as ``(fractions, per_bar)``: None when every exit closes all, else ``(1, n_symbols)``
    per symbol or ``(n_bars, n_symbols)`` per bar (NaN where no exit signal: 1). Per-bar values are
    checked where the exit signals are, by the run (:func:`check_exit_fractions`)."""
    n, m = market.shape
    symbols = list(market.symbols)
    if type(x) is float and x == 1.0 or type(x) is int and x == 1:
        return None, False
    one_series = m == 1 and n > 1 and (
        (isinstance(x, np.ndarray) and x.ndim == 1 and len(x) == n)
        or (isinstance(x, pd.Series) and len(x) == n and not set(x.index) <= set(symbols)))
    if isinstance(x, pd.DataFrame) or (isinstance(x, np.ndarray) and x.ndim == 2) or one_series:
        return float_levels(x, market, "exit_size"), True
    arr = per_symbol(x, "exit_size", symbols, 1.0, positive=True)
    if (arr > 1).any():
        raise ValueError(f"exit_size must be a fraction in (0, 1] of the position, got {arr[arr > 1][0]}")
    if (arr == 1.0).all():
        return None, False
    return np.ascontiguousarray(arr[None, :]), False


def check_exit_fractions(cfg: RunConfig, market: Market, at_exit: np.ndarray) -> tuple[bool, np.ndarray]:
    """``(partial, fractions)`` for the kernel: per-bar values must lie in (0, 1] at every exit signal."""
    arr = cfg.exit_size
    if arr is None:
        return False, np.ones((1, 1))
    if cfg.exit_size_per_bar:
        with np.errstate(invalid="ignore"):
            bad = at_exit & ~((arr > 0) & (arr <= 1))
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"exit_size must be in (0, 1] at every exit signal; got {arr[t, j]} at "
                             f"{market.index[t]} ({market.symbols[j]})")
        arr = np.where(np.isnan(arr), 1.0, arr)
        if (arr == 1.0).all():
            return False, np.ones((1, 1))
        return True, np.ascontiguousarray(arr)
    return True, arr


def exchange_filters(market: Market, filters: Any, by_hand: dict) -> dict | None:
    """The per-symbol exchange filters a run applies (``filters="exchange"`` or a table), or None."""
    if filters is None:
        return None
    if isinstance(filters, str):
        if filters != "exchange":
            raise ValueError(f"unknown filters {filters!r}; expected None, 'exchange' or a filters table "
                             f"(nbtrade.fetch_filters(exchange, symbols))")
    else:
        market = market.with_filters(filters)
    given = [k for k, v in by_hand.items() if not (isinstance(v, (int, float)) and v == 0)]
    if given:
        raise ValueError(f"{', '.join(given)} and filters='exchange' both set the exchange filters: give one "
                         f"(the exchange's filters are in Result.assumptions['filters'])")
    meta = market.meta
    has = meta["has_filters"].to_numpy(dtype=bool) if "has_filters" in meta else np.zeros(len(market.symbols), bool)
    if not has.all():
        lacking = [s for s, h in zip(market.symbols, has) if not h]
        raise ValueError(f"filters='exchange' but no exchange filters for {few(lacking)}: attach them with "
                         f"Market(data).with_filters(nbtrade.fetch_filters_sync(exchange, symbols)) or pass "
                         f"filters=<table>; nbtrade does not guess a symbol's filters")
    out = {c: np.nan_to_num(meta[c].to_numpy(dtype=np.float64), nan=0.0) for c in FILTER_COLUMNS}
    prov = [c for c in ("exchange", "filters_source", "filters_fetched_at") if c in meta]
    out["describe"] = {s: {**{c: (None if np.isnan(v) else float(v)) for c, v in
                              zip(FILTER_COLUMNS, meta.loc[s, list(FILTER_COLUMNS)].to_numpy(dtype=np.float64))},
                           **{c.replace("filters_", ""): (None if meta.loc[s, c] is None else str(meta.loc[s, c]))
                              for c in prov},
                           "max_qty_enforced": False}
                       for s in market.symbols}
    return out


def few(symbols: list, k: int = 5) -> str:
    """The first ``k`` symbols, and how many more."""
    names = ", ".join(map(str, symbols[:k]))
    return names + (f" and {len(symbols) - k} more" if len(symbols) > k else "")
