"""Signals front end: :func:`backtest` = market + :class:`RunConfig` + boolean signals -> kernel -> Result."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

import numpy as np
import pandas as pd

from .._names import suggest_kwargs
from ..kernels.records import Option, OrderType, order_dt, trade_dt
from ..panel import Market, Prices, align, as_market
from ..result import Result
from .options import ORDER_TYPES, RunConfig, check_exit_fractions
from .orders import order_levels
from .run import RunData, checked_volume, grow, prepare_data, round_tick, run_prices, warn_no_candles, warn_rejected

__all__ = ["backtest", "run_signals", "signals_inputs", "SignalInputs", "prepare_signals", "kernel_variant", "signals_kernels",
           "one_variant"]

#: Largest initial order buffer of the signals path (records); grown by doubling as needed.
_SIGNAL_BUFFER = 1 << 18


@suggest_kwargs
def backtest(data: Any, entries: Any = None, exits: Any = None, short_entries: Any = None,
             short_exits: Any = None, *, size: Any = None, size_type: str = "percent",
             sl_stop: Any = None, tp_stop: Any = None, trail_stop: Any = None,
             fees: Any = 0.0, fixed_fees: Any = 0.0, slippage: Any = 0.0, init_cash: float = 10_000.0,
             fill: str = "next_open", intrabar: str = "pessimistic", freq: Any = None,
             lot_size: Any = 0.0, min_qty: Any = 0.0, min_notional: Any = 0.0, leverage: Any = 1.0,
             cash_sharing: Any = True, order_type: str = "market", order_price: Any = None,
             limit_price: Any = None, tif: int = 0, maker_fees: Any = None, slippage_range: Any = 0.0,
             slippage_volume: Any = 0.0, sl_price: Any = None, tp_price: Any = None, exit_size: Any = 1.0,
             on_gap: str = "warn", filters: Any = None, accumulate: bool = False, reenter: bool = False,
             finalize_trades: bool = False, entry_size: Any = None, ind_stop: Any = None, td_stop: Any = None,
             min_roi: Any = None, borrow_rate: Any = 0.0, maintenance: Any = None,
             liquidation_fee: Any = None, instrument: Any = "spot", margin: str | None = None) -> Result:
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
        When signals fill (see :mod:`nbtrade.engine`). Governs entries, exits and stops alike.
    intrabar : {"pessimistic", "optimistic"}
        Stop-loss or take-profit first when one bar touches both.
    freq : str or Timedelta, optional
        Bar length for annualisation (``"1h"``); inferred from a DatetimeIndex.
    lot_size, min_qty, min_notional : float, per symbol allowed
        Exchange filters: sizes round down to ``lot_size`` (0 = none); smaller orders
        than ``min_qty`` (base) or ``min_notional`` (quote) are rejected.
    leverage : float, or {symbol: leverage} / Series by symbol (missing symbols: 1)
        Margin per unit of notional is ``1 / leverage`` (1 = cash account). Must be > 0 and at most
        the first maintenance tier's ``max_leverage`` of the symbol (errors name ``leverage['SYM']``). With ``leverage > 1`` or shorts every
        position follows the isolated margin rule of :mod:`nbtrade.margin`: its margin is its
        entry notional / ``leverage``, it is liquidated (exit reason ``"liquidation"``) when the
        candle's low (long) or high (short) reaches its liquidation price (at the open when the
        bar opens through it), and it never loses more than its margin. A 1x long is never
        liquidated.
    maintenance : nbtrade.margin.Tiers, rows, or {symbol: those}, optional
        Maintenance-margin tiers of the margin rule (default :data:`nbtrade.margin.DEFAULT_TIERS`).
    instrument : {"spot", "perp"} or {symbol: kind}
        ``"perp"``: a USD-margined linear perpetual, always under the isolated margin rule (any
        leverage, both sides), its liquidation checked against the market's mark-price candles
        (``mark_open`` .. ``mark_close`` fields; without them the price candles, said in
        ``Result.assumptions["mark"]``). Funding is not applied yet (issue 17, next slice).
    margin : {"isolated", "cross"}, optional
        Margin mode of the perpetuals (default ``"isolated"``: each position's loss is capped at its
        margin). ``"cross"``: one wallet (the shared cash) backs every position; when its margin
        balance at the bar's adverse marks falls to the sum of maintenance margins, every position
        closes (exit reason ``"liquidation"``; rule in :mod:`nbtrade.margin`). Needs every symbol a
        perpetual and one cash account; an error on spot-only runs.
    liquidation_fee : float, optional
        Liquidation fee rate of the notional; None (default): the remaining maintenance margin is
        forfeited (closing at the bankruptcy price).
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

        Per entry (backtesting.py's ``buy()``, ``buy(limit=)``, ``buy(stop=)``, ``buy(stop=, limit=)``
        in one run): a DataFrame (bars x symbols, matched by label) or array of those names, or of
        their codes 0-3 (``nbtrade.kernels.records.OrderType``); the cell of an entry signal's bar
        ``t`` is that entry's type (None / NaN, and symbols left out: ``"market"``; other cells are
        not read). Each type follows its rules above; a resting entry keeps its type until it
        fills, expires, is cancelled or is left open (the order records say which). Unknown
        names or codes are refused. ``accumulate`` is refused with it (adds fill at market).
    order_price : DataFrame (bars x symbols) or array
        Limit/stop prices; must be finite and > 0 wherever an entry signal is set (with
        ``order_type`` per bar: at every limit, stop or stop-limit entry, refused naming the bar
        and symbol; market entries do not read it, NaN allowed there).
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
        trade. Same trigger and gap rules. A level on the wrong side of the entry's fill (a
        long's stop-loss at or above it, its take-profit at or below it; mirrored for a short)
        is not refused, as the fill price is not known when the signals are given: the first
        stop check exits at once, at the open of the fill bar (fills at the open) or of the
        next bar (fills at the close), reason ``sl`` / ``tp``. backtesting.py raises at order time.
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
    accumulate : bool
        False (default): an entry signal while in a position of its direction is ignored. True:
        it adds a market order to the position (pyramiding, DCA). The combined position is one
        trade: average entry price = size-weighted mean of the fills (fees apart), entry fees
        summed, entry time (age of ``td_stop`` and ``min_roi``) the first entry's; percent stops
        follow the average, ``sl_price``/``tp_price`` given with an add replace the old levels;
        ``exit_size`` closes a part of the combined position at its average. Each add is sized on
        its own (``size_type`` ``"amount"``, ``"value"`` or ``"percent"``; ``"target_percent"`` is
        refused, as are resting order types).
    reenter : bool
        True: an exit signal and an entry of the position's direction on the same bar close the
        position and open a new trade (backtesting.py's ``position.close(); buy()``). False
        (default): the exit alone acts.
    finalize_trades : bool
        True: positions still open after the last bar are closed by a market order at their last
        valid close (fees and slippage apply; exit reason ``"final"``, counted as closed trades),
        as backtesting.py's ``finalize_trades=True`` (which fills that close at the last bar's open:
        it re-runs its broker on the last bar). False (default): reported as ``"end"`` trades
        marked to the last close, without exit fees.
    entry_size : DataFrame (bars x symbols) or array, optional
        Size of the entry signalled at each bar, read as ``size_type`` (NaN: ``size``); > 0 at every
        entry signal where set.
    ind_stop : DataFrame (bars x symbols) or array, optional
        Indicator stop, e.g. ``close - 3 * ATR`` (backtesting.py's ``TrailingStrategy``): the value at
        an entry's signal bar is the trade's first stop level (NaN: none yet), each later bar's
        value (known at its close) moves it from the next bar on, only in the position's favour
        (up for a long, down for a short). With ``sl_stop``/``sl_price`` and ``trail_stop`` the
        tightest level rules; exits are ``"ind_stop"``. At an entry signal it must be below the
        close (long) or above it (short).
    td_stop : int, duration or {symbol: ...}, optional
        Time exit: a trade leaves at the open of the bar where its age (from its first entry)
        reaches ``td_stop`` bars, or the duration (``"4h"``, Timedelta; rounded up to whole bars);
        exit reason ``"time"``.
    min_roi : {age: return}, optional
        freqtrade's ``minimal_roi``: from each age on (bars as int, durations as ``"30min"`` or
        Timedelta, or freqtrade's minute strings ``"40"``) a trade exits once its price return
        (``price / entry - 1``, gross of fees; mirrored for shorts) reaches the return, at that
        level (or the open if it gaps past it); exit reason ``"roi"``. The take-profit and the ROI
        level: the nearer rules.
    borrow_rate : float, per symbol allowed
        Borrow cost of short positions as a fraction per year (0.05 = 5 %; 365-day years), charged
        on the short's notional at each bar's close (``rate * bar / year``); in the trades' pnl,
        the equity and ``stats()["Borrow Paid [$]"]``. Needs the bar length (``freq``). 0 (default):
        none. Perpetual funding is not this.

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
    market = prepare_data(data)
    cfg = RunConfig.build(
        market, "signals", size=size, size_type=size_type, sl_stop=sl_stop, tp_stop=tp_stop, trail_stop=trail_stop,
        fees=fees, fixed_fees=fixed_fees, slippage=slippage, init_cash=init_cash, fill=fill, intrabar=intrabar,
        freq=freq, lot_size=lot_size, min_qty=min_qty, min_notional=min_notional, leverage=leverage,
        cash_sharing=cash_sharing, order_type=order_type, order_price=order_price, limit_price=limit_price,
        tif=tif, maker_fees=maker_fees, slippage_range=slippage_range, slippage_volume=slippage_volume,
        sl_price=sl_price, tp_price=tp_price, exit_size=exit_size, on_gap=on_gap, filters=filters,
        accumulate=accumulate, reenter=reenter, finalize_trades=finalize_trades, entry_size=entry_size,
        ind_stop=ind_stop, td_stop=td_stop, min_roi=min_roi, borrow_rate=borrow_rate, maintenance=maintenance,
        liquidation_fee=liquidation_fee, instrument=instrument, margin=margin)
    return run_signals(market, cfg, entries, exits, short_entries, short_exits)


def spot_margin(leverage: float, has_short: bool) -> bool:
    """Whether a spot run follows the isolated margin rule of :mod:`nbtrade.margin` (leverage > 1, or
    shorts): each position has margin ``entry notional / leverage`` and is liquidated at its
    liquidation price (default maintenance tiers, no funding). A 1x long is never liquidated."""
    return leverage > 1.0 or has_short


def margin_params(params: np.ndarray, tiers: Any = None, liquidation_fee: float = float("nan")) -> np.ndarray:
    """A copy of the ``param_dt`` records with the maintenance ``tiers`` (one :class:`nbtrade.margin.Tiers`
    for all columns or a sequence of them per column; None: ``DEFAULT_TIERS``) and the liquidation fee
    rate (NaN: the remaining maintenance margin is forfeited) filled in."""
    from ..kernels.records import MAX_TIERS
    from ..margin import DEFAULT_TIERS

    out = params.copy()
    m = len(out)
    per = [DEFAULT_TIERS] * m if tiers is None else (list(tiers) if isinstance(tiers, (list, tuple)) else [tiers] * m)
    for j, t in enumerate(per):
        k = len(t)
        if k > MAX_TIERS:
            raise ValueError(f"maintenance: at most {MAX_TIERS} tiers per symbol; got {k}")
        for field, col in (("t_floor", t.floor), ("t_cap", t.cap), ("t_mmr", t.mmr), ("t_cum", t.cum),
                           ("t_lev", t.max_leverage)):
            out[field][j, :k] = col
            out[field][j, k:] = col[-1]
        out["t_n"][j] = k
    out["liq_fee"] = liquidation_fee
    return out


def check_cross(cfg: Any, ms: Any) -> None:
    """``margin="cross"``: one wallet backs every position, so every symbol is a perpetual and the run
    shares one cash account (errors name the argument that says otherwise)."""
    spot = [s for s, k in zip(cfg.symbols, ms.instrument) if k != "perp"]
    if spot:
        raise ValueError(f"margin='cross' backs perpetual positions with one wallet; instrument makes {spot} spot: "
                         f"pass instrument='perp' for every symbol, or margin='isolated'")
    if cfg.n_groups != 1:
        raise ValueError("margin='cross' backs every position with one wallet, and cash_sharing splits the cash "
                         "into several accounts (isolated per symbol or group): drop cash_sharing, or use "
                         "margin='isolated'")


class MarkNote(NamedTuple):
    """Which candles a perpetual run's liquidation check reads, and how funding applies: ``str()`` is its
    ``Result.assumptions["mark"]``. ``has_mark``: the data has mark-price candles; ``n_fallback``: perpetual
    bars with a price candle but no mark candle, checked on the price candle; ``funding``: the data has
    funding events. A chunked run merges its chunks' notes (:meth:`merge`) and counts its own bars."""

    has_mark: bool
    n_fallback: int = 0
    funding: bool = False

    def merge(self, other: "MarkNote | None") -> "MarkNote":
        """The note of a run made of this part and ``other`` (fallback bars summed, funding if either has it)."""
        if other is None:
            return self
        return MarkNote(self.has_mark, self.n_fallback + other.n_fallback, self.funding or other.funding)

    def __str__(self) -> str:
        if self.has_mark:
            text = "perpetuals: liquidation checked on the mark-price candles (mark low for longs, high for shorts)"
            if self.n_fallback:
                text += f"; {self.n_fallback} bar(s) with a price candle but no mark candle checked on the price candle"
        else:
            text = ("no mark-price candles in the data: the liquidation of perpetuals is checked on the price candles "
                    "(the last price stands for the mark)")
        if self.funding:
            text += ("; funding at each funding time of the data: at a bar's open on the positions carried in (before "
                     "fills); inside a bar (net per symbol), a payment before the intrabar checks on the positions open "
                     "then (one closed inside the bar has paid), a receipt at the close on those still open; it moves "
                     "the position's isolated margin")
        return text


