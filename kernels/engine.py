"""Bar loop of the signals backtest: one shared cash balance, symbols in column order.

Arrays are ``(n_bars, n_cols)`` float64 (prices) or bool (signals), C-contiguous,
time on axis 0. Inputs come in the groups of ``records.py``: :class:`Prices`,
:class:`Signals`, :class:`Levels` (per-bar order inputs), :class:`Config` (scalars),
``params`` (one ``param_dt`` record per column) and :class:`Books` (per-column
``col_state_dt`` state, cash accounts, ``counts_dt`` counters, record buffers). A bar is
missing for a column when its close is NaN (the Python layer makes all four prices NaN
together); nothing fills on a missing bar. An order due on a missing bar waits for the
column's next candle (:func:`wait_for_candle_nb`, the one rule of the three bar loops).

Events of bar ``i``, each phase over all columns in order before the next phase:

``fill_mode == NEXT_OPEN`` (default)
    1. at the open: orders from the signals of bar ``i - 1`` fill at ``open[i]``
       (an exit first, then an entry: a reversal is two orders; :func:`orders_phase_nb`);
    2. intrabar: stops of open positions, those entered at this open included (the whole
       bar happens after an open fill; rules in ``fills.py``; :func:`intrabar_phase_nb`);
    3. at the close: marks move to ``close[i]``, equity is recorded (:func:`record_equity_nb`).
``fill_mode == CLOSE``
    1. intrabar: stops of positions entered before bar ``i``;
    2. at the close: orders from the signals of bar ``i`` fill at ``close[i]``,
       equity is recorded.

Signals: when long, a short entry reverses and an exit closes (all of the position, or the
fraction ``exit_size`` gives: a partial close, a trade of its own); when short,
mirrored; when flat, an entry opens (exits are ignored). Long and short entry
together cancel each other. An entry while already in the same direction is
ignored (no pyramiding) unless ``Option.ACCUMULATE``. Sizing of an entry values the portfolio at the price
of the moment (the bar's opens, or its closes) and the last valid close for a
symbol with no candle. Equity at bar ``i`` is ``cash + sum(position * mark)``,
``mark`` being the last valid close (valuation only; never a fill price).

Options (:class:`records.Config`, all off by default; a run without them takes the same paths and
gives the same records as before they existed):

``accumulate``
    An entry signal in the position's direction adds a market order to it (a resting entry type
    does not apply to adds: the front end refuses ``accumulate`` with resting entries). The
    combined position: average entry price = size-weighted mean of the fill prices (fees apart),
    entry fees summed, entry bar and borrow kept (time exits and ROI count from the first entry),
    trailing extreme = the better of the extreme and the new fill; percent stops follow the new
    average; absolute levels given with the add replace the old ones (NaN keeps them); partial
    exits (``exit_size``) take their share of the fees and borrow, the rest keeps the average.
    Each add is sized alone (``size_type`` of its own size; ``TARGET_PERCENT`` is refused upstream).
``reenter``
    When in a position, an exit signal with an entry of the position's direction on the same bar
    closes all of it and opens a new trade (backtesting.py's ``position.close(); buy()``); without
    it the exit alone acts.
``sizes``
    ``levels.extra.size[s, c]``: the size of the entry signalled at bar ``s`` (NaN or <= 0: the column's
    size; a callback run's arrays start as zeros).
``ind_stop``
    Indicator stop: ``levels.extra.stop_price[s, c]`` of the entry's signal bar starts the level; after
    each bar's stop check the bar's own value ratchets it (up for a long, down for a short; NaN and
    <= 0 are skipped: unset, see ``level_at``), so bar ``i``'s value applies from bar ``i + 1``. On the
    stop side with the stop-loss and the trailing stop: the tightest rules (exit reason ``IND_STOP``, a
    ``STOP_LOSS`` order).
``time_stop`` (``params.td`` > 0)
    A trade aged ``i - entry_idx >= td`` bars exits at bar ``i``'s open (reason ``TIME``), before
    other stops of that bar.
``roi``
    Minimal-ROI table ``levels.extra.roi`` (rows ``(age in bars, return)``, increasing age): the row of
    the largest age ``<= i - entry_idx`` gives a take-side level ``avg * (1 + r)`` (long) or
    ``avg * (1 - r)`` (short), gross of fees; the nearer of it and the take-profit rules (the
    take-profit on ties); reason ``ROI``, a ``TAKE_PROFIT`` order.
``borrow`` (``params.borrow`` > 0, a rate per bar)
    At each bar's close, before the orders at that close, a short pays ``|pos| * close * rate``
    (the mark without a candle) from its cash account; the trade carries it (``trade_dt.borrow``,
    pro rata to partial exits) and its ``pnl`` is net of it.
``finalize``
    After the last bar open positions close with a market order at their last valid close
    (slippage and fees apply), recorded at the last bar with reason ``FINAL``; the last bar's
    cash and equity are recorded again. Without it they are reported as ``END`` trades.

Entry order types: ``cfg.order_type`` is the type of every entry (``MARKET``, or a resting ``LIMIT``,
``STOP``, ``STOP_LIMIT`` at ``levels.order_price[s, c]``, stop-limit's limit at ``levels.limit_price[s, c]``).
``entry_types`` (``Option.ENTRY_TYPES``): ``levels.extra.entry_type[s, c]`` (int64 ``OrderType`` codes, < 0:
the run's type) gives each entry signalled at bar ``s`` its own type, so one run mixes market, limit, stop
and stop-limit entries (backtesting.py's ``buy()``, ``buy(limit=)``, ``buy(stop=)``, ``buy(stop=, limit=)``).
A resting entry keeps its type (``col_state_dt.pend_type``) until it fills (maker fees for a limit),
expires (``cfg.tif``), is cancelled or is left open; the rules of each type are those of a run-level
type. Runs without it (``extra`` None or its ``entry_type`` None) compile without the reads.

Missing candles: a signal at bar ``s`` whose fill bar has no candle waits for the column's
next candle and acts there, with bar ``s``'s values (exit fraction, absolute stops);
resting entry types place at once (only exits wait). With no candle up to the last bar its
orders are rejected ``NO_DATA`` there.
"""
from __future__ import annotations

import numpy as np
from numba import types
from numba.extending import overload

from ._jit import ijit, jit, jit_borrow
from .fills import (EPS, entry_size_nb, exchange_filter_nb, impact_price_nb, order_fees_nb, pending_fill_nb,
                    slip_price_nb, stop_fill_nb, stop_limit_fill_nb)
from .margin import cross_event_nb, liquidation_fill_nb, liquidation_first_nb, liquidation_price_nb, maintenance_margin_nb, \
    max_leverage_nb, settle_isolated_nb
from .records import (ALL_CAPS, Cap, Config, Direction, ExitReason, FillMode, Intrabar, Levels, Option, OrderType,
                      RejectReason, Side, Status)


# ------------------------------------------------------------------------------------------------
# per-order inputs (``Levels.extra``): None in runs without them, an ``OrderLevels`` otherwise. The
# readers below are overloaded on that type, so a run without them compiles without the reads (and
# passes no extra arguments); in plain Python (NUMBA_DISABLE_JIT) the Python bodies run.
# Not ``@overload(..., inline="always")``: with numba 0.68 that inlining made the callers' inlined
# ``counts[0]["rejected"][reason] += 1`` (reject_order_nb) a no-op (rejections went uncounted).

def entry_size_at(extra, s, c, default):
    """Size of the entry signalled at bar ``s`` for column ``c``: ``extra.size[s, c]``, or ``default``
    where that is unset or ``extra`` is None. Unset: NaN (the signals path's ``entry_size``) or <= 0 (a
    callback run's arrays start as zeros, see :func:`level_at`; a size set is always > 0)."""
    if extra is None:
        return default
    v = extra.size[s, c]
    return v if v > 0.0 else default


def entry_type_at(extra, s, c, default):
    """``OrderType`` of the entry signalled at bar ``s`` for column ``c``: ``extra.entry_type[s, c]``, or
    ``default`` (the run's ``Config.order_type``) where that is < 0 or ``extra`` / its ``entry_type`` is None."""
    if extra is None or extra.entry_type is None:
        return default
    v = extra.entry_type[s, c]
    return v if v >= 0 else default


def _no_entry_types(extra) -> bool:
    """Whether a numba ``Levels.extra`` type carries no per-entry types (None, or ``entry_type`` None)."""
    if isinstance(extra, types.NoneType):
        return True
    fields = getattr(extra, "fields", ())
    if "entry_type" not in fields:
        return True
    return isinstance(extra.types[fields.index("entry_type")], types.NoneType)


@overload(entry_type_at)
def _entry_type_at_ov(extra, s, c, default):
    if _no_entry_types(extra):
        return lambda extra, s, c, default: default

    def impl(extra, s, c, default):
        v = extra.entry_type[s, c]
        if v >= 0:
            return v
        return default
    return impl


@ijit
def level_at(a, s, c):
    """``a[s, c]``, a per-order price level (``sl_price``, ``tp_price``, ``stop_price``), or NaN where unset.

    Unset is NaN or <= 0: the signals path's arrays hold NaN where unset (their levels set are > 0, refused
    otherwise), a callback run's arrays are allocated with ``np.zeros`` (calloc: the pages no order writes
    are never touched, where NaN-filled arrays cost a write of every cell per run) and ``order_nb`` /
    ``trail_stop_nb`` refuse levels <= 0, so 0 means "no level" in both."""
    v = a[s, c]
    return v if v > 0.0 else np.nan


def stop_price_at(extra, s, c):
    """Indicator stop value of bar ``s`` for column ``c`` (NaN when unset, see :func:`level_at`, or when
    ``extra`` is None)."""
    if extra is None:
        return np.nan
    return level_at(extra.stop_price, s, c)


def extra_arrays(extra, fallback):
    """``(stop_price, roi)`` of ``extra``, or ``(fallback, fallback)`` when it is None."""
    if extra is None:
        return fallback, fallback
    return extra.stop_price, extra.roi


def mark_candle(marks, prices):
    """``(open, high, low)`` arrays liquidation is checked on: ``marks`` (a ``records.Marks``), or the price
    candles when it is None."""
    if marks is None:
        return prices.open, prices.high, prices.low
    return marks.open, marks.high, marks.low


@overload(mark_candle)
def _mark_candle_ov(marks, prices):
    if isinstance(marks, types.NoneType):
        return lambda marks, prices: (prices.open, prices.high, prices.low)
    return lambda marks, prices: (marks.open, marks.high, marks.low)


def funding_nb(marks, books, i, part):
    """Funding of bar ``i`` on the positions open now: each pays ``size * rate * mark`` (receives when
    negative), from its cash account and its isolated margin; recorded in ``marks.flows``. ``part`` 0: the
    events at the bar's open; 1: the payments of those strictly inside it (before the intrabar checks), 2:
    their receipts (at the close, positions open at 1 and still open; :func:`funding_phase_nb`). No-op
    when ``marks`` is None or bar ``i`` has no funding row (``marks.f_bar``)."""
    if marks is None:
        return
    r = funding_row_nb(marks.f_bar, i)
    if r >= 0:
        funding_phase_nb(marks.f_open if part == 0 else marks.f_in, marks.flows, books, i, r, part,
                         marks.scratch[10])


