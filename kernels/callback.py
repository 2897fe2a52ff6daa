"""Event-callback backtest: a user ``@njit`` function ``on_bar(ctx, i)`` decides, bar by bar.

The loop is the signals engine's (same fills, stops, sizing, records), with the
signals written on the fly: after bar ``i``'s intrabar phase (stops, marks at the
close) the engine calls ``on_bar(ctx, i)``, which reads the state and sets signals
for bar ``i`` through the helpers below. They act exactly like precomputed signals
at bar ``i``: filled at bar ``i + 1``'s open (``NEXT_OPEN``) or at bar ``i``'s close
(``CLOSE``); when that bar has no candle for the column, the order waits for the
column's next candle (``engine.wait_for_candle_nb``; resting entry types: exits only;
rejected ``NO_DATA`` if none comes before the last bar). ``ctx`` is a :data:`BarContext`:

``open, high, low, close``
    ``(n_bars, n_cols)`` prices; read rows ``<= i`` only (rows after ``i`` are the
    future: the engine cannot stop you from peeking, tests should).
``position``
    ``(n_cols,)`` signed positions in base units, live.
``cash``
    cash balance(s): ``cash[0]``, or one per cash group (``cash_sharing``).
``entries, exits, short_entries, short_exits``
    ``(n_bars, n_cols)`` bool signals being written (use the helpers, which also flag
    the bar in ``touched`` so the engine skips bars without signals).
``user``
    the tuple of arrays passed as ``user=`` (indicators, parameters...).
``exit_size``
    ``(n_cols,)`` fraction of the position the column's pending exit signal closes: 1 unless
    ``reduce_long_nb``/``reduce_short_nb`` set it (back to 1 once the signal is acted on).
``orders``
    None, or when the run has per-order fields (``Levels.extra`` given) an :data:`OrderFields`:
    ``size``, ``sl_price``, ``tp_price``, ``stop_price`` ``(n_bars, n_cols)`` written by
    :func:`order_nb` / :func:`trail_stop_nb` for the entries signalled at bar ``i`` (unset: 0, as the
    front end allocates them with ``np.zeros``, or NaN; a value set is > 0), and
    ``ind_stop`` ``(n_cols,)``, the live indicator stop levels of the open positions (NaN: none), and
    ``live`` ``(3,)`` int64, set by the helpers (an absolute stop, an indicator stop given yet: the engine
    checks per-order stops from the first one on; ``order_nb``'s error code), and ``order_price``, the resting entries' levels of
    a limit/stop run (:func:`entry_level_nb`); in a market run without ``order_price``, ``entry_type``
    (int64) and ``limit_price`` with it, each entry's own type and levels (:func:`entry_order_nb`:
    market, limit, stop and stop-limit entries in one run; unwritten types are 0, market, and unwritten
    levels undefined: the front end allocates them with ``np.empty``, and they are read only where
    ``entry_order_nb`` wrote a resting type).
    Without them (None: no cost to runs that do not use them) the helpers do not compile.

Options of the signals engine that also hold here (``records.Config``): ``accumulate`` (an entry
signal in the position's direction adds), ``reenter`` (an exit and an entry of the position's
direction on one bar close it and open a new trade: backtesting.py's ``position.close(); buy()``),
``finalize``, ``borrow``, ``time_stop``, ``roi``, and ``margin`` (``Option.MARGIN``: perpetuals, leverage; the
funding and liquidation phases of ``engine.phased_bars_nb`` at the same points of the bar, before ``on_bar``:
the callback sees a liquidated position flat).

The same strategy runs in plain Python with ``NUMBA_DISABLE_JIT=1`` for debugging.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import config as numba_config, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._jit import ijit, jit, jit_borrow, jit_uncached
from .engine import (EXTRA_EXITS, borrow_phase_nb, close_bar_nb, close_books_nb, entry_type_at, extra_arrays, finalize_nb,
                     cross_mode_nb, funding_inside_nb, generic_config, has_option_nb, intrabar_extra_nb,
                     intrabar_phase_nb, margin_intrabar_nb, margin_open_nb, mark_candle, next_funding_nb,
                     process_signal_nb, quiet_intrabar_nb, room_nb, run_stops_nb, tracking_nb, triggered_nb,
                     triggers_nb, wait_for_candle_nb)
from .records import FillMode, Option, OrderType

BarContext = namedtuple("BarContext", ["open", "high", "low", "close", "position", "cash", "entries", "exits",
                                       "short_entries", "short_exits", "user", "touched", "exit_size", "orders"])
#: ``ctx.orders`` of a run with per-order fields.
OrderFields = namedtuple("OrderFields", ["size", "sl_price", "tp_price", "stop_price", "ind_stop", "live",
                                         "order_price", "entry_type", "limit_price"])


def order_fields(extra, levels, ind_stop, live, entry_type):
    """``ctx.orders``: None without per-order fields (``extra`` None), else an :data:`OrderFields` of
    ``levels`` (its ``order_price``: the resting entries' levels, ``(1, 1)`` in market runs) and
    ``entry_type``, the entries' own types a callback writes (:func:`entry_order_nb`; ``(1, 1)`` in runs
    that have a run-level type)."""
    if extra is None:
        return None
    return OrderFields(extra.size, levels.sl_price, levels.tp_price, extra.stop_price, ind_stop, live,
                       levels.order_price, entry_type, levels.limit_price)


@overload(order_fields)
def _order_fields_ov(extra, levels, ind_stop, live, entry_type):
    if isinstance(extra, types.NoneType):
        return lambda extra, levels, ind_stop, live, entry_type: None
    return lambda extra, levels, ind_stop, live, entry_type: OrderFields(
        extra.size, levels.sl_price, levels.tp_price, extra.stop_price, ind_stop, live, levels.order_price,
        entry_type, levels.limit_price)


def live_flags(live):
    """``(3,)`` int64 flags of a callback run: ``[0]`` an order set an absolute stop level, ``[1]`` an
    indicator stop (nonzero: yes), ``[2]`` :func:`order_nb`'s error code (:data:`ORDER_ERRORS`);
    ``live`` itself, or ``[1, 1, 0]`` when None (the stop phases always on)."""
    if live is None:
        return np.array([1, 1, 0], dtype=np.int64)
    return live


@overload(live_flags)
def _live_flags_ov(live):
    if isinstance(live, types.NoneType):
        def impl(live):
            out = np.ones(3, dtype=np.int64)
            out[2] = 0
            return out
        return impl
    return lambda live: live


def borrowed(x):
    """``x`` with every array in it (nested tuples included) a view whose NRT meminfo is NULL: the same
    type, data, shape and strides, but numba does not count references to it.

    The context handed to ``on_bar`` holds ~20 arrays. When numba's reference-count pruning fails in a
    user's function (a helper taking ``ctx`` that LLVM does not inline; LLVM merging the decrefs of two
    branches of a loop into one of a phi pointer), each call increfs and decrefs every one of them with
    atomic instructions: 2-3x the run time of issue 15's benchmark. With NULL meminfos those calls
    return at once (a call and a test each). The arrays stay owned by the engine's caller, alive for the
    whole run; a view boxed back to Python (``print(ctx.close)``) is its parent array or borrows the
    data. In plain Python (``NUMBA_DISABLE_JIT``) ``x`` itself."""
    return x


def _borrow_value(context, builder, ty, val):
    if isinstance(ty, types.Array):
        ary = context.make_array(ty)(context, builder, value=val)
        ary.meminfo = cgutils.get_null_value(ary.meminfo.type)
        return ary._getvalue()
    if isinstance(ty, types.BaseTuple):
        out = val
        for k, t in enumerate(ty.types):
            out = builder.insert_value(out, _borrow_value(context, builder, t, builder.extract_value(val, k)), k)
        return out
    context.nrt.incref(builder, ty, val)  # other members: a new reference, as numba expects of a result
    return val


@intrinsic
def _borrowed_intr(typingctx, x):
    def codegen(context, builder, sig, args):
        return _borrow_value(context, builder, sig.args[0], args[0])

    return x(x), codegen


@overload(borrowed)
def _borrowed_ov(x):
    return lambda x: _borrowed_intr(x)


def order_nb(ctx, i, c, size, sl, tp, stop):
    """Per-order fields of column ``c``'s entry signalled at bar ``i`` (call it with the entry
    helper; NaN: unset): ``size`` (read as the run's ``size_type``; NaN: the column's size), absolute
    stop-loss ``sl`` and take-profit ``tp`` levels (quote), and the first indicator stop level
    ``stop``; each set one must be > 0 (the arrays behind ``ctx.orders`` start as zeros, which the
    engine reads as unset, as NaN). Setting a field the run did not allocate (``(n_bars, n_cols)``
    arrays in ``ctx.levels``) raises. Write the fields through it (or :func:`trail_stop_nb`), not into
    ``ctx.orders`` directly: it also sets ``ctx.orders.live``, which turns the engine's per-order stop checks on.

    Compiled, it is an intrinsic (:func:`_order_intr`): it reads ``ctx.orders`` without numba
    variables, so the caller's loop keeps no reference counting (with a variable holding
    ``ctx.orders``, numba's pruning failed in a typical ``next`` and every call paid ~50 NRT calls)."""
    lv = ctx.orders
    if size == size:
        if not size > 0.0:
            raise ValueError("order_nb: size must be > 0 (NaN: the run's size)")
        if lv.size.shape[0] <= i:
            raise ValueError("order_nb: per-order sizes are not enabled for this run")
        lv.size[i, c] = size
    if sl == sl or tp == tp:
        if sl <= 0.0 or tp <= 0.0:
            raise ValueError("order_nb: sl and tp must be > 0 (NaN: unset)")
        if lv.sl_price.shape[0] <= i:
            raise ValueError("order_nb: per-order sl/tp are not enabled for this run")
        lv.sl_price[i, c] = sl
        lv.tp_price[i, c] = tp
        lv.live[0] = 1
    if stop == stop:
        if not stop > 0.0:
            raise ValueError("order_nb: stop must be > 0 (NaN: unset)")
        if lv.stop_price.shape[0] <= i:
            raise ValueError("order_nb: indicator stops are not enabled for this run")
        lv.stop_price[i, c] = stop
        lv.live[1] = 1


