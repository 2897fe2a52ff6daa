"""Backtests on numba bar loops: inputs to arrays, validation, the kernel, records to a :class:`Result`.

Three ways to drive the engine, sharing one set of fill rules:

* :func:`backtest`: boolean entry/exit signals (long and short), market, limit, stop or
  stop-limit entries, attached stops in percent or absolute price;
* :func:`backtest_weights`: target portfolio weights, rebalanced on a schedule;
* :func:`backtest_callback`: a numba ``@njit`` ``on_bar(ctx, i)`` deciding bar by bar.

Fill timing (one setting for entries, exits and stops)
    ``fill="next_open"`` (default): a signal at bar ``t`` (computed from its close)
    fills at the open of bar ``t + 1``; a signal on the last bar does not trade.
    ``fill="close"``: it fills at the close of bar ``t`` itself, which assumes you
    could compute the signal and trade at that very price: optimistic, use with care.
Intrabar rules
    Stops (``sl_stop``, ``tp_stop``, ``trail_stop``, fractions of the average entry
    price): with ``fill="next_open"`` a market entry fills at the open, so the whole
    entry bar happens after the fill and its stops are checked on that bar too (its
    low/high; a stop level beyond the open, e.g. slippage wider than the stop, exits
    at the open). With ``fill="close"`` (entry at the close) and for resting entries
    (filled inside a bar, path after the fill unknown) stops start the bar after.
    Triggers are inclusive (``low <= stop`` for a long stop-loss); a bar opening
    beyond a level fills at the open (gap); when one bar touches both the stop
    side and the take-profit, the stop fills first (``intrabar="pessimistic"``,
    default) unless ``intrabar="optimistic"``. The trailing level uses the peak
    (trough for shorts) of the entry price and the highs (lows) of the bars
    *before* the current one, so a bar's own high never moves the level it is
    checked against (on the entry bar the peak is the entry price; that bar's high
    moves it after the bar's check).
Resting entries
    ``order_type="limit"|"stop"|"stop_limit"``: placed at the signal bar's close, eligible
    from the next bar in both fill modes; a limit buy fills at ``min(open, limit)`` once
    ``low <= limit``, a stop buy at ``max(open, stop)`` once ``high >= stop``; ``tif``
    bars in force (0 = until cancelled). Cancellations, expiries and orders still open at
    the end are recorded.
Costs
    Slippage (fraction, plus optionally a fraction of the last complete bar's range and a
    volume impact ``slippage_volume * sqrt(quantity / volume)`` of the last complete bar)
    moves every fill against you, stops included; fees are ``fees * notional +
    fixed_fees`` on every order, entry and exit (``maker_fees`` for limit entries).
Sizing and rejections
    ``size_type``: ``"amount"`` (base units), ``"value"`` (quote currency),
    ``"percent"`` (fraction of the free margin, fees included; 1.0 = all-in),
    ``"target_percent"`` (position worth that fraction of equity). ``size > 1`` with
    ``"percent"`` or ``size > leverage`` with ``"target_percent"`` can never fill and
    raises a ValueError, as does ``sl_stop >= 1`` when only long positions are
    possible (no short signals given). Sizes are rounded
    down to ``lot_size`` and checked against ``min_qty``, ``min_notional`` and the
    free margin (equity minus ``|position| * price / leverage`` of open positions;
    an order needs ``notional / leverage + fees``). A failing entry is recorded as a
    REJECTED order with a reason code; nothing is ever silently resized. Full exits
    always fill; a partial exit (``exit_size`` < 1) rounds down to ``lot_size`` and
    passes ``min_qty``/``min_notional`` or is rejected, keeping the position. When any order is rejected, one :class:`RejectedOrdersWarning`
    sums them up by reason, and ``Result.stats()`` reports ``"# Rejected Orders"``.
Missing data
    A symbol whose bar is NaN (not listed yet, delisted, exchange outage) cannot
    fill there. With ``fill="next_open"``, a market order (entry, exit, reversal)
    due on such a bar waits for the symbol's next candle and fills at its open;
    the order records the bar it filled and ``assumptions["delayed_signals"]``
    counts the delayed signals. If no candle comes before the data ends, the order
    is recorded as rejected (``NO_DATA``) on the last bar. Resting entry types
    (``order_type`` other than ``"market"``) delay exits only: a lone resting entry
    is placed anyway (it needs no price then and fills only on bars with a candle),
    a reversal whose next bar has no candle is rejected (``NO_DATA``) there.
    :func:`backtest_callback` applies the same waiting in both fill modes (with
    ``fill="close"`` a signal set on a bar with no candle fills at the next candle's
    close) and counts its delayed signals alike; signals it sets for a column while
    one waits, on bars with no candle, are ignored. :func:`backtest_weights` waits
    likewise in both fill modes: a target weight whose fill bar has no candle trades
    at the symbol's next candle, sized then; a newer weight replaces it while it waits
    (``assumptions["delayed_orders"]`` counts the waits). Stops wait for
    the next candle (and fill at its open if it gapped through). Prices are never
    forward-filled into fills; equity values a position at its last valid close.
    Exits (and short exits) on a bar whose own candle is missing are ignored
    (``exits=~entries`` works on symbols listed later); an entry there is an error
    (mask it with ``close.notna()``). Gaps (NaN runs inside a symbol's history, missing timestamps) are
    listed in ``Result.gaps``; ``on_gap`` chooses ``"error"``, ``"warn"`` (default)
    or ``"skip"``.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .kernels.records import FillMode, Intrabar, OrderType, SizeType, order_dt, trade_dt
from .panel import FILTER_COLUMNS, PARALLEL_CHECK, Market, Prices, align, as_market, check_prices
from ._names import check_kwargs, suggest_kwargs
from .result import Result

_SIZE_TYPES = {"amount": SizeType.AMOUNT, "value": SizeType.VALUE, "percent": SizeType.PERCENT,
               "target_percent": SizeType.TARGET_PERCENT}
_FILLS = {"next_open": FillMode.NEXT_OPEN, "close": FillMode.CLOSE}
_INTRABAR = {"pessimistic": Intrabar.PESSIMISTIC, "optimistic": Intrabar.OPTIMISTIC}
_ON_GAP = ("error", "warn", "skip")
_ORDER_TYPES = {"market": OrderType.MARKET, "limit": OrderType.LIMIT, "stop": OrderType.STOP,
                "stop_limit": OrderType.STOP_LIMIT}


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


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


def _warn_rejected(orders: np.ndarray, reasons: np.ndarray, size_type: str | None = None,
                   market_only: bool = False) -> None:
    """One summary warning when orders were rejected, so sizing surprises are never silent.

    ``reasons``: rejections counted by the kernel per ``RejectReason`` (spares a pass over the
    records); ``market_only``: every record is filled or rejected (no resting orders).
    """
    from .kernels.records import RejectReason, Status

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


#: The market panel of a backtest (the former ``Inputs`` of :func:`prepare`).
Inputs = Market
#: Price arrays of at least this many values are checked in parallel blocks.
_PARALLEL_CHECK = PARALLEL_CHECK
_check_prices = check_prices


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


# --------------------------------------------------------------------------------------------
# signals and parameters

def _signal(x: Any, name: str, market: Market) -> np.ndarray:
    """A signal as a ``(n_bars, n_symbols)`` bool array matched to the data by label (see ``panel.align``)."""
    return align(x, market, name, "bool")


def prepare_signals(inputs: Market | Prices, **signals: Any) -> tuple[dict[str, np.ndarray], dict[str, int], bool]:
    """Convert, align and check the four signal arrays; count their True values.

    Missing short signals are not allocated: the engine does not read them
    (``has_short`` False) and gets ``entries`` as a stand-in. Exits on a bar with no
    candle are dropped (nothing can be computed or exited there); an entry there is an
    error. (Signals whose fill bar has no candle wait for the next one in the engine.)
    """
    from .kernels.checks import signal_stats_nb

    market = inputs.market if isinstance(inputs, Prices) else as_market(inputs)
    n, m = market.shape
    arrays = {}
    for key in ("entries", "exits", "short_entries", "short_exits"):
        x = signals.get(key)
        if x is None and key in ("entries", "exits"):
            arrays[key] = np.zeros((n, m), dtype=np.bool_)
        elif x is not None:
            arrays[key] = _signal(x, key, market)
    has_short = "short_entries" in arrays or "short_exits" in arrays
    if has_short:
        for key in ("short_entries", "short_exits"):
            arrays.setdefault(key, np.zeros((n, m), dtype=np.bool_))
    else:
        arrays["short_entries"] = arrays["short_exits"] = arrays["entries"]
    names = ("entries", "exits", "short_entries", "short_exits")
    if market.n_missing != 0:
        counts = np.zeros(4, dtype=np.int64)
        n_bad, k, t, j = signal_stats_nb(arrays["entries"], arrays["exits"], arrays["short_entries"],
                                         arrays["short_exits"], has_short, market.array("close"), counts)
        missing = market.missing
        if n_bad:
            for key in (("exits", "short_exits") if has_short else ("exits",)):
                if (arrays[key] & missing).any():  # e.g. exits=~entries: nothing to exit on a missing bar
                    arrays[key] = arrays[key] & ~missing
            for key in (("entries", "short_entries") if has_short else ("entries",)):
                bad = arrays[key] & missing
                if bad.any():
                    t, j = np.argwhere(bad)[0]
                    raise ValueError(
                        f"{key} is True on a bar with no candle (NaN prices) at {market.index[t]} "
                        f"({market.symbols[j]}); {int(bad.sum())} such {key} in all (symbol not listed yet, "
                        f"delisted, or a gap). A signal needs a candle to be computed from: mask them, e.g. "
                        f"{key} & close.notna() (exits on such bars are ignored)")
        counts = [np.count_nonzero(arrays[key]) if (has_short or key in names[:2]) else 0 for key in names]
    else:  # no missing bar: counting is all there is to do (SIMD count_nonzero)
        counts = [np.count_nonzero(arrays[key]) if (has_short or key in names[:2]) else 0 for key in names]
    return arrays, {key: int(v) for key, v in zip(names, counts)}, has_short


def _per_symbol(x: Any, name: str, symbols: list, default: float, *, positive: bool = False,
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
            return _per_symbol(np.float64(v), name, symbols, default, positive=positive, allow_none=allow_none,
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


def _choice(value: Any, name: str, options: Mapping | tuple) -> Any:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(map(repr, options))}")
    return options[value] if isinstance(options, Mapping) else value


def _freq_ms(freq: Any, market: Market) -> float | None:
    """Bar length in ms: from ``freq`` (timeframe string, Timedelta, pandas offset) or the market's index."""
    if freq is not None:
        from .timeframes import TIMEFRAME_MS

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


