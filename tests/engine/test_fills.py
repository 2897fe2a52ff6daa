"""Hand-computed scenarios pinned to exact fill prices (one symbol unless stated)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


def bars(*ohlc):
    """DataFrame of candles from (open, high, low, close) tuples, hourly from 2024-01-01 UTC."""
    idx = pd.date_range("2024-01-01", periods=len(ohlc), freq="1h", tz="UTC")
    return pd.DataFrame(ohlc, columns=["open", "high", "low", "close"], index=idx, dtype=float)


def sig(n, *true_at):
    s = np.zeros(n, dtype=bool)
    s[list(true_at)] = True
    return s


FLAT = (100, 101, 99, 100)


def test_next_open_fill_and_fees_on_both_legs():
    df = bars(FLAT, (102, 104, 101, 103), (105, 106, 104, 105), (107, 108, 106, 107))
    res = backtest(df, entries=sig(4, 0), exits=sig(4, 2), size=2.0, size_type="amount",
                   fees=0.001, fixed_fees=1.0, init_cash=1000.0)
    o = res.orders
    assert list(o["side"]) == ["buy", "sell"] and list(o["status"]) == ["filled", "filled"]
    assert list(o["time"]) == [df.index[1], df.index[3]]
    assert o["price"].tolist() == [102.0, 107.0]
    np.testing.assert_allclose(o["fees"], [2 * 102 * 0.001 + 1, 2 * 107 * 0.001 + 1])
    t = res.trades.iloc[0]
    assert t["exit_reason"] == "signal" and t["direction"] == "long"
    pnl = 2 * (107 - 102) - (0.204 + 1) - (0.214 + 1)
    assert t["pnl"] == pytest.approx(pnl, rel=1e-12)
    assert t["return"] == pytest.approx(pnl / 204, rel=1e-12)
    cash1 = 1000 - 204 - 1.204
    np.testing.assert_allclose(res.cash, [1000, cash1, cash1, cash1 + 214 - 1.214])
    np.testing.assert_allclose(res.equity, [1000, cash1 + 2 * 103, cash1 + 2 * 105, 1000 + pnl])
    assert res.stats()["Fees Paid [$]"] == pytest.approx(2.418)


def test_fill_close_fills_at_the_signal_bar_close():
    df = bars(FLAT, (102, 104, 101, 103), (105, 106, 104, 105))
    res = backtest(df, entries=sig(3, 0), exits=sig(3, 1), size=1.0, size_type="amount", fill="close")
    assert res.orders["price"].tolist() == [100.0, 103.0]
    assert res.orders["time"].tolist() == [df.index[0], df.index[1]]
    assert res.trades["pnl"].iloc[0] == pytest.approx(3.0)


def test_signal_on_last_bar_does_not_trade_with_next_open():
    res = backtest(bars(FLAT, FLAT), entries=sig(2, 1), size=1.0, size_type="amount")
    assert len(res.orders) == 0


def test_stop_loss_checked_on_entry_bar_with_next_open_fills():
    # entry at bar 1's open (100): the whole of bar 1 follows the fill, its dip to 90 hits the stop at 95
    df = bars(FLAT, (100, 101, 90, 100), (99, 100, 94, 96), FLAT)
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", sl_stop=0.05)
    o = res.orders
    assert o["price"].tolist() == [100.0, 95.0]
    assert o["type"].tolist() == ["market", "stop_loss"]
    assert o["time"].iloc[1] == df.index[1]
    assert res.trades["exit_reason"].iloc[0] == "sl"
    assert res.trades["entry_time"].iloc[0] == res.trades["exit_time"].iloc[0] == df.index[1]


def test_stop_loss_not_on_entry_bar_with_close_fills():
    # entry at bar 0's close (100): bar 0's low is before the fill; bar 1 dips to 94 -> stop at 95
    df = bars((100, 101, 90, 100), (99, 100, 94, 96), FLAT)
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05, fill="close")
    assert res.orders["price"].tolist() == [100.0, 95.0]
    assert res.orders["time"].iloc[1] == df.index[1]


def test_entry_bar_sl_before_tp_pessimistic_and_trailing_peak():
    # next_open entry at 100 on bar 1, which spans 94..106: SL 95 and TP 105 both touched -> SL (pessimistic)
    df = bars(FLAT, (100, 106, 94, 100), FLAT)
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05, tp_stop=0.05)
    assert res.orders["price"].tolist() == [100.0, 95.0] and res.trades["exit_reason"].tolist() == ["sl"]
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05, tp_stop=0.05,
                   intrabar="optimistic")
    assert res.orders["price"].tolist() == [100.0, 105.0] and res.trades["exit_reason"].tolist() == ["tp"]
    # trailing 10 %: on the entry bar the peak is the entry price (level 90, low 95: no exit);
    # the entry bar's high 120 then moves the peak: bar 2's level is 108, its low 107 exits at 108
    df = bars(FLAT, (100, 120, 95, 118), (118, 119, 107, 110))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", trail_stop=0.1)
    assert res.orders["price"].tolist() == [100.0, pytest.approx(108.0)]
    assert res.orders["time"].iloc[1] == df.index[2] and res.trades["exit_reason"].iloc[0] == "trail"


def test_gap_through_stop_fills_at_open_with_slippage():
    df = bars(FLAT, (100, 101, 99, 100), (90, 92, 88, 91))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05, slippage=0.01)
    # entry at 100 * 1.01 = 101, stop level 101 * 0.95 = 95.95; bar 2 opens at 90 -> fills at 90 * 0.99
    np.testing.assert_allclose(res.orders["price"], [101.0, 89.1])


def test_gap_through_take_profit_fills_at_open():
    df = bars(FLAT, (100, 101, 99, 100), (120, 122, 118, 121))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", tp_stop=0.1)
    assert res.orders["price"].tolist() == [100.0, 120.0]
    assert res.trades["exit_reason"].iloc[0] == "tp"


@pytest.mark.parametrize("intrabar,price,reason", [("pessimistic", 95.0, "sl"), ("optimistic", 110.0, "tp")])
def test_sl_and_tp_in_one_bar(intrabar, price, reason):
    df = bars(FLAT, (100, 101, 99, 100), (100, 111, 94, 100))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05, tp_stop=0.1,
                   intrabar=intrabar)
    assert res.orders["price"].iloc[1] == pytest.approx(price)
    assert res.trades["exit_reason"].iloc[0] == reason


def test_stop_trigger_is_inclusive():
    df = bars(FLAT, (100, 101, 99, 100), (100, 101, 95, 100))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", sl_stop=0.05)
    assert res.orders["price"].tolist() == [100.0, 95.0]


def test_trailing_stop_uses_peak_before_current_bar():
    # bar 2: high 130 and low 115. Had bar 2's own high moved the level (to 117), the
    # low of 115 would trigger; the rule checks against the peak before bar 2 (100 -> 90).
    # bar 3: level 130 * 0.9 = 117, low 116 -> exit at 117.
    df = bars(FLAT, (100, 101, 99, 100), (120, 130, 115, 125), (125, 126, 116, 120))
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", trail_stop=0.1)
    o = res.orders
    assert o["price"].tolist() == [100.0, pytest.approx(117.0)]
    assert o["time"].iloc[1] == df.index[3] and o["type"].iloc[1] == "trailing_stop"


def test_short_stop_loss_and_take_profit():
    df = bars(FLAT, (100, 101, 99, 100), (100, 106, 99, 104), FLAT, (100, 101, 89, 95))
    res = backtest(df, short_entries=sig(5, 0, 2), size=1.0, size_type="amount", sl_stop=0.05, tp_stop=0.1)
    o = res.orders
    assert o["side"].tolist() == ["sell", "buy", "sell", "buy"]
    np.testing.assert_allclose(o["price"], [100, 105, 100, 90])
    assert res.trades["exit_reason"].tolist() == ["sl", "tp"]
    assert res.trades["pnl"].tolist() == pytest.approx([-5.0, 10.0])


def test_reversal_is_exit_then_entry_in_one_bar():
    df = bars(FLAT, (100, 101, 99, 100), (110, 111, 109, 110), (105, 106, 104, 105))
    res = backtest(df, entries=sig(4, 0), short_entries=sig(4, 1), size=1.0, size_type="amount",
                   fees=0.01)
    o = res.orders
    assert o["side"].tolist() == ["buy", "sell", "sell"]
    assert o["time"].tolist() == [df.index[1], df.index[2], df.index[2]]
    assert o["price"].tolist() == [100.0, 110.0, 110.0]
    t = res.trades
    assert t["direction"].tolist() == ["long", "short"]
    assert t["exit_reason"].tolist() == ["signal", "end"]
    # the open short is marked at the last close, no exit fee
    assert t["pnl"].iloc[1] == pytest.approx((110 - 105) - 1.1)
    assert res.positions.iloc[:, 0].tolist() == [0.0, 1.0, -1.0, -1.0]


def test_all_in_percent_with_lot_rounding():
    df = bars(FLAT, FLAT)
    res = backtest(df, entries=sig(2, 0), size=1.0, size_type="percent", fees=0.001, init_cash=1000.0,
                   lot_size=0.5)
    # 1000 / (100 * 1.001) = 9.99 units -> 9.5 lots of 0.5
    assert res.orders["size"].iloc[0] == 9.5
    assert res.cash.iloc[-1] == pytest.approx(1000 - 950 - 0.95)


def test_amount_lot_rounding_is_not_fooled_by_float_division():
    res = backtest(bars(FLAT, FLAT), entries=sig(2, 0), size=0.3, size_type="amount", lot_size=0.1)
    assert res.orders["size"].iloc[0] == pytest.approx(0.3)


def test_value_and_target_percent_sizing():
    df = bars(FLAT, (200, 201, 199, 200))
    res = backtest(df, entries=sig(2, 0), size=500.0, size_type="value", init_cash=1000.0)
    assert res.orders["size"].iloc[0] == 2.5
    res = backtest(df, entries=sig(2, 0), size=0.5, size_type="target_percent", fees=0.01, init_cash=1000.0)
    # position worth half the equity left after the fee: N = 0.5 * 1000 / (1 + 0.5 * 0.01)
    n = 500 / 1.005
    assert res.orders["size"].iloc[0] == pytest.approx(n / 200)
    assert res.equity.iloc[-1] == pytest.approx(1000 - 0.01 * n)


@pytest.mark.parametrize("kw,reason", [
    (dict(size=20.0, size_type="amount"), "insufficient_cash"),
    (dict(size=1.0, size_type="amount", lot_size=2.0), "lot_size"),
    (dict(size=1.0, size_type="amount", min_qty=2.0), "min_qty"),
    (dict(size=1.0, size_type="amount", min_notional=150.0), "min_notional"),
])
def test_rejection_reasons(kw, reason):
    res = backtest(bars(FLAT, FLAT), entries=sig(2, 0), init_cash=1000.0, **kw)
    o = res.orders.iloc[0]
    assert o["status"] == "rejected" and o["reason"] == reason and o["fees"] == 0.0
    assert len(res.trades) == 0 and res.equity.iloc[-1] == 1000.0


def test_insufficient_cash_with_fees_is_rejected_not_resized():
    # 10 units at 100 cost exactly the cash; the fee tips it over
    res = backtest(bars(FLAT, FLAT), entries=sig(2, 0), size=10.0, size_type="amount", fees=0.001,
                   init_cash=1000.0)
    assert res.orders["reason"].tolist() == ["insufficient_cash"]


def test_order_due_on_missing_bar_waits_for_the_next_candle():
    df = bars(FLAT, (np.nan,) * 4, (104, 105, 103, 104))
    with pytest.warns(UserWarning, match="gap"):
        res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount")
    o = res.orders.iloc[0]
    assert (o["status"], o["price"], o["time"]) == ("filled", 104.0, df.index[2])
    assert len(res.gaps) == 1 and res.gaps["bars"].iloc[0] == 1
    assert res.assumptions["delayed_signals"] == 1


def test_exit_over_missing_bar_fills_at_next_open_not_at_the_end():
    # close 100 101 102 103 nan 90 80 70; long from bar 1, exit signal at bar 3, bar 4 has no candle:
    # the sell waits and fills at bar 5's open (95), the trade does not run to the end at 70
    c = [100, 101, 102, 103, np.nan, 90, 80, 70]
    o = [100, 100, 101, 102, np.nan, 95, 90, 80]
    df = bars(*[(op, max(op, cl), min(op, cl), cl) for op, cl in zip(o, c)])
    res = backtest(df, entries=sig(8, 0), exits=sig(8, 3), size=1.0, size_type="amount", on_gap="skip")
    assert res.orders["status"].tolist() == ["filled", "filled"]
    assert res.orders["price"].tolist() == [100.0, 95.0]
    assert res.orders["time"].tolist() == [df.index[1], df.index[5]]
    t = res.trades.iloc[0]
    assert (t["exit_reason"], t["exit_time"], t["pnl"]) == ("signal", df.index[5], -5.0)
    assert res.assumptions["delayed_signals"] == 1
    np.testing.assert_allclose(res.equity, [10000, 10001, 10002, 10003, 10003, 9995, 9995, 9995])


def test_reversal_over_missing_bars_and_no_candle_before_the_end():
    # short entry (reversal) at bar 1, bars 2-3 missing: both legs at bar 4's open (110)
    df = bars(FLAT, FLAT, (np.nan,) * 4, (np.nan,) * 4, (110, 111, 109, 110), FLAT)
    res = backtest(df, entries=sig(6, 0), short_entries=sig(6, 1), size=1.0, size_type="amount", on_gap="skip")
    assert res.orders["side"].tolist() == ["buy", "sell", "sell"]
    assert res.orders["price"].tolist() == [100.0, 110.0, 110.0]
    assert res.orders["time"].tolist() == [df.index[1], df.index[4], df.index[4]]
    # the symbol is delisted after bar 1: the exit never finds a candle, rejected on the last bar
    df = bars(FLAT, FLAT, (np.nan,) * 4, (np.nan,) * 4)
    res = backtest(df, entries=sig(4, 0), exits=sig(4, 1), size=1.0, size_type="amount", on_gap="skip")
    o = res.orders.iloc[1]
    assert (o["status"], o["reason"], o["time"]) == ("rejected", "no_data", df.index[3])
    assert res.trades["exit_reason"].tolist() == ["end"]


def test_exits_on_bars_without_candle_are_ignored():
    # symbol 1 lists at bar 2; exits=~entries is True on its missing bars: ignored, no error
    idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    close = pd.DataFrame({"A": [100.0, 101, 102, 103], "B": [np.nan, np.nan, 50, 51]}, index=idx)
    entries = pd.DataFrame({"A": [True, False, False, False], "B": [False, False, True, False]}, index=idx)
    res = backtest(close, entries=entries, exits=~entries, size=100.0, size_type="value", on_gap="skip")
    assert res.orders["status"].eq("filled").all()
    assert len(res.orders) == 3  # A buys at bar 1 and sells at bar 2; B buys at bar 3


def test_stop_waits_over_missing_bar_then_fills_at_gap_open():
    df = bars(FLAT, (100, 101, 99, 100), (np.nan,) * 4, (93, 94, 92, 93))
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", sl_stop=0.05, on_gap="skip")
    assert res.orders["price"].tolist() == [100.0, 93.0]
    assert res.orders["time"].iloc[1] == df.index[3]
    # equity on the missing bar values the position at the last valid close
    assert res.equity.iloc[2] == pytest.approx(900 + 100 + 9000)


def test_leverage_allows_larger_position():
    res = backtest(bars(FLAT, FLAT), entries=sig(2, 0), size=1.0, size_type="percent", leverage=2.0,
                   init_cash=1000.0)
    assert res.orders["size"].iloc[0] == pytest.approx(20.0)
    assert res.cash.iloc[-1] == pytest.approx(-1000.0)


def test_multi_asset_shared_cash_in_column_order():
    a, b = bars(FLAT, FLAT, FLAT), bars(FLAT, FLAT, FLAT)
    entries = pd.DataFrame({"A": sig(3, 0), "B": sig(3, 0)}, index=a.index)
    res = backtest({"A": a, "B": b}, entries=entries, size=0.6, size_type="percent", init_cash=1000.0)
    # A takes 60 % of the free margin first; B then 60 % of what is left
    assert res.orders["symbol"].tolist() == ["A", "B"]
    np.testing.assert_allclose(res.orders["size"], [6.0, 2.4])
    s = res.stats("A")
    assert s["# Trades"] == 1


def test_stats_labels_and_values():
    df = bars(FLAT, (100, 111, 99, 110), (110, 111, 98, 99), (99, 121, 98, 121))
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="percent", init_cash=1000.0)
    s = res.stats()
    eq = np.array([1000, 1100, 990, 1210.0])
    rets = eq / np.concatenate(([1000], eq[:-1])) - 1
    bpy = 365 * 24
    assert s["Total Return [%]"] == pytest.approx(21.0)
    assert s["Max. Drawdown [%]"] == pytest.approx(-10.0)
    assert s["Sharpe Ratio"] == pytest.approx(rets.mean() / rets.std(ddof=1) * np.sqrt(bpy))
    assert s["Volatility (ann.) [%]"] == pytest.approx(rets.std(ddof=1) * np.sqrt(bpy) * 100)
    years = 4 / bpy
    assert s["CAGR [%]"] == pytest.approx((1.21 ** (1 / years) - 1) * 100)
    assert s["Max. Drawdown Duration"] == pd.Timedelta("2h")
    assert s["Exposure Time [%]"] == 75.0
    assert s["# Trades"] == 1 and np.isnan(s["Win Rate [%]"])  # the only trade is still open
    for label in ("Sortino Ratio", "Calmar Ratio", "Profit Factor", "Expectancy [$]", "Fees Paid [$]"):
        assert label in s.index


def test_isolated_accounts_each_trade_their_own_cash():
    a, b = bars(FLAT, FLAT, (110, 111, 109, 110)), bars(FLAT, FLAT, (90, 91, 89, 90))
    entries = pd.DataFrame({"A": sig(3, 0), "B": sig(3, 0)}, index=a.index)
    res = backtest({"A": a, "B": b}, entries=entries, size=1.0, init_cash=1000.0, cash_sharing=False)
    np.testing.assert_allclose(res.orders["size"], [10.0, 10.0])
    assert res.equity.iloc[0] == 2000.0 and res.equity.iloc[-1] == pytest.approx(2000.0)
    assert res.stats()["Total Return [%]"] == pytest.approx(0.0)
    assert res.stats("A")["Total Return [%]"] == pytest.approx(10.0)
    assert res.stats("B")["Total Return [%]"] == pytest.approx(-10.0)


def _px(n, **at):
    p = np.full(n, np.nan)
    for k, v in at.items():
        p[int(k[1:])] = v
    return p


@pytest.mark.parametrize("fill", ["next_open", "close"])
def test_limit_buy_rests_then_fills_at_limit_or_better_open(fill):
    df = bars(FLAT, (100, 101, 96, 100), (97, 98, 94, 96), (90, 91, 89, 90))
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(4, b0=95.0), fill=fill)
    o = res.orders
    assert (o["type"].iloc[0], o["status"].iloc[0], o["price"].iloc[0]) == ("limit", "filled", 95.0)
    assert o["time"].iloc[0] == df.index[2]
    gap = bars(FLAT, (93, 94, 92, 93), FLAT)
    res = backtest(gap, entries=sig(3, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(3, b0=95.0), fill=fill)
    assert res.orders["price"].iloc[0] == 93.0  # opened below the limit: filled at the open


def test_stop_buy_triggers_on_high_and_gaps_fill_at_open():
    df = bars(FLAT, (100, 104, 99, 103), (103, 107, 102, 106))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", order_type="stop",
                   order_price=_px(3, b0=105.0))
    assert res.orders["price"].tolist() == [105.0] and res.orders["time"].iloc[0] == df.index[2]
    gap = bars(FLAT, (108, 109, 107, 108))
    res = backtest(gap, entries=sig(2, 0), size=1.0, size_type="amount", order_type="stop",
                   order_price=_px(2, b0=105.0))
    assert res.orders["price"].tolist() == [108.0]


def test_short_limit_sells_on_the_way_up():
    df = bars(FLAT, (100, 106, 99, 104), FLAT)
    res = backtest(df, short_entries=sig(3, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(3, b0=105.0))
    assert res.orders[["side", "price"]].values.tolist() == [["sell", 105.0]]


def test_resting_order_expires_is_cancelled_or_left_open():
    df = bars(FLAT, FLAT, FLAT, FLAT)
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(4, b0=90.0), tif=2)
    o = res.orders
    assert o[["status", "price"]].values.tolist() == [["expired", 90.0]]
    assert o["time"].iloc[0] == df.index[3]  # eligible on bars 1 and 2 only
    res = backtest(df, entries=sig(4, 0), exits=sig(4, 1), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(4, b0=90.0))
    assert res.orders["status"].tolist() == ["cancelled"]
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(4, b0=90.0))
    assert res.orders["status"].tolist() == ["open"]


def test_order_price_validation():
    with pytest.raises(ValueError, match="needs order_price"):
        backtest(bars(FLAT, FLAT), entries=sig(2, 0), order_type="limit")
    with pytest.raises(ValueError, match="order_price must be finite and > 0 at every entry"):
        backtest(bars(FLAT, FLAT), entries=sig(2, 0), order_type="stop", order_price=_px(2, b1=3.0))
    with pytest.raises(ValueError, match="unknown order_type"):
        backtest(bars(FLAT, FLAT), entries=sig(2, 0), order_type="iceberg")
    with pytest.raises(ValueError, match="tif must be"):
        backtest(bars(FLAT, FLAT), entries=sig(2, 0), order_type="limit", order_price=_px(2, b0=1.0), tif=-1)


def test_absolute_stop_levels_replace_percent_stops():
    df = bars(FLAT, (100, 101, 99, 100), (99, 100, 97, 98), (98, 112, 97, 110))
    # sl_price 97 at the signal bar replaces sl_stop 1 % (which would have fired at 99 on bar 2)
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", sl_stop=0.01,
                   sl_price=_px(4, b0=97.0), tp_price=_px(4, b0=111.0))
    o = res.orders
    assert o["price"].tolist() == [100.0, 97.0] and o["type"].iloc[1] == "stop_loss"
    assert o["time"].iloc[1] == df.index[2]
    res = backtest(df, entries=sig(4, 0), size=1.0, size_type="amount", tp_price=_px(4, b0=111.0))
    assert res.orders["price"].tolist() == [100.0, 111.0] and res.trades["exit_reason"].iloc[0] == "tp"
    with pytest.raises(ValueError, match="sl_price must be > 0"):
        backtest(df, entries=sig(4, 0), sl_price=_px(4, b0=-1.0))


def test_stop_limit_buy():
    # armed intrabar at 105 with limit 106 >= stop: fills at the stop
    df = bars(FLAT, (101, 107, 100, 106), FLAT)
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", order_type="stop_limit",
                   order_price=_px(3, b0=105.0), limit_price=_px(3, b0=106.0))
    assert res.orders[["type", "price"]].values.tolist() == [["stop_limit", 105.0]]
    # limit 103 below the stop: armed in bar 1, not filled there (pessimistic), fills in bar 2 at 103
    df = bars(FLAT, (101, 107, 100, 106), (104, 105, 102, 104))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", order_type="stop_limit",
                   order_price=_px(3, b0=105.0), limit_price=_px(3, b0=103.0))
    assert res.orders[["price"]].values.ravel().tolist() == [103.0]
    assert res.orders["time"].iloc[0] == df.index[2]
    # gap above the stop and the limit: armed at the open, no fill while price stays above the limit
    df = bars(FLAT, (110, 112, 108, 111))
    res = backtest(df, entries=sig(2, 0), size=1.0, size_type="amount", order_type="stop_limit",
                   order_price=_px(2, b0=105.0), limit_price=_px(2, b0=106.0))
    assert res.orders["status"].tolist() == ["open"]
    with pytest.raises(ValueError, match="needs limit_price"):
        backtest(df, entries=sig(2, 0), order_type="stop_limit", order_price=_px(2, b0=105.0))
    with pytest.raises(ValueError, match="limit_price is only used"):
        backtest(df, entries=sig(2, 0), limit_price=_px(2, b0=105.0))


def test_maker_fees_apply_to_limit_entries_only():
    df = bars(FLAT, (100, 101, 94, 96), (97, 98, 96, 97))
    res = backtest(df, entries=sig(3, 0), exits=sig(3, 1), size=1.0, size_type="amount", order_type="limit",
                   order_price=_px(3, b0=95.0), fees=0.001, maker_fees=0.0002)
    o = res.orders
    assert o["price"].tolist() == [95.0, 97.0]
    np.testing.assert_allclose(o["fees"], [95 * 0.0002, 97 * 0.001])


def test_record_buffers_grow_for_state_like_signals(monkeypatch):
    """Signals True on every bar (a state, not an event) no longer reserve a record per True:
    the buffers start small and grow; results equal a run with ample room."""
    import nbtrade.backtesting as bt

    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 2)), axis=0))
    up = np.vstack([np.zeros((1, 2), bool), close[1:] > close[:-1]])
    kw = dict(entries=up, exits=~up, fees=0.001, sl_stop=0.01, size=0.4)
    big = backtest(close, **kw)
    monkeypatch.setattr(bt, "_SIGNAL_BUFFER", 4)
    small = backtest(close, **kw)
    assert len(small.order_records) > 100
    assert small.order_records.tobytes() == big.order_records.tobytes()
    assert small.trade_records.tobytes() == big.trade_records.tobytes()
    np.testing.assert_array_equal(small.equity.to_numpy(), big.equity.to_numpy())


def test_range_slippage_uses_the_last_complete_bar():
    df = bars((100, 104, 98, 100), (100, 101, 99, 100), (100, 110, 90, 100))
    # next_open: the entry at bar 1's open pays 10 % of bar 0's range (6); the exit at bar 2's
    # open pays 10 % of bar 1's range (2)
    res = backtest(df, entries=sig(3, 0), exits=sig(3, 1), size=1.0, size_type="amount", slippage_range=0.1)
    np.testing.assert_allclose(res.orders["price"], [100.6, 99.8])
    # close: fills at a bar's close pay that bar's own range
    res = backtest(df, entries=sig(3, 0), exits=sig(3, 2), size=1.0, size_type="amount", slippage_range=0.1,
                   fill="close")
    np.testing.assert_allclose(res.orders["price"], [100.6, 98.0])


def test_cash_groups_share_cash_within_a_group_only():
    d = {s: bars(FLAT, FLAT, FLAT) for s in ("A", "B", "C")}
    entries = pd.DataFrame(True, index=d["A"].index, columns=list(d)).iloc[:, :] & np.array([True, False, False])[:, None]
    res = backtest(d, entries=entries, size=0.5, init_cash=1000.0, cash_sharing={"A": "x", "B": "x", "C": "y"})
    # A then B split account x (500 then 250 of cash), C has account y to itself (500)
    np.testing.assert_allclose(res.orders["size"], [5.0, 2.5, 5.0])
    assert res.equity.iloc[0] == 2000.0 and res.init_cash == 2000.0
    with pytest.raises(ValueError, match="group to every symbol"):
        backtest(d, cash_sharing={"A": 1})
    with pytest.raises(ValueError, match="2 group labels for 3 symbols"):
        backtest(d, cash_sharing=[0, 1])


def test_rejected_orders_are_counted_and_warned_about_once():
    # two symbols share 1000 of cash; size=1.0 'percent' spends it all on A, B's entry is rejected
    idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    close = pd.DataFrame({"A": [100.0, 100, 100], "B": [50.0, 50, 50]}, index=idx)
    entries = pd.DataFrame(True, index=idx, columns=["A", "B"])
    entries.iloc[1:] = False
    with pytest.warns(UserWarning, match=r"1 of 2 orders rejected \(insufficient_cash: 1\).*size=1/n_symbols") as rec:
        res = backtest(close, entries=entries, size=1.0, init_cash=1000.0)
    assert sum("rejected" in str(w.message) for w in rec) == 1
    assert res.stats()["# Rejected Orders"] == 1
    assert res.stats("A")["# Rejected Orders"] == 0 and res.stats("B")["# Rejected Orders"] == 1
    assert res.orders["status"].tolist() == ["filled", "rejected"]
    # none rejected: no warning, count 0
    import warnings as _w
    with _w.catch_warnings():
        _w.simplefilter("error")
        res = backtest(close, entries=entries, size=0.4, init_cash=1000.0)
    assert res.stats()["# Rejected Orders"] == 0
    # nor with the default size (1 / symbols sharing the cash): each entry finds free cash
    with _w.catch_warnings():
        _w.simplefilter("error")
        res = backtest(close, entries=entries, init_cash=1000.0)
    assert res.stats()["# Rejected Orders"] == 0 and res.assumptions["size"] == 0.5


def test_resting_entry_is_placed_over_a_missing_bar():
    # limit buy at 97 signalled at bar 0; bar 1 has no candle; bar 2 dips to 96 -> fills at 97
    df = bars(FLAT, (np.nan,) * 4, (99, 100, 96, 98))
    res = backtest(df, entries=sig(3, 0), size=1.0, size_type="amount", order_type="limit",
                   order_price=np.full(3, 97.0), on_gap="skip")
    o = res.orders.iloc[0]
    assert (o["status"], o["price"], o["time"], o["type"]) == ("filled", 97.0, df.index[2], "limit")
