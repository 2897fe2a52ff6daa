"""Callback front end: :func:`backtest_callback` = market + :class:`RunConfig` + a numba ``on_bar(ctx, i)``
-> kernel -> Result (the class API's runs use :func:`run_callback` with a config built once)."""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import numpy as np

from .._names import check_kwargs
from ..kernels.records import Option, order_dt, trade_dt
from ..panel import Market
from ..result import Result
from .options import MODE_OPTIONS, RunConfig
from .orders import order_levels
from .run import RunData, checked_volume, grow, prepare_data, run_prices, warn_no_candles, warn_rejected

__all__ = ["backtest_callback", "run_callback"]

#: Initial record buffer of the callback path (orders); grown by doubling as needed.
_CALLBACK_BUFFER = 1024


def backtest_callback(data: Any, on_bar: Any, *, user: tuple = (), per_order: bool = False,
                      **kwargs: Any) -> Result:
    """Backtest a strategy written as a numba-compiled callback ``on_bar(ctx, i)``.

    After each bar's intrabar phase (stops) the engine calls ``on_bar(ctx, i)``; it reads
    prices up to bar ``i``, live positions and cash, and your arrays in ``ctx.user``, and
    sets signals for bar ``i`` with ``enter_long_nb(ctx, i, c)``, ``exit_long_nb``,
    ``enter_short_nb``, ``exit_short_nb`` and, to close a part, ``reduce_long_nb(ctx, i, c,
    fraction)`` / ``reduce_short_nb`` (from ``nbtrade.kernels.callback``). Those act
    exactly like precomputed signals given to :func:`backtest` (same fill timing, stops,
    costs, sizing and records); the signals written are in ``Result.signals``.

    Parameters
    ----------
    data
        As for :func:`backtest`.
    on_bar : numba ``@njit`` function ``(ctx, i) -> None``
        Compiled together with the engine (first run of a new callback compiles: seconds).
        With ``NUMBA_DISABLE_JIT=1`` the same strategy runs as plain Python, for debugging.
    user : tuple of arrays
        Handed to the callback as ``ctx.user``.
    per_order : bool
        True: ``on_bar`` may give each entry its own size and absolute stop-loss / take-profit
        (``order_nb(ctx, i, c, size, sl, tp, stop)``) and move an indicator stop
        (``trail_stop_nb(ctx, i, c, level)``) and, with ``order_type="limit"`` / ``"stop"``, give a
        resting entry its level (``entry_level_nb(ctx, i, c, level)``), from ``nbtrade.kernels.callback``;
        without ``order_type`` / ``order_price``, give each entry its own type and levels
        (``entry_order_nb(ctx, i, c, OrderType.LIMIT, price, limit)``: market, limit, stop and stop-limit
        entries in one run; the engine reads the types from the first entry that is not a market one);
        costs four bars x symbols float arrays (a market run: three more, the types and levels). False (default): those helpers do not compile (``ctx.orders`` is None).
    **kwargs
        Any keyword of :func:`backtest` except the signals.

    Examples
    --------
    >>> from numba import njit
    >>> from nbtrade.kernels.callback import enter_long_nb, exit_long_nb
    >>> @njit
    ... def on_bar(ctx, i):
    ...     fast, slow = ctx.user
    ...     for c in range(ctx.close.shape[1]):
    ...         if ctx.position[c] == 0.0 and fast[i, c] > slow[i, c]:
    ...             enter_long_nb(ctx, i, c)
    ...         elif ctx.position[c] > 0.0 and fast[i, c] < slow[i, c]:
    ...             exit_long_nb(ctx, i, c)
    """
    for key in ("entries", "exits", "short_entries", "short_exits"):
        if key in kwargs:
            raise TypeError(f"backtest_callback takes no {key}: on_bar writes the signals")
    if not callable(on_bar):
        raise TypeError(f"on_bar must be a numba @njit function (ctx, i) -> None, got {type(on_bar).__name__}")
    if not isinstance(user, tuple):
        raise TypeError("user must be a tuple of arrays (use (arr,) for one)")
    check_kwargs("backtest_callback()", kwargs, _keywords())
    market = prepare_data(data)
    if not isinstance(per_order, (bool, np.bool_)):
        raise TypeError(f"per_order must be True or False, got {per_order!r}")
    cfg = RunConfig.build(market, "callback", **kwargs)
    if per_order and cfg.order_type != "market":  # entry_level_nb writes levels: never into the caller's array
        cfg = dataclasses.replace(cfg, order_price=cfg.order_price.copy())
    return run_callback(market, cfg, on_bar, user, bool(per_order))