_ORDERS = BarContext._fields.index("orders")
#: Messages of :func:`order_nb`'s error codes (``ctx.orders.live[2]``).
ORDER_ERRORS = ("", "order_nb: size must be > 0 (NaN: the run's size)",
                "order_nb: per-order sizes are not enabled for this run",
                "order_nb: per-order sl/tp are not enabled for this run",
                "order_nb: indicator stops are not enabled for this run",
                "order_nb: sl and tp must be > 0 (NaN: unset)", "order_nb: stop must be > 0 (NaN: unset)")
#: ``ctx.orders.live[2]`` set by a callback whose run compiled without per-entry types
#: (``Levels.extra.entry_type`` None) when an entry of another type than the run's comes: the loop
#: returns at that bar right after ``on_bar`` (its orders not yet acted on), and the caller resumes it
#: there with ``entry_type`` given (``Option.ENTRY_TYPES``); that run clears the code. The books
#: are the caller's arrays, so the run goes on exactly as one run with the types from the start
#: (every entry before was of the run's type).
SWITCH_TYPES = -1


@intrinsic
def _order_intr(typingctx, ctx, i, c, size, sl, tp, stop):
    """:func:`order_nb` in LLVM IR: the same checks, reported as a code in ``ctx.orders.live[2]`` (see
    :data:`ORDER_ERRORS`; the fields are then left as they were) that the engine raises on after the
    callback returns."""
    if not isinstance(ctx, types.BaseTuple) or len(ctx.types) <= _ORDERS \
            or not isinstance(ctx.types[_ORDERS], types.BaseTuple):
        return None  # ctx.orders is None: per-order fields not enabled for this run

    def codegen(context, builder, sig, args):
        ctx_ty = sig.args[0]
        oty = ctx_ty.types[_ORDERS]
        orders = builder.extract_value(args[0], _ORDERS)
        ii = context.cast(builder, args[1], sig.args[1], types.intp)
        cc = context.cast(builder, args[2], sig.args[2], types.intp)
        size_, sl_, tp_, stop_ = (context.cast(builder, args[k], sig.args[k], types.float64) for k in range(3, 7))

        def array(k):
            aty = oty.types[k]
            return aty, context.make_array(aty)(context, builder, value=builder.extract_value(orders, k))

        def too_few_rows(k):
            _, ary = array(k)
            return builder.icmp_signed("<=", cgutils.unpack_tuple(builder, ary.shape)[0], ii)

        def store(k, inds, value, vty):
            aty, ary = array(k)
            ptr = cgutils.get_item_pointer(context, builder, aty, ary, inds, wraparound=False)
            context.pack_value(builder, aty.dtype, context.cast(builder, value, vty, aty.dtype), ptr)

        def isset(x):
            return builder.fcmp_ordered("==", x, x)

        def index(k):
            return [context.get_constant(types.intp, k)]

        def code(k):
            return context.get_constant(types.int64, k)

        # no raise here: an error code in live[2] that the engine raises on after on_bar returns (a raise site
        # made the caller too large for LLVM to inline into next, which then kept reference counting)
        has_size, has_levels, has_stop = isset(size_), builder.or_(isset(sl_), isset(tp_)), isset(stop_)

        def not_positive(x):  # set and <= 0 (ordered: False for NaN)
            return builder.fcmp_ordered("<=", x, x.type(0.0))

        # the first error of the Python body (order_nb) wins: the last select
        err = builder.select(builder.and_(has_stop, too_few_rows(3)), code(4), code(0))
        err = builder.select(not_positive(stop_), code(6), err)
        err = builder.select(builder.and_(has_levels, too_few_rows(1)), code(3), err)
        err = builder.select(builder.or_(not_positive(sl_), not_positive(tp_)), code(5), err)
        err = builder.select(builder.and_(has_size, too_few_rows(0)), code(2), err)
        err = builder.select(builder.and_(has_size, builder.not_(builder.fcmp_ordered(">", size_, size_.type(0.0)))),
                             code(1), err)
        ok = builder.icmp_signed("==", err, code(0))
        with builder.if_else(ok, likely=True) as (then, otherwise):
            with then:
                one = code(1)
                with builder.if_then(has_size):
                    store(0, [ii, cc], size_, types.float64)
                with builder.if_then(has_levels):
                    store(1, [ii, cc], sl_, types.float64)
                    store(2, [ii, cc], tp_, types.float64)
                    store(5, index(0), one, types.int64)
                with builder.if_then(has_stop):
                    store(3, [ii, cc], stop_, types.float64)
                    store(5, index(1), one, types.int64)
            with otherwise:
                store(5, index(2), err, types.int64)
        return context.get_dummy_value()

    return types.void(ctx, i, c, size, sl, tp, stop), codegen


