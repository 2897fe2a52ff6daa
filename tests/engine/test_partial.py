"""Partial closes in the signals path (``exit_size``): hand-computed cases and bad input."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest, backtest_callback
from nbtrade.kernels.callback import exit_long_nb

pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")

CLOSE = np.array([100.0, 100.0, 110.0, 120.0, 120.0, 130.0])
ENTRIES = np.array([1, 0, 0, 0, 0, 0], dtype=bool)
EXITS = np.array([0, 1, 0, 1, 0, 0], dtype=bool)


def _run(**kw):
    args = dict(entries=ENTRIES, exits=EXITS, size=1000.0, size_type="value", fill="close", fees=0.01)
    args.update(kw)
    return backtest(CLOSE, **args)


def test_half_then_half_of_the_rest():
    res = _run(exit_size=0.5)
    orders = res.orders
    assert orders["size"].tolist() == [10.0, 5.0, 2.5]
    assert orders["fees"].tolist() == [10.0, 5.0, 3.0]
    t = res.trades
    # each partial exit is a trade with its share of the entry fees; the rest keeps the entry price
    assert t["size"].tolist() == [5.0, 2.5, 2.5]
    assert t["entry_price"].tolist() == [100.0, 100.0, 100.0]
    assert t["exit_reason"].tolist() == ["signal", "signal", "end"]
    np.testing.assert_allclose(t["pnl"], [0 * 5 - 5 - 5, 20 * 2.5 - 2.5 - 3, 30 * 2.5 - 2.5])
    # cash: 10000 - 1000 - 10, + 500 - 5, + 300 - 3; equity adds 2.5 * close
    np.testing.assert_allclose(res.equity, [9990, 9985, 10035, 10082, 10082, 10107])
    assert res.positions.to_numpy().ravel().tolist() == [10, 5, 5, 2.5, 2.5, 2.5]
    # the trades' pnl add up to the equity change
    assert np.isclose(t["pnl"].sum(), res.equity.iloc[-1] - 10_000)


def test_per_bar_fractions_and_position_back_to_exactly_zero():
    sizes = np.array([1.0, 0.3, 1.0, 1.0, 1.0, 1.0])  # 30 % at bar 1, the rest at bar 3
    res = _run(exit_size=sizes, size=777.7)
    pos = res.positions.to_numpy().ravel()
    assert pos[3] == 0.0 and pos[-1] == 0.0
    assert res.trades["exit_reason"].tolist() == ["signal", "signal"]
    q = 777.7 / 100.0
    np.testing.assert_allclose(res.trades["size"], [q * 0.3, q - q * 0.3])


def test_lot_rounding_and_filters_reject_a_partial_exit():
    # 10 units, lot 4: half = 5 -> 4 lots... rounds to 4; a quarter (2.5) rounds to 0 lots: rejected
    res = _run(exit_size=0.25, lot_size=4.0, size=1200.0)  # 12 units
    o = res.orders
    assert o["size"].tolist()[:2] == [12.0, 0.0] and o["reason"].iloc[1] == "lot_size"
    res = _run(exit_size=0.5, min_qty=6.0)  # 5 < 6: rejected, position kept
    assert res.orders["reason"].tolist()[1:] == ["min_qty", "min_qty"]
    assert res.trades["exit_reason"].tolist() == ["end"]
    res = _run(exit_size=0.5, min_notional=550.0)
    assert res.orders["reason"].iloc[1] == "min_notional"


def test_rounding_to_the_whole_position_closes_it():
    res = _run(exit_size=0.9, lot_size=5.0)  # 9 units -> floor(9 / 5) * 5 = 5: partial
    assert res.orders["size"].tolist()[:2] == [10.0, 5.0]
    res = _run(exit_size=0.999, lot_size=0.5)  # 9.99 -> 9.5 of 10
    assert res.orders["size"].iloc[1] == 9.5
    res = _run(exit_size=0.99999999999)  # rounds (lot EPS) to all of it with a lot size
    assert res.positions.to_numpy().ravel()[1] > 0.0
    res = _run(exit_size=0.99999999999, lot_size=1.0)
    assert res.positions.to_numpy().ravel()[1] == 0.0


def test_reversal_and_stops_close_everything():
    se = np.array([0, 0, 1, 0, 0, 0], dtype=bool)
    res = backtest(CLOSE, entries=ENTRIES, exits=EXITS, short_entries=se, size=1000.0, size_type="value",
                   fill="close", exit_size=0.5)
    # bar 1 halves; bar 2 reverses: the whole rest closes, then a short opens
    assert res.orders["side"].tolist()[:4] == ["buy", "sell", "sell", "sell"]
    assert res.orders["size"].tolist()[1:3] == [5.0, 5.0]
    high = CLOSE * 1.001
    low = CLOSE * 0.999
    low[4] = 90.0
    data = {"open": CLOSE, "high": high, "low": low, "close": CLOSE}
    res = backtest(data, entries=ENTRIES, exits=EXITS, size=1000.0, size_type="value", fill="close",
                   exit_size=0.5, sl_stop=0.05)
    t = res.trades
    assert t["exit_reason"].tolist() == ["signal", "signal", "sl"]
    assert t["size"].tolist() == [5.0, 2.5, 2.5]


def test_per_symbol_exit_size():
    close = np.column_stack([CLOSE, CLOSE])
    e = np.column_stack([ENTRIES, ENTRIES])
    x = np.column_stack([EXITS, EXITS])
    res = backtest(pd.DataFrame(close, columns=["A", "B"]), entries=e, exits=x, size=1000.0, size_type="value",
                   fill="close", exit_size={"A": 0.5, "B": 1.0})
    t = res.trades
    assert t[t.symbol == "A"]["size"].tolist() == [5.0, 2.5, 2.5]
    assert t[t.symbol == "B"]["size"].tolist() == [10.0]
    assert res.assumptions["exit_size"] != "all"


@pytest.mark.parametrize("bad, match", [(0.0, "must be > 0"), (1.5, r"\(0, 1\]"), (-0.2, "must be > 0"),
                                        (np.full(6, 2.0)[:, None], r"\(0, 1\] at every exit")])
def test_bad_exit_size(bad, match):
    with pytest.raises(ValueError, match=match):
        _run(exit_size=bad)


def test_nan_exit_size_at_an_exit_is_an_error_elsewhere_means_all():
    sizes = np.full(6, np.nan)[:, None]
    with pytest.raises(ValueError, match="at every exit"):
        _run(exit_size=sizes)
    sizes[[1, 3]] = 0.5
    assert _run(exit_size=sizes).orders["size"].tolist() == [10.0, 5.0, 2.5]


def test_callback_refuses_exit_size():
    from numba import njit

    @njit
    def on_bar(ctx, i):
        exit_long_nb(ctx, i, 0)

    with pytest.raises(ValueError, match="exit_size is not supported by backtest_callback: close a part"):
        backtest_callback(CLOSE, on_bar, exit_size=0.5)


def test_callback_partial_closes_equal_the_signals_path():
    """reduce_long_nb / reduce_short_nb in on_bar = exit signals with per-bar exit_size, missing bars included."""
    from numba import njit

    from nbtrade.kernels.callback import enter_short_nb, exit_short_nb, reduce_long_nb, reduce_short_nb

    from .helpers import random_market, random_signals

    @njit
    def on_bar(ctx, i):
        le, lx, se, sx, frac = ctx.user
        for c in range(le.shape[1]):
            if le[i, c]:
                enter_long_nb(ctx, i, c)
            if se[i, c]:
                enter_short_nb(ctx, i, c)
            if lx[i, c]:
                if frac[i, c] < 1.0:
                    reduce_long_nb(ctx, i, c, frac[i, c])
                else:
                    exit_long_nb(ctx, i, c)
            if sx[i, c]:
                if frac[i, c] < 1.0:
                    reduce_short_nb(ctx, i, c, frac[i, c])
                else:
                    exit_short_nb(ctx, i, c)

    from nbtrade.kernels.callback import enter_long_nb  # noqa: F401 (used by on_bar)

    rng = np.random.default_rng(4)
    for k in range(6):
        o, h, l, c = random_market(rng, 40, 2, nan_prob=0.15)
        le, se = random_signals(rng, c, 0.2), random_signals(rng, c, 0.1)
        valid = ~np.isnan(c)
        lx, sx = (rng.random(c.shape) < 0.3) & valid, (rng.random(c.shape) < 0.2) & valid
        frac = np.where(rng.random(c.shape) < 0.3, 1.0, rng.uniform(0.1, 1.0, c.shape))
        data = {"open": o, "high": h, "low": l, "close": c}
        kw = dict(size=0.4, fees=0.001, lot_size=[0.0, 0.01][k % 2], init_cash=1000.0, on_gap="skip",
                  fill=["next_open", "close"][k % 2], sl_stop=0.05 if k % 3 == 0 else None)
        a = backtest(data, le, lx, se, sx, exit_size=frac, **kw)
        b = backtest_callback(data, on_bar, user=(le, lx, se, sx, frac), **kw)
        np.testing.assert_allclose(a.equity, b.equity, rtol=1e-12)
        assert a.order_records.tobytes() == b.order_records.tobytes()
        assert a.assumptions["delayed_signals"] == b.assumptions["delayed_signals"]


def test_reduce_helpers_refuse_bad_fractions():
    from numba import njit

    from nbtrade.kernels.callback import enter_long_nb, reduce_long_nb

    @njit
    def on_bar(ctx, i):
        if i == 0:
            enter_long_nb(ctx, i, 0)
        elif i == 1:
            reduce_long_nb(ctx, i, 0, 1.5)

    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        backtest_callback(CLOSE, on_bar)


def test_a_delayed_exit_keeps_its_own_fraction():
    # next-open fills: the exit at bar 1 is due at bar 2, which has no candle; it waits for bar 3's
    # open and closes the fraction given at bar 1 (a fraction only at the signal's bar is enough)
    close = np.array([100.0, 100.0, np.nan, 120.0, 120.0, 130.0])
    sizes = np.array([np.nan, 0.25, np.nan, np.nan, np.nan, np.nan])
    exits = np.array([0, 1, 0, 0, 0, 0], dtype=bool)
    res = backtest(close, entries=ENTRIES, exits=exits, exit_size=sizes, size=1000.0, size_type="value",
                   fill="next_open", on_gap="skip")
    assert res.assumptions["delayed_signals"] == 1
    o = res.orders
    assert o["size"].tolist() == [10.0, 2.5]
    assert o["price"].tolist() == [100.0, 120.0]
    assert o["time"].iloc[1] == res.equity.index[3]