def find_gaps(inputs: Market | Prices, freq_ms: float | None) -> pd.DataFrame:
    """Gaps in the input: missing timestamps (all symbols) and NaN runs inside a symbol's history
    (computed once per market and bar length, vectorised: see ``Market.gaps``)."""
    market = inputs.market if isinstance(inputs, Prices) else as_market(inputs)
    return market.gaps(freq_ms)


# --------------------------------------------------------------------------------------------
# entry point

@suggest_kwargs
def backtest(data: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
             short_exits: Any = None, *, size: Any = None, size_type: str = "percent",
             sl_stop: Any = None, tp_stop: Any = None, trail_stop: Any = None,
             fees: Any = 0.0, fixed_fees: Any = 0.0, slippage: Any = 0.0, init_cash: float = 10_000.0,
             fill: str = "next_open", intrabar: str = "pessimistic", freq: Any = None,
             lot_size: Any = 0.0, min_qty: Any = 0.0, min_notional: Any = 0.0, leverage: float = 1.0,
             cash_sharing: Any = True, order_type: str = "market", order_price: Any = None,
             limit_price: Any = None, tif: int = 0, maker_fees: Any = None, slippage_range: Any = 0.0,
             slippage_volume: Any = 0.0, sl_price: Any = None, tp_price: Any = None, exit_size: Any = 1.0,
             on_gap: str = "warn", filters: Any = None, _on_bar: Any = None, _user: tuple = ()) -> Result:
    """Backtest boolean entry/exit signals on one or many symbols sharing one cash balance.

    Parameters
    ----------
    data : Market, dict of DataFrames, DataFrame, dict of fields, or close prices
        OHLC candles keyed by open time (see :class:`nbtrade.Market`; build one beforehand
        to reuse its converted, checked arrays across runs). A run converts only the fields
        it reads: a market-order run filling at the close without stops reads closes alone.
    entries, exits, short_entries, short_exits : bool DataFrame (bars x symbols) or array
        Signals; a signal at bar ``t`` uses information up to ``t``'s close. ``None`` means
        never. DataFrames are matched to ``data`` by label: columns by symbol in any order
        (a subset of the symbols is allowed, the others get no signal; an unknown symbol is
        an error), rows by instant (any time zone or resolution; tz-naive means UTC; every
        bar of the data must be there). Arrays are matched by position. The same rule holds
        for every bars x symbols input (``order_price``, ``sl_price``, ``exit_size``,
        weights...; symbols left out get NaN there).
    size : float, per symbol allowed
        Entry size, read according to ``size_type``. Must be > 0; at most 1 with
        ``"percent"`` and at most ``leverage`` with ``"target_percent"``. Default:
        ``1 / k`` for a symbol whose account ``k`` symbols share (``cash_sharing``), read
        as ``"percent"`` (of the free margin, fees included) or ``"target_percent"``, and
        1 unit for ``"amount"`` / ``"value"``; so a lone symbol goes all-in and symbols
        sharing cash each find some free cash for their entries.
    size_type : {"percent", "amount", "value", "target_percent"}
    sl_stop, tp_stop, trail_stop : float, per symbol allowed
        Stop-loss, take-profit and trailing stop as fractions of the entry price
        (0.05 = 5 %); ``None`` disables. Must be > 0; ``sl_stop`` must be < 1 unless
        short signals are given (a long's stop would sit at or below 0).
    fees : float
        Fee per order as a fraction of notional (0.001 = 10 bp), both legs; in [0, 1).
    fixed_fees : float
        Fee per order in quote currency; below ``init_cash``.
    slippage : float
        Adverse fraction applied to every fill price, stops included.
    slippage_range : float, per symbol allowed
        Extra adverse slippage as a fraction of the last complete bar's ``high - low``
        (the previous bar for fills at the open or intrabar, the bar itself for fills at
        its close): wider bars, worse fills. 0 (default) disables.
    slippage_volume : float, per symbol allowed
        Market impact by the square-root law: every fill moves a further
        ``slippage_volume * sqrt(quantity / volume)`` of the price against you, ``volume``
        being the last complete bar's (the previous bar for fills at the open or
        intrabar, the bar itself for fills at its close; bars with zero volume are
        skipped; none seen yet: no impact), capped at 50 % of the price. Typical
        values 0.1-1. Buys sized in quote terms (``value``, ``percent``,
        ``target_percent``) get the quantity whose impacted price spends the budget.
        Needs a ``volume`` field in ``data``. 0 (default) disables.
    init_cash : float
        Starting cash in quote currency (per account when ``cash_sharing`` splits them).
    fill : {"next_open", "close"}
        When signals fill (module docstring). Governs entries, exits and stops alike.
    intrabar : {"pessimistic", "optimistic"}
        Stop-loss or take-profit first when one bar touches both.
    freq : str or Timedelta, optional
        Bar length for annualisation (``"1h"``); inferred from a DatetimeIndex.
    lot_size, min_qty, min_notional : float, per symbol allowed
        Exchange filters: sizes round down to ``lot_size`` (0 = none); smaller orders
        than ``min_qty`` (base) or ``min_notional`` (quote) are rejected.
    leverage : float
        Margin per unit of notional is ``1 / leverage`` (1 = cash account). Must be > 0.
    cash_sharing : bool, or a group label per symbol (dict or sequence)
        True (default): all symbols trade one cash balance, in column order. False:
        each symbol is an isolated account with its own ``init_cash`` (like running
        one backtest per symbol). Labels (``{"BTC": "majors", "ETH": "majors", "DOGE":
        "memes"}``): symbols with the same label share one account of ``init_cash``.
        The portfolio is the sum of the accounts.
    order_type : {"market", "limit", "stop", "stop_limit"}
        How entries execute. ``"limit"``/``"stop"``: an entry signal at bar ``t`` places a
        resting order at ``order_price`` (bar ``t``'s value), eligible from bar ``t + 1``
        in both fill modes: a limit buy fills at ``min(open, price)`` once ``low <= price``,
        a stop buy at ``max(open, price)`` once ``high >= price`` (sells mirror). A new
        entry signal replaces it, an exit signal of its side cancels it; both are
        recorded (status ``cancelled``), as are expiries and orders left open at the end.
        Exits and attached stops are unaffected. ``"stop_limit"``: arms at ``order_price``
        (the stop), then rests as a limit at ``limit_price``; armed intrabar, it fills at
        the stop if the limit allows, else waits for later bars (the path inside the bar
        is unknown: pessimistic); armed at the open, that bar acts as a limit.
    order_price : DataFrame (bars x symbols) or array
        Limit/stop prices; must be finite and > 0 wherever an entry signal is set.
    limit_price : DataFrame (bars x symbols) or array
        Limit prices of ``"stop_limit"`` entries (same rules as ``order_price``).
    tif : int
        Time in force of resting entries in bars (0 = good till cancelled).
    maker_fees : float, per symbol allowed, optional
        Fee rate of filled ``"limit"`` entries (they provide liquidity); ``fees`` (taker)
        applies to every other order. Default: ``fees`` for all.
    sl_price, tp_price : DataFrame (bars x symbols) or array, optional
        Absolute stop-loss / take-profit levels (quote currency) for the entry signalled
        at each bar; where set (not NaN) they replace ``sl_stop`` / ``tp_stop`` for that
        trade. Same trigger and gap rules.
    exit_size : float in (0, 1], per symbol, or DataFrame (bars x symbols)
        Fraction of the open position an exit signal closes (partial close); per bar, the
        value at the exit signal's bar counts. 1 (default) closes all. A partial exit rounds
        down to ``lot_size`` and is rejected (recorded) below one lot, ``min_qty`` or
        ``min_notional``; one that rounds to the whole position closes it. Each partial exit
        is a trade of its own (its share of the entry fees included); the rest keeps its
        average entry price, entry bar and stops. Reversals, stops and the end close all.
    on_gap : {"warn", "error", "skip"}
        What to do when the input has gaps (listed in ``Result.gaps`` in any case).
    filters : None, "exchange" or a filters table
        None (default): only the filters given by hand (``lot_size``, ``min_qty``,
        ``min_notional``). ``"exchange"``: each symbol's exchange filters from the market's
        metadata (``Market(data).with_filters(nbtrade.fetch_filters_sync(exchange, symbols))``;
        a table here attaches it in one go): quantities round down to ``step_size``, orders
        below ``min_qty`` or ``min_notional`` are rejected, and the order prices
        (``order_price``, ``limit_price``, ``sl_price``, ``tp_price``) round to ``tick_size``
        in the direction that does not improve the order (buy limits and short take-profits
        down, sell limits and long take-profits up, buy stops up, sell stops down); fill prices
        after slippage are not rounded. A symbol without filters is refused, by name.
        ``max_qty`` is listed but not enforced. ``Result.assumptions["filters"]`` lists them.

    Returns
    -------
    Result
        Equity, positions, orders, trades, ``stats()`` and the ``assumptions`` made.

    Examples
    --------
    >>> import nbtrade
    >>> df = nbtrade.market("BTC/USDT", "2024-01-01", "2024-01-03", "1h", seed=1)
    >>> fast, slow = df.close.rolling(5).mean(), df.close.rolling(20).mean()
    >>> res = backtest(df, entries=fast > slow, exits=fast < slow, fees=0.001)
    >>> res.equity.shape
    (48,)
    """
    from .kernels.engine import simulate_signals_nb
    from .kernels.records import Books, Levels, Prices as PriceArrays, Signals, counts_dt, make_config, new_state

    market = prepare_data(data)
    n, m = market.shape
    syms = market.symbols
    exch = _exchange_filters(market, filters, dict(lot_size=lot_size, min_qty=min_qty, min_notional=min_notional))
    if exch is not None:
        lot_size, min_qty, min_notional = exch["step_size"], exch["min_qty"], exch["min_notional"]
    size_type_id = _choice(size_type, "size_type", _SIZE_TYPES)
    fill_id = _choice(fill, "fill", _FILLS)
    intrabar_id = _choice(intrabar, "intrabar", _INTRABAR)
    on_gap = _choice(on_gap, "on_gap", _ON_GAP)
    if _on_bar is None:
        sig, counts, has_short = prepare_signals(
            market, entries=entries, exits=exits, short_entries=short_entries, short_exits=short_exits)
    else:  # the callback writes the signals as the bars go by
        sig = {k: np.zeros((n, m), dtype=np.bool_) for k in ("entries", "exits", "short_entries", "short_exits")}
        counts, has_short = None, True
    groups = _cash_groups(cash_sharing, syms)
    params = {
        "size": _default_size(size, size_type, groups, syms),
        **_fee_params(fees, fixed_fees, maker_fees, _scalar(init_cash, "init_cash"), syms),
        "slippage": _per_symbol(slippage, "slippage", syms, 0.0, upper=1.0),
        "sl_stop": _per_symbol(sl_stop, "sl_stop", syms, np.nan, positive=True, allow_none=True),
        "tp_stop": _per_symbol(tp_stop, "tp_stop", syms, np.nan, positive=True, allow_none=True),
        "trail_stop": _per_symbol(trail_stop, "trail_stop", syms, np.nan, positive=True, allow_none=True),
        "lot_size": _per_symbol(lot_size, "lot_size", syms, 0.0),
        "min_qty": _per_symbol(min_qty, "min_qty", syms, 0.0),
        "min_notional": _per_symbol(min_notional, "min_notional", syms, 0.0),
        "slippage_range": _per_symbol(slippage_range, "slippage_range", syms, 0.0),
        "slippage_volume": _per_symbol(slippage_volume, "slippage_volume", syms, 0.0),
    }
    init_cash = _scalar(init_cash, "init_cash")
    leverage = _scalar(leverage, "leverage")
    _check_sizing(params["size"], size_type, leverage, syms)
    _check_sl_stop(params["sl_stop"], has_short, syms)
    n_groups = int(groups.max()) + 1
    freq_ms = _freq_ms(freq, market)
    no_candles = _check_candles(market)
    gaps = _handle_gaps(market, freq_ms, on_gap)
    # only the fields this run reads are converted and checked (the close stands in for the others)
    inputs = market.prices(ohlc=_reads_ohlc(fill, order_type, params, sl_price, tp_price, _on_bar is not None),
                           volume=bool((params["slippage_volume"] > 0).any()))
    _check_price_range(inputs, params, syms)

    otype_id = _choice(order_type, "order_type", _ORDER_TYPES)
    if isinstance(tif, (bool, np.bool_)) or not isinstance(tif, (int, np.integer)) or tif < 0:
        raise ValueError(f"tif must be an integer >= 0 (bars; 0 = good till cancelled), got {tif!r}")
    if order_type == "stop_limit":
        if _on_bar is not None:
            raise ValueError("order_type='stop_limit' is not supported by backtest_callback")
        if limit_price is None:
            raise ValueError("order_type='stop_limit' needs limit_price (bars x symbols)")
        lprice = _weights(limit_price, inputs, "limit_price")
        at_entry = sig["entries"] | (sig["short_entries"] if has_short else False)
        with np.errstate(invalid="ignore"):
            bad = at_entry & ~(lprice > 0)
        if bad.any():
            raise ValueError("limit_price must be finite and > 0 at every entry signal")
    elif limit_price is not None:
        raise ValueError("limit_price is only used with order_type='stop_limit'")
    else:
        lprice = inputs.close
    if order_type == "market":
        if order_price is not None:
            raise ValueError("order_price is only used with order_type='limit', 'stop' or 'stop_limit'")
        oprice = inputs.close
    else:
        if order_price is None:
            raise ValueError(f"order_type={order_type!r} needs order_price (bars x symbols)")
        oprice = _weights(order_price, inputs, "order_price")
        at_entry = sig["entries"] | (sig["short_entries"] if has_short else False)
        with np.errstate(invalid="ignore"):
            bad = at_entry & ~(oprice > 0)
        if _on_bar is None and bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"order_price must be finite and > 0 at every entry signal; got {oprice[t, j]} at "
                             f"{inputs.index[t]} ({syms[j]})")
    cash = np.empty(n)
    equity = np.empty(n)
    packed = _param_records(params)
    volume = _volume(inputs) if (params["slippage_volume"] > 0).any() else inputs.close  # else never read
    abs_stops = sl_price is not None or tp_price is not None
    if abs_stops and _on_bar is not None:
        raise ValueError("sl_price / tp_price are not supported by backtest_callback; use sl_stop / tp_stop")
    nan = np.full((1, 1), np.nan)
    sl_abs = nan if sl_price is None else _weights(sl_price, inputs, "sl_price")
    tp_abs = nan if tp_price is None else _weights(tp_price, inputs, "tp_price")
    for name, arr in (("sl_price", sl_abs), ("tp_price", tp_abs)):
        with np.errstate(invalid="ignore"):
            if (arr <= 0).any():
                raise ValueError(f"{name} must be > 0 where set (NaN = unset)")
    if abs_stops:
        sl_abs = np.full((n, m), np.nan) if sl_price is None else sl_abs
        tp_abs = np.full((n, m), np.nan) if tp_price is None else tp_abs
    if exch is not None:
        if _on_bar is not None and (order_type != "market" or abs_stops):
            raise ValueError("filters='exchange' rounds order prices by the side of each entry signal, which a "
                             "callback decides as it runs: use order_type='market' without sl_price/tp_price, or "
                             "round the prices in on_bar")
        long_side = sig["entries"] if has_short else None
        tick = exch["tick_size"]
        if order_type != "market":  # the entry's own price: limit buys down, stop buys up (sells mirror)
            oprice = _round_tick(oprice, tick, long_side, up_for_long=order_type != "limit", symbols=syms)
        if order_type == "stop_limit":
            lprice = _round_tick(lprice, tick, long_side, up_for_long=False, name="limit_price", symbols=syms)
        if abs_stops:  # a long's stop-loss is a sell stop (down), its take-profit a sell limit (up)
            sl_abs = _round_tick(sl_abs, tick, long_side, up_for_long=False, name="sl_price", symbols=syms)
            tp_abs = _round_tick(tp_abs, tick, long_side, up_for_long=True, name="tp_price", symbols=syms)
    partial, exit_frac = _exit_size(exit_size, inputs, sig, has_short)
    if partial and _on_bar is not None:
        raise ValueError("exit_size is not supported by backtest_callback: close a part with reduce_long_nb / "
                         "reduce_short_nb(ctx, i, c, fraction) in on_bar")
    if _on_bar is not None:
        orders, trades, n_delayed, rejections = _run_callback(
            _on_bar, _user, inputs, volume, sig, packed, size_type_id, leverage, init_cash, groups, fill_id,
            intrabar_id, otype_id, oprice, int(tif), cash, equity)
        n_orders, n_trades = len(orders), len(trades)
    else:
        n_entry = counts["entries"] + counts["short_entries"]
        n_exit = counts["exits"] + counts["short_exits"]
        # an upper bound of the records (an entry signal makes at most an exit and an entry, or
        # with resting entries a cancel, an exit and an entry; a stop exit follows an entry),
        # capped at about half the input's bytes: state-like signals (True on half the bars)
        # would reserve ~160 bytes per bar-step for orders that mostly never happen. Growing
        # the buffer copies it (~20 ms for 20M bar-steps), so the cap is generous.
        per_entry = (2 if order_type == "market" else 4) + (1 if _has_stops(params, abs_stops) else 0)
        cap = max(_SIGNAL_BUFFER, (n * m * 8) // (2 * order_dt.itemsize)) + 8 * m
        orders = np.empty(min(per_entry * n_entry + n_exit + 4 * m, cap), dtype=order_dt)
        trades = np.empty(min(n_entry + (n_exit if partial else 0) + 3 * m, cap // 2), dtype=trade_dt)
        prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, volume)
        signals = Signals(sig["entries"], sig["exits"], sig["short_entries"], sig["short_exits"])
        levels = Levels(oprice, lprice, sl_abs, tp_abs, exit_frac)
        cfg = make_config(size_type_id, leverage, fill_id, intrabar_id, otype_id, tif, has_short, abs_stops, partial)
        state, acct, done = new_state(groups), np.full(n_groups, init_cash), np.zeros(1, dtype=counts_dt)
        start = 0
        while True:
            start = simulate_signals_nb(prices, signals, levels, cfg, packed, start,
                                        Books(state, acct, done, orders, trades), cash, equity)
            if start >= n:
                break
            orders, trades = _grow(orders, trades, done, m)
        n_orders, n_trades = int(done[0]["orders"]), int(done[0]["trades"])
        n_delayed = int(done[0]["delayed"])
        rejections = done[0]["rejected"]
    waits = (f"an order due on a bar with no candle waits for the symbol's next candle and fills at its "
             f"{'open' if fill == 'next_open' else 'close'} (orders record the fill bar); ")
    if _on_bar is not None:  # the callback waits in both fill modes
        missing_rule = waits + "signals set while one waits, on bars with no candle, are ignored"
    else:
        missing_rule = (waits if fill == "next_open" else "") + "exits on bars with no candle are ignored"
    assumptions = {
        "fill": fill,
        "fill_rule": ("signals at bar t fill at bar t+1's open" if fill == "next_open"
                      else "signals at bar t fill at bar t's close (optimistic)"),
        "stops": (("checked from the entry bar itself for entries at the open (the whole bar follows the "
                   "fill), " if fill == "next_open" else "active from the bar after entry, ")
                  + "and from the bar after a resting entry's fill; inclusive triggers; SL before TP in one bar "
                  "unless optimistic; gaps fill at the open; trailing level from the peak (entry price included) "
                  "before the current bar"),
        "intrabar": intrabar,
        "fees": _describe(params["fees"], syms), "fixed_fees": _describe(params["fixed_fees"], syms),
        "maker_fees": _describe(params["maker_fees"], syms),
        "slippage": _describe(params["slippage"], syms),
        "slippage_range": _describe(params["slippage_range"], syms),
        "slippage_volume": _describe(params["slippage_volume"], syms),
        "size": _describe(params["size"], syms), "size_type": size_type,
        "leverage": leverage, "init_cash": init_cash,
        "cash_sharing": (True if n_groups == 1 else
                         {s: int(g) for s, g in zip(syms, groups)} if n_groups < m else False),
        "order_type": order_type, "tif": int(tif), "absolute_stops": abs_stops,
        "exit_size": ("all" if not partial else "per bar" if exit_frac.shape[0] > 1
                      else _describe(exit_frac[0], syms)),
        "valuation": "last valid close (never used as a fill price)",
        "open_trades": "reported with exit_reason 'end' at the last valid close, no exit fees",
        "days_per_year": 365,
        "gaps": int(len(gaps)),
        "missing_data": missing_rule,
        "delayed_signals": int(n_delayed),
    }
    if no_candles:
        assumptions["symbols_without_candles"] = no_candles
    if exch is not None:
        assumptions["filters"] = exch["describe"]
    res = Result(inputs=inputs, orders=orders[:n_orders], trades=trades[:n_trades], cash=cash, equity=equity,
                 init_cash=init_cash * n_groups, freq_ms=freq_ms, gaps=gaps, assumptions=assumptions,
                 symbol_init_cash=None if n_groups == 1 else init_cash)
    if _on_bar is not None:
        res._signal_arrays = sig  # DataFrames built on first access of Result.signals
    _warn_no_candles(no_candles)
    _warn_rejected(res.order_records, rejections, size_type, market_only=order_type == "market")
    return res


def backtest_callback(data: Any, on_bar: Any, *, user: tuple = (), **kwargs: Any) -> Result:
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
    import inspect

    check_kwargs("backtest_callback()", kwargs, inspect.signature(backtest).parameters)
    res = backtest(data, _on_bar=on_bar, _user=user, **kwargs)
    return res


#: Initial record buffer of the callback path (orders); grown by doubling as needed.
_CALLBACK_BUFFER = 1024
#: Largest initial order buffer of the signals path (records); grown by doubling as needed.
_SIGNAL_BUFFER = 1 << 18


def _volume(inputs: Inputs) -> np.ndarray:
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


def _exit_size(x: Any, inputs: Inputs, sig: dict, has_short: bool) -> tuple[bool, np.ndarray]:
    """``exit_size`` as ``(partial, fractions)``: ``(1, n_symbols)`` per symbol or ``(n_bars, n_symbols)``
    per bar (NaN where no exit signal means 1); every value at an exit signal in (0, 1]."""
    n, m = inputs.shape
    one_series = m == 1 and n > 1 and (
        (isinstance(x, np.ndarray) and x.ndim == 1 and len(x) == n)
        or (isinstance(x, pd.Series) and len(x) == n and not set(x.index) <= set(inputs.symbols)))
    if isinstance(x, pd.DataFrame) or (isinstance(x, np.ndarray) and x.ndim == 2) or one_series:
        arr = _weights(x, inputs, "exit_size")
        at_exit = sig["exits"] | (sig["short_exits"] if has_short else False)
        with np.errstate(invalid="ignore"):
            bad = at_exit & ~((arr > 0) & (arr <= 1))
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"exit_size must be in (0, 1] at every exit signal; got {arr[t, j]} at "
                             f"{inputs.index[t]} ({inputs.symbols[j]})")
        arr = np.where(np.isnan(arr), 1.0, arr)
    else:
        arr = _per_symbol(x, "exit_size", inputs.symbols, 1.0, positive=True)
        if (arr > 1).any():
            raise ValueError(f"exit_size must be a fraction in (0, 1] of the position, got {arr[arr > 1][0]}")
        arr = arr[None, :]
    if (arr == 1.0).all():
        return False, np.ones((1, 1))
    return True, np.ascontiguousarray(arr)


def _grow(orders: np.ndarray, trades: np.ndarray, counts: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Record buffers at least twice as large, keeping the records written so far (``counts``: the
    kernel's ``counts_dt`` record array)."""
    n_orders, n_trades = int(counts[0]["orders"]), int(counts[0]["trades"])
    orders = np.concatenate([orders[:n_orders], np.empty(max(len(orders), 8 * m), dtype=order_dt)])
    trades = np.concatenate([trades[:n_trades], np.empty(max(len(trades), 4 * m), dtype=trade_dt)])
    return orders, trades


def _reads_ohlc(fill: str, order_type: str, params: dict, sl_price: Any, tp_price: Any, callback: bool) -> bool:
    """Whether a run reads open, high or low: fills at the open, resting entries, stops (checked on
    highs and lows, gaps filled at the open), range slippage, or a callback (``ctx`` shows them)."""
    return (callback or fill != "close" or order_type != "market" or sl_price is not None or tp_price is not None
            or _has_stops(params, False) or bool((params["slippage_range"] != 0).any()))


def _param_records(params: dict) -> np.ndarray:
    """The per-symbol parameters (``(n_symbols,)`` arrays by keyword name; missing ones 0) as the
    kernels' ``param_dt`` records."""
    from .kernels.records import param_dt

    m = len(next(iter(params.values())))
    packed = np.zeros(m, dtype=param_dt)
    for field, key in (("size", "size"), ("fees", "fees"), ("fixed_fees", "fixed_fees"), ("slippage", "slippage"),
                       ("sl", "sl_stop"), ("tp", "tp_stop"), ("trail", "trail_stop"), ("lot", "lot_size"),
                       ("min_qty", "min_qty"), ("min_notional", "min_notional"), ("maker_fees", "maker_fees"),
                       ("slip_range", "slippage_range"), ("slip_volume", "slippage_volume")):
        if key in params:
            packed[field] = params[key]
    return packed


def _has_stops(params: dict, abs_stops: bool) -> bool:
    """Whether any symbol has attached stops (each entry may then end in one more order)."""
    return abs_stops or any(bool(np.isfinite(params[k]).any()) for k in ("sl_stop", "tp_stop", "trail_stop"))


def _run_callback(on_bar, user, inputs, volume, sig, packed, size_type_id, leverage, init_cash, groups, fill_id,
                  intrabar_id, otype_id, oprice, tif, cash, equity):
    """Drive the callback kernel, growing the record buffers when it asks for room."""
    from .kernels.callback import simulate_callback_nb
    from .kernels.records import Books, Levels, Prices as PriceArrays, Signals, counts_dt, make_config, new_state

    n, m = inputs.shape
    state, acct, counts = new_state(groups), np.full(int(groups.max()) + 1, init_cash), np.zeros(1, dtype=counts_dt)
    touched = np.zeros(n, dtype=np.bool_)  # bars where the callback set a signal
    exit_frac, handed = np.ones(m), np.ones((1, m))  # partial closes: ctx.exit_size, what the handler reads
    nan = np.full((1, 1), np.nan)
    prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, volume)
    signals = Signals(sig["entries"], sig["exits"], sig["short_entries"], sig["short_exits"])
    levels = Levels(oprice, nan, nan, nan, handed)
    cfg = make_config(size_type_id, leverage, fill_id, intrabar_id, otype_id, tif, True, False, True)
    # the number of orders is unknown beforehand: start at one per 64 bar-steps (untouched pages
    # of np.empty cost nothing), so that long runs do not copy their records over and over
    orders = np.empty(max(_CALLBACK_BUFFER, 16 * m, n * m // 64), dtype=order_dt)
    trades = np.empty(max(_CALLBACK_BUFFER // 2, 8 * m, n * m // 128), dtype=trade_dt)
    start = 0
    while True:
        start = simulate_callback_nb(on_bar, user, prices, signals, levels, cfg, packed, touched, exit_frac, start,
                                     Books(state, acct, counts, orders, trades), cash, equity)
        if start >= n:
            break
        orders, trades = _grow(orders, trades, counts, m)
    k = counts[0]
    return orders[:k["orders"]], trades[:k["trades"]], int(k["delayed"]), k["rejected"]


def _cash_groups(cash_sharing: Any, symbols: list) -> np.ndarray:
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


def _handle_gaps(market: Market, freq_ms: float | None, on_gap: str) -> pd.DataFrame:
    gaps = market.gaps(freq_ms)
    if len(gaps):
        msg = (f"data has {len(gaps)} gap(s) ({int(gaps['bars'].sum())} bars); nothing fills on a missing bar. "
               f"First: {gaps.iloc[0].to_dict()}.")
        if on_gap == "error":
            raise ValueError(msg + " Pass on_gap='warn' or 'skip' to run anyway")
        if on_gap == "warn":
            warnings.warn(msg + " Pass on_gap='skip' to silence or inspect Result.gaps", stacklevel=user_stacklevel())
    return gaps


def _scalar(x: Any, name: str) -> float:
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {x!r}")
    x = float(x)
    if not np.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return x


def _exchange_filters(market: Market, filters: Any, by_hand: dict) -> dict | None:
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
        raise ValueError(f"filters='exchange' but no exchange filters for {_few(lacking)}: attach them with "
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


def _round_tick(price: np.ndarray, tick: np.ndarray, long_side: np.ndarray | None, *, up_for_long: bool,
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


def _default_size(size: Any, size_type: str, groups: np.ndarray, symbols: list) -> np.ndarray:
    """``size`` per symbol; None: 1 / (symbols sharing its account) for the percent types, else 1."""
    if size is not None or size_type not in ("percent", "target_percent"):
        return _per_symbol(size, "size", symbols, 1.0, positive=True)
    return 1.0 / np.bincount(groups)[groups].astype(np.float64)


def _check_sizing(size: np.ndarray, size_type: str, leverage: float, symbols: list) -> None:
    """Sizes that no order could ever satisfy are an error, not a run of rejected orders."""
    if size_type == "percent" and (size > 1.0).any():
        j = int(np.argmax(size > 1.0))
        raise ValueError(f"size must be <= 1 with size_type='percent' (a fraction of the free margin, 1.0 = all-in); "
                         f"got {size[j]} ({symbols[j]}): every entry would be rejected for insufficient cash. "
                         f"For more exposure raise leverage")
    if size_type == "target_percent" and (size > leverage).any():
        j = int(np.argmax(size > leverage))
        raise ValueError(f"size must be <= leverage ({leverage}) with size_type='target_percent'; got {size[j]} "
                         f"({symbols[j]}): such a position needs more margin than the equity and every entry "
                         f"would be rejected. Raise leverage or lower size")


def _check_sl_stop(sl: np.ndarray, has_short: bool, symbols: list) -> None:
    """``sl_stop >= 1`` puts a long's stop at or below a price of 0: it can never trigger."""
    with np.errstate(invalid="ignore"):
        bad = sl >= 1.0
    if bad.any() and not has_short:
        j = int(np.argmax(bad))
        raise ValueError(f"sl_stop must be < 1 for long positions (a fraction of the entry price: {sl[j]} puts the "
                         f"stop at or below 0, it can never trigger) ({symbols[j]}). Only short positions can "
                         f"use sl_stop >= 1 (stop above twice the entry price)")


#: Valid range of a fee rate, said in every message about one.
_FEE_RANGE = " (valid range [0, 1): a fraction of the order's notional, 0.001 = 0.1 %)"
#: Largest price a run accepts: fills multiply prices by (1 + slippage) (1 + fees) and sum them into
#: equity, so prices near float64's largest value (1.8e308) would overflow to inf inside the engine.
_MAX_PRICE = float(np.finfo(np.float64).max) / 64


def _fee_params(fees: Any, fixed_fees: Any, maker_fees: Any, init_cash: float, symbols: list) -> dict:
    """Fee rates in [0, 1) per symbol, and fixed fees below the starting cash (else no order can fill)."""
    out = {"fees": _per_symbol(fees, "fees", symbols, 0.0, upper=1.0, hint=_FEE_RANGE),
           "fixed_fees": _per_symbol(fixed_fees, "fixed_fees", symbols, 0.0)}
    if maker_fees is not _NO_MAKER:
        out["maker_fees"] = _per_symbol(maker_fees, "maker_fees", symbols, np.nan, allow_none=True, upper=1.0,
                                        hint=_FEE_RANGE)
    bad = out["fixed_fees"] >= init_cash
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"fixed_fees ({out['fixed_fees'][j]}, {symbols[j]}) must be below init_cash ({init_cash}): "
                         f"it is a fee per order in quote currency, and no order could ever pay it")
    return out


_NO_MAKER = object()


def _check_candles(market: Market) -> list:
    """Refuse data without a single candle; return the symbols that have none (the caller reports them)."""
    if market.n_missing == 0:
        return []
    empty = market.missing.all(axis=0)
    if empty.all():
        raise ValueError(f"data has no candle at all: every price of {_few(market.symbols)} is NaN "
                         f"({market.shape[0]} bars), so nothing could trade. Check the data source or the "
                         f"date range")
    return [s for s, e in zip(market.symbols, empty) if e]


def _few(symbols: list, k: int = 5) -> str:
    names = ", ".join(map(str, symbols[:k]))
    return names + (f" and {len(symbols) - k} more" if len(symbols) > k else "")


def _warn_no_candles(symbols: list) -> None:
    if symbols:
        warnings.warn(f"{len(symbols)} symbol(s) have no candle at all in the data ({_few(symbols)}): they cannot "
                      f"trade in this run (listed in Result.assumptions['symbols_without_candles']). Drop them or "
                      f"check the date range", stacklevel=user_stacklevel())


def _check_price_range(inputs: Prices, params: dict, symbols: list) -> None:
    """Prices whose worst fill (slippage, fees) would overflow float64 are refused, blaming the price."""
    hi = np.fmax.reduce(inputs.high, axis=0) if inputs.high.shape[0] else np.zeros(len(symbols))
    if not (hi > _MAX_PRICE / 16).any():  # the common case: nothing near the limit
        return
    fee = np.fmax(params["fees"], params.get("maker_fees", params["fees"]))
    worst = hi * (1.0 + params["slippage"]) * (1.0 + fee)
    worst = worst * (1.0 + params.get("slippage_range", 0.0)) * np.where(params.get("slippage_volume", 0.0) > 0, 1.5, 1)
    with np.errstate(invalid="ignore"):
        bad = ~(worst <= _MAX_PRICE)
    if bad.any():
        j = int(np.argmax(bad))
        raise ValueError(f"prices of {symbols[j]} reach {hi[j]:.4g}: a fill there with slippage and fees "
                         f"({worst[j]:.4g}) is too close to float64's largest value (1.8e308): notionals, fees "
                         f"and equity would overflow to inf (fill prices up to {_MAX_PRICE:.3g} are accepted). "
                         f"The price scale is the problem, not cash: rescale the prices "
                         f"(e.g. quote per 1e-6 unit)")


def _describe(arr: np.ndarray, symbols: list) -> Any:
    if np.all(arr == arr[0]) or np.all(np.isnan(arr)):
        v = float(arr[0])
        return None if np.isnan(v) else v
    return {s: (None if np.isnan(v) else float(v)) for s, v in zip(symbols, arr)}


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
    from .kernels.rebalance import simulate_weights_nb
    from .kernels.records import Books, counts_dt, rebalance_state_dt

    market = prepare_data(data)
    n, m = market.shape
    syms = market.symbols
    exch = _exchange_filters(market, filters, dict(lot_size=lot_size, min_qty=min_qty, min_notional=min_notional))
    if exch is not None:
        lot_size, min_qty, min_notional = exch["step_size"], exch["min_qty"], exch["min_notional"]
    fill_id = _choice(fill, "fill", _FILLS)
    on_gap = _choice(on_gap, "on_gap", _ON_GAP)
    w = _weights(weights, market)
    if isinstance(rebalance_every, (bool, np.bool_)) or not isinstance(rebalance_every, (int, np.integer)):
        mask = np.asarray(rebalance_every.to_numpy() if isinstance(rebalance_every, pd.Series) else rebalance_every)
        if mask.dtype != np.bool_ or mask.shape != (n,):
            raise ValueError(f"rebalance_every must be a positive integer or a boolean array of shape ({n},)")
    else:
        if rebalance_every < 1:
            raise ValueError(f"rebalance_every must be >= 1, got {rebalance_every}")
        mask = np.zeros(n, dtype=np.bool_)
        mask[::int(rebalance_every)] = True
    mask = np.ascontiguousarray(mask)
    wparams = {
        **_fee_params(fees, fixed_fees, _NO_MAKER, _scalar(init_cash, "init_cash"), syms),
        "slippage": _per_symbol(slippage, "slippage", syms, 0.0, upper=1.0),
        "lot_size": _per_symbol(lot_size, "lot_size", syms, 0.0),
        "min_qty": _per_symbol(min_qty, "min_qty", syms, 0.0),
        "min_notional": _per_symbol(min_notional, "min_notional", syms, 0.0)}
    packed = _param_records(wparams)
    init_cash = _scalar(init_cash, "init_cash")
    leverage = _scalar(leverage, "leverage")
    freq_ms = _freq_ms(freq, market)
    no_candles = _check_candles(market)
    gaps = _handle_gaps(market, freq_ms, on_gap)
    inputs = market.prices(ohlc=fill == "next_open")  # fills at the close read no open
    _check_price_range(inputs, wparams, syms)
    bound = 2 * int(np.count_nonzero(~np.isnan(w[mask])))
    orders = np.empty(bound, dtype=order_dt)
    trades = np.empty(bound // 2 + m, dtype=trade_dt)
    cash = np.empty(n)
    equity = np.empty(n)
    state, counts = np.zeros(m, dtype=rebalance_state_dt), np.zeros(1, dtype=counts_dt)
    state["wait"] = -1
    simulate_weights_nb(inputs.open, inputs.close, w, mask, packed, float(leverage), int(fill_id),
                        Books(state, np.full(1, init_cash), counts, orders, trades), cash, equity)
    n_orders, n_trades, n_delayed = (int(counts[0][k]) for k in ("orders", "trades", "delayed"))
    assumptions = {
        "fill": fill,
        "fill_rule": ("weights at bar t fill at bar t+1's open" if fill == "next_open"
                      else "weights at bar t fill at bar t's close (optimistic)"),
        "rebalance": "w * equity / ((1 + fees) * (1 + slippage) * price) units; shrinking orders first",
        "fees": _describe(packed["fees"], syms), "fixed_fees": _describe(packed["fixed_fees"], syms),
        "slippage": _describe(packed["slippage"], syms),
        "leverage": leverage, "init_cash": init_cash, "cash_sharing": True,
        "valuation": "last valid close (never used as a fill price)",
        "open_trades": "reported with exit_reason 'end' at the last valid close, no exit fees",
        "days_per_year": 365,
        "gaps": int(len(gaps)),
        "missing_data": ("a target whose fill bar has no candle waits for the symbol's next candle and is sized and "
                         f"filled at its {'open' if fill == 'next_open' else 'close'} (orders record the fill bar); "
                         "a newer weight replaces it; none before the end: rejected no_data on the last bar"),
        "delayed_orders": int(n_delayed),
    }
    if no_candles:
        assumptions["symbols_without_candles"] = no_candles
    if exch is not None:
        assumptions["filters"] = exch["describe"]
    _warn_no_candles(no_candles)
    _warn_rejected(orders[:n_orders], counts[0]["rejected"], market_only=True)
    return Result(inputs=inputs, orders=orders[:n_orders], trades=trades[:n_trades], cash=cash, equity=equity,
                  init_cash=init_cash, freq_ms=freq_ms, gaps=gaps, assumptions=assumptions)


def _weights(x: Any, inputs: Market | Prices, name: str = "weights") -> np.ndarray:
    """A float (bars x symbols) input matched to the data by label (``panel.align``; symbols it lacks
    get NaN); NaN allowed, inf not."""
    market = inputs.market if isinstance(inputs, Prices) else inputs
    arr = align(x, market, name, "float")
    if np.isinf(arr).any():
        raise ValueError(f"{name} must not contain inf")
    return arr