@overload(funding_nb)
def _funding_nb_ov(marks, books, i, part):
    if isinstance(marks, types.NoneType):
        return lambda marks, books, i, part: None

    def impl(marks, books, i, part):
        r = funding_row_nb(marks.f_bar, i)
        if r >= 0:
            funding_phase_nb(marks.f_open if part == 0 else marks.f_in, marks.flows, books, i, r, part,
                             marks.scratch[10])
    return impl


def next_funding_nb(marks, a, n):
    """The first bar ``>= a`` with a funding row (``n``: none, or ``marks`` None)."""
    if marks is None:
        return n
    r = np.searchsorted(marks.f_bar, a)
    return marks.f_bar[r] if r < marks.f_bar.shape[0] else n


@overload(next_funding_nb)
def _next_funding_nb_ov(marks, a, n):
    if isinstance(marks, types.NoneType):
        return lambda marks, a, n: n

    def impl(marks, a, n):
        r = np.searchsorted(marks.f_bar, a)
        return marks.f_bar[r] if r < marks.f_bar.shape[0] else n
    return impl


def order_levels_nb(levels):
    """``levels`` without its ``marks`` (None): what the per-order kernels (:func:`process_signal_nb`,
    :func:`orders_phase_nb`, :func:`orders_column_nb`) take. They never read the marks, so a perpetual run
    calls the very signatures a spot run compiled (one compile, ~7 s of CPU cold, shared through the cache)
    instead of its own."""
    if levels.marks is None:
        return levels
    return levels._replace(marks=None)


@overload(order_levels_nb)
def _order_levels_ov(levels):
    if isinstance(levels.types[levels.fields.index("marks")], types.NoneType):
        return lambda levels: levels

    def impl(levels):
        return Levels(levels.order_price, levels.limit_price, levels.sl_price, levels.tp_price, levels.exit_size,
                      levels.extra, None)
    return impl


def cross_mode_nb(marks):
    """Whether the run's perpetuals share one cross wallet (``marks.cross``; False when ``marks`` or it is None)."""
    if marks is None:
        return False
    return marks.cross


def _isolated(marks) -> bool:
    """Whether a numba ``Marks`` type (or None) cannot be cross margin: None, or its ``cross`` None (the
    isolated runs of ``nbtrade.one_variant``: the cross-margin code is then not compiled)."""
    return isinstance(marks, types.NoneType) or isinstance(marks.types[marks.fields.index("cross")], types.NoneType)


@overload(cross_mode_nb)
def _cross_mode_nb_ov(marks):
    if _isolated(marks):
        return lambda marks: False
    return lambda marks: marks.cross


def cross_margin_nb(prices, marks, params, books, i, open_only):
    """Cross margin at bar ``i`` when the run has it (:func:`cross_phase_nb`); returns whether it did (False
    when ``marks`` is None or isolated: the caller then runs the isolated check)."""
    if marks is None or not marks.cross:
        return False
    cross_phase_nb(prices, marks, params, books, i, open_only)
    return True


@overload(cross_margin_nb)
def _cross_margin_nb_ov(prices, marks, params, books, i, open_only):
    if _isolated(marks):
        return lambda prices, marks, params, books, i, open_only: False

    def impl(prices, marks, params, books, i, open_only):
        if not marks.cross:
            return False
        cross_phase_nb(prices, marks, params, books, i, open_only)
        return True
    return impl


@overload(entry_size_at)
def _entry_size_at_ov(extra, s, c, default):
    if isinstance(extra, types.NoneType):
        return lambda extra, s, c, default: default

    def impl(extra, s, c, default):
        v = extra.size[s, c]
        if v > 0.0:
            return v
        return default
    return impl


@overload(stop_price_at)
def _stop_price_at_ov(extra, s, c):
    if isinstance(extra, types.NoneType):
        return lambda extra, s, c: np.nan
    return lambda extra, s, c: level_at(extra.stop_price, s, c)


@overload(extra_arrays)
def _extra_arrays_ov(extra, fallback):
    if isinstance(extra, types.NoneType):
        return lambda extra, fallback: (fallback, fallback)
    return lambda extra, fallback: (extra.stop_price, extra.roi)


# ------------------------------------------------------------------------------------------------
# run variants: the signals loop compiles once per ``Config`` class (``records.config_variant``), and the
# phases a class's ``CAPS`` leave out are not compiled at all (a plain run compiles the plain loop only).
# Each gate below is overloaded on the class: a no-op for a class without the capability, else the phase
# under the run's own option test. The per-order kernels below the loops take a plain ``Config``
# (:func:`generic_config`): one compile shared by every variant. In plain Python the bodies run.

def _caps(cfg) -> int:
    """``CAPS`` of a numba ``Config`` type (a plain ``Config``: all)."""
    return getattr(getattr(cfg, "instance_class", None), "CAPS", ALL_CAPS)


def generic_config(cfg):
    """``cfg`` as a plain :class:`records.Config` (same values)."""
    return cfg if type(cfg) is Config else Config(*cfg)


@overload(generic_config)
def _generic_config_ov(cfg):
    if getattr(cfg, "instance_class", None) is Config:
        return lambda cfg: cfg

    def impl(cfg):
        return Config(cfg.size_type, cfg.leverage, cfg.fill_mode, cfg.intrabar, cfg.order_type, cfg.tif,
                      cfg.has_short, cfg.abs_stops, cfg.partial, cfg.options)
    return impl


def margin_on_nb(cfg):
    """Whether the run has ``Option.MARGIN``: a compile-time False in a variant without ``Cap.MARGIN``, so the
    fused loop's margin branches fold away (the trigger gates, ``margin_trigger_nb`` ..., compile to nothing
    there as well)."""
    return has_option_nb(cfg, Option.MARGIN)


@overload(margin_on_nb)
def _margin_on_ov(cfg):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg: False
    return lambda cfg: has_option_nb(cfg, Option.MARGIN)


def margin_open_nb(cfg, prices, levels, params, books, i, at_open):
    """``Option.MARGIN``: funding due at bar ``i``'s open on the positions carried in (before any fill),
    then with fills at the open liquidation at the open (before the orders there)."""
    if has_option_nb(cfg, Option.MARGIN):
        funding_nb(levels.marks, books, i, 0)
        if at_open:
            margin_phase_nb(prices, levels.marks, params, books, i, True, True)


@overload(margin_open_nb)
def _margin_open_ov(cfg, prices, levels, params, books, i, at_open):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, prices, levels, params, books, i, at_open: None

    def impl(cfg, prices, levels, params, books, i, at_open):
        if has_option_nb(cfg, Option.MARGIN):
            funding_nb(levels.marks, books, i, 0)
            if at_open:  # (at_open, at_open): True as a plain bool, see below
                margin_phase_nb(prices, levels.marks, params, books, i, at_open, at_open)
    return impl


def margin_intrabar_nb(cfg, prices, levels, params, books, i, at_open):
    """``Option.MARGIN``: the payments of funding inside bar ``i``, then liquidation inside it (before the stops)."""
    if has_option_nb(cfg, Option.MARGIN):
        funding_nb(levels.marks, books, i, 1)
        margin_phase_nb(prices, levels.marks, params, books, i, at_open, False)


@overload(margin_intrabar_nb)
def _margin_intrabar_ov(cfg, prices, levels, params, books, i, at_open):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, prices, levels, params, books, i, at_open: None

    def impl(cfg, prices, levels, params, books, i, at_open):
        if has_option_nb(cfg, Option.MARGIN):
            funding_nb(levels.marks, books, i, 1)
            # ``i < 0``: False as a plain bool. A literal True or False argument is its own signature
            # (``Literal[bool]``): the two calls compiled margin_phase_nb twice (~1 s of CPU each)
            margin_phase_nb(prices, levels.marks, params, books, i, at_open, i < 0)
    return impl


def funding_inside_nb(cfg, levels, books, i):
    """``Option.MARGIN``: the receipts of funding inside bar ``i``, at its close (:func:`funding_phase_nb`)."""
    if has_option_nb(cfg, Option.MARGIN):
        funding_nb(levels.marks, books, i, 2)


@overload(funding_inside_nb)
def _funding_inside_ov(cfg, levels, books, i):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, levels, books, i: None

    def impl(cfg, levels, books, i):
        if has_option_nb(cfg, Option.MARGIN):
            funding_nb(levels.marks, books, i, 2)
    return impl


def margin_trigger_nb(cfg, st, params, c, lo, hi):
    """``Cap.MARGIN``: :func:`trigger_nb` (the fused loop's liquidation trigger of column ``c``); a variant
    without margin compiles none of it (the fused loop's margin lines run only with ``Option.MARGIN``)."""
    trigger_nb(st, params, c, lo, hi)


@overload(margin_trigger_nb)
def _margin_trigger_ov(cfg, st, params, c, lo, hi):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, st, params, c, lo, hi: None
    return lambda cfg, st, params, c, lo, hi: trigger_nb(st, params, c, lo, hi)


def margin_triggers_nb(cfg, st, params, lo, hi):
    """``Cap.MARGIN``: :func:`triggers_nb` (every column's trigger)."""
    triggers_nb(st, params, lo, hi)


@overload(margin_triggers_nb)
def _margin_triggers_ov(cfg, st, params, lo, hi):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, st, params, lo, hi: None
    return lambda cfg, st, params, lo, hi: triggers_nb(st, params, lo, hi)


def margin_triggered_nb(cfg, mo, mh, ml, i, lo, hi):
    """``Cap.MARGIN``: :func:`triggered_nb` (False in a variant without margin)."""
    return triggered_nb(mo, mh, ml, i, lo, hi)


@overload(margin_triggered_nb, inline="always")
def _margin_triggered_ov(cfg, mo, mh, ml, i, lo, hi):
    if not _caps(cfg) & Cap.MARGIN:
        return lambda cfg, mo, mh, ml, i, lo, hi: False
    return lambda cfg, mo, mh, ml, i, lo, hi: triggered_nb(mo, mh, ml, i, lo, hi)


def borrow_step_nb(cfg, close, params, books, i):
    """``Option.BORROW``: :func:`borrow_phase_nb` at bar ``i``'s close."""
    if has_option_nb(cfg, Option.BORROW):
        borrow_phase_nb(close, params, books, i)


@overload(borrow_step_nb)
def _borrow_step_ov(cfg, close, params, books, i):
    if not _caps(cfg) & Cap.BORROW:
        return lambda cfg, close, params, books, i: None

    def impl(cfg, close, params, books, i):
        if has_option_nb(cfg, Option.BORROW):
            borrow_phase_nb(close, params, books, i)
    return impl


def finalize_step_nb(cfg, close, params, books, cash_out, equity_out):
    """``Option.FINALIZE``: :func:`finalize_nb` after the last bar."""
    if has_option_nb(cfg, Option.FINALIZE):
        finalize_nb(close, params, books, cash_out, equity_out)