_order_py = order_nb
if not numba_config.DISABLE_JIT:  # the intrinsic itself: no overload in between (its inlined body copied ctx)
    order_nb = _order_intr  # noqa: F811


@ijit
def entry_level_nb(ctx, i, c, level):
    """Level (quote) of column ``c``'s resting entry signalled at bar ``i`` in a run with
    ``order_type="limit"`` or ``"stop"``: backtesting.py's ``buy(limit=...)`` / ``buy(stop=...)`` (call
    it with the entry helper). A limit buy fills at ``min(open, level)`` once the low reaches it, a stop
    buy at ``max(open, level)`` once the high does; mirrored for sells. Without a level the entry rests
    at the run's ``order_price`` (NaN there: it never fills and expires with ``tif``). In a market run
    the helper raises: each entry's type and level there come from :func:`entry_order_nb`."""
    lv = ctx.orders
    if lv.order_price.shape[0] <= i or lv.entry_type.shape[0] > i:  # a market run (entry_order_nb's)
        raise ValueError("entry_level_nb: per-order entry levels need order_type='limit' or 'stop' "
                         "(without one: entry_order_nb)")
    if not (level > 0.0 and level < np.inf):
        raise ValueError("entry_level_nb: level must be a finite price > 0")
    lv.order_price[i, c] = level


