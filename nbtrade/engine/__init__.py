"""The backtest engine's front ends: market panel + validated run options -> numba kernel -> :class:`Result`.

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

Layout
    :mod:`.options` validates run options once into a frozen :class:`RunConfig` (kernel parameter
    records, enum ids, aligned price levels, the ``Result.assumptions``); one front end per mode
    (:mod:`.signals` :func:`backtest`, :mod:`.weights` :func:`backtest_weights`, :mod:`.callback`
    :func:`backtest_callback`) runs market + config -> kernel -> Result; :mod:`.run` holds the steps they
    share; :mod:`.classapi` is the backtesting.py-style :class:`Strategy` / :class:`Backtest`, which builds
    the market and the config once for all its runs. ``nbtrade.backtesting`` and ``nbtrade.strategy`` are
    the former homes of these names and stay importable.
"""
from __future__ import annotations

from .callback import backtest_callback, run_callback
from .classapi import Backtest, Strategy, crossover
from .options import RunConfig
from .run import Inputs, RejectedOrdersWarning, find_gaps, prepare, prepare_data, user_stacklevel
from .signals import backtest, prepare_signals, run_signals
from .weights import backtest_weights, run_weights

__all__ = ["backtest", "backtest_weights", "backtest_callback", "prepare", "prepare_data", "Inputs",
           "RejectedOrdersWarning", "RunConfig", "run_signals", "run_weights", "run_callback", "Strategy",
           "Backtest", "crossover", "find_gaps", "prepare_signals", "user_stacklevel"]