@overload(finalize_step_nb)
def _finalize_step_ov(cfg, close, params, books, cash_out, equity_out):
    if not _caps(cfg) & Cap.FINALIZE:
        return lambda cfg, close, params, books, cash_out, equity_out: None

    def impl(cfg, close, params, books, cash_out, equity_out):
        if has_option_nb(cfg, Option.FINALIZE):
            finalize_nb(close, params, books, cash_out, equity_out)
    return impl


def intrabar_step_nb(cfg, g, prices, levels, params, books, i, use_range, use_volume):
    """Bar ``i`` inside for the phased loop of variant ``cfg`` (``g``: it as a plain ``Config``): with the
    extra exits :func:`intrabar_extra_nb`, else :func:`intrabar_phase_nb`; a variant without stops,
    resting entries and extra exits only remembers the bar's range and volume."""
    if has_option_nb(cfg, EXTRA_EXITS):
        stop_price, roi = extra_arrays(levels.extra, prices.close)
        intrabar_extra_nb(prices, stop_price, roi, g, params, books, i, True, use_range, use_volume)
    else:
        intrabar_phase_nb(prices, g, params, books, i, cfg.abs_stops, use_range, use_volume)


@overload(intrabar_step_nb)
def _intrabar_step_ov(cfg, g, prices, levels, params, books, i, use_range, use_volume):
    caps = _caps(cfg)
    if not caps & (Cap.STOPS | Cap.PENDING | Cap.EXTRA):
        def track(cfg, g, prices, levels, params, books, i, use_range, use_volume):
            if use_range or use_volume:
                close = prices.close
                st = books.state
                for c in range(close.shape[1]):
                    if close[i, c] == close[i, c]:
                        track_bar_nb(prices.high, prices.low, prices.volume, i, c, st, use_range, use_volume)
        return track
    if not caps & Cap.EXTRA:
        if not caps & Cap.PENDING:
            def stops(cfg, g, prices, levels, params, books, i, use_range, use_volume):
                intrabar_stops_nb(prices, g, params, books, i, cfg.abs_stops, use_range, use_volume)
            return stops

        def phase(cfg, g, prices, levels, params, books, i, use_range, use_volume):
            intrabar_phase_nb(prices, g, params, books, i, cfg.abs_stops, use_range, use_volume)
        return phase

    def impl(cfg, g, prices, levels, params, books, i, use_range, use_volume):
        if has_option_nb(cfg, EXTRA_EXITS):
            stop_price, roi = extra_arrays(levels.extra, prices.close)
            intrabar_extra_nb(prices, stop_price, roi, g, params, books, i, True, use_range, use_volume)
        else:
            intrabar_phase_nb(prices, g, params, books, i, cfg.abs_stops, use_range, use_volume)
    return impl


def column_stops_nb(flags, prices, stop_price, roi, params, books, i, c, optimistic):
    """The stops of column ``c`` inside bar ``i``: ``flags`` None (plain stops, :func:`check_stops_nb`) or
    ``(ind_on, roi_on, td_on)`` (:func:`check_stops_extra_nb` when any is on)."""
    if flags is not None and (flags[0] or flags[1] or flags[2]):
        check_stops_extra_nb(prices, stop_price, roi, flags[0], flags[1], flags[2], params, books, i, c, optimistic)
    else:
        check_stops_nb(prices, params, books, i, c, optimistic)


@overload(column_stops_nb)
def _column_stops_ov(flags, prices, stop_price, roi, params, books, i, c, optimistic):
    if isinstance(flags, types.NoneType):
        return lambda flags, prices, stop_price, roi, params, books, i, c, optimistic: check_stops_nb(
            prices, params, books, i, c, optimistic)

    def impl(flags, prices, stop_price, roi, params, books, i, c, optimistic):
        if flags[0] or flags[1] or flags[2]:
            check_stops_extra_nb(prices, stop_price, roi, flags[0], flags[1], flags[2], params, books, i, c,
                                 optimistic)
        else:
            check_stops_nb(prices, params, books, i, c, optimistic)
    return impl


def column_pending_nb(pending, prices, cfg, params, books, i, c):
    """Column ``c``'s resting entry at bar ``i`` (:func:`check_pending_nb`); ``pending`` None: a run
    without resting entries (nothing to check)."""
    if pending is not None:
        check_pending_nb(prices, cfg, params, books, i, c)


@overload(column_pending_nb)
def _column_pending_ov(pending, prices, cfg, params, books, i, c):
    if isinstance(pending, types.NoneType):
        return lambda pending, prices, cfg, params, books, i, c: None
    return lambda pending, prices, cfg, params, books, i, c: check_pending_nb(prices, cfg, params, books, i, c)


@ijit
def has_option_nb(cfg, bit):
    """Whether the run's ``Config.options`` has the :data:`records.Option` ``bit``."""
    return (cfg.options & bit) != 0


@ijit
def fill_price_nb(sc, pc, base, is_buy):
    """Fill price at ``base`` before volume impact for a column with state ``sc`` and parameters
    ``pc``: percent slippage, then range slippage, both adverse.

    The range (and the volume of ``impact_nb``) is the last *complete* bar's (no look-ahead):
    the previous bar for fills at the open or intrabar, the current bar for fills at its close.
    """
    extra = pc["slip_range"] * sc["range"]
    if is_buy:
        return slip_price_nb(base, True, pc["slippage"]) + extra
    return slip_price_nb(base, False, pc["slippage"]) - extra


@ijit
def impact_nb(sc, pc):
    """Volume impact coefficient of a column: ``slip_volume / sqrt(volume)`` (0: none)."""
    k = pc["slip_volume"]
    v = sc["volume"]
    if k == 0.0 or not v > 0.0:
        return 0.0
    return k / np.sqrt(v)


@ijit
def tracking_nb(params):
    """``(use_range, use_volume)``: whether any column asks for range or volume slippage, so the
    bar loops read highs/lows or volumes only then."""
    use_range = False
    use_volume = False
    for c in range(params.shape[0]):
        use_range = use_range or params[c]["slip_range"] != 0.0
        use_volume = use_volume or params[c]["slip_volume"] != 0.0
    return use_range, use_volume


@ijit
def track_bar_nb(high, low, volume, i, c, st, use_range, use_volume):
    """Remember bar ``i``'s range and volume for column ``c``'s later fills (slippage models)."""
    if use_range:
        st[c]["range"] = high[i, c] - low[i, c]
    if use_volume:
        v = volume[i, c]
        if v > 0.0:
            st[c]["volume"] = v


@ijit
def write_order_nb(orders, k, col, idx, side, size, price, fees, otype, status, reason):
    rec = orders[k]
    rec["id"] = k
    rec["col"] = col
    rec["idx"] = idx
    rec["side"] = side
    rec["size"] = size
    rec["price"] = price
    rec["fees"] = fees
    rec["type"] = otype
    rec["status"] = status
    rec["reason"] = reason


@ijit
def record_order_nb(orders, counts, col, idx, side, size, price, fees, otype, status, reason):
    """Append an order record and count it."""
    cnt = counts[0]
    write_order_nb(orders, cnt["orders"], col, idx, side, size, price, fees, otype, status, reason)
    cnt["orders"] += 1


@ijit
def reject_order_nb(orders, counts, col, idx, side, size, price, otype, reason):
    """Record a rejected order (no fill, no fees) and count it by reason."""
    record_order_nb(orders, counts, col, idx, side, size, price, 0.0, otype, Status.REJECTED, reason)
    counts[0]["rejected"][reason] += 1


@ijit
def record_trade_nb(trades, counts, col, entry_idx, exit_idx, pos, entry_price, exit_price,
                    entry_fees, exit_fees, exit_reason, borrow=0.0):
    """Append a round trip of signed size ``pos`` and count it (``borrow``: its borrow cost, quote)."""
    cnt = counts[0]
    k = cnt["trades"]
    rec = trades[k]
    size = abs(pos)
    sign = 1.0 if pos > 0.0 else -1.0
    pnl = sign * (exit_price - entry_price) * size - entry_fees - exit_fees - borrow
    rec["id"] = k
    rec["col"] = col
    rec["entry_idx"] = entry_idx
    rec["exit_idx"] = exit_idx
    rec["direction"] = Direction.LONG if pos > 0.0 else Direction.SHORT
    rec["size"] = size
    rec["entry_price"] = entry_price
    rec["exit_price"] = exit_price
    rec["entry_fees"] = entry_fees
    rec["exit_fees"] = exit_fees
    rec["pnl"] = pnl
    rec["ret"] = pnl / (entry_price * size)
    rec["exit_reason"] = exit_reason
    rec["borrow"] = borrow
    cnt["trades"] = k + 1


@ijit
def room_nb(counts, orders, trades, m):
    """Whether the record buffers hold one more bar's worst case: 3 orders and 2 trades per
    column, plus the end-of-data records."""
    cnt = counts[0]
    return cnt["orders"] + 4 * m <= orders.shape[0] and cnt["trades"] + 3 * m <= trades.shape[0]


@ijit
def record_equity_nb(acct, i, value, cash_out, equity_out):
    """Cash of bar ``i`` (all accounts together) and equity, ``cash + value`` (``value``: the
    positions at their marks). The one equity update of the loops."""
    cash = acct[0]
    for k in range(1, acct.shape[0]):
        cash += acct[k]
    cash_out[i] = cash
    equity_out[i] = cash + value


@ijit
def close_bar_nb(close, st, acct, i, cash_out, equity_out):
    """The close of bar ``i``: marks move to the valid closes, equity is recorded. ``st``: any
    state dtype with ``pos`` and ``mark``."""
    value = 0.0
    for c in range(st.shape[0]):
        sc = st[c]
        cl = close[i, c]
        if cl == cl:
            sc["mark"] = cl
        value += sc["pos"] * sc["mark"]
    record_equity_nb(acct, i, value, cash_out, equity_out)


@ijit
def wait_for_candle_nb(sc, counts, s, valid, last, can_wait, replace):
    """The rule "an order due on a bar without a candle waits for the column's next candle",
    for one column (state ``sc`` with a ``wait`` field), shared by the three bar loops.

    ``s``: the bar of a new order for the column (-1: none); ``valid``: the fill bar has a
    candle; ``last``: it is the last bar (nothing to wait for: the order acts and is rejected
    ``NO_DATA``); ``can_wait``: the new order may wait (else it acts now: resting entries are
    placed without a price); ``replace``: a new order replaces a waiting one (else it is
    ignored while one waits). Returns the bar whose order acts now (-1: none) and counts the
    waits begun (``counts.delayed``) and the columns waiting (``counts.waiting``).
    """
    cnt = counts[0]
    if sc["wait"] >= 0:
        if replace and s >= 0:
            sc["wait"] = s
        if not (valid or last):
            return -1
        d = sc["wait"]
        sc["wait"] = -1
        cnt["waiting"] -= 1
        return d
    if s < 0 or valid or last or not can_wait:
        return s
    sc["wait"] = s
    cnt["waiting"] += 1
    cnt["delayed"] += 1
    return -1