def perp_marks(market: Market, inputs: Prices, ms: Any, levels: Any) -> tuple[Any, MarkNote]:
    """``levels`` with the mark candles of the perpetual columns (spot columns keep their price
    candles), and the note that says which candles the liquidation check reads (:class:`MarkNote`)."""
    from ..kernels.records import Marks
    from ..margin import check_mark, mark_or_price

    perp = ms.is_perp()[None, :]
    if not market.has_mark:
        mo, mh, ml, mc = inputs.open, inputs.high, inputs.low, inputs.close
        note = MarkNote(False)
    else:
        mark = tuple(market.array(f) for f in ("mark_open", "mark_high", "mark_low", "mark_close"))
        check_mark(*mark, argument="mark")
        (mo, mh, ml, mc), gone = mark_or_price(perp[0], mark, (inputs.open, inputs.high, inputs.low, inputs.close))
        note = MarkNote(True, gone)
    n, m = inputs.close.shape
    f_bar, f_open, f_in = np.zeros(0, np.int64), np.zeros((0, m)), np.zeros((0, m))
    ev = funding_events(market)
    if len(ev["bar"]):
        bar, col = ev["bar"], ev["symbol"]
        keep = perp[0, col]
        bar, col, rate, mk, t = bar[keep], col[keep], ev["rate"][keep], ev["mark_price"][keep], ev["time"][keep]
        # the mark of an event without one: the mark open of its bar, else the last valid mark close before
        need = np.isnan(mk)
        if need.any():
            fallback = mo[bar, col]
            gone = need & np.isnan(fallback)
            if gone.any():  # no mark candle at the event's bar: the last valid mark close before it
                last = pd.DataFrame(mc).ffill().shift(1).to_numpy()
                fallback = np.where(np.isnan(fallback), last[bar, col], fallback)
            mk = np.where(need, fallback, mk)
        amount = np.nan_to_num(rate * mk)
        at_open = t == np.asarray(market.time_ms)[bar]
        # sparse by bar: one row per bar holding an event (records.Marks)
        f_bar, row = np.unique(bar, return_inverse=True)
        f_open, f_in = np.zeros((len(f_bar), m)), np.zeros((len(f_bar), m))
        np.add.at(f_open, (row[at_open], col[at_open]), amount[at_open])
        np.add.at(f_in, (row[~at_open], col[~at_open]), amount[~at_open])
        f_bar = f_bar.astype(np.int64)
        note = note._replace(funding=True)
    marks = Marks(mo, mh, ml, f_bar, f_open, f_in, np.zeros_like(f_open), ms.margin == "cross", np.zeros((11, m)))
    return levels._replace(marks=marks), note


