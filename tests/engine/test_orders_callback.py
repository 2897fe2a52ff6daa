"""The callback kernel takes the issue-15 options and per-order fields too: an ``on_bar`` replaying
precomputed signals with ``order_nb`` / ``trail_stop_nb`` gives the signals kernel's records."""
from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from nbtrade.kernels.callback import (enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb, order_nb,
                                      simulate_callback_nb, trail_stop_nb)
from nbtrade.kernels.records import (Books, FillMode, Intrabar, Levels, OrderLevels, OrderType, Prices, Signals, SizeType,
                                     counts_dt, make_config, new_state, order_dt, param_dt, trade_dt)

from .helpers import random_market, random_signals
from .test_orders_kernel import assert_same, run_kernel, _NAMES


@njit
def replay_on_bar(ctx, i):
    le, lx, se, sx, size, sl, tp, stop, use = ctx.user
    for c in range(ctx.close.shape[1]):
        if use[0]:
            trail_stop_nb(ctx, i, c, stop[i, c])
        if le[i, c]:
            enter_long_nb(ctx, i, c)
            order_nb(ctx, i, c, size[i, c], sl[i, c], tp[i, c], np.nan)
        if lx[i, c]:
            exit_long_nb(ctx, i, c)
        if se[i, c]:
            enter_short_nb(ctx, i, c)
            order_nb(ctx, i, c, size[i, c], sl[i, c], tp[i, c], np.nan)
        if sx[i, c]:
            exit_short_nb(ctx, i, c)


def run_callback(o, h, l, c, le, lx, se, sx, *, size, entry_size, sl_price, tp_price, stop_price, fill, td, borrow,
                 roi, accumulate, reenter, finalize, size_type="amount", init_cash=1000.0, gated=True):
    n, m = c.shape
    params = np.zeros(m, dtype=param_dt)
    params["size"] = size
    params["fees"] = 0.001
    params["maker_fees"] = np.nan
    params["sl"] = params["tp"] = params["trail"] = np.nan
    params["td"] = td
    params["borrow"] = borrow
    full = lambda: np.full((n, m), np.nan)  # noqa: E731
    levels = Levels(c, c, full(), full(), np.ones((1, m)),
                    OrderLevels(full(), full(), np.ones((1, 2)) if roi is None else np.asarray(roi, dtype=np.float64)))
    cfg = make_config(int(getattr(SizeType, size_type.upper())), 1.0,
                      FillMode.NEXT_OPEN if fill == "next_open" else FillMode.CLOSE, Intrabar.PESSIMISTIC,
                      OrderType.MARKET, 0, True, True, True, accumulate=accumulate, reenter=reenter, finalize=finalize,
                      sizes=True, ind_stop=True, roi=roi is not None, borrow=borrow > 0, time_stop=td > 0)
    sig = Signals(*(np.zeros((n, m), dtype=np.bool_) for _ in range(4)))
    orders, trades = np.empty(8 * n * m + 64, dtype=order_dt), np.empty(4 * n * m + 64, dtype=trade_dt)
    state, acct, counts = new_state(np.zeros(m, dtype=np.int64)), np.full(1, init_cash), np.zeros(1, counts_dt)
    cash, equity = np.empty(n), np.empty(n)
    use = np.array([stop_price is not None])
    stop = full() if stop_price is None else stop_price
    user = (le, lx, se, sx, entry_size, sl_price, tp_price, stop, use)
    done = simulate_callback_nb(replay_on_bar, user, Prices(o, h, l, c, c), sig, levels, cfg, params,
                                np.zeros(n, dtype=np.bool_), np.ones(m), 0, Books(state, acct, counts, orders, trades),
                                cash, equity, np.zeros(3, dtype=np.int64) if gated else None)
    assert done == n
    k = counts[0]
    out_o = [dict(col=int(r["col"]), idx=int(r["idx"]), side=_NAMES["side"][r["side"]], size=float(r["size"]),
                  price=float(r["price"]), fees=float(r["fees"]), type=_NAMES["type"][r["type"]],
                  status=_NAMES["status"][r["status"]], reason=_NAMES["reason"][r["reason"]])
             for r in orders[:k["orders"]]]
    out_t = [dict(col=int(r["col"]), entry_idx=int(r["entry_idx"]), exit_idx=int(r["exit_idx"]),
                  direction=_NAMES["direction"][r["direction"]], size=float(r["size"]),
                  entry_price=float(r["entry_price"]), exit_price=float(r["exit_price"]),
                  entry_fees=float(r["entry_fees"]), exit_fees=float(r["exit_fees"]), pnl=float(r["pnl"]),
                  ret=float(r["ret"]), exit_reason=_NAMES["exit_reason"][r["exit_reason"]], borrow=float(r["borrow"]))
             for r in trades[:k["trades"]]]
    return out_o, out_t, cash, equity