@ijit
def margin_state_nb(st, px, i, cash, leverage, group, params, per_col):
    """Equity and free margin of cash account ``group``, valuing each of its positions at
    ``px[i]`` (the price of the moment) if valid, else at its mark (last valid close). The margin
    used is ``|size| * price / leverage``: ``leverage`` for every column, or with ``per_col`` (margin
    runs) each column's ``params[j].lev`` (columns at ``leverage`` or unset (0) summed first, as before
    per-symbol leverage existed). It is at most the wallet less the positions' margins, ``cash +
    sum(size * avg) - sum(margin)`` (a position's ``margin``; where none is kept, runs without the margin
    rule, its entry notional / leverage): the one free-margin rule of every path and margin mode
    (``nbtrade.margin``, "Accounting"; the weights loop calls it through ``rebalance.free_margin_nb``)."""
    equity = cash
    gross = 0.0
    used = 0.0
    wallet = cash
    held = 0.0
    for j in range(st.shape[0]):
        sj = st[j]
        q = sj["pos"]
        if q != 0.0 and sj["group"] == group:
            p = px[i, j]
            if p != p:
                p = sj["mark"]
            equity += q * p
            wallet += q * sj["avg"]
            lev = params[j]["lev"] if per_col else leverage
            if lev == leverage or not lev > 0.0:
                gross += abs(q) * p
                lev = leverage
            else:
                used += abs(q) * p / lev
            mj = sj["margin"]
            held += mj if mj > 0.0 else abs(q) * sj["avg"] / lev
    free = equity - gross / leverage - used
    if wallet - held < free:
        free = wallet - held
    return equity, free


@jit_borrow
def exit_position_nb(books, params, c, i, base_price, otype, exit_reason, fraction):
    """Close column ``c``'s position, or ``fraction`` of it (1: all), at ``base_price`` (before slippage).
    Compiled once and called (not inlined): its callers (signals, stops, finalize) share it.

    A partial exit (``fraction < 1``) rounds down to the lot size and is rejected below one lot,
    ``min_qty`` or ``min_notional``; if it rounds to the whole position it closes it. It is a
    trade of its own, carrying its share of the entry fees; the rest keeps its average price.
    """
    st, acct, counts, orders, trades = books
    sc = st[c]
    pc = params[c]
    p = sc["pos"]
    is_buy = p < 0.0
    held = abs(p)
    size = held
    side = Side.BUY if is_buy else Side.SELL
    if fraction < 1.0:
        size = held * fraction
        lot = pc["lot"]
        if lot > 0.0:
            size = np.floor(size / lot + EPS) * lot
        if size >= held:
            size = held
    price = fill_price_nb(sc, pc, base_price, is_buy)
    impact = impact_nb(sc, pc)
    if impact > 0.0:
        price = impact_price_nb(price, base_price, impact, size, is_buy)
    if size < held:
        reason = exchange_filter_nb(size, price, pc["lot"], pc["min_qty"], pc["min_notional"])
        if reason != RejectReason.NONE:
            reject_order_nb(orders, counts, c, i, side, size, price, otype, reason)
            return
    fees = order_fees_nb(size, price, pc["fees"], pc["fixed_fees"])
    ci = sc["group"]
    if is_buy:
        acct[ci] -= size * price + fees
    else:
        acct[ci] += size * price - fees
    record_order_nb(orders, counts, c, i, side, size, price, fees, otype, Status.FILLED, RejectReason.NONE)
    entry_fees = sc["entry_fees"]
    borrow = sc["borrow"]
    if size == held:
        record_trade_nb(trades, counts, c, sc["entry_idx"], i, p, sc["avg"], price, entry_fees, fees, exit_reason,
                        borrow)
        sc["pos"] = 0.0
        sc["borrow"] = 0.0
        sc["margin"] = 0.0
    else:
        share = entry_fees * (size / held)
        bshare = borrow * (size / held)
        record_trade_nb(trades, counts, c, sc["entry_idx"], i, size if p > 0.0 else -size, sc["avg"], price, share,
                        fees, exit_reason, bshare)
        sc["entry_fees"] = entry_fees - share
        sc["borrow"] = borrow - bshare
        sc["margin"] -= sc["margin"] * (size / held)  # margin released in proportion (nbtrade.margin)
        sc["liq"] = np.nan
        sc["pos"] = p - size if p > 0.0 else p + size


@ijit
def has_stops_nb(params, c, abs_stops):
    """Whether column ``c`` has attached exits checked inside a bar (percent, trailing, or run-level
    ones: ``abs_stops`` is :func:`run_stops_nb`)."""
    pc = params[c]
    return abs_stops or pc["sl"] == pc["sl"] or pc["tp"] == pc["tp"] or pc["trail"] == pc["trail"]


@ijit
def run_stops_nb(cfg):
    """Whether the run gives exits for every column: absolute stop levels, an indicator stop, a
    minimal-ROI table, time stops."""
    return cfg.abs_stops or has_option_nb(cfg, EXTRA_EXITS)


#: Options whose exits take :func:`intrabar_extra_nb` (plain runs keep :func:`intrabar_phase_nb`).
EXTRA_EXITS = Option.IND_STOP | Option.ROI | Option.TIME_STOP


@ijit
def wants_nb(signals, s, c, pos, pend, has_short, accumulate=False):
    """Whether column ``c``'s signals of bar ``s`` can act on its position ``pos`` (or on a
    resting entry ``pend`` != 0, which an exit of its side cancels); ``accumulate``: an entry of
    the position's direction adds to it."""
    entries, exits, short_entries, short_exits = signals
    if pos > 0.0:
        return exits[s, c] or (has_short and short_entries[s, c]) or (accumulate and entries[s, c])
    if pos < 0.0:
        return entries[s, c] or short_exits[s, c] or (accumulate and has_short and short_entries[s, c])
    want = entries[s, c] or (has_short and short_entries[s, c])
    if pend != 0:
        want = want or exits[s, c] or (has_short and short_exits[s, c])
    return want


@jit
def simulate_signals_nb(prices, signals, levels, cfg, params, start, books, cash_out, equity_out):
    """Run the signals backtest from bar ``start``; fill ``books`` and ``cash_out``, ``equity_out``.

    ``prices``: :class:`Prices`; ``signals``: :class:`Signals` (``cfg.has_short`` False skips
    reading the short arrays); ``levels``: :class:`Levels`; ``cfg``: :class:`Config`;
    ``params``: ``(n_cols,)`` ``param_dt``. Column ``c`` trades the cash of account
    ``acct[state[c].group]`` (all 0: one shared balance; ``c``: isolated accounts). The books
    (``records.new_state``, ``acct``, one zeroed ``counts_dt`` record, the record buffers) are
    the caller's: when the preallocated buffers (``order_dt``, ``trade_dt``) might overflow within
    the next bar, the run stops and returns that bar, and the caller resumes it with larger
    buffers (returns ``n_bars`` when done). ``cfg.order_type`` (``MARKET``, ``LIMIT``, ``STOP`` or
    ``STOP_LIMIT``, whose limit is ``limit_price[s, c]``) applies to entries: a resting entry
    waits at ``order_price[s, c]`` from the bar after its signal bar ``s`` for ``cfg.tif`` bars
    (0: until filled or cancelled) and fills intrabar (``fills.pending_fill_nb``).
    ``cfg.abs_stops``: ``sl_price[s, c]`` / ``tp_price[s, c]`` (absolute levels, NaN = unset) of
    an entry's signal bar ``s`` replace the percent stops for that trade. ``cfg.partial``: an
    exit signal at bar ``s`` closes the fraction ``exit_size[s, c]`` of the position (one row:
    per column), else all of it. ``counts`` ends with the used prefix of each buffer. Open
    positions at the end are reported as trades with exit reason ``END`` at the last valid
    close, without exit fees.
    """
    n = prices.close.shape[0]
    done = run_bars_nb(prices, signals, levels, cfg, params, start, n, books, cash_out, equity_out)
    if done < n:
        return done
    finish_signals_nb(prices, cfg, params, books, cash_out, equity_out)
    return n


@ijit
def finish_signals_nb(prices, cfg, params, books, cash_out, equity_out):
    """End of a signals run after its last bar: ``Option.FINALIZE`` closes the open positions, then the
    books close (:func:`close_books_nb`)."""
    finalize_step_nb(cfg, prices.close, params, books, cash_out, equity_out)
    close_books_nb(prices.close, books, cfg.order_type)


@ijit
def run_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
    """Bars ``start..stop - 1`` of the signals loop (:func:`simulate_signals_nb` without its end:
    :func:`finish_signals_nb`). Returns the bar to resume from when the record buffers may overflow
    within the next bar, else ``stop``. ``cfg``'s class picks the compiled variant
    (``records.config_variant``); the loop (fused or phased) is chosen from the run's options as in
    :func:`simulate_signals_nb`, so a run in chunks takes the same paths as one call."""
    m = prices.close.shape[1]
    any_stops = False
    run_stops = run_stops_nb(cfg)
    for c in range(m):
        any_stops = any_stops or has_stops_nb(params, c, run_stops)
    # Without stops nothing happens intrabar, so the phases of a bar fuse into one pass over the
    # columns with identical results (fused_bars_nb). With stops, every column's open orders must
    # precede any stop fill of the bar and stops precede close orders, so phases run as passes.
    # Accumulation, same-bar re-entry and borrow costs take the phased loop too (the fused one
    # keeps only the rules of plain runs, unchanged).
    fused = not (any_stops or cfg.order_type != OrderType.MARKET
                 or has_option_nb(cfg, Option.ACCUMULATE | Option.REENTER | Option.BORROW | Option.ENTRY_TYPES))
    return bars_loop_nb(fused, prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)


def bars_loop_nb(fused, prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
    """:func:`fused_bars_nb` when ``fused``, else :func:`phased_bars_nb`. A variant whose capabilities
    always take the phased loop (stops, resting entries, extra exits, borrow) compiles only that; margin runs
    take the fused loop with the phased one on bars with funding or a liquidation trigger (both compile)."""
    if fused:
        return fused_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)
    return phased_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)


@overload(bars_loop_nb)
def _bars_loop_ov(fused, prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
    if _caps(cfg) & (Cap.STOPS | Cap.PENDING | Cap.EXTRA | Cap.BORROW):
        return lambda fused, prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out: \
            phased_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)

    def impl(fused, prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
        if fused:
            return fused_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)
        return phased_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out)
    return impl


@jit_borrow
def finalize_nb(close, params, books, cash_out, equity_out):
    """``finalize_trades``: close every open position with a market order at its last valid close
    (its mark; slippage and fees apply), recorded at the last bar with exit reason ``FINAL``; the
    last bar's cash and equity are recorded again."""
    st, acct, counts, orders, trades = books
    n = close.shape[0]
    for c in range(st.shape[0]):
        sc = st[c]
        if sc["pos"] != 0.0:
            exit_position_nb(books, params, c, n - 1, sc["mark"], OrderType.MARKET, ExitReason.FINAL, 1.0)
    value = 0.0
    for c in range(st.shape[0]):
        value += st[c]["pos"] * st[c]["mark"]
    record_equity_nb(acct, n - 1, value, cash_out, equity_out)


