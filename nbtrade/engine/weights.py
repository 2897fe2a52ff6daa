"""Weights front end: :func:`backtest_weights` = market + :class:`RunConfig` + target weights -> kernel -> Result."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._names import suggest_kwargs
from ..kernels.records import order_dt, trade_dt
from ..panel import Market
from ..result import Result
from .options import RunConfig, float_levels
from .run import RunData, prepare_data, run_prices, warn_no_candles, warn_rejected

__all__ = ["backtest_weights", "run_weights"]


@suggest_kwargs
def backtest_weights(data: Any, weights: Any, *, rebalance_every: Any = 1, fees: Any = 0.0,
                     fixed_fees: Any = 0.0, slippage: Any = 0.0, init_cash: float = 10_000.0,
                     fill: str = "next_open", freq: Any = None, lot_size: Any = 0.0, min_qty: Any = 0.0,
                     min_notional: Any = 0.0, leverage: Any = 1.0, on_gap: str = "warn",
                     filters: Any = None, instrument: Any = "spot", margin: str | None = None,
                     maintenance: Any = None, liquidation_fee: Any = None) -> Result:
    """Backtest target portfolio weights, rebalanced on a schedule (one shared cash balance).

    Parameters
    ----------
    data
        As for :func:`backtest`.
    weights : DataFrame (bars x symbols) or array
        Target fraction of equity per symbol decided at each bar's close (negative =
        short, NaN = leave the position, or a target waiting for a candle, as is). Weights of bar ``t`` fill at bar
        ``t + 1``'s open (``fill="next_open"``) or at ``t``'s close (``fill="close"``).
    rebalance_every : int or bool array
        Act on the weights every that many bars (from bar 0), or on the bars where a
        boolean array (n_bars,) is True.
    fees, fixed_fees, slippage, init_cash, fill, freq, lot_size, min_qty, min_notional, on_gap
        As for :func:`backtest`.
    leverage : float, or (perpetual runs) {symbol: leverage} / Series by symbol (missing symbols: 1)
        Margin per unit of notional is ``1 / leverage``: a weight up to ``leverage`` (in absolute
        value, summed over the symbols) fits the equity. Spot runs take one number; spot with
        leverage > 1 or a negative weight (a short) follows the isolated margin rule of a perpetual
        without funding (``nbtrade.margin``, "Spot with leverage"): each position is liquidated at its
        liquidation price against the candle's low (long) / high (short), as in :func:`backtest`.
    instrument, margin, maintenance, liquidation_fee
        Perpetuals, as for :func:`backtest`: ``instrument="perp"`` (or a mapping symbol -> kind) makes
        each position an isolated-margin position (margin = entry notional / the symbol's leverage,
        an increase adds its own) liquidated on the mark-price candles (exit reason
        ``"liquidation"``; the price candles without them), paying or receiving funding at the
        data's funding times (``Result.funding``, ``Funding Paid [$]``); ``margin="cross"``: one
        wallet backs every position. Event order inside a bar: ``nbtrade.kernels.rebalance``
        (``simulate_weights_nb``). A weight of ``leverage`` on one symbol is the signals run's
        ``size=1`` all-in entry at that leverage. ``margin`` on a spot-only run is an error, and
        so are ``maintenance``/``liquidation_fee`` on an unmargined one (1x, no negative weight).
    filters : None, "exchange" or a filters table
        As for :func:`backtest` (weights place market orders: step size, ``min_qty`` and
        ``min_notional`` apply; there is no order price to round).

    Notes
    -----
    Each rebalance values the portfolio once at the prices of the moment, then targets
    ``w * equity / ((1 + fees) * (1 + slippage) * price)`` units per symbol, so a fully
    invested rebalance pays its own costs. Orders that shrink positions go first, then
    those that grow them; rejected orders are recorded with a reason (see
    ``nbtrade.kernels.rebalance``). Trades are round trips from flat to flat with
    quantity-weighted average entry and exit prices.

    Missing data: a symbol with no candle at the fill bar (not listed yet, delisted, a
    gap) cannot trade there. Its target weight waits for the symbol's next candle and
    trades at its open (``fill="next_open"``; at its close with ``fill="close"``),
    sized then from the equity of that moment, together with any rebalance due there;
    the orders record the bar they filled. A newer rebalance due at or before that
    candle with a weight for the symbol replaces the waiting target (a NaN weight
    leaves it waiting; a weight of 0 while flat cancels it). With no candle before the data ends
    the order is rejected (``NO_DATA``) on the last bar. ``assumptions["delayed_orders"]``
    counts the targets that waited. Prices are never forward-filled into fills.

    Examples
    --------
    >>> import nbtrade, pandas as pd
    >>> d = nbtrade.market(["BTC/USDT", "ETH/USDT"], "2024-01-01", "2024-01-08", "1h", seed=1)
    >>> w = pd.DataFrame(0.5, index=d["BTC/USDT"].index, columns=list(d))
    >>> res = backtest_weights(d, w, rebalance_every=24, fees=0.001)
    >>> bool(res.orders["status"].eq("filled").all())
    True
    """
    market = prepare_data(data)
    perp = perp_settings(market, leverage, instrument=instrument, margin=margin, maintenance=maintenance,
                         liquidation_fee=liquidation_fee)
    is_perp = perp is not None and perp.any_perp
    cfg = RunConfig.build(market, "weights", fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                          init_cash=init_cash, fill=fill, freq=freq, lot_size=lot_size, min_qty=min_qty,
                          min_notional=min_notional, leverage=1.0 if is_perp else leverage,
                          on_gap=on_gap, filters=filters)
    if is_perp:
        cfg = with_margin(cfg, perp)
    elif perp is not None:  # spot with maintenance / liquidation_fee: used if the run is margined
        cfg = cfg.replace(margin=perp)
    return run_weights(market, cfg, weights, rebalance_every)


def perp_settings(market: Market, leverage: Any, *, instrument: Any = "spot", margin: Any = None,
                  maintenance: Any = None, liquidation_fee: Any = None) -> Any:
    """The ``nbtrade.margin.MarginSettings`` of a weights run with perpetuals, or of a spot run given
    ``maintenance``/``liquidation_fee`` (used when it is margined: leverage > 1 or a negative weight;
    refused by :func:`run_weights` otherwise); None: a spot run without margin options."""
    from ..margin import margin_settings
    from .options import per_symbol_leverage

    syms = list(market.symbols)
    lev_arg = leverage.to_dict() if isinstance(leverage, pd.Series) else leverage
    ms = margin_settings(syms, instrument=instrument, margin=margin, leverage=1.0, maintenance=maintenance,
                         liquidation_fee=liquidation_fee)
    if not ms.any_perp:
        return ms if ms.margin_only_options() else None
    per_symbol_leverage(lev_arg, syms, per_symbol=True)  # numbers > 0, known symbols (errors name leverage[sym])
    return margin_settings(syms, instrument=instrument, margin=margin, leverage=lev_arg, maintenance=maintenance,
                           liquidation_fee=liquidation_fee)


def spot_margin_settings(cfg: RunConfig, market: Market, w: np.ndarray) -> Any:
    """The margin settings of a spot weights run that follows the margin rule (``signals.spot_margin``:
    leverage > 1, or a negative weight, i.e. a short), else None. Spot leverage is the isolated rule of a
    perpetual without funding (``nbtrade.margin``, "Spot with leverage"): the run's leverage for every
    symbol, its ``maintenance`` (default tiers) and ``liquidation_fee``. An unmargined run given those
    options is refused (``MarginSettings.refuse_margin_only``)."""
    from ..margin import MarginSettings, margin_settings
    from .signals import spot_margin

    ms = cfg.margin
    with np.errstate(invalid="ignore"):
        shorts = bool((w < 0).any())
    if not spot_margin(float(cfg.leverage), shorts):
        if ms is not None:
            ms.refuse_margin_only()
        return None
    syms = list(market.symbols)
    if ms is None:
        return margin_settings(syms, leverage=float(cfg.leverage))
    lev = tuple(t.check_leverage(float(cfg.leverage)) for t in ms.tiers)
    return MarginSettings(ms.instrument, ms.margin, lev, ms.tiers, ms.liquidation_fee)


def with_margin(cfg: RunConfig, ms: Any) -> RunConfig:
    """``cfg`` of a perpetual weights run: the per-symbol leverage (``param_dt.lev`` when they differ), the
    tiers and the liquidation fee in ``params`` (``signals.margin_params``), the settings kept."""
    from .signals import margin_params

    levs = np.asarray(ms.leverage, dtype=np.float64)
    params = margin_params(cfg.params, list(ms.tiers), ms.liquidation_fee)
    params["lev"] = levs if np.ptp(levs) > 0 else 0.0
    for f in ("sl", "tp", "trail"):  # no stops: the liquidation never gives way to one (margin_phase_nb)
        params[f] = np.nan
    return cfg.replace(margin=ms, leverage=float(levs.max()), leverages=levs, params=params)


def rebalance_mask(rebalance_every: Any, n: int) -> np.ndarray:
    """``rebalance_every`` (a bar count or a boolean array ``(n_bars,)``) as the bars that rebalance."""
    if isinstance(rebalance_every, (bool, np.bool_)) or not isinstance(rebalance_every, (int, np.integer)):
        mask = np.asarray(rebalance_every.to_numpy() if isinstance(rebalance_every, pd.Series) else rebalance_every)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(f"rebalance_every must be a positive integer or a boolean array of shape ({n},)")
    else:
        if rebalance_every < 1:
            raise ValueError(f"rebalance_every must be >= 1, got {rebalance_every}")
        mask = np.zeros(n, dtype=np.bool_)
        mask[::int(rebalance_every)] = True
    return np.ascontiguousarray(mask)


def run_weights(market: Market, cfg: RunConfig, weights: Any, rebalance_every: Any = 1) -> Result:
    """One weights run on ``market`` with a validated ``cfg`` (mode ``"weights"``)."""
    from ..kernels import rebalance
    from ..kernels.records import Books, Levels, counts_dt
    from ..kernels.records import Prices as PriceArrays

    cfg.check_market(market, "weights")
    n, m = market.shape
    w = float_levels(weights, market, "weights")
    mask = rebalance_mask(rebalance_every, n)
    data = RunData(market, cfg)
    ms = cfg.margin
    any_perp = ms is not None and ms.any_perp
    if not any_perp:  # spot: leverage > 1 or shorts follow the isolated rule without funding
        ms = spot_margin_settings(cfg, market, w)
        if ms is not None:
            cfg = with_margin(cfg, ms)
    margin_on = ms is not None
    inputs = run_prices(market, cfg)  # fills at the close read no open
    if margin_on and not cfg.reads_ohlc():  # liquidation is checked on the candle's low and high
        inputs = market.prices(ohlc=True)
    marks, mark_note = None, None
    if margin_on:
        from .signals import check_cross, perp_marks

        if ms.margin == "cross":
            check_cross(cfg, ms)
        nan = np.full((1, 1), np.nan)
        levels, mark_note = perp_marks(market, inputs, ms, Levels(nan, nan, nan, nan, nan, None))
        marks = levels.marks
    n_weights = int(np.count_nonzero(~np.isnan(w[mask])))
    # each weight: at most a close and an open (a flip); margin runs: a liquidation per opened position
    bound = (3 if margin_on else 2) * n_weights
    orders = np.empty(bound + (m if margin_on else 0), dtype=order_dt)
    trades = np.empty((n_weights if margin_on else bound // 2) + m, dtype=trade_dt)
    cash = np.empty(n)
    equity = np.empty(n)
    state, counts = rebalance.new_weights_state(m), np.zeros(1, dtype=counts_dt)
    prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, inputs.close)
    mode = 0 if not margin_on else (2 if ms.margin == "cross" else 1)
    rebalance.simulate_weights_nb(prices, w, mask, cfg.params, float(cfg.leverage), cfg.fill_id, mode, marks,
                                  Books(state, np.full(1, cfg.init_cash), counts, orders, trades), cash, equity)
    k = counts[0]
    assumptions = cfg.assumptions(gaps=len(data.gaps), delayed=int(k["delayed"]), no_candles=data.no_candles)
    if margin_on and not any_perp:
        assumptions["margin"] = ("isolated margin rule (nbtrade.margin; leverage > 1 or shorts): margin = entry "
                                 "notional / leverage, liquidation at the liquidation price against the candle's "
                                 "low (long) / high (short), at the open through a gap; spot has no mark price: "
                                 "the price candle is the mark; no funding, no borrow interest")
    elif margin_on:
        assumptions["mark"] = str(mark_note)
        assumptions["margin"] = (
            "cross margin (nbtrade.margin): one wallet backs every perpetual, liquidated as a whole when its margin "
            "balance at the bar's adverse marks is at or below the sum of maintenance margins" if ms.margin == "cross"
            else "isolated margin (nbtrade.margin): margin = entry notional / leverage (an increase adds its own, a "
                 "decrease releases its share, funding moves it); liquidation at the liquidation price against the "
                 "mark low (long) / high (short), at the mark open through a gap")
        assumptions["leverage"] = ({s: float(v) for s, v in zip(market.symbols, cfg.leverages)}
                                   if np.ptp(cfg.leverages) > 0 else float(cfg.leverage))
    warn_no_candles(data.no_candles)
    warn_rejected(orders[:k["orders"]], k["rejected"], market_only=True)
    res = Result(inputs=inputs, orders=orders[:k["orders"]], trades=trades[:k["trades"]], cash=cash, equity=equity,
                 init_cash=cfg.init_cash, freq_ms=cfg.freq_ms, gaps=data.gaps, assumptions=assumptions)
    if any_perp:
        res.funding_rows = (marks.f_bar, marks.flows)  # sparse rows, as the signals path records them
    return res