@ijit
def entry_order_nb(ctx, i, c, order_type, price, limit):
    """Type and levels of column ``c``'s entry signalled at bar ``i`` (call it with the entry helper) in a
    run without a run-level order type (``order_type="market"``, no ``order_price``): backtesting.py's
    ``buy()`` (``OrderType.MARKET``), ``buy(limit=price)`` (``LIMIT``), ``buy(stop=price)`` (``STOP``),
    ``buy(stop=price, limit=limit)`` (``STOP_LIMIT``: armed at ``price``, then a limit at ``limit``);
    ``limit`` is read by stop-limits only. Entries of every type mix in one run. The first entry that is
    not a market one switches the engine to per-entry types from that bar (``SWITCH_TYPES``): a run that
    never calls it with another type compiles nothing more."""
    lv = ctx.orders
    if lv.entry_type.shape[0] <= i:
        raise ValueError("entry_order_nb: per-entry order types need a run without order_type/order_price")
    if order_type == OrderType.MARKET:
        lv.entry_type[i, c] = OrderType.MARKET
        lv.order_price[i, c] = np.nan
        lv.limit_price[i, c] = np.nan
        return
    if order_type != OrderType.LIMIT and order_type != OrderType.STOP and order_type != OrderType.STOP_LIMIT:
        raise ValueError("entry_order_nb: order_type must be OrderType.MARKET, LIMIT, STOP or STOP_LIMIT")
    if not (price > 0.0 and price < np.inf):
        raise ValueError("entry_order_nb: price must be a finite price > 0")
    if order_type == OrderType.STOP_LIMIT:
        if not (limit > 0.0 and limit < np.inf):
            raise ValueError("entry_order_nb: a stop-limit's limit must be a finite price > 0")
        lv.limit_price[i, c] = limit
    else:
        lv.limit_price[i, c] = np.nan
    lv.entry_type[i, c] = order_type
    lv.order_price[i, c] = price
    if lv.live[2] == 0:
        lv.live[2] = SWITCH_TYPES


