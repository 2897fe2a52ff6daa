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
                     min_notional: Any = 0.0, leverage: float = 1.0, on_gap: str = "warn",
                     filters: Any = None) -> Result:
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
    fees, fixed_fees, slippage, init_cash, fill, freq, lot_size, min_qty, min_notional, leverage, on_gap
        As for :func:`backtest`.
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
    cfg = RunConfig.build(market, "weights", fees=fees, fixed_fees=fixed_fees, slippage=slippage,
                          init_cash=init_cash, fill=fill, freq=freq, lot_size=lot_size, min_qty=min_qty,
                          min_notional=min_notional, leverage=leverage, on_gap=on_gap, filters=filters)
    return run_weights(market, cfg, weights, rebalance_every)


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
    from ..kernels.records import Books, counts_dt, rebalance_state_dt

    cfg.check_market(market, "weights")
    n, m = market.shape
    w = float_levels(weights, market, "weights")
    mask = rebalance_mask(rebalance_every, n)
    data = RunData(market, cfg)
    inputs = run_prices(market, cfg)  # fills at the close read no open
    bound = 2 * int(np.count_nonzero(~np.isnan(w[mask])))
    orders = np.empty(bound, dtype=order_dt)
    trades = np.empty(bound // 2 + m, dtype=trade_dt)
    cash = np.empty(n)
    equity = np.empty(n)
    state, counts = np.zeros(m, dtype=rebalance_state_dt), np.zeros(1, dtype=counts_dt)
    state["wait"] = -1
    rebalance.simulate_weights_nb(inputs.open, inputs.close, w, mask, cfg.params, float(cfg.leverage), cfg.fill_id,
                                  Books(state, np.full(1, cfg.init_cash), counts, orders, trades), cash, equity)
    k = counts[0]
    assumptions = cfg.assumptions(gaps=len(data.gaps), delayed=int(k["delayed"]), no_candles=data.no_candles)
    warn_no_candles(data.no_candles)
    warn_rejected(orders[:k["orders"]], k["rejected"], market_only=True)
    return Result(inputs=inputs, orders=orders[:k["orders"]], trades=trades[:k["trades"]], cash=cash, equity=equity,
                  init_cash=cfg.init_cash, freq_ms=cfg.freq_ms, gaps=data.gaps, assumptions=assumptions)