def funding_events(market: Market) -> dict:
    """The market's funding events flattened by bar (``nbtrade.data.panels.funding_schedule``)."""
    from ..data.panels import funding_schedule

    # computed once per events and bar grid (a sweep or a benchmark runs the same market many times; each
    # run prepares its own Market around the same events): the last schedule is kept
    if "funding_events" not in market.meta.columns or market.time_ms is None:
        return funding_schedule(market)
    events = tuple(market.meta["funding_events"].tolist())
    grid = np.asarray(market.time_ms)
    hit = _SCHEDULE[0]
    if hit is not None and len(hit[0]) == len(events) and all(a is b for a, b in zip(hit[0], events)) \
            and hit[2] == market.timeframe and (hit[1] is grid or np.array_equal(hit[1], grid)):
        return hit[3]
    out = funding_schedule(market)
    _SCHEDULE[0] = (events, grid, market.timeframe, out)
    return out


#: the last funding schedule (events, bar grid, timeframe, schedule) of :func:`funding_events`
_SCHEDULE: list = [None]


def kernel_variant(kcfg: Any, params: np.ndarray) -> Any:
    """The kernels' ``Config`` of a run as the class of the capabilities it may use: the first of
    :func:`compiled_caps` that covers what the run uses (``records.run_caps``: stops, resting entries,
    extra exits, margin, borrow, finalize). The signals kernels compile once per class and leave out
    the phases it lacks, so a plain run compiles only the plain loop. Inside :func:`one_variant`, that
    block's set when it covers the run."""
    from ..kernels.records import config_variant, run_caps

    caps = run_caps(kcfg, params)
    sets = compiled_caps() if _ONE[0] is None else (_ONE[0], *compiled_caps())
    return config_variant(kcfg, next(v for v in sets if not caps & ~v))