@ijit
def trail_stop_nb(ctx, i, c, level):
    """Indicator stop of column ``c`` at bar ``i``: ratchets the open position's level to ``level``
    if tighter (up for a long, down for a short), effective from bar ``i + 1``; also the first level
    of an entry signalled at bar ``i``. ``level`` > 0 (NaN: none at this bar; <= 0 raises). Needs the
    run's indicator stops enabled."""
    lv = ctx.orders
    if lv.stop_price.shape[0] <= i:
        raise ValueError("trail_stop_nb: indicator stops are not enabled for this run")
    if level <= 0.0:
        raise ValueError("trail_stop_nb: level must be > 0 (NaN: none)")
    lv.stop_price[i, c] = level
    if level == level:
        lv.live[1] = 1
        p = ctx.position[c]
        if p != 0.0:
            cur = lv.ind_stop[c]
            if p > 0.0:
                if not level <= cur:
                    lv.ind_stop[c] = level
            elif not level >= cur:
                lv.ind_stop[c] = level


@ijit
def enter_long_nb(ctx, i, c):
    """Signal a long entry (or a reversal from short) for column ``c`` at bar ``i``."""
    ctx.entries[i, c] = True
    ctx.touched[i] = True


@ijit
def exit_long_nb(ctx, i, c):
    """Signal the exit of column ``c``'s long position (cancels a resting long entry)."""
    ctx.exits[i, c] = True
    ctx.touched[i] = True


