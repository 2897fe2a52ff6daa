"""Event-callback path: an @njit on_bar(ctx, i) strategy equals the same strategy as precomputed signals."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numba import njit

from nbtrade.backtesting import backtest, backtest_callback
from nbtrade.kernels.callback import enter_long_nb, enter_short_nb, exit_long_nb, exit_short_nb
from nbtrade.synthetic import market

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


@njit
def crossover(ctx, i):
    fast, slow = ctx.user
    for c in range(ctx.close.shape[1]):
        if i == 0 or fast[i - 1, c] != fast[i - 1, c]:
            continue
        up = fast[i, c] > slow[i, c] and fast[i - 1, c] <= slow[i - 1, c]
        down = fast[i, c] < slow[i, c] and fast[i - 1, c] >= slow[i - 1, c]
        if up:
            enter_long_nb(ctx, i, c)
        elif down:
            exit_long_nb(ctx, i, c)
            enter_short_nb(ctx, i, c)


@pytest.fixture(scope="module")
def case():
    d = market(["A", "B", "C"], "2024-01-01", "2024-01-15", "1h", seed=5)
    close = pd.DataFrame({k: v["close"] for k, v in d.items()})
    fast, slow = close.rolling(5).mean(), close.rolling(20).mean()
    return d, fast, slow


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_callback_equals_precomputed_signals(case, fill):
    d, fast, slow = case
    kw = dict(fees=0.001, sl_stop=0.02, tp_stop=0.04, size=0.3, fill=fill)
    res = backtest_callback(d, crossover, user=(fast.to_numpy(), slow.to_numpy()), **kw)
    sig = res.signals
    ref = backtest(d, entries=sig["entries"], exits=sig["exits"], short_entries=sig["short_entries"],
                   short_exits=sig["short_exits"], **kw)
    assert len(res.trade_records) > 10
    assert res.order_records.tobytes() == ref.order_records.tobytes()
    np.testing.assert_array_equal(res.equity.to_numpy(), ref.equity.to_numpy())
    up = (fast > slow) & (fast.shift() <= slow.shift())
    assert sig["entries"].equals(up.fillna(False).astype(bool))


@njit
def reads_state(ctx, i):
    # buys when flat and cash allows, exits two bars after entry: state-dependent logic
    counter = ctx.user[0]
    for c in range(ctx.close.shape[1]):
        if ctx.position[c] == 0.0 and ctx.cash[0] > 100.0:
            enter_long_nb(ctx, i, c)
            counter[c] = 0
        elif ctx.position[c] > 0.0:
            counter[c] += 1
            if counter[c] >= 2:
                exit_long_nb(ctx, i, c)


def test_callback_reads_live_state_and_grows_buffers(case, monkeypatch):
    import nbtrade.backtesting as bt

    d, _, _ = case
    big = backtest_callback(d, reads_state, user=(np.zeros(3),), size=0.2, fees=0.001)
    monkeypatch.setattr(bt, "_CALLBACK_BUFFER", 8)
    small = backtest_callback(d, reads_state, user=(np.zeros(3),), size=0.2, fees=0.001)
    assert len(small.order_records) > 100  # far beyond the first buffer: grown several times
    assert small.order_records.tobytes() == big.order_records.tobytes()
    assert small.trade_records.tobytes() == big.trade_records.tobytes()
    pos = small.positions.to_numpy()
    assert pos.max() > 0 and (pos >= 0).all()


def test_callback_bad_arguments(case):
    d, _, _ = case
    with pytest.raises(TypeError, match="takes no entries"):
        backtest_callback(d, crossover, entries=np.zeros(3))
    with pytest.raises(TypeError, match="user must be a tuple"):
        backtest_callback(d, crossover, user=[1])
    with pytest.raises(TypeError, match="on_bar must be"):
        backtest_callback(d, 3)


@njit
def enter0_exit3(ctx, i):
    if i == 0:
        enter_long_nb(ctx, i, 0)
    elif i == 3:
        exit_long_nb(ctx, i, 0)


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_callback_exit_over_missing_bar_waits_for_the_next_candle(fill):
    # close 100 101 102 103 nan 90 80 70 (open 95 at bar 5): the exit of bar 3 is due on bar 4 (no candle)
    # with next_open fills: it fills at bar 5's open, never left to run to the end
    c = [100, 101, 102, 103, np.nan, 90, 80, 70]
    o = [100, 100, 101, 102, np.nan, 95, 90, 80]
    idx = pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC")
    df = pd.DataFrame({"open": o, "high": np.fmax(o, c), "low": np.fmin(o, c), "close": c}, index=idx)
    res = backtest_callback(df, enter0_exit3, size=1.0, size_type="amount", fill=fill, on_gap="skip")
    assert res.orders["status"].tolist() == ["filled", "filled"]
    if fill == "next_open":
        assert res.orders["price"].tolist() == [100.0, 95.0]
        assert res.orders["time"].tolist() == [idx[1], idx[5]]
    else:
        assert res.orders["price"].tolist() == [100.0, 103.0]
    assert res.trades["exit_reason"].tolist() == ["signal"]
    assert res.assumptions["delayed_signals"] == (1 if fill == "next_open" else 0)


@njit
def exit_on_missing_bar(ctx, i):
    if i == 0:
        enter_long_nb(ctx, i, 0)
    elif i == 4:  # bar 4 has no candle
        exit_long_nb(ctx, i, 0)


def test_callback_close_fill_on_missing_bar_waits_for_the_next_close():
    c = [100, 101, 102, 103, np.nan, 90, 80, 70]
    idx = pd.date_range("2024-01-01", periods=8, freq="1h", tz="UTC")
    res = backtest_callback(pd.Series(c, index=idx), exit_on_missing_bar, size=1.0, size_type="amount",
                            fill="close", on_gap="skip")
    assert res.orders["price"].tolist() == [100.0, 90.0]
    assert res.orders["time"].tolist() == [idx[0], idx[5]]
    assert res.assumptions["delayed_signals"] == 1


@njit
def from_arrays(ctx, i):
    # replays precomputed signals (ctx.user) bar by bar
    ent, ex, sent, sex = ctx.user
    for c in range(ctx.close.shape[1]):
        if ent[i, c]:
            enter_long_nb(ctx, i, c)
        if ex[i, c]:
            exit_long_nb(ctx, i, c)
        if sent[i, c]:
            enter_short_nb(ctx, i, c)
        if sex[i, c]:
            exit_short_nb(ctx, i, c)


def test_callback_counts_delayed_signals_like_the_signals_path():
    from .helpers import random_market, random_signals

    rng = np.random.default_rng(3)
    total = 0
    for _ in range(6):
        o, h, l, c = random_market(rng, 60, 3, nan_prob=0.25)
        sigs = [random_signals(rng, c, 0.15) for _ in range(4)]
        d = {"open": o, "high": h, "low": l, "close": c}
        kw = dict(size=0.3, fees=0.001, on_gap="skip")
        res = backtest_callback(d, from_arrays, user=tuple(sigs), **kw)
        ref = backtest(d, *sigs, **kw)
        assert res.order_records.tobytes() == ref.order_records.tobytes()
        assert res.assumptions["delayed_signals"] == ref.assumptions["delayed_signals"]
        total += ref.assumptions["delayed_signals"]
    assert total > 10