@jit_borrow
def borrow_phase_nb(close, params, books, i):
    """Borrow cost of the shorts held at bar ``i``'s close (before the orders at that close):
    ``|position| * close * params.borrow`` (the last valid close on a bar with no candle), paid
    from the column's cash account and accrued on the position (``state.borrow``, then the trade's)."""
    st = books.state
    acct = books.acct
    for c in range(st.shape[0]):
        sc = st[c]
        p = sc["pos"]
        rate = params[c]["borrow"]
        if p < 0.0 and rate > 0.0:
            px = close[i, c]
            if px != px:
                px = sc["mark"]
            cost = -p * px * rate
            acct[sc["group"]] -= cost
            sc["borrow"] += cost


@jit_borrow
def phased_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
    """Bars ``start..stop - 1`` of the signals loop as phases: orders at the open, intrabar (stops,
    resting entries), orders at the close, marks and equity at the close. Returns the bar to
    resume from when the record buffers may overflow, else ``stop``."""
    open_, high, low, close, volume = prices
    st, acct, counts, orders, trades = books
    m = close.shape[1]
    at_open = cfg.fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    use_range, use_volume = tracking_nb(params)
    g = generic_config(cfg)  # the per-order kernels: one compile for every variant
    lv = order_levels_nb(levels)  # ... and for spot and perpetual runs (no marks)
    for i in range(start, stop):
        if not room_nb(counts, orders, trades, m):
            return i
        s = i - lag
        # margin: funding due at the open, then liquidation at the open before the orders there
        margin_open_nb(cfg, prices, levels, params, books, i, at_open)
        if at_open:
            orders_phase_nb(open_, prices, signals, lv, g, params, books, i, s)
        margin_intrabar_nb(cfg, prices, levels, params, books, i, at_open)
        intrabar_step_nb(cfg, g, prices, levels, params, books, i, use_range, use_volume)
        funding_inside_nb(cfg, levels, books, i)  # receipts inside the bar (payments: margin_intrabar_nb)
        borrow_step_nb(cfg, close, params, books, i)
        if not at_open:
            orders_phase_nb(close, prices, signals, lv, g, params, books, i, s)
        close_bar_nb(close, st, acct, i, cash_out, equity_out)
    return stop


@jit_borrow
def orders_phase_nb(px, prices, signals, levels, cfg, params, books, i, s):
    """Every column's signals of bar ``s`` (``s < 0``: none) acted on at ``px[i]`` (the opens or
    the closes of bar ``i``), or made to wait for the column's next candle."""
    st = books.state
    for c in range(px.shape[1]):
        sc = st[c]
        valid = px[i, c] == px[i, c]
        if valid and sc["wait"] < 0:
            if s >= 0 and wants_nb(signals, s, c, sc["pos"], sc["pend_dir"], cfg.has_short,
                                   has_option_nb(cfg, Option.ACCUMULATE)):
                process_signal_nb(prices.open, prices.close, signals, levels, cfg, params, books, i, c, s)
        else:
            orders_column_nb(prices.open, prices.close, signals, levels, cfg, params, books, i, c, s, valid)


@jit_borrow
def intrabar_phase_nb(prices, cfg, params, books, i, abs_stops, use_range, use_volume):
    """Bar ``i`` inside, every column with a candle: resting entries expire or fill, stops of open
    positions fire (with fills at the close only for positions entered before bar ``i``), then
    the bar's range/volume are remembered (slippage models; ``tracking_nb``). Marks move at the
    close (:func:`close_bar_nb`): nothing reads them in between. Runs with an indicator stop or a
    minimal-ROI table take :func:`intrabar_extra_nb` (this one's arguments stay those of plain runs:
    each array argument is copied on every call)."""
    intrabar_core_nb(prices, prices.close, prices.close, None, True, cfg, params, books, i, abs_stops,
                     use_range, use_volume)


@jit_borrow
def intrabar_stops_nb(prices, cfg, params, books, i, abs_stops, use_range, use_volume):
    """:func:`intrabar_phase_nb` of runs without resting entries (none to check)."""
    intrabar_core_nb(prices, prices.close, prices.close, None, None, cfg, params, books, i, abs_stops,
                     use_range, use_volume)


@jit_borrow
def intrabar_extra_nb(prices, stop_price, roi, cfg, params, books, i, abs_stops, use_range, use_volume):
    """:func:`intrabar_phase_nb` of runs with an indicator stop (``stop_price``, ``Option.IND_STOP``), a
    minimal-ROI table (``roi``, ``Option.ROI``) or time stops (``Option.TIME_STOP``)."""
    flags = (has_option_nb(cfg, Option.IND_STOP), has_option_nb(cfg, Option.ROI), has_option_nb(cfg, Option.TIME_STOP))
    intrabar_core_nb(prices, stop_price, roi, flags, True, cfg, params, books, i, abs_stops, use_range, use_volume)


@ijit
def intrabar_core_nb(prices, stop_price, roi, flags, pending, cfg, params, books, i, abs_stops, use_range,
                     use_volume):
    """Body of :func:`intrabar_phase_nb`, :func:`intrabar_stops_nb` and :func:`intrabar_extra_nb`:
    ``flags`` None or ``(ind_on, roi_on, td_on)`` (:func:`column_stops_nb`); ``pending`` None: no resting
    entries to check (:func:`column_pending_nb`)."""
    open_, high, low, close, volume = prices
    st = books.state
    at_open = cfg.fill_mode == FillMode.NEXT_OPEN
    optimistic = cfg.intrabar == Intrabar.OPTIMISTIC
    for c in range(close.shape[1]):
        cl = close[i, c]
        if cl == cl:
            sc = st[c]
            if sc["pend_dir"] != 0:
                column_pending_nb(pending, prices, cfg, params, books, i, c)
            elif sc["pos"] != 0.0 and has_stops_nb(params, c, abs_stops) and (at_open or sc["entry_idx"] < i):
                column_stops_nb(flags, prices, stop_price, roi, params, books, i, c, optimistic)
            if use_range or use_volume:
                track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)


@ijit
def quiet_intrabar_nb(params, cfg, abs_stops):
    """Whether nothing can happen inside a bar (no stops, no resting entries, no range or volume
    to remember): the bar loops then skip :func:`intrabar_phase_nb`."""
    any_stops = False
    for c in range(params.shape[0]):
        any_stops = any_stops or has_stops_nb(params, c, abs_stops)
    use_range, use_volume = tracking_nb(params)
    return not (any_stops or use_range or use_volume or cfg.order_type != OrderType.MARKET
                or has_option_nb(cfg, Option.ENTRY_TYPES))


@jit
def fused_bars_nb(prices, signals, levels, cfg, params, start, stop, books, cash_out, equity_out):
    """The signals loop without stops or resting orders: a bar's phases fuse into one pass over the columns.

    Same results as the phased loop: nothing happens intrabar, and sizing values other
    columns at the bar's prices (their mark only where the bar has no candle, which leaves
    the mark as it was). Returns the bar to resume from when the record buffers may
    overflow, else ``stop``.

    A column with a valid close and no signal only moves its mark and adds its position to the
    equity; a bar where every column is like that (most bars) skips the order logic altogether.
    """
    open_, high, low, close, volume = prices
    entries, exits, short_entries, short_exits = signals
    st, acct, counts, orders, trades = books
    has_short = cfg.has_short
    n, m = close.shape
    use_range, use_volume = tracking_nb(params)
    track = use_range or use_volume
    at_open = cfg.fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    g = generic_config(cfg)  # the per-order kernels: one compile for every variant
    lv = order_levels_nb(levels)  # ... and for spot and perpetual runs (no marks)
    # margin runs (Option.MARGIN): bars with funding (the next at bar nf) or a mark candle reaching a
    # liquidation trigger (trigger_nb) take the phased loop; on the others margin does nothing
    margin_on = margin_on_nb(cfg)
    mo, mh, ml = mark_candle(levels.marks, prices)
    lo = np.full(m, -np.inf)
    hi = np.full(m, np.inf)
    nf = n
    cross = cross_mode_nb(levels.marks)  # cross margin: every bar takes the phased loop (cross_phase_nb)
    if margin_on:
        margin_triggers_nb(cfg, st, params, lo, hi)
        nf = next_funding_nb(levels.marks, start, n)
    for i in range(start, stop):
        if not room_nb(counts, orders, trades, m):
            return i
        s = i - lag
        due = margin_on and (cross or i == nf or margin_triggered_nb(cfg, mo, mh, ml, i, lo, hi))
        if due or counts[0]["waiting"] > 0:
            # rare: a column waits for a candle since an earlier bar; phases give the same results
            # (a column's orders read only its own range and volume), without a test per bar-step
            phased_bars_nb(prices, signals, levels, cfg, params, i, i + 1, books, cash_out, equity_out)
            if margin_on:
                margin_triggers_nb(cfg, st, params, lo, hi)
                nf = next_funding_nb(levels.marks, i + 1, n)
            continue
        # most bars: every close valid and no signal; the column loop below would only move the marks
        # and sum the positions (same order, same values). Branch-free passes (``|``, not ``or``) the
        # compiler vectorises; written out here: an inlined helper taking the arrays costs NRT
        # increfs per call
        busy = track
        for c in range(m):
            busy |= close[i, c] != close[i, c]
        if s >= 0:
            for c in range(m):
                busy |= entries[s, c] | exits[s, c]
            if has_short:
                for c in range(m):
                    busy |= short_entries[s, c] | short_exits[s, c]
        if not busy:
            value = 0.0
            for c in range(m):
                sc = st[c]
                cl = close[i, c]
                sc["mark"] = cl
                value += sc["pos"] * cl
            record_equity_nb(acct, i, value, cash_out, equity_out)
            continue
        moved = False
        value = 0.0
        for c in range(m):
            sc = st[c]
            cl = close[i, c]
            valid = cl == cl
            if valid and not track and (s < 0 or not (entries[s, c] | exits[s, c] | (
                    has_short & (short_entries[s, c] | short_exits[s, c])))):
                sc["mark"] = cl  # the quiet columns of a busy bar, as above
                value += sc["pos"] * cl
                continue
            if valid and not at_open:  # fills at this close see this bar's range and volume
                sc["mark"] = cl
                if track:
                    track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
            if valid:
                if s >= 0:
                    # read only the signals that can act on the position; kept inline: a call
                    # here, once per bar-step, made the whole loop several times slower
                    p = sc["pos"]
                    if p > 0.0:
                        want = exits[s, c] or (has_short and short_entries[s, c])
                    elif p < 0.0:
                        want = entries[s, c] or short_exits[s, c]
                    else:
                        want = entries[s, c] or (has_short and short_entries[s, c])
                    if want:
                        process_signal_nb(open_, close, signals, lv, g, params, books, i, c, s)
                        if margin_on and (sc["pos"] != p or sc["liq"] != sc["liq"]):
                            margin_trigger_nb(cfg, st, params, c, lo, hi)
                            moved = True
            else:  # no candle to fill on: the order waits for the next one (or is rejected)
                orders_column_nb(open_, close, signals, lv, g, params, books, i, c, s, valid)
                if margin_on:
                    margin_trigger_nb(cfg, st, params, c, lo, hi)
                    moved = True
            if valid and at_open:
                sc["mark"] = cl
                if track:
                    track_bar_nb(high, low, volume, i, c, st, use_range, use_volume)
            value += sc["pos"] * sc["mark"]  # unconditional: a test for flat columns measured ~15 % slower
        if moved and at_open and margin_triggered_nb(cfg, mo, mh, ml, i, lo, hi):
            # a position entered at this open reaches its trigger in the bar: checked after every
            # column's orders, as in the phased loop (the other columns did not trigger at this bar)
            margin_intrabar_nb(cfg, prices, levels, params, books, i, at_open)
            margin_triggers_nb(cfg, st, params, lo, hi)
            value = 0.0
            for c in range(m):
                value += st[c]["pos"] * st[c]["mark"]
        record_equity_nb(acct, i, value, cash_out, equity_out)
    return stop


