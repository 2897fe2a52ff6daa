"""What every front end does around its kernel: the market, data checks, record buffers, warnings.

The front ends (:mod:`.signals`, :mod:`.callback`, :mod:`.weights`) are panel + :class:`RunConfig` ->
kernel -> :class:`nbtrade.Result`; the steps they share live here.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..kernels.records import order_dt, trade_dt
from ..panel import PARALLEL_CHECK, Market, Prices, as_market, check_prices
from .options import MAX_PRICE, RunConfig, few

__all__ = ["prepare", "prepare_data", "Inputs", "RejectedOrdersWarning", "find_gaps", "user_stacklevel"]

#: The market panel of a backtest (the former ``Inputs`` of :func:`prepare`).
Inputs = Market
#: Price arrays of at least this many values are checked in parallel blocks.
_PARALLEL_CHECK = PARALLEL_CHECK
_check_prices = check_prices

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by the caller point at the first frame outside
    nbtrade (the user's line), however deep inside the package it is raised (Python 3.11 has no
    ``skip_file_prefixes``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


class RejectedOrdersWarning(UserWarning):
    """Some orders of a backtest were rejected (insufficient cash, exchange filters, no candle)."""



def warn_rejected(orders: np.ndarray, reasons: np.ndarray, size_type: str | None = None,
                  market_only: bool = False) -> None:
    """One summary warning when orders were rejected, so sizing surprises are never silent.

    ``reasons``: rejections counted by the kernel per ``RejectReason`` (spares a pass over the
    records); ``market_only``: every record is filled or rejected (no resting orders).
    """
    from ..kernels.records import RejectReason, Status

    n_rejected = int(reasons.sum())
    if n_rejected == 0:
        return
    if market_only:  # every record is filled or rejected
        total = len(orders)
    else:  # resting orders also leave cancelled/expired/open records
        status = orders["status"]
        total = int(np.count_nonzero((status == Status.FILLED) | (status == Status.REJECTED)))
    detail = ", ".join(f"{RejectReason._fields[k].lower()}: {int(v)}"
                       for k, v in sorted(enumerate(reasons), key=lambda kv: -kv[1]) if v)
    if not reasons[RejectReason.INSUFFICIENT_CASH]:
        hint = ""
    elif size_type == "percent":
        hint = (" Shared cash with size_type='percent' and a large size (1.0 = all-in) spends the free cash on "
                "the first entries: "
                "consider size=1/n_symbols or size_type='target_percent'.")
    else:
        hint = " Leave some cash free for fees, slippage and positions that grew (e.g. size a little below 1/n)."
    warnings.warn(f"{n_rejected} of {total} orders rejected ({detail}); see Result.orders (status "
                  f"'rejected').{hint}", RejectedOrdersWarning, stacklevel=user_stacklevel())


def prepare(data: Any) -> Market:
    """Validate and align ``data`` once, for many backtests on the same market (parameter sweeps).

    The same as :class:`nbtrade.Market` (``data`` itself when it is one already): a panel
    holding private float64 copies (your arrays can change afterwards without invalidating
    it), converted and checked field by field on first use, then reused by every run of
    :func:`backtest`, :func:`backtest_weights` or :func:`backtest_callback` given it as
    ``data``, which skip the conversion, the price checks and the gap search.

    Examples
    --------
    >>> import nbtrade
    >>> df = nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-03", "1h", seed=1)
    >>> data = nbtrade.prepare(df)
    >>> fast = df.close.rolling(5).mean()
    >>> runs = [nbtrade.backtest(data, entries=fast > df.close.rolling(w).mean(),
    ...                          exits=fast < df.close.rolling(w).mean()) for w in (10, 20)]
    """
    return data if isinstance(data, Market) else Market(data).validate()


def prepare_data(data: Any) -> Market:
    """``data`` as a :class:`~nbtrade.Market` (itself when it is one; else viewing the caller's arrays).

    Accepted forms: a dict ``{symbol: DataFrame with open/high/low/close}`` (indexes
    are outer-joined; a symbol's missing bars become NaN); one such DataFrame (symbol
    ``"asset"``); a ``(field, symbol)`` or ``(symbol, field)`` MultiIndex frame; a dict of
    fields ``{"open": ..., "high": ..., "low": ..., "close": ...}`` whose values are
    ``(n_bars, n_symbols)`` DataFrames or arrays (or 1-D for one symbol); or close prices
    alone (Series, DataFrame of symbols, array), in which case open = high = low = close
    (a next-bar fill then happens at the next close).
    """
    return as_market(data)


def find_gaps(inputs: Market | Prices, freq_ms: float | None) -> pd.DataFrame:
    """Gaps in the input: missing timestamps (all symbols) and NaN runs inside a symbol's history
    (computed once per market and bar length, vectorised: see ``Market.gaps``)."""
    market = inputs.market if isinstance(inputs, Prices) else as_market(inputs)
    return market.gaps(freq_ms)


# --------------------------------------------------------------------------------------------
# data checks of a run

class RunData:
    """What a run reads from its market besides the prices: gaps (warned about per ``on_gap``) and
    the symbols without any candle (refused when none has one)."""

    __slots__ = ("gaps", "no_candles")

    def __init__(self, market: Market, cfg: RunConfig):
        self.no_candles = check_candles(market)
        self.gaps = handle_gaps(market, cfg.freq_ms, cfg.on_gap)


def check_candles(market: Market) -> list:
    """Refuse data without a single candle; return the symbols that have none (the caller reports them)."""
    if market.n_missing == 0:
        return []
    empty = market.missing.all(axis=0)
    if empty.all():
        raise ValueError(f"data has no candle at all: every price of {few(market.symbols)} is NaN "
                         f"({market.shape[0]} bars), so nothing could trade. Check the data source or the "
                         f"date range")
    return [s for s, e in zip(market.symbols, empty) if e]


def warn_no_candles(symbols: list) -> None:
    if symbols:
        warnings.warn(f"{len(symbols)} symbol(s) have no candle at all in the data ({few(symbols)}): they cannot "
                      f"trade in this run (listed in Result.assumptions['symbols_without_candles']). Drop them or "
                      f"check the date range", stacklevel=user_stacklevel())


def handle_gaps(market: Market, freq_ms: float | None, on_gap: str) -> pd.DataFrame:
    """The market's gaps; an error or a warning when there are some (``on_gap``)."""
    return report_gaps(market.gaps(freq_ms), on_gap)


def report_gaps(gaps: pd.DataFrame, on_gap: str) -> pd.DataFrame:
    """``gaps`` (a ``Market.gaps`` table), after the error or warning ``on_gap`` asks for when there are some."""
    if len(gaps) and on_gap != "skip":
        msg = (f"data has {len(gaps)} gap(s) ({int(gaps['bars'].sum())} bars); nothing fills on a missing bar. "
               f"First: {gaps.iloc[0].to_dict()}.")
        if on_gap == "error":
            raise ValueError(msg + " Pass on_gap='warn' or 'skip' to run anyway")
        if on_gap == "warn":
            warnings.warn(msg + " Pass on_gap='skip' to silence or inspect Result.gaps", stacklevel=user_stacklevel())
    return gaps


def _highest(market: Market, arr: np.ndarray) -> float:
    """Largest value of a price field, ignoring NaN; computed once per market field (a market's arrays
    are its private, checked copies; a market viewing the caller's arrays lives for one run)."""
    cache = getattr(market, "_cache", None)
    key = ("engine_highest", id(arr))
    if cache is not None:
        hit = cache.get(key)
        if hit is not None and hit[0] is arr:
            return hit[1]
    top = float(np.fmax.reduce(arr.reshape(-1))) if arr.size else 0.0  # one contiguous pass
    if cache is not None:
        cache[key] = (arr, top)
    return top


def check_price_range(inputs: Prices, cfg: RunConfig) -> None:
    """Prices whose worst fill (slippage, fees) would overflow float64 are refused, blaming the price."""
    if not _highest(inputs.market, inputs.high) > MAX_PRICE / 16:  # the common case: nothing near the limit
        return
    hi = np.fmax.reduce(inputs.high, axis=0)
    v = cfg.values
    fees = v["fees"]
    maker = v.get("maker_fees")
    fee = np.fmax(fees, maker) if maker is not None else fees
    worst = hi * (1.0 + v["slippage"]) * (1.0 + fee)
    worst = worst * (1.0 + v.get("slippage_range", 0.0)) * np.where(v.get("slippage_volume", 0.0) > 0, 1.5, 1)
    with np.errstate(invalid="ignore"):
        bad = ~(worst <= MAX_PRICE)
    if bad.any():
        j = int(np.argmax(bad))
        symbols = inputs.symbols
        raise ValueError(f"prices of {symbols[j]} reach {hi[j]:.4g}: a fill there with slippage and fees "
                         f"({worst[j]:.4g}) is too close to float64's largest value (1.8e308): notionals, fees "
                         f"and equity would overflow to inf (fill prices up to {MAX_PRICE:.3g} are accepted). "
                         f"The price scale is the problem, not cash: rescale the prices "
                         f"(e.g. quote per 1e-6 unit)")


def run_prices(market: Market, cfg: RunConfig) -> Prices:
    """The price arrays a run reads (only those fields converted and checked), range-checked."""
    inputs = market.prices(ohlc=cfg.reads_ohlc(), volume=cfg.reads_volume)
    check_price_range(inputs, cfg)
    return inputs


def checked_volume(inputs: Prices) -> np.ndarray:
    """The data's volume, checked: finite and >= 0 on every bar with a candle (for volume impact)."""
    if inputs.volume is None:
        raise ValueError("slippage_volume needs volume: give data with a 'volume' column (OHLCV DataFrames) "
                         "or a 'volume' field")
    v = inputs.volume
    valid = ~np.isnan(inputs.close)
    with np.errstate(invalid="ignore"):
        bad = valid & ~((v >= 0) & np.isfinite(v))
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(f"volume must be finite and >= 0 on every bar with a candle; got {v[t, j]} at "
                         f"{inputs.index[t]} ({inputs.symbols[j]})")
    return v


def grow(orders: np.ndarray, trades: np.ndarray, counts: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Record buffers with room again, keeping the records written so far (``counts``: the kernel's
    ``counts_dt`` record array): the buffer short of the kernel's per-bar room (``room_nb``: 4 orders and
    3 trades per symbol) at least doubles, the other is kept as is (both double when neither is short)."""
    n_orders, n_trades = int(counts[0]["orders"]), int(counts[0]["trades"])
    more_orders = n_orders + 4 * m > len(orders)
    more_trades = n_trades + 3 * m > len(trades)
    if not (more_orders or more_trades):
        more_orders = more_trades = True
    if more_orders:
        orders = np.concatenate([orders[:n_orders], np.empty(max(len(orders), 8 * m), dtype=order_dt)])
    if more_trades:
        trades = np.concatenate([trades[:n_trades], np.empty(max(len(trades), 4 * m), dtype=trade_dt)])
    return orders, trades


def round_tick(price: np.ndarray, tick: np.ndarray, long_side: np.ndarray | None, *, up_for_long: bool,
               name: str = "order_price", symbols: list = ()) -> np.ndarray:
    """``price`` (bars x symbols) on each symbol's tick grid: up where ``up_for_long`` applies to a long entry
    (``long_side`` True, or everywhere when None), down for a short's mirror order; tick 0 leaves a symbol as is."""
    if price.ndim != 2 or price.shape[1] != len(tick):
        return price  # a (1, 1) NaN stand-in: nothing set
    safe = np.where(tick > 0, tick, 1.0)
    q = price / safe
    # a relative tolerance so that prices already on the grid (0.3 / 0.1 = 2.9999999999999996) stay put
    up, down = np.ceil(q - 1e-9) * safe, np.floor(q + 1e-9) * safe
    if long_side is None:
        use_up = np.full(price.shape, up_for_long)
    else:
        use_up = long_side if up_for_long else ~long_side
    out = np.where(tick > 0, np.where(use_up, up, down), price)
    with np.errstate(invalid="ignore"):
        vanished = (price > 0) & (out <= 0)
    if vanished.any():
        t, j = np.argwhere(vanished)[0]
        raise ValueError(f"{name} {price[t, j]} (bar {t}, symbol {symbols[j]}) is below one tick ({tick[j]}) of "
                         f"the exchange's price grid: rounded against the order it would be 0")
    return np.ascontiguousarray(out)