#: the ``Cap`` set of the :func:`one_variant` block being run (None: outside one)
_ONE: list = [None]


@contextmanager
def one_variant(caps: int | None = None) -> Iterator[None]:
    """Within the block, signals runs (spot and perpetual) share one compiled variant of the bar loop, so
    a cold process compiles it once instead of once per capability set and instrument (10-20 s of CPU
    each; ``nbtrade demo`` runs its backtests in one). ``caps``: the ``records.Cap`` bits of that variant
    (default ``Cap.STOPS | Cap.MARGIN``: market-order runs with or without stops, spot or perpetual on
    isolated margin); a run needing more takes its own variant as outside the block, and a cross-margin run
    compiles the variant with the cross-margin code (isolated runs leave it out: ``records.Marks.cross``). Results are identical (bit for bit)
    on every variant; a run may be slower by a few percent on a wider one (it takes the phased bar loop).
    Spot runs get their price candles as stand-in mark candles (copies of open, high, low when these are
    read-only) so they pass the kernel the perpetual runs' argument types. Not thread-safe: the setting
    is process-wide while the block runs.

    >>> import nbtrade
    >>> with nbtrade.one_variant():       # doctest: +SKIP
    ...     spot = nbtrade.backtest(frames, entries, exits, sl_stop=0.02)
    ...     perp = nbtrade.backtest(perps, entries, exits, exits, entries, instrument="perp", leverage=3)
    """
    from ..kernels.records import ALL_CAPS, Cap

    caps = int(Cap.STOPS | Cap.MARGIN) if caps is None else caps
    if not isinstance(caps, (int, np.integer)) or isinstance(caps, bool) or not 0 <= int(caps) <= ALL_CAPS:
        raise ValueError(f"one_variant: caps must be an int of records.Cap bits in [0, {ALL_CAPS}]; got {caps!r}")
    before = _ONE[0]
    _ONE[0] = int(caps)
    try:
        yield
    finally:
        _ONE[0] = before