@jit_borrow
def orders_column_nb(open_, close, signals, levels, cfg, params, books, i, c, s, valid):
    """Column ``c``'s signals of bar ``s`` (``s < 0``: none) at bar ``i`` through the waiting rule
    (the rare case: no candle at the fill bar, or an order waiting for this candle)."""
    entries, exits, short_entries, short_exits = signals
    has_short = cfg.has_short
    sc = books.state[c]
    new = -1
    can_wait = True
    if s >= 0 and (entries[s, c] or exits[s, c] or (has_short and (short_entries[s, c] or short_exits[s, c]))):
        new = s
        # resting entry types: a cell holding an entry is placed at once (it needs no price now)
        if entries[s, c] or (has_short and short_entries[s, c]):
            can_wait = entry_type_at(levels.extra, s, c, cfg.order_type) == OrderType.MARKET
    d = wait_for_candle_nb(sc, books.counts, new, valid, i == close.shape[0] - 1, can_wait, False)
    if d >= 0 and wants_nb(signals, d, c, sc["pos"], sc["pend_dir"], has_short,
                           has_option_nb(cfg, Option.ACCUMULATE)):
        process_signal_nb(open_, close, signals, levels, cfg, params, books, i, c, d)


@jit_borrow
def close_books_nb(close, books, order_type):
    """End of the run: resting orders recorded as OPEN, open positions as trades ending at the last valid close.

    Shared by the signals and the callback loops; nothing is dropped silently.
    """
    st, acct, counts, orders, trades = books
    n, m = close.shape
    for c in range(m):
        sc = st[c]
        if sc["pend_dir"] != 0:
            record_order_nb(orders, counts, c, n - 1, Side.BUY if sc["pend_dir"] > 0 else Side.SELL, np.nan,
                            sc["pend_price"], 0.0, pending_type_nb(sc, order_type), Status.OPEN, RejectReason.NONE)
        if sc["pos"] != 0.0:
            last = n - 1
            while close[last, c] != close[last, c]:
                last -= 1
            record_trade_nb(trades, counts, c, sc["entry_idx"], last, sc["pos"], sc["avg"], sc["mark"],
                            sc["entry_fees"], 0.0, ExitReason.END, sc["borrow"])


@jit_borrow
def check_stops_nb(prices, params, books, i, c, optimistic):
    """Exits of column ``c``'s position inside bar ``i`` (:func:`stops_core_nb` without indicator stop
    and minimal ROI)."""
    stops_core_nb(prices, prices.close, prices.close, False, False, False, params, books, i, c, optimistic)


@jit_borrow
def check_stops_extra_nb(prices, stop_price, roi, ind_on, roi_on, td_on, params, books, i, c, optimistic):
    """:func:`check_stops_nb` with the indicator stop (``ind_on``: ``stop_price``), the minimal-ROI
    table (``roi_on``: ``roi``) and time stops (``td_on``)."""
    stops_core_nb(prices, stop_price, roi, ind_on, roi_on, td_on, params, books, i, c, optimistic)


@ijit
def stops_core_nb(prices, stop_price, roi, ind_on, roi_on, td_on, params, books, i, c, optimistic):
    """Exits of column ``c``'s position inside bar ``i``: the time stop at the open, then the stops;
    exits on a hit, else moves the trailing extreme and ratchets the indicator stop.

    Time stop (``params.td`` > 0): a trade whose age ``i - entry_idx`` (bars, from its first entry)
    reached ``td`` exits at the open (exit reason ``TIME``). Stop side: the tightest of the stop-loss
    (percent or absolute), the trailing stop and the indicator stop (``Option.IND_STOP``: the level
    ratcheted from ``stop_price``), earlier ones winning ties. Take side: the nearer of the
    take-profit and the minimal-ROI level ``avg * (1 +/- roi)`` (``Option.ROI``: ``roi`` the table's return
    for the trade's age at bar ``i``), the take-profit winning ties. Then ``fills.stop_fill_nb``.
    """
    high = prices.high
    low = prices.low
    sc = books.state[c]
    pc = params[c]
    if td_on and pc["td"] > 0.0 and i - sc["entry_idx"] >= pc["td"]:
        exit_position_nb(books, params, c, i, prices.open[i, c], OrderType.MARKET, ExitReason.TIME, 1.0)
        return
    avg = sc["avg"]
    extreme = sc["extreme"]
    is_long = sc["pos"] > 0.0
    if is_long:
        sl_level = avg * (1.0 - pc["sl"])
        tp_level = avg * (1.0 + pc["tp"])
        tr_level = extreme * (1.0 - pc["trail"])
    else:
        sl_level = avg * (1.0 + pc["sl"])
        tp_level = avg * (1.0 - pc["tp"])
        tr_level = extreme * (1.0 + pc["trail"])
    if sc["sl_abs"] == sc["sl_abs"]:
        sl_level = sc["sl_abs"]
    if sc["tp_abs"] == sc["tp_abs"]:
        tp_level = sc["tp_abs"]
    if ind_on or roi_on:
        price, reason = extra_stops_nb(prices, stop_price, roi, ind_on, roi_on, sc, i, c, is_long, sl_level,
                                       tp_level, tr_level, optimistic)
    else:
        price, reason = stop_fill_nb(is_long, prices.open[i, c], high[i, c], low[i, c], sl_level, tp_level,
                                     tr_level, optimistic)
    if reason >= 0:
        if reason == ExitReason.SL or reason == ExitReason.IND_STOP:
            otype = OrderType.STOP_LOSS
        elif reason == ExitReason.TP or reason == ExitReason.ROI:
            otype = OrderType.TAKE_PROFIT
        else:
            otype = OrderType.TRAILING_STOP
        exit_position_nb(books, params, c, i, price, otype, reason, 1.0)
        return
    if is_long:
        if high[i, c] > extreme:
            sc["extreme"] = high[i, c]
    elif low[i, c] < extreme:
        sc["extreme"] = low[i, c]
    if ind_on:  # bar i's indicator stop (known at its close) applies from bar i + 1
        ratchet_nb(sc, stop_price[i, c], is_long)


@ijit
def ratchet_nb(sc, level, is_long):
    """Move the indicator stop of state ``sc`` to ``level`` if it is set (> 0; NaN or <= 0: unset, see
    :func:`level_at`) and tighter: up for a long, down for a short (never back)."""
    if level > 0.0:
        cur = sc["ind_stop"]
        if is_long:
            if not level <= cur:
                sc["ind_stop"] = level
        elif not level >= cur:
            sc["ind_stop"] = level


@ijit
def roi_level_nb(roi, age, avg, is_long):
    """Minimal-ROI exit level of a trade of age ``age`` (bars) and average entry price ``avg``: the
    return of the table's last row ``(age_k, roi_k)`` with ``age_k <= age`` (rows by increasing age),
    as ``avg * (1 + roi_k)`` for a long, ``avg * (1 - roi_k)`` for a short; NaN before the first row."""
    r = np.nan
    for k in range(roi.shape[0]):
        if roi[k, 0] <= age:
            r = roi[k, 1]
        else:
            break
    if is_long:
        return avg * (1.0 + r)
    return avg * (1.0 - r)


@ijit
def extra_stops_nb(prices, stop_price, roi_table, ind_on, roi_on, sc, i, c, is_long, sl_level, tp_level, tr_level,
                   optimistic):
    """:func:`fills.stop_fill_nb` with the indicator stop on the stop side and the minimal-ROI level
    on the take side (rules in :func:`check_stops_nb`); returns ``(price, exit reason)``."""
    stop = sl_level
    sreason = ExitReason.SL
    take = tp_level
    treason = ExitReason.TP
    ind = sc["ind_stop"] if ind_on else np.nan
    roi = roi_level_nb(roi_table, i - sc["entry_idx"], sc["avg"], is_long) if roi_on else np.nan
    if is_long:
        if tr_level == tr_level and not tr_level <= stop:
            stop = tr_level
            sreason = ExitReason.TRAIL
        if ind == ind and not ind <= stop:
            stop = ind
            sreason = ExitReason.IND_STOP
        if roi == roi and not roi >= take:
            take = roi
            treason = ExitReason.ROI
    else:
        if tr_level == tr_level and not tr_level >= stop:
            stop = tr_level
            sreason = ExitReason.TRAIL
        if ind == ind and not ind >= stop:
            stop = ind
            sreason = ExitReason.IND_STOP
        if roi == roi and not roi <= take:
            take = roi
            treason = ExitReason.ROI
    price, reason = stop_fill_nb(is_long, prices.open[i, c], prices.high[i, c], prices.low[i, c], stop, take,
                                 np.nan, optimistic)
    if reason == ExitReason.SL:
        reason = sreason
    elif reason == ExitReason.TP:
        reason = treason
    return price, reason