@pytest.mark.parametrize("seed", range(40))
def test_callback_with_per_order_fields_equals_the_signals_kernel(seed):
    rng = np.random.default_rng(seed)
    n, m = 30, 2
    o, h, l, c = random_market(rng, n, m)
    le, lx, se, sx = (random_signals(rng, c, 0.2) for _ in range(4))
    entry_size = np.where(rng.random(c.shape) < 0.3, np.nan, rng.uniform(0.5, 3.0, c.shape))
    sl_price = np.where(rng.random(c.shape) < 0.4, np.nan, c * rng.uniform(0.9, 1.0, c.shape))
    tp_price = np.where(rng.random(c.shape) < 0.4, np.nan, c * rng.uniform(1.0, 1.1, c.shape))
    long_only = seed % 3 == 0
    if long_only:
        se[:] = sx[:] = False
    stop_price = c * (1 - rng.uniform(0.01, 0.05, c.shape)) if long_only and seed % 2 == 0 else None
    if seed % 3 == 2:  # no per-order stop in the first half: the gated stop phases start late
        sl_price[: n // 2] = tp_price[: n // 2] = np.nan
    if stop_price is not None and seed % 4 == 0:
        stop_price[: n // 2] = np.nan
    opts = dict(fill=["next_open", "close"][seed % 2], td=[0.0, 6.0][seed % 4 == 1],
                borrow=[0.0, 0.002][seed % 5 == 2], roi=[None, [[0, 0.08], [4, 0.01]]][seed % 6 == 3],
                accumulate=seed % 2 == 1, reenter=seed % 4 >= 2, finalize=seed % 3 == 1)
    # gated (the front end's way): the stop phases of per-order stops start with the first one
    got = run_callback(o, h, l, c, le, lx, se, sx, size=1.0, entry_size=entry_size, sl_price=sl_price,
                       tp_price=tp_price, stop_price=stop_price, gated=seed % 5 != 4, **opts)
    ref = run_kernel(o, h, l, c, le, lx, se, sx, size=1.0, fees=0.001, entry_size=entry_size, sl_price=sl_price,
                     tp_price=tp_price, stop_price=stop_price, fill=opts["fill"], td_stop=opts["td"],
                     borrow=opts["borrow"], roi=opts["roi"], accumulate=opts["accumulate"], reenter=opts["reenter"],
                     finalize=opts["finalize"])
    assert_same(got, ref)


def test_order_nb_refuses_fields_the_run_did_not_allocate():
    @njit
    def bad_on_bar(ctx, i):
        if i == 3:
            enter_long_nb(ctx, i, 0)
            order_nb(ctx, i, 0, 2.0, np.nan, np.nan, np.nan)

    n, m = 6, 1
    c = np.full((n, m), 10.0)
    params = np.zeros(m, dtype=param_dt)
    params["size"] = 1.0
    params["sl"] = params["tp"] = params["trail"] = np.nan
    nan = np.full((1, 1), np.nan)
    cfg = make_config(SizeType.AMOUNT, 1.0, FillMode.NEXT_OPEN, Intrabar.PESSIMISTIC, OrderType.MARKET, 0, True,
                      False, True)
    sig = Signals(*(np.zeros((n, m), dtype=np.bool_) for _ in range(4)))

    def run(levels):
        books = Books(new_state(np.zeros(m, dtype=np.int64)), np.full(1, 100.0), np.zeros(1, counts_dt),
                      np.empty(64, dtype=order_dt), np.empty(64, dtype=trade_dt))
        simulate_callback_nb(bad_on_bar, (), Prices(c, c, c, c, c), sig, levels, cfg, params, np.zeros(n, np.bool_),
                             np.ones(m), 0, books, np.empty(n), np.empty(n))

    # per-order fields given, sizes not allocated: a clear error, no write out of bounds
    with pytest.raises(ValueError, match="per-order sizes are not enabled"):
        run(Levels(c, c, nan, nan, np.ones((1, m)), OrderLevels(nan, np.full((n, m), np.nan), np.ones((1, 2)))))
    # no per-order fields at all (ctx.orders is None): the strategy does not compile
    from numba.core.errors import TypingError

    with pytest.raises(TypingError):
        run(Levels(c, c, nan, nan, np.ones((1, m))))


def test_order_nb_bad_size_raises_after_the_callback_and_writes_nothing():
    """Compiled, order_nb reports its error as a code (no raise site in the user's loop): the engine raises it
    once the callback returns, with order_nb's message."""
    from nbtrade import backtest_callback

    @njit
    def bad_size(ctx, i):
        if i == 2:
            enter_long_nb(ctx, i, 0)
            order_nb(ctx, i, 0, -1.0, np.nan, np.nan, np.nan)

    c = np.full((6, 1), 10.0)
    with pytest.raises(ValueError, match=r"order_nb: size must be > 0 \(NaN: the run's size\)"):
        backtest_callback({"open": c, "high": c, "low": c, "close": c}, bad_size, per_order=True)


def _orders_ctx(n=4, m=1):
    """A bar context with per-order fields as a callback run allocates them (zeros: unset)."""
    from nbtrade.kernels.callback import BarContext, OrderFields

    z, b = np.zeros((n, m)), np.zeros((n, m), dtype=np.bool_)
    orders = OrderFields(np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m)), np.full(m, np.nan),
                         np.zeros(3, dtype=np.int64), np.full((1, 1), np.nan), np.full((1, 1), -1, dtype=np.int64),
                         np.full((1, 1), np.nan))
    return BarContext(z, z, z, z, np.zeros(m), np.zeros(1), b, b, b, b, (), np.zeros(n, dtype=np.bool_), np.ones(m),
                      orders)