@ijit
def reduce_long_nb(ctx, i, c, fraction):
    """Signal the exit of ``fraction`` (0 < fraction <= 1) of column ``c``'s long position: a
    partial close, with the rules of ``backtest(exit_size=...)`` (lot rounding, filters).

    The fraction holds for the column's signals of bar ``i`` (an ``exit_long_nb`` on the same
    bar does not make it a full exit). The exit helpers do not write ``ctx.exit_size``: a
    write there, in every strategy, made numba reference-count the context on every bar.
    """
    if not (fraction > 0.0 and fraction <= 1.0):
        raise ValueError("reduce_long_nb: fraction must be in (0, 1]")
    ctx.exits[i, c] = True
    ctx.exit_size[c] = fraction
    ctx.touched[i] = True


@ijit
def enter_short_nb(ctx, i, c):
    """Signal a short entry (or a reversal from long) for column ``c`` at bar ``i``."""
    ctx.short_entries[i, c] = True
    ctx.touched[i] = True


@ijit
def exit_short_nb(ctx, i, c):
    """Signal the exit of column ``c``'s short position (cancels a resting short entry)."""
    ctx.short_exits[i, c] = True
    ctx.touched[i] = True


@ijit
def reduce_short_nb(ctx, i, c, fraction):
    """Signal the exit of ``fraction`` (0 < fraction <= 1) of column ``c``'s short position."""
    if not (fraction > 0.0 and fraction <= 1.0):
        raise ValueError("reduce_short_nb: fraction must be in (0, 1]")
    ctx.short_exits[i, c] = True
    ctx.exit_size[c] = fraction
    ctx.touched[i] = True