def _writable_c(a: np.ndarray) -> np.ndarray:
    return a if a.flags.c_contiguous and a.flags.writeable else np.array(a, dtype=np.float64, order="C")


def shared_levels(levels: Any, prices: Any, kcfg: Any) -> Any:
    """``levels`` as the kernel of :func:`one_variant` takes them: mark candles given (a spot run's are
    its price candles, no funding) as writable C-contiguous arrays, so spot and perpetual runs pass one
    argument type. Unchanged outside a block, or when ``kcfg``'s variant is not the block's."""
    from ..kernels.records import Marks

    one = _ONE[0]
    if one is None or getattr(type(kcfg), "CAPS", None) != one:
        return levels
    marks = levels.marks
    if marks is None:
        m = prices.close.shape[1]
        none = np.zeros((0, m))
        marks = Marks(prices.open, prices.high, prices.low, np.zeros(0, np.int64), none, none, none.copy(), None,
                      np.zeros((11, m)))
    # isolated margin: ``cross`` None (not False) leaves the cross-margin code out of the compile (~2 s of CPU)
    return levels._replace(marks=marks._replace(open=_writable_c(marks.open), high=_writable_c(marks.high),
                                                low=_writable_c(marks.low), cross=True if marks.cross else None))


def compiled_caps() -> tuple[int, ...]:
    """The ``Cap`` sets the signals kernels are compiled for, smallest first. Each set is one cold compile
    of the bar loop (10-20 s of CPU), so there are few: plain runs, runs with stops, margined runs
    (perpetuals, spot shorts or leverage: the fused loop with its liquidation triggers) and every other
    run (all phases; the plain ``Config``)."""
    from ..kernels.records import ALL_CAPS, Cap

    return (0, int(Cap.STOPS), int(Cap.MARGIN), ALL_CAPS)


def signals_kernels(kcfg: Any, params: np.ndarray) -> tuple[Any, Any, Any]:
    """``(cfg, run_bars, finish)`` of a signals run in pieces (e.g. time chunks): ``cfg`` the run's
    :func:`kernel_variant`, ``run_bars(prices, signals, levels, cfg, params, start, stop, books, cash_out,
    equity_out) -> int`` runs bars ``start..stop - 1`` exactly as one ``simulate_signals_nb`` call
    would (returns the bar to resume from with larger record buffers, else ``stop``), ``finish(prices,
    cfg, params, books, cash_out, equity_out)`` ends the run after its last bar (``finalize_trades``,
    open positions and resting orders recorded). Pass them the returned ``cfg`` (its class picks the
    compiled variant)."""
    from ..kernels import engine

    return kernel_variant(kcfg, params), engine.run_bars_nb, engine.finish_signals_nb