@njit
def _order_at_1(ctx, size, sl, tp, stop):
    order_nb(ctx, 1, 0, size, sl, tp, stop)


@njit
def _trail_at_1(ctx, level):
    trail_stop_nb(ctx, 1, 0, level)


@pytest.mark.parametrize("fields, code", [
    ((np.nan, 0.0, np.nan, np.nan), 5), ((np.nan, 90.0, -1.0, np.nan), 5), ((np.nan, np.nan, np.nan, 0.0), 6),
    ((-1.0, 0.0, np.nan, -2.0), 1), ((2.0, 90.0, 110.0, 95.0), 0)])
def test_order_nb_refuses_levels_le_0_which_its_zeroed_arrays_read_as_unset(fields, code):
    """A callback run's per-order arrays start as zeros, read as unset: a level <= 0 (before: accepted, a stop
    that never triggers or exits at once) is refused with order_nb's error, compiled (a code the engine raises
    on after on_bar) and in plain Python alike, and writes nothing; trail_stop_nb refuses a level <= 0."""
    import re

    from nbtrade.kernels.callback import ORDER_ERRORS, _order_py, raise_order_error_nb

    ctx = _orders_ctx()
    _order_at_1(ctx, *fields)
    lv = ctx.orders
    assert lv.live[2] == code
    got = (lv.size[1, 0], lv.sl_price[1, 0], lv.tp_price[1, 0], lv.stop_price[1, 0])
    if code:
        assert got == (0.0, 0.0, 0.0, 0.0)
        with pytest.raises(ValueError, match=re.escape(ORDER_ERRORS[code])):
            raise_order_error_nb(code)
        with pytest.raises(ValueError, match=re.escape(ORDER_ERRORS[code])):
            _order_py(_orders_ctx(), 1, 0, *fields)
    else:
        assert got == fields
        with pytest.raises(ValueError, match=r"trail_stop_nb: level must be > 0 \(NaN: none\)"):
            _trail_at_1(ctx, 0.0)
        _trail_at_1(ctx, 96.0)
        assert lv.stop_price[1, 0] == 96.0