@jit_uncached
def simulate_callback_nb(on_bar, user, prices, signals, levels, cfg, params, touched, exit_frac, start, books,
                         cash_out, equity_out, live=None, entry_type=None):
    """Run bars ``start..`` until the end or until the record buffers might overflow.

    Inputs are grouped as for ``engine.simulate_signals_nb``; ``signals`` are the (zeroed)
    arrays ``on_bar`` writes, ``touched`` ``(n_bars,)`` flags the bars where it set one.
    ``levels.exit_size`` ``(1, n_cols)`` is what the order handler reads as the exit fraction
    (``cfg.partial`` True): ``exit_frac`` ``(n_cols,)`` ones is ``ctx.exit_size`` (each column's
    latest exit signal), copied to the column's ``wait_frac`` when its signal waits for a candle.
    The books live in caller arrays so a run can resume with larger buffers. Returns the next
    bar to run (``n_bars`` when done).

    ``live`` ``(3,)`` int64 (``ctx.orders.live``), for runs with per-order fields: whether an order has
    set an absolute stop level yet (``[0]``) and an indicator stop (``[1]``), 0 at the start (the
    caller's array: a resumed run keeps them), and ``[2]`` the error code :func:`order_nb` leaves
    (raised after the callback returns). Until then the bars skip the stop checks those fields
    would need (``cfg.abs_stops`` and ``Option.IND_STOP`` are the run's, set for fields that may come):
    a strategy pays for per-order stops from its first one, with the same records. None: always on.
    ``[2] == SWITCH_TYPES`` after ``on_bar``: the run returns that bar ``i`` with the code left in place
    (:data:`SWITCH_TYPES`); called again with ``start = i`` and the code still set, it resumes bar ``i``
    right after ``on_bar`` and clears it; a run that has its types already (``Option.ENTRY_TYPES``) clears
    it and goes on. ``entry_type``: ``ctx.orders.entry_type`` (with per-order fields), the ``(n_bars,
    n_cols)`` int64 array :func:`entry_order_nb` writes (the one the caller gives the kernel as
    ``levels.extra.entry_type`` once asked), ``(1, 1)`` in runs with a run-level type.
    """
    open_, high, low, close, volume = prices
    entries, exits, short_entries, short_exits = signals
    st, acct, counts, orders, trades = books
    n, m = close.shape
    # ``cfg``'s class gates the margin phases (``records.config_variant``: a run without ``Cap.MARGIN`` does not
    # compile them); the rest of the loop takes the plain Config (one compile of the shared kernels)
    mcfg = cfg
    cfg = generic_config(mcfg)
    flags = live_flags(live)
    # the stop phases with the per-order stops live (run_stops, quiet) and before any (run_stops0, quiet0)
    run_stops = run_stops_nb(cfg)
    quiet = quiet_intrabar_nb(params, cfg, run_stops)
    other_exits = has_option_nb(cfg, Option.ROI | Option.TIME_STOP)
    run_stops0 = other_exits
    quiet0 = quiet_intrabar_nb(params, cfg, run_stops0)
    ind_opt = has_option_nb(cfg, Option.IND_STOP)
    use_range, use_volume = tracking_nb(params)
    at_open = cfg.fill_mode == FillMode.NEXT_OPEN
    lag = 1 if at_open else 0
    # NULL-meminfo views (:func:`borrowed`): a user's on_bar never pays reference counting on them
    ctx = borrowed(BarContext(open_, high, low, close, st["pos"], acct, entries, exits, short_entries, short_exits,
                              user, touched, exit_frac,
                              order_fields(levels.extra, levels, st["ind_stop"], flags, entry_type)))
    cnt = counts[0]
    # margin runs: the margin phases run on the bars that can need them, as in engine.fused_bars_nb: bars with
    # funding (the next at bar nf), every bar in cross margin, and bars whose mark candle reaches a position's
    # liquidation trigger (engine.trigger_nb; refreshed after the orders at the open and at each bar's end)
    margin_on = has_option_nb(mcfg, Option.MARGIN)
    mo, mh, ml = mark_candle(levels.marks, prices)
    lo = np.full(m, -np.inf)
    hi = np.full(m, np.inf)
    nf = n
    cross = cross_mode_nb(levels.marks)
    # resumed right after bar start's on_bar (SWITCH_TYPES): the bar's first half is done
    mid = flags[2] == SWITCH_TYPES
    if margin_on:
        triggers_nb(st, params, lo, hi)
        nf = next_funding_nb(levels.marks, start + 1 if mid else start, n)
    for i in range(start, n):
        if not room_nb(counts, orders, trades, m):
            return i
        s = i - lag
        if mid:
            mid = False
            flags[2] = 0
        else:
            due = margin_on and (cross or i == nf or triggered_nb(mo, mh, ml, i, lo, hi))
            # margin and funding at the points of the signals loop's bar (engine.phased_bars_nb): funding due
            # at the open, then liquidation at the open before the orders there
            if due:
                margin_open_nb(mcfg, prices, levels, params, books, i, at_open)
            if at_open and s >= 0 and (touched[s] or cnt["waiting"] > 0):
                callback_orders_nb(open_, prices, signals, levels, cfg, params, books, i, s, touched[s], exit_frac)
                if margin_on:  # positions entered at this open
                    triggers_nb(st, params, lo, hi)
                    due = due or triggered_nb(mo, mh, ml, i, lo, hi)
            if due:
                margin_intrabar_nb(mcfg, prices, levels, params, books, i, at_open)  # liquidation before the stops
            on = flags[0] != 0 or flags[1] != 0
            if not (quiet if on else quiet0):
                if other_exits or (ind_opt and flags[1]):
                    stop_price, roi = extra_arrays(levels.extra, close)
                    intrabar_extra_nb(prices, stop_price, roi, cfg, params, books, i, True, use_range, use_volume)
                else:
                    intrabar_phase_nb(prices, cfg, params, books, i, run_stops if on else run_stops0, use_range,
                                      use_volume)
            if margin_on and i == nf:
                funding_inside_nb(mcfg, levels, books, i)  # receipts inside the bar (payments: margin_intrabar_nb)
                nf = next_funding_nb(levels.marks, i + 1, n)
            if has_option_nb(cfg, Option.BORROW):
                borrow_phase_nb(close, params, books, i)
            on_bar(ctx, i)
            if flags[2] != 0:
                if flags[2] != SWITCH_TYPES:
                    raise_order_error_nb(flags[2])
                if not has_option_nb(cfg, Option.ENTRY_TYPES):
                    return i  # the caller resumes this bar with the entries' types
                flags[2] = 0
        if not at_open and (touched[s] or cnt["waiting"] > 0):
            callback_orders_nb(close, prices, signals, levels, cfg, params, books, i, s, touched[s], exit_frac)
        close_bar_nb(close, st, acct, i, cash_out, equity_out)
        if margin_on:  # positions, margins (funding) and fills of this bar: next bar's triggers
            triggers_nb(st, params, lo, hi)
    if has_option_nb(cfg, Option.FINALIZE):
        finalize_nb(close, params, books, cash_out, equity_out)
    close_books_nb(close, books, cfg.order_type)
    return n