def record_buffers(counts: dict, n: int, m: int, cfg: RunConfig, has_short: bool, margin_on: bool,
                   partial: bool) -> tuple[np.ndarray, np.ndarray]:
    """The initial order and trade record buffers of a signals run, from its signal counts; the run grows
    them (:func:`nbtrade.engine.run.grow`) when they may overflow, so these are estimates, sized to fit
    most runs without reserving memory they never touch (each thread of a sweep holds one run's buffers).

    Orders: an upper bound when it is small (a long-only market run without stops or margin: one order per
    entry and per exit; else an entry can also make a reversal's exit, a cancel, a stop exit or a
    liquidation), capped at about half the input's bytes: state-like signals (True on half the bars)
    would reserve ~160 bytes per bar-step for orders that mostly never happen. Trades: a trade per filled
    entry (plus partial exits): that bound, capped at half the orders' cap (pages never written cost no
    memory). Below the caps the first buffers hold the whole run (one kernel call).
    """
    n_entry = counts["entries"] + counts["short_entries"]
    n_exit = counts["exits"] + counts["short_exits"]
    plain = cfg.order_type == "market" and not cfg.has_stops and not has_short and not margin_on
    per_entry = 1 if plain else (2 if cfg.order_type == "market" else 4) + (1 if cfg.has_stops else 0)
    cap = max(_SIGNAL_BUFFER, (n * m * 8) // (2 * order_dt.itemsize)) + 8 * m
    orders = np.empty(min(per_entry * n_entry + n_exit + 4 * m, cap), dtype=order_dt)
    n_trades = n_entry + (n_exit if partial else 0)
    trades = np.empty(min(n_trades + 3 * m, cap // 2), dtype=trade_dt)
    return orders, trades


class SignalInputs(NamedTuple):
    """The kernel inputs of one signals run (:func:`signals_inputs`), and what the run reports from them."""

    #: the price panel read (the fields the run needs)
    inputs: Prices
    #: signal counts by name, and whether short signals were given
    counts: dict
    has_short: bool
    #: whether positions follow the margin rule (leverage > 1, shorts, perpetuals, per-symbol leverages)
    margin_on: bool
    #: whether exits may close a part, and the fractions (``(1, 1)`` ones when not)
    partial: bool
    exit_frac: np.ndarray
    #: the kernel's array arguments (``records.Prices``, ``Signals``, ``Levels``)
    prices: Any
    signals: Any
    levels: Any
    #: the kernel's ``Config`` (before :func:`kernel_variant`) and ``param_dt`` records
    kcfg: Any
    params: np.ndarray
    #: which candles the liquidation of perpetuals reads (``Result.assumptions["mark"]``), or None
    mark_note: MarkNote | None
    #: the market's gaps and symbols without candles (None when not asked for)
    data: RunData | None


def signals_inputs(market: Market, cfg: RunConfig, entries: Any = None, exits: Any = None, short_entries: Any = None,
                   short_exits: Any = None, *, run_data: bool = True) -> SignalInputs:
    """The kernel inputs of a signals run on ``market`` with a validated ``cfg``: signals aligned and checked,
    the margin rule switched on where it applies, the price fields read, order prices checked and rounded to
    the tick, exit fractions, per-entry order types, perpetuals' mark candles and funding, the kernel's
    ``Config`` and parameters. Every refusal names its argument (and bar and symbol where one is at fault).
    ``run_data``: also look for gaps and symbols without candles (:class:`nbtrade.engine.run.RunData`:
    warned about per ``on_gap``); a caller that knows them already (chunked runs) passes False.
    Shared by :func:`run_signals` and the chunked runs (:mod:`nbtrade.engine.chunked`)."""
    from ..kernels.records import Levels, Prices as PriceArrays, Signals

    cfg.check_market(market, "signals")
    syms = market.symbols
    sig, counts, has_short = prepare_signals(
        market, entries=entries, exits=exits, short_entries=short_entries, short_exits=short_exits)
    cfg.check_stops(has_short)
    if cfg.orders is not None and cfg.orders.used:
        cfg.orders.check_signals(sig, has_short, market.array("close"), market.index, list(syms))
    data = RunData(market, cfg) if run_data else None
    ms = cfg.margin
    any_perp = ms is not None and ms.any_perp
    # per-symbol leverages that differ: the margin rule (each column's leverage is read by the kernel)
    margin_on = spot_margin(cfg.leverage, has_short) or any_perp or bool(np.ptp(cfg.leverages) > 0)
    if not margin_on and ms is not None:
        ms.refuse_margin_only()
    if ms is not None and ms.margin == "cross":
        check_cross(cfg, ms)
    inputs = run_prices(market, cfg)
    if margin_on and not cfg.reads_ohlc():  # liquidation is checked on the candle's low and high
        inputs = market.prices(ohlc=True, volume=cfg.reads_volume)
    at_entry = None
    if cfg.order_type != "market" or cfg.filters is not None:
        at_entry = sig["entries"] | (sig["short_entries"] if has_short else False)
    types = cfg.entry_types
    if types is not None:  # each entry's own type: its prices are needed at the resting ones only
        check_entry_prices(types, at_entry, cfg, inputs.index, syms)
    lprice = inputs.close if cfg.limit_price is None else cfg.limit_price
    if cfg.limit_price is not None and types is None:
        with np.errstate(invalid="ignore"):
            bad = at_entry & ~(lprice > 0)
        if bad.any():
            raise ValueError("limit_price must be finite and > 0 at every entry signal")
    oprice = inputs.close if cfg.order_price is None else cfg.order_price
    if cfg.order_price is not None and types is None:
        with np.errstate(invalid="ignore"):
            bad = at_entry & ~(oprice > 0)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"order_price must be finite and > 0 at every entry signal; got {oprice[t, j]} at "
                             f"{inputs.index[t]} ({syms[j]})")
    volume = checked_volume(inputs) if cfg.reads_volume else inputs.close  # else never read
    abs_stops = cfg.abs_stops
    nan = np.full((1, 1), np.nan)
    sl_abs = nan if cfg.sl_price is None else cfg.sl_price
    tp_abs = nan if cfg.tp_price is None else cfg.tp_price
    if cfg.filters is not None:
        long_side = sig["entries"] if has_short else None
        tick = cfg.filters["tick_size"]
        order_type = cfg.order_type
        if types is not None:  # per entry: a limit's price rounds down for a buy, a stop's up
            oprice = np.where(types == OrderType.LIMIT,
                              round_tick(oprice, tick, long_side, up_for_long=False, symbols=syms),
                              round_tick(oprice, tick, long_side, up_for_long=True, symbols=syms))
        elif order_type != "market":  # the entry's own price: limit buys down, stop buys up (sells mirror)
            oprice = round_tick(oprice, tick, long_side, up_for_long=order_type != "limit", symbols=syms)
        if order_type == "stop_limit" or (types is not None and cfg.limit_price is not None):
            lprice = round_tick(lprice, tick, long_side, up_for_long=False, name="limit_price", symbols=syms)
        if abs_stops:  # a long's stop-loss is a sell stop (down), its take-profit a sell limit (up)
            sl_abs = round_tick(sl_abs, tick, long_side, up_for_long=False, name="sl_price", symbols=syms)
            tp_abs = round_tick(tp_abs, tick, long_side, up_for_long=True, name="tp_price", symbols=syms)
    at_exit = (sig["exits"] | (sig["short_exits"] if has_short else False)) if cfg.exit_size_per_bar else None
    partial, exit_frac = check_exit_fractions(cfg, market, at_exit)
    prices = PriceArrays(inputs.open, inputs.high, inputs.low, inputs.close, volume)
    signals = Signals(sig["entries"], sig["exits"], sig["short_entries"], sig["short_exits"])
    levels = Levels(oprice, lprice, sl_abs, tp_abs, exit_frac, with_entry_types(order_levels(cfg.orders), types))
    mark_note = None
    if any_perp:
        levels, mark_note = perp_marks(market, inputs, ms, levels)
    kcfg = cfg.kernel_config(has_short, partial)
    params = cfg.params
    if margin_on:
        kcfg = kcfg._replace(options=kcfg.options | Option.MARGIN)
        ms = cfg.margin
        params = margin_params(params, None if ms is None else list(ms.tiers),
                               float("nan") if ms is None else ms.liquidation_fee)
    return SignalInputs(inputs, counts, has_short, margin_on, partial, exit_frac, prices, signals, levels, kcfg, params,
                        mark_note, data)


def run_signals(market: Market, cfg: RunConfig, entries: Any = None, exits: Any = None, short_entries: Any = None,
                short_exits: Any = None) -> Result:
    """One signals run on ``market`` with a validated ``cfg``: the signals are aligned and checked
    (:func:`signals_inputs`), the kernel runs, the records become a :class:`Result`."""
    from ..kernels import engine
    from ..kernels.records import Books, counts_dt, new_state

    n, m = market.shape
    p = signals_inputs(market, cfg, entries, exits, short_entries, short_exits)
    inputs, has_short, margin_on, partial, exit_frac = p.inputs, p.has_short, p.margin_on, p.partial, p.exit_frac
    prices, signals, levels, params, data, ms = p.prices, p.signals, p.levels, p.params, p.data, cfg.margin
    orders, trades = record_buffers(p.counts, n, m, cfg, has_short, margin_on, partial)
    cash = np.empty(n)
    equity = np.empty(n)
    kcfg = kernel_variant(p.kcfg, params)
    levels = shared_levels(levels, prices, kcfg)
    state, acct, done = new_state(cfg.groups), np.full(cfg.n_groups, cfg.init_cash), np.zeros(1, dtype=counts_dt)
    start = 0
    while True:
        start = engine.simulate_signals_nb(prices, signals, levels, kcfg, params, start,
                                           Books(state, acct, done, orders, trades), cash, equity)
        if start >= n:
            break
        orders, trades = grow(orders, trades, done, m)
    k = done[0]
    n_orders, n_trades = int(k["orders"]), int(k["trades"])
    assumptions = cfg.assumptions(gaps=len(data.gaps), delayed=int(k["delayed"]),
                                  exit_frac=exit_frac if partial else None,
                                  no_candles=data.no_candles)
    if p.mark_note is not None:
        assumptions["mark"] = str(p.mark_note)
    funding = None if levels.marks is None else (levels.marks.f_bar, levels.marks.flows)  # sparse rows
    margin_assumption(assumptions, margin_on, ms)
    res = Result(inputs=inputs, orders=orders[:n_orders], trades=trades[:n_trades], cash=cash, equity=equity,
                 init_cash=cfg.init_cash * cfg.n_groups, freq_ms=cfg.freq_ms, gaps=data.gaps,
                 assumptions=assumptions, symbol_init_cash=None if cfg.n_groups == 1 else cfg.init_cash)
    res.funding_rows = funding
    warn_no_candles(data.no_candles)
    warn_rejected(res.order_records, k["rejected"], cfg.size_type, market_only=cfg.order_type == "market")
    return res


def margin_assumption(assumptions: dict, margin_on: bool, ms: Any) -> None:
    """``assumptions["margin"]``: the margin rule a run followed (cross or isolated; nothing when unmargined)."""
    if margin_on and ms is not None and ms.margin == "cross":
        assumptions["margin"] = ("cross margin (nbtrade.margin): one wallet backs every perpetual; liquidated when "
                                 "its margin balance (cash + unrealised PnL, every position at its adverse mark "
                                 "extreme of the bar, at the mark open before the open's orders) is at or below the "
                                 "sum of maintenance margins: every position then closes at its cross liquidation "
                                 "price (the mark open through a gap), fees from the wallet, a wallet below zero "
                                 "brought back to zero; checked before the bar's stops")
    elif margin_on:
        assumptions["margin"] = ("isolated margin rule (nbtrade.margin; leverage > 1 or shorts): margin = entry "
                                 "notional / leverage, liquidation at the liquidation price against the candle's "
                                 "low (long) / high (short), at the open through a gap; spot has no mark price: "
                                 "the price candle is the mark; no funding, no borrow interest unless borrow_rate")


# --------------------------------------------------------------------------------------------
# per-entry order types

def check_entry_prices(types: np.ndarray, at_entry: np.ndarray, cfg: RunConfig, index: Any, syms: Any) -> None:
    """Refuse an entry signal whose own type (``order_type`` per bar) rests without its price at that bar:
    ``order_price`` (limit, stop, stop-limit) and ``limit_price`` (stop-limit) finite and > 0; names the
    bar and symbol."""

    names = {int(v): k for k, v in ORDER_TYPES.items()}
    for key, arr, need in (("order_price", cfg.order_price, at_entry & (types != OrderType.MARKET)),
                           ("limit_price", cfg.limit_price, at_entry & (types == OrderType.STOP_LIMIT))):
        if not need.any():
            continue
        if arr is None:
            t, j = np.argwhere(need)[0]
            raise ValueError(f"{key} is needed by the {names[int(types[t, j])]!r} entry at {index[t]} ({syms[j]}) "
                             f"(order_type per bar): give {key} (bars x symbols)")
        with np.errstate(invalid="ignore"):
            bad = need & ~(arr > 0) | need & np.isinf(arr)
        if bad.any():
            t, j = np.argwhere(bad)[0]
            raise ValueError(f"{key} must be finite and > 0 at every {names[int(types[t, j])]!r} entry (order_type "
                             f"per bar); got {arr[t, j]} at {index[t]} ({syms[j]})")


def with_entry_types(extra: Any, types: np.ndarray | None) -> Any:
    """``Levels.extra`` carrying the per-entry types ``types`` (None: ``extra`` unchanged)."""
    if types is None:
        return extra
    from ..kernels.records import OrderLevels

    if extra is None:
        nan = np.full((1, 1), np.nan)
        extra = OrderLevels(nan, nan, np.ones((1, 2)))
    return extra._replace(entry_type=types)


# --------------------------------------------------------------------------------------------
# signals

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
    from ..kernels.input_checks import signal_stats_nb

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