@jit_borrow
def process_signal_nb(open_, close, signals, levels, cfg, params, books, i, c, s):
    """Turn column ``c``'s signals (long entry/exit, short entry/exit) of bar ``s`` into orders at
    ``open[i, c]`` (fills at the open) or ``close[i, c]``; a limit/stop entry becomes a resting
    order at ``levels.order_price[s, c]`` instead. An exit signal closes all of the position, or
    with ``cfg.partial`` the fraction ``levels.exit_size[s, c]`` of it (one row: per column); a
    reversal closes all of it. The entry's type is ``cfg.order_type``, or with per-entry types
    (``levels.extra.entry_type``, :func:`entry_type_at`) the one of its signal bar ``s``."""
    entries, exits, short_entries, short_exits = signals
    order_type = entry_type_at(levels.extra, s, c, cfg.order_type)
    has_short = cfg.has_short
    st, acct, counts, orders, trades = books
    sc = st[c]
    px = open_ if cfg.fill_mode == FillMode.NEXT_OPEN else close
    le = entries[s, c]
    lx = exits[s, c]
    se = has_short and short_entries[s, c]
    sx = has_short and short_exits[s, c]
    long_entry = le and not se
    short_entry = se and not le
    p = sc["pos"]
    pend = sc["pend_dir"]
    if pend != 0 and (long_entry or short_entry or (pend > 0 and lx) or (pend < 0 and sx)):
        # a new entry replaces the resting one; an exit signal of its side cancels it
        cancel_pending_nb(books, c, i, cfg.order_type)
    do_exit = False
    direction = 0
    if p > 0.0:
        if short_entry:
            do_exit = True
            direction = -1
        elif lx:
            do_exit = True
            if has_option_nb(cfg, Option.REENTER) and long_entry:
                direction = 1
        elif has_option_nb(cfg, Option.ACCUMULATE) and long_entry:
            direction = 1
    elif p < 0.0:
        if long_entry:
            do_exit = True
            direction = 1
        elif sx:
            do_exit = True
            if has_option_nb(cfg, Option.REENTER) and short_entry:
                direction = -1
        elif has_option_nb(cfg, Option.ACCUMULATE) and short_entry:
            direction = -1
    elif long_entry:
        direction = 1
    elif short_entry:
        direction = -1
    if not do_exit and direction == 0:
        return
    base = px[i, c]
    if base != base and (do_exit or order_type == OrderType.MARKET):
        # no candle to fill on: reject every intended leg (a resting entry alone is placed: it
        # needs no price now and only fills on bars with a candle)
        if do_exit:
            reject_order_nb(orders, counts, c, i, Side.BUY if p < 0.0 else Side.SELL, abs(p), np.nan,
                            OrderType.MARKET, RejectReason.NO_DATA)
        if direction != 0:
            reject_order_nb(orders, counts, c, i, Side.BUY if direction > 0 else Side.SELL, np.nan, np.nan,
                            order_type, RejectReason.NO_DATA)
        return
    if do_exit:
        fraction = 1.0
        if cfg.partial and direction == 0:
            xs = levels.exit_size
            fraction = xs[s, c] if xs.shape[0] > 1 else xs[0, c]
        exit_position_nb(books, params, c, i, base, OrderType.MARKET, ExitReason.SIGNAL, fraction)
    if direction == 0:
        return
    size = params[c]["size"]
    if has_option_nb(cfg, Option.SIZES):  # the entry's own size (NaN: the column's)
        size = entry_size_at(levels.extra, s, c, size)
    adding = sc["pos"] != 0.0  # accumulation: the add fills at market (one enter_nb call site: inlined)
    if not adding:
        # absolute stop levels travel with the entry signal (to a resting order's fill too)
        if cfg.abs_stops:  # (NaN or <= 0: unset, see level_at)
            sc["sl_abs"] = level_at(levels.sl_price, s, c)
            sc["tp_abs"] = level_at(levels.tp_price, s, c)
        else:
            sc["sl_abs"] = np.nan
            sc["tp_abs"] = np.nan
        if has_option_nb(cfg, Option.IND_STOP):  # the signal bar's indicator stop is the trade's first level
            sc["ind_stop"] = stop_price_at(levels.extra, s, c)
        if order_type != OrderType.MARKET:
            place_pending_nb(sc, levels.order_price, levels.limit_price, s, c, direction, order_type, size)
            return
    filled = enter_nb(px, i, c, base, direction > 0, OrderType.MARKET, books, params, cfg, size)
    if adding and filled:
        # the combined position keeps its stops unless this entry brings its own (absolute levels
        # given replace, the indicator stop ratchets)
        if cfg.abs_stops:
            v = level_at(levels.sl_price, s, c)
            if v == v:
                sc["sl_abs"] = v
            v = level_at(levels.tp_price, s, c)
            if v == v:
                sc["tp_abs"] = v
        if has_option_nb(cfg, Option.IND_STOP):
            ratchet_nb(sc, stop_price_at(levels.extra, s, c), direction > 0)


@jit_borrow
def cancel_pending_nb(books, c, i, default):
    """Record column ``c``'s resting entry as cancelled at bar ``i`` (its own type; ``default``: the run's) and
    remove it. Kept out of :func:`process_signal_nb` (rare path: the common one stays small)."""
    sc = books.state[c]
    pend = sc["pend_dir"]
    record_order_nb(books.orders, books.counts, c, i, Side.BUY if pend > 0 else Side.SELL, np.nan, sc["pend_price"],
                    0.0, pending_type_nb(sc, default), Status.CANCELLED, RejectReason.NONE)
    sc["pend_dir"] = 0


@jit_borrow
def place_pending_nb(sc, order_price, limit_price, s, c, direction, order_type, size):
    """Place a resting entry of ``order_type`` (``direction`` +1/-1, ``size``) signalled at bar ``s`` in column
    state ``sc``: its level ``order_price[s, c]`` (stop-limit: limit ``limit_price[s, c]``)."""
    sc["pend_dir"] = direction
    sc["pend_price"] = order_price[s, c]
    sc["pend_bar"] = s
    sc["pend_limit"] = limit_price[s, c] if order_type == OrderType.STOP_LIMIT else np.nan
    sc["pend_trig"] = False
    sc["pend_size"] = size
    sc["pend_type"] = order_type


@ijit
def enter_nb(px, i, c, base, is_buy, otype, books, params, cfg, size):
    """Size, check and fill (or reject) an entry of ``size`` (read as ``cfg.size_type``) of column
    ``c`` at ``base`` (before slippage); other positions are valued at ``px[i]``. Returns whether it
    filled.

    Column ``c`` flat: the entry opens a trade. In a position of the entry's direction
    (accumulation): the units add to it; its average entry price becomes the size-weighted mean of
    the fill prices, its entry fees the sum; its entry bar (age of time exits and ROI) and its borrow
    stay; its trailing extreme becomes the better of the extreme and this fill price."""
    st, acct, counts, orders, trades = books
    sc = st[c]
    pc = params[c]
    price = fill_price_nb(sc, pc, base, is_buy)
    impact = impact_nb(sc, pc)
    ci = sc["group"]
    cash = acct[ci]
    margin_on = has_option_nb(cfg, Option.MARGIN)
    leverage = cfg.leverage
    if margin_on and pc["lev"] > 0.0:  # margin runs: per column (nbtrade.margin; 0: unset, the run's)
        leverage = pc["lev"]
    held = sc["pos"]
    if acct.shape[0] == st.shape[0] and held == 0.0:
        # one account per column and this column is flat: nothing else to value
        equity, available = cash, cash
    else:
        equity, available = margin_state_nb(st, px, i, cash, leverage, ci, params, margin_on and pc["lev"] > 0.0)
    fee_rate = pc["fees"]
    if otype == OrderType.LIMIT and pc["maker_fees"] == pc["maker_fees"]:
        fee_rate = pc["maker_fees"]
    fixed = pc["fixed_fees"]
    units, price, reason = entry_size_nb(size, cfg.size_type, price, fee_rate, fixed, leverage, available,
                                         equity, pc["lot"], pc["min_qty"], pc["min_notional"], base, impact, is_buy)
    side = Side.BUY if is_buy else Side.SELL
    if reason == RejectReason.NONE and has_option_nb(cfg, Option.MARGIN):
        # the tier of the resulting position must allow the run's leverage (nbtrade.margin)
        if max_leverage_nb(pc["t_floor"], pc["t_cap"], pc["t_lev"], pc["t_n"], (abs(held) + units) * price) < leverage:
            reason = RejectReason.LEVERAGE
    if reason != RejectReason.NONE:
        reject_order_nb(orders, counts, c, i, side, units, price, otype, reason)
        return False
    fee = order_fees_nb(units, price, fee_rate, fixed)
    if is_buy:
        acct[ci] = cash - units * price - fee
    else:
        acct[ci] = cash + units * price - fee
    if has_option_nb(cfg, Option.MARGIN):  # isolated margin: initial margin of the fill (nbtrade.margin)
        sc["margin"] = (sc["margin"] if held != 0.0 else 0.0) + units * price / leverage
        sc["liq"] = np.nan
    if held != 0.0:
        q = abs(held)
        sc["avg"] = (sc["avg"] * q + price * units) / (q + units)
        sc["entry_fees"] += fee
        if is_buy:
            sc["pos"] = held + units
            if price > sc["extreme"]:
                sc["extreme"] = price
        else:
            sc["pos"] = held - units
            if price < sc["extreme"]:
                sc["extreme"] = price
    else:
        sc["pos"] = units if is_buy else -units
        sc["avg"] = price
        sc["entry_idx"] = i
        sc["entry_fees"] = fee
        sc["extreme"] = price  # (``borrow`` is 0: a full exit resets it)
    record_order_nb(orders, counts, c, i, side, units, price, fee, otype, Status.FILLED, RejectReason.NONE)
    return True


@ijit
def pending_type_nb(sc, default):
    """``OrderType`` of the resting entry of a column with state ``sc`` (``pend_type``; -1: ``default``, the
    run's type, for loops that do not set it)."""
    t = sc["pend_type"]
    return t if t >= 0 else default


@jit_borrow
def check_pending_nb(prices, cfg, params, books, i, c):
    """Expire, or fill intrabar, column ``c``'s resting entry at bar ``i`` (a valid bar)."""
    sc = books.state[c]
    order_type = pending_type_nb(sc, cfg.order_type)
    s = sc["pend_bar"]
    if s >= i:
        return  # placed at this bar's close or open: eligible from the next bar
    is_buy = sc["pend_dir"] > 0
    level = sc["pend_price"]
    tif = cfg.tif
    if tif > 0 and i > s + tif:
        record_order_nb(books.orders, books.counts, c, i, Side.BUY if is_buy else Side.SELL, np.nan, level, 0.0,
                        order_type, Status.EXPIRED, RejectReason.NONE)
        sc["pend_dir"] = 0
        return
    open_ = prices.open
    if order_type == OrderType.STOP_LIMIT:
        base, trig = stop_limit_fill_nb(is_buy, sc["pend_trig"], open_[i, c], prices.high[i, c], prices.low[i, c],
                                        level, sc["pend_limit"])
        sc["pend_trig"] = trig
    else:
        base = pending_fill_nb(is_buy, order_type == OrderType.LIMIT, open_[i, c], prices.high[i, c],
                               prices.low[i, c], level)
    if base == base:
        sc["pend_dir"] = 0
        enter_nb(open_, i, c, base, is_buy, order_type, books, params, cfg, sc["pend_size"])


@jit
def positions_from_orders_nb(idx, col, signed_size, out):
    """Position per bar and column from filled orders (in execution order) into ``out`` ``(n_bars, n_cols)``.

    Adding each order's signed size to the running position is exact here: an exit
    negates exactly the size its entry set.
    """
    n, m = out.shape
    pos = np.zeros(m)
    k = 0
    for i in range(n):
        while k < idx.shape[0] and idx[k] == i:
            c = col[k]
            pos[c] += signed_size[k]
            k += 1
        for c in range(m):
            out[i, c] = pos[c]
    return out