@ijit
def raise_order_error_nb(code):
    """Raise :func:`order_nb`'s error ``code`` (:data:`ORDER_ERRORS`)."""
    if code == 1:
        raise ValueError("order_nb: size must be > 0 (NaN: the run's size)")
    if code == 2:
        raise ValueError("order_nb: per-order sizes are not enabled for this run")
    if code == 3:
        raise ValueError("order_nb: per-order sl/tp are not enabled for this run")
    if code == 5:
        raise ValueError("order_nb: sl and tp must be > 0 (NaN: unset)")
    if code == 6:
        raise ValueError("order_nb: stop must be > 0 (NaN: unset)")
    raise ValueError("order_nb: indicator stops are not enabled for this run")


@jit_borrow
def callback_orders_nb(px, prices, signals, levels, cfg, params, books, i, s, touched_s, exit_frac):
    """The callback's signals of bar ``s`` acted on at ``px[i]``, through the waiting rule: an
    order due on a bar with no candle waits for the column's next candle; signals set meanwhile
    (on bars with no candle) are ignored; resting entry types: a cell holding an entry is placed
    at once. Each column's exit fraction is consumed by its signal (back to 1)."""
    entries, exits, short_entries, short_exits = signals
    st = books.state
    counts = books.counts
    handed = levels.exit_size
    n, m = px.shape
    last = i == n - 1
    for c in range(m):
        sc = st[c]
        waiting = sc["wait"] >= 0
        new = -1
        can_wait = True
        if touched_s and (entries[s, c] or exits[s, c] or short_entries[s, c] or short_exits[s, c]):
            new = s
            can_wait = not (entries[s, c] or short_entries[s, c]) \
                or entry_type_at(levels.extra, s, c, cfg.order_type) == OrderType.MARKET
        elif not waiting:
            continue
        d = wait_for_candle_nb(sc, counts, new, px[i, c] == px[i, c], last, can_wait, False)
        if d < 0:
            if not waiting and sc["wait"] >= 0:  # a wait began: later signals must not change its fraction
                sc["wait_frac"] = exit_frac[c]
                exit_frac[c] = 1.0
            continue
        if waiting:
            handed[0, c] = sc["wait_frac"]
        else:
            handed[0, c] = exit_frac[c]
            exit_frac[c] = 1.0  # consumed: the next exit closes all unless reduced again
        process_signal_nb(prices.open, prices.close, signals, levels, cfg, params, books, i, c, d)


_ = OrderType  # re-exported for strategies: ``OrderType.LIMIT``