def _keywords() -> list[str]:
    """Keywords of :func:`backtest_callback` besides ``user``: those of :func:`nbtrade.backtest` but the signals,
    in its order (for "did you mean")."""
    from .signals import backtest

    return [k for k in inspect.signature(backtest).parameters if k in MODE_OPTIONS["callback"]]


def run_callback(market: Market, cfg: RunConfig, on_bar: Any, user: tuple, per_order: bool = False,
                 entry_types: np.ndarray | None = None, limit_price: np.ndarray | None = None,
                 live: np.ndarray | None = None) -> Result:
    """One callback run on ``market`` with a validated ``cfg`` (mode ``"callback"``); ``per_order``: the
    callback writes per-order sizes and absolute stop levels (``kernels.callback.order_nb``; bars x symbols
    arrays are allocated for them, zeros: 0 reads as unset). ``entry_types`` (with ``per_order``, a market
    run): each entry's own type, int64 ``OrderType`` codes (bars x symbols, 0 = market) written by the
    callback as the bars go by, its level in ``cfg.order_price`` and a stop-limit's limit in ``limit_price``
    (both bars x symbols); allocated here for a per-order market run without ``order_price`` when not given.

    Such a run starts as a plain market run (the kernel variant every per-order run compiles) and takes
    the per-entry-type variant (``Option.ENTRY_TYPES``) only once the callback asks for it: it sets
    ``live[2] = kernels.callback.SWITCH_TYPES`` (``live``: the run's ``(3,)`` int64 ``ctx.orders.live``,
    zeros, the caller's so that its Python code can write it) in the ``on_bar`` call of the first entry of
    another type; the loop returns right after that call and resumes the same bar with the types. The
    books are the caller's arrays and every entry before was a market one: the result is the one of a
    run with the types from the start, and runs that never ask compile nothing more."""
    from ..kernels import callback
    from ..kernels.records import Books, Levels, Prices as PriceArrays, Signals, counts_dt, new_state

    cfg.check_market(market, "callback")
    n, m = market.shape
    # the callback writes the signals as the bars go by
    sig = {k: np.zeros((n, m), dtype=np.bool_) for k in ("entries", "exits", "short_entries", "short_exits")}
    cfg.check_stops(True)
    data = RunData(market, cfg)
    inputs = run_prices(market, cfg)
    oprice = inputs.close if cfg.order_price is None else cfg.order_price
    volume = checked_volume(inputs) if cfg.reads_volume else inputs.close  # else never read
    cash = np.empty(n)
    equity = np.empty(n)
    state, acct, counts = new_state(cfg.groups), np.full(cfg.n_groups, cfg.init_cash), np.zeros(1, dtype=counts_dt)
    touched = np.zeros(n, dtype=np.bool_)  # bars where the callback set a signal
    exit_frac, handed = np.ones(m), np.ones((1, m))  # partial closes: ctx.exit_size, what the handler reads
    nan = np.full((1, 1), np.nan)
    prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, volume)
    signals = Signals(sig["entries"], sig["exits"], sig["short_entries"], sig["short_exits"])
    extra = order_levels(cfg.orders)
    if per_order:
        # entry_level_nb writes the resting entries' levels into cfg.order_price (the front ends hand a copy
        # per run). A market run without order_price may mix entry types (entry_order_nb, Python next's
        # buy(limit=/stop=)): the types, levels and stop-limits' limits as bars x symbols arrays.
        # The per-order fields (size, indicator stop, sl, tp) and the types are zeros, views of one np.zeros
        # block: the kernels read a field's 0 (and NaN, the signals path's) as unset (kernels.engine.level_at;
        # order_nb / trail_stop_nb refuse values <= 0) and a type's 0 as market. NaN-filled arrays cost a write
        # of every cell per run (~4 ms of issue 15's benchmark, 500,000 bar-steps); separate zeroed arrays
        # came back from glibc's heap page-faulted or cleared again each run. The levels and limits of resting
        # entries are np.empty: only the cells entry_order_nb writes with a non-market type are ever read
        mixed = cfg.order_type == "market" and entry_types is None and cfg.order_price is None
        block = np.zeros((5 if mixed else 4, n, m))
        if mixed:
            entry_types = block[4].view(np.int64)
            oprice, limit_price = np.empty((2, n, m))
        elif cfg.order_type == "market" and entry_types is None:
            oprice = np.full((1, 1), np.nan)
        from ..kernels.records import OrderLevels

        # entry_types: given to the kernel once the callback asks (below)
        extra = OrderLevels(block[0], block[1], np.ones((1, 2)) if extra is None else extra.roi)
        lprice = nan if entry_types is None else limit_price
        levels = Levels(oprice, lprice, block[2], block[3], handed, extra)
    else:
        levels = Levels(oprice, nan, nan, nan, handed, extra)
    margin_on, mark_note = False, None
    params = cfg.params
    ms = cfg.margin
    if ms is not None:
        # (a callback run reads the whole candles: liquidation checks their lows and highs)
        levels, params, margin_on, mark_note = margin_inputs(market, inputs, cfg, levels)
    kcfg = cfg.kernel_config(True, True, per_order)
    if margin_on:
        kcfg = kcfg._replace(options=kcfg.options | Option.MARGIN)
    else:  # a run without margin does not compile the margin phases (records.config_variant)
        from ..kernels.records import ALL_CAPS, Cap, config_variant

        kcfg = config_variant(kcfg, ALL_CAPS & ~Cap.MARGIN)
    if per_order:
        kcfg = kcfg._replace(options=kcfg.options | Option.IND_STOP)
        # the kernel skips the stop checks of per-order stops until an order sets one (ctx.orders.live)
        if live is None:
            live = np.zeros(3, dtype=np.int64)
    else:
        live = None
    # ctx.orders.entry_type: what entry_order_nb / the Python next write ((1, 1): a run-level type)
    types_out = None if not per_order else np.full((1, 1), -1, dtype=np.int64) if entry_types is None \
        else entry_types
    typed = False
    # the number of orders is unknown beforehand: start at one per 64 bar-steps (untouched pages
    # of np.empty cost nothing), so that long runs do not copy their records over and over
    orders = np.empty(max(_CALLBACK_BUFFER, 16 * m, n * m // 64), dtype=order_dt)
    trades = np.empty(max(_CALLBACK_BUFFER // 2, 8 * m, n * m // 128), dtype=trade_dt)
    start = 0
    while True:
        start = callback.simulate_callback_nb(on_bar, user, prices, signals, levels, kcfg, params, touched,
                                              exit_frac, start, Books(state, acct, counts, orders, trades), cash,
                                              equity, live, types_out)
        if start >= n:
            break
        if not typed and live is not None and live[2] == callback.SWITCH_TYPES:
            if entry_types is None:
                raise ValueError("run_callback: the callback asked for per-entry order types (SWITCH_TYPES) in "
                                 "a run without entry_types")
            # the entries' own types from here on (Python next: buy(limit=/stop=) in a market run)
            typed = True
            levels = levels._replace(extra=levels.extra._replace(entry_type=entry_types))
            kcfg = kcfg._replace(options=kcfg.options | Option.ENTRY_TYPES)
            continue
        orders, trades = grow(orders, trades, counts, m)
    k = counts[0]
    orders, trades = orders[:k["orders"]], trades[:k["trades"]]
    assumptions = cfg.assumptions(gaps=len(data.gaps), delayed=int(k["delayed"]), no_candles=data.no_candles)
    res = Result(inputs=inputs, orders=orders, trades=trades, cash=cash, equity=equity,
                 init_cash=cfg.init_cash * cfg.n_groups, freq_ms=cfg.freq_ms, gaps=data.gaps,
                 assumptions=assumptions, symbol_init_cash=None if cfg.n_groups == 1 else cfg.init_cash)
    if margin_on:
        assumptions.update(margin_notes(ms, mark_note))
        if levels.marks is not None:
            res.funding_rows = (levels.marks.f_bar, levels.marks.flows)  # sparse rows, as the signals path
    res._signal_arrays = sig  # DataFrames built on first access of Result.signals
    warn_no_candles(data.no_candles)
    warn_rejected(res.order_records, k["rejected"], cfg.size_type, market_only=cfg.order_type == "market" and not typed)
    return res


def margin_inputs(market: Market, inputs: Any, cfg: RunConfig, levels: Any) -> tuple[Any, np.ndarray, bool, Any]:
    """``(levels, params, margin_on, mark note)`` of a callback run with the margin settings ``cfg.margin``:
    the rule of the signals path (:func:`nbtrade.engine.signals.run_signals`) where the callback cannot know
    beforehand whether it will go short: the isolated margin rule (or cross) on perpetuals (any leverage)
    and on spot with leverage > 1 or per-symbol leverages; an unlevered spot run stays a cash account (its
    shorts included: refused options say so). Perpetuals read the mark candles and funding
    (``signals.perp_marks``)."""
    from .signals import margin_params, perp_marks

    ms = cfg.margin
    if not check_margin(cfg):
        return levels, cfg.params, False, None
    note = None
    if ms.any_perp:
        levels, note = perp_marks(market, inputs, ms, levels)
    params = margin_params(cfg.params, list(ms.tiers), ms.liquidation_fee)
    return levels, params, True, note


def check_margin(cfg: RunConfig) -> bool:
    """Whether a callback run of ``cfg`` follows the margin rule (see :func:`margin_inputs`); refuses the
    margin options it cannot honour (maintenance tiers or a liquidation fee on an unlevered spot run; cross
    margin with spot symbols or split cash), naming the argument. Needs no data: the class API checks at
    construction."""
    from .signals import check_cross, spot_margin

    ms = cfg.margin
    if ms is None:
        return False
    margin_on = spot_margin(cfg.leverage, False) or ms.any_perp or bool(np.ptp(cfg.leverages) > 0)
    if not margin_on:
        ms.refuse_margin_only()
    if ms.margin == "cross":
        check_cross(cfg, ms)
    return margin_on


def margin_notes(ms: Any, mark_note: Any) -> dict[str, str]:
    """The ``assumptions`` entries of a margined run (``"mark"``: a ``signals.MarkNote``; ``"margin"``), worded
    as the signals path's."""
    out = {} if mark_note is None else {"mark": str(mark_note)}
    if ms.margin == "cross":
        out["margin"] = ("cross margin (nbtrade.margin): one wallet backs every perpetual; liquidated when "
                         "its margin balance (cash + unrealised PnL, every position at its adverse mark "
                         "extreme of the bar, at the mark open before the open's orders) is at or below the "
                         "sum of maintenance margins: every position then closes at its cross liquidation "
                         "price (the mark open through a gap), fees from the wallet, a wallet below zero "
                         "brought back to zero; checked before the bar's stops")
    else:
        out["margin"] = ("isolated margin rule (nbtrade.margin; leverage > 1 or shorts): margin = entry "
                         "notional / leverage, liquidation at the liquidation price against the candle's "
                         "low (long) / high (short), at the open through a gap; spot has no mark price: "
                         "the price candle is the mark; no funding, no borrow interest unless borrow_rate")
    return out