@ijit
def liquidation_level_nb(sc, pc):
    """Liquidation price of the open position of state ``sc`` (isolated margin ``sc.margin``, tiers of
    ``pc``), computed once per change of the position (``sc.liq`` NaN: stale)."""
    liq = sc["liq"]
    if liq != liq:
        p = sc["pos"]
        side = 1.0 if p > 0.0 else -1.0
        liq = liquidation_price_nb(side, abs(p), sc["avg"], sc["margin"], 0.0, pc["t_floor"], pc["t_cap"],
                                   pc["t_mmr"], pc["t_cum"], pc["t_n"])
        sc["liq"] = liq
    return liq


@ijit
def stop_side_level_nb(sc, pc, is_long):
    """The tightest stop-side level of a position (stop-loss, absolute or percent; trailing stop;
    indicator stop), NaN when none: what :func:`kernels.margin.liquidation_first_nb` compares."""
    avg = sc["avg"]
    if is_long:
        stop = sc["sl_abs"] if sc["sl_abs"] == sc["sl_abs"] else avg * (1.0 - pc["sl"])
        tr = sc["extreme"] * (1.0 - pc["trail"])
        if tr == tr and not tr <= stop:
            stop = tr
        ind = sc["ind_stop"]
        if ind == ind and not ind <= stop:
            stop = ind
    else:
        stop = sc["sl_abs"] if sc["sl_abs"] == sc["sl_abs"] else avg * (1.0 + pc["sl"])
        tr = sc["extreme"] * (1.0 + pc["trail"])
        if tr == tr and not tr >= stop:
            stop = tr
        ind = sc["ind_stop"]
        if ind == ind and not ind >= stop:
            stop = ind
    return stop


@jit_borrow
def margin_phase_nb(prices, marks, params, books, i, at_open, open_only):
    """Liquidation of isolated positions at bar ``i`` (``Option.MARGIN``; rules in :mod:`nbtrade.margin`).

    ``open_only``: the check at the open, before the orders there (a position whose open is at or
    through its liquidation price closes at the open). Else the intrabar check, before the stops:
    the candle's low (long) or high (short) against the liquidation price; a stop-side level strictly
    between the open and the liquidation price fills first (the stops then take it), ties go to the
    liquidation. With fills at the close, positions entered at this close are not checked. ``marks``:
    the mark candles (``records.Marks``; a bar without one liquidates nothing) or None: the price
    candles are the mark (spot).
    """
    if cross_margin_nb(prices, marks, params, books, i, open_only):
        return
    st = books.state
    open_, mhigh, mlow = mark_candle(marks, prices)
    close = prices.close
    for c in range(close.shape[1]):
        sc = st[c]
        p = sc["pos"]
        if p == 0.0 or close[i, c] != close[i, c] or open_[i, c] != open_[i, c]:
            continue
        if not (at_open or sc["entry_idx"] < i):
            continue
        pc = params[c]
        liq = liquidation_level_nb(sc, pc)
        side = 1.0 if p > 0.0 else -1.0
        o = open_[i, c]
        if open_only:
            fill = o if (side > 0.0 and o <= liq) or (side < 0.0 and o >= liq) else np.nan
        else:
            fill = liquidation_fill_nb(side, liq, o, mhigh[i, c], mlow[i, c])
            if fill == fill and fill != o:
                stop = stop_side_level_nb(sc, pc, side > 0.0)
                if not liquidation_first_nb(side, liq, stop):
                    continue  # the stop lies between the open and the liquidation price: it fills first
        if fill == fill:
            liquidate_nb(books, params, c, i, fill)


@ijit
def liquidate_nb(books, params, c, i, fill):
    """Close column ``c``'s isolated position at ``fill`` by liquidation (``settle_isolated_nb``): the
    fee (``param_dt.liq_fee``; NaN: the maintenance margin at the fill) is the exit fee, a loss past the
    margin is absorbed (added back: the balance never pays more than the margin), exit reason
    ``LIQUIDATION``; the trade's ``pnl`` includes the absorbed part."""
    sc = books.state[c]
    pc = params[c]
    p = sc["pos"]
    qty = abs(p)
    maint = maintenance_margin_nb(pc["t_floor"], pc["t_cap"], pc["t_mmr"], pc["t_cum"], pc["t_n"], qty * fill)
    returned, pnl, fee, absorbed = settle_isolated_nb(p, sc["avg"], sc["margin"], fill, pc["liq_fee"], maint)
    close_liquidated_nb(books, c, i, fill, fee, absorbed)


@ijit
def close_liquidated_nb(books, c, i, fill, fee, absorbed):
    """Book column ``c``'s liquidation at ``fill``: the close and ``fee`` from its cash account, ``absorbed``
    added back; order and trade (exit reason ``LIQUIDATION``, ``pnl`` including ``absorbed``) recorded."""
    st, acct, counts, orders, trades = books
    sc = st[c]
    p = sc["pos"]
    qty = abs(p)
    ci = sc["group"]
    if p > 0.0:
        acct[ci] += qty * fill - fee + absorbed
    else:
        acct[ci] -= qty * fill + fee - absorbed
    record_order_nb(orders, counts, c, i, Side.SELL if p > 0.0 else Side.BUY, qty, fill, fee, OrderType.MARKET,
                    Status.FILLED, RejectReason.NONE)
    k = counts[0]["trades"]
    record_trade_nb(trades, counts, c, sc["entry_idx"], i, p, sc["avg"], fill, sc["entry_fees"], fee,
                    ExitReason.LIQUIDATION, sc["borrow"])
    if absorbed > 0.0:
        trades[k]["pnl"] += absorbed
        trades[k]["ret"] = trades[k]["pnl"] / (sc["avg"] * qty)
    sc["pos"] = 0.0
    sc["borrow"] = 0.0
    sc["margin"] = 0.0
    sc["liq"] = np.nan


@jit_borrow
def cross_phase_nb(prices, marks, params, books, i, open_only):
    """Cross margin at bar ``i`` (``marks.cross``; one wallet, the cash account 0 that every column shares):
    the wallet check at the mark opens (``open_only``, before the orders at the open) or at every
    position's adverse mark extreme, and when it is liquidated every position closes
    (``kernels.margin.cross_event_nb``, rule and sources there). The wallet balance is ``cash +
    sum(size * entry)``; a column without a candle (price or mark) keeps its last mark (the last valid
    close). Checked before the stops of the bar: a liquidation cancels them."""
    st = books.state
    m = st.shape[0]
    close = prices.close
    buf = marks.scratch  # (11, m) rows (row 10: funding_phase_nb's): no allocation in the bar loop
    sizes, entries, last, mo, mh, ml = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]
    wallet = books.acct[0]
    any_open = False
    for c in range(m):
        sc = st[c]
        q = sc["pos"]
        sizes[c] = q
        entries[c] = sc["avg"] if q != 0.0 else 0.0
        last[c] = sc["mark"]
        valid = close[i, c] == close[i, c]
        mo[c] = marks.open[i, c] if valid else np.nan
        mh[c] = marks.high[i, c]
        ml[c] = marks.low[i, c]
        if q != 0.0:
            wallet += q * sc["avg"]
            any_open = True
    if not any_open:
        return
    fills, fees, absorbed = buf[6], buf[7], buf[8]
    if cross_event_nb(sizes, entries, wallet, mo, mh, ml, last, params["t_floor"], params["t_cap"], params["t_mmr"],
                      params["t_cum"], params["t_n"], params[0]["liq_fee"], open_only, fills, fees, absorbed,
                      buf[9]):
        for c in range(m):
            if sizes[c] != 0.0:
                close_liquidated_nb(books, c, i, fills[c], fees[c], absorbed[c])


@ijit
def funding_row_nb(f_bar, i):
    """Row of bar ``i`` in the sparse funding arrays (``Marks.f_bar`` sorted bars), -1: no funding at ``i``."""
    r = np.searchsorted(f_bar, i)
    if r < f_bar.shape[0] and f_bar[r] == i:
        return r
    return -1


@jit
def funding_phase_nb(f, flows, books, i, r, part, held):
    """Body of :func:`funding_nb`: ``f[r, c]`` the sum of ``rate * mark`` per column of bar ``i``'s
    funding row ``r``; a position ``p`` receives ``-p * f[r, c]`` (``kernels.margin.funding_flow_nb``
    summed over the events), booked in ``flows[r, c]``.

    ``part`` 0 (events at the open): every open position. Events strictly inside the bar (the order of
    the funding instant and the bar's intrabar events is unknown; ``nbtrade.margin``, "Per-bar order"):
    ``part`` 1, before the intrabar checks: a position whose flow is a payment pays it now (so the
    liquidation check and an exit inside the bar see it paid); one whose flow is a receipt has its size
    noted in ``held[c]`` (0: none); ``part`` 2, at the close: a noted position still open (same size)
    receives it. A position entered inside the bar (a resting entry) neither pays nor receives."""
    st = books.state
    acct = books.acct
    for c in range(st.shape[0]):
        v = f[r, c]
        sc = st[c]
        p = sc["pos"]
        if part == 1:
            held[c] = 0.0
        if v != 0.0 and p != 0.0:
            flow = -p * v
            if part == 1 and flow > 0.0:
                held[c] = p  # a receipt: booked at the close if the position is still open
                continue
            if part == 2 and held[c] != p:
                continue
            acct[sc["group"]] += flow
            sc["margin"] += flow  # isolated: funding moves the position's margin (and its liquidation price)
            sc["liq"] = np.nan
            flows[r, c] += flow


@ijit
def trigger_nb(st, params, c, lo, hi):
    """Column ``c``'s liquidation trigger for the fused signals loop (``Option.MARGIN``): ``lo[c]`` the
    liquidation price of a long (a mark open or low at or below it may liquidate), ``hi[c]`` that of a
    short (a mark open or high at or above it), ``-inf`` / ``+inf`` otherwise. The isolated liquidation
    price changes only when the position or its margin does: set anew then."""
    sc = st[c]
    p = sc["pos"]
    lo[c] = -np.inf
    hi[c] = np.inf
    if p > 0.0:
        lo[c] = liquidation_level_nb(sc, params[c])
    elif p < 0.0:
        hi[c] = liquidation_level_nb(sc, params[c])


@ijit
def triggers_nb(st, params, lo, hi):
    """Every column's liquidation trigger (:func:`trigger_nb`)."""
    for c in range(st.shape[0]):
        trigger_nb(st, params, c, lo, hi)


@ijit
def triggered_nb(mo, mh, ml, i, lo, hi):
    """Whether some column's mark candle of bar ``i`` reaches its trigger (:func:`trigger_nb`): a superset
    of the bars :func:`margin_phase_nb` liquidates at (NaN marks never trigger, nor liquidate). One
    branch-free pass over the row."""
    hit = False
    for c in range(lo.shape[0]):
        hit |= (ml[i, c] <= lo[c]) | (mo[i, c] <= lo[c]) | (mh[i, c] >= hi[c]) | (mo[i, c] >= hi[c])
    return hit
