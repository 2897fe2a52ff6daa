"""Bad input gets a clear error naming the argument; accepted input forms agree."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbtrade.backtesting import backtest
from nbtrade.synthetic import market

# rejections are expected in these cases; the warning itself is tested in test_fills
pytestmark = pytest.mark.filterwarnings("ignore::nbtrade.backtesting.RejectedOrdersWarning")


@pytest.fixture
def df():
    return market("BTC/USDT", "2024-01-01", "2024-01-02", "1h", seed=3)


@pytest.fixture
def entries(df):
    return pd.Series(np.arange(len(df)) % 5 == 0, index=df.index)


def test_signal_shape_mismatch(df):
    with pytest.raises(ValueError, match="entries has shape"):
        backtest(df, entries=np.zeros(len(df) - 1, dtype=bool))


def test_signal_index_mismatch(df, entries):
    with pytest.raises(ValueError, match="exits index is not aligned"):
        backtest(df, entries=entries, exits=entries.shift(1, freq="1h"))


def test_signal_columns_mismatch():
    d = market(["A", "B"], "2024-01-01", "2024-01-02", "1h")
    sig = pd.DataFrame(False, index=d["A"].index, columns=["A", "C"])
    with pytest.raises(ValueError, match="entries columns"):
        backtest(d, entries=sig)


def test_signal_dtype(df):
    with pytest.raises(TypeError, match="entries must be boolean"):
        backtest(df, entries=np.full(len(df), 0.5))
    with pytest.raises(ValueError, match="short_entries contains NaN"):
        backtest(df, short_entries=pd.Series(np.nan, index=df.index))


def test_signal_on_missing_bar_is_an_error(df, entries):
    bad = df.copy()
    bad.iloc[5] = np.nan
    with pytest.raises(ValueError, match=r"entries is True on a bar with no candle .* \(asset\).*close.notna\(\)"):
        backtest(bad, entries=entries, on_gap="skip")
    # exits there are ignored
    backtest(bad, entries=entries & bad["close"].notna().to_numpy(), exits=entries, on_gap="skip")


@pytest.mark.parametrize("value", [0.0, -1.0])
def test_non_positive_prices(df, value):
    bad = df.copy()
    bad.iloc[3, bad.columns.get_loc("low")] = value
    with pytest.raises(ValueError, match="low prices must be > 0"):
        backtest(bad)


def test_inconsistent_candle(df):
    bad = df.copy()
    bad.iloc[3, bad.columns.get_loc("high")] = bad["low"].iloc[3] * 0.5
    with pytest.raises(ValueError, match="inconsistent candle"):
        backtest(bad)


def test_unsorted_and_duplicate_timestamps(df):
    with pytest.raises(ValueError, match="not sorted"):
        backtest(df.iloc[::-1])
    with pytest.raises(ValueError, match="duplicate timestamps"):
        backtest(pd.concat([df.iloc[:3], df.iloc[2:]]))
    with pytest.raises(ValueError, match=r"data\['B'\] has duplicate"):
        backtest({"A": df, "B": pd.concat([df.iloc[:3], df.iloc[2:]])})


@pytest.mark.parametrize("kw,match", [
    (dict(fees=-0.001), "fees must be >= 0"),
    (dict(fixed_fees=-1), "fixed_fees must be >= 0"),
    (dict(slippage=-0.01), "slippage must be >= 0"),
    (dict(slippage=1.0), "slippage must be < 1"),
    (dict(sl_stop=0.0), "sl_stop must be > 0"),
    (dict(tp_stop=-0.1), "tp_stop must be > 0"),
    (dict(trail_stop=0), "trail_stop must be > 0"),
    (dict(size=0.0), "size must be > 0"),
    (dict(size=1.5), "size must be <= 1 with size_type='percent'"),
    (dict(size=1.5, size_type="target_percent"), r"size must be <= leverage \(1.0\) with size_type='target_percent'"),
    (dict(size=2.5, size_type="target_percent", leverage=2.0), "size must be <= leverage"),
    (dict(sl_stop=1.0), "sl_stop must be < 1 for long positions"),
    (dict(size=np.nan), "size must be finite"),
    (dict(lot_size=-1.0), "lot_size must be >= 0"),
    (dict(min_notional=-5.0), "min_notional must be >= 0"),
    (dict(init_cash=0.0), "init_cash must be"),
    (dict(leverage=-2.0), "leverage must be"),
    (dict(size_type="shares"), "unknown size_type 'shares'"),
    (dict(fill="open"), "unknown fill 'open'"),
    (dict(intrabar="random"), "unknown intrabar"),
    (dict(on_gap="ignore"), "unknown on_gap"),
    (dict(freq="fortnightly"), "freq"),
    (dict(fees={"ETH/USDT": 0.001}), "fees names unknown symbols"),
    (dict(fees=[0.001, 0.002]), "fees must be a scalar or have one value per symbol"),
])
def test_bad_parameters(df, entries, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        backtest(df, entries=entries, **kw)


def test_bad_data_types():
    with pytest.raises(TypeError, match="data must be"):
        backtest("BTC/USDT")
    with pytest.raises(TypeError, match=r"data\['A'\] must be a DataFrame"):
        backtest({"A": [1, 2, 3]})
    with pytest.raises(ValueError, match="lacks"):
        backtest(pd.DataFrame({"close": [1.0, 2.0], "open": [1.0, 2.0]}, index=pd.RangeIndex(2)).assign(x=1.0)
                 .rename(columns={"x": "vol"}).drop(columns="open").assign(high=2.0))
    with pytest.raises(ValueError, match=r"data\['high'\] has shape"):
        backtest({"open": np.ones(3), "high": np.ones(4), "low": np.ones(3), "close": np.ones(3)})


def test_gaps_error_warn_skip(df, entries):
    holed = df.drop(df.index[5:8])
    with pytest.raises(ValueError, match="gap"):
        backtest(holed, on_gap="error")
    with pytest.warns(UserWarning, match="1 gap"):
        res = backtest(holed)
    assert res.gaps[["kind", "bars"]].values.tolist() == [["missing_time", 3]]
    assert res.gaps["start"].iloc[0] == df.index[5] and res.gaps["end"].iloc[0] == df.index[7]
    res = backtest(holed, on_gap="skip")
    assert res.assumptions["gaps"] == 1


def test_symbols_listed_later_are_not_gaps():
    a = market("A", "2024-01-01", "2024-01-03", "1h")
    b = market("B", "2024-01-02", "2024-01-03", "1h")
    res = backtest({"A": a, "B": b}, on_gap="error")
    assert len(res.gaps) == 0 and res.positions.shape == (48, 2)


def test_input_forms_agree(df, entries):
    exits = entries.shift(2, fill_value=False)
    ref = backtest(df, entries=entries, exits=exits, fees=0.001)
    as_dict = backtest({"BTC": df}, entries=entries.to_frame("BTC"), exits=exits.to_frame("BTC"), fees=0.001)
    fields = {f: df[f].to_numpy() for f in ("open", "high", "low", "close")}
    as_arrays = backtest(fields, entries=entries.to_numpy(), exits=exits.to_numpy(), fees=0.001, freq="1h")
    panel = pd.concat({"BTC": df}, axis=1)
    as_panel = backtest(panel, entries=entries.to_numpy(), exits=exits.to_numpy(), fees=0.001)
    for other in (as_dict, as_arrays, as_panel):
        np.testing.assert_array_equal(ref.equity.to_numpy(), other.equity.to_numpy())
    assert as_arrays.stats()["Sharpe Ratio"] == pytest.approx(ref.stats()["Sharpe Ratio"])


def test_close_only_input_fills_at_next_close(df, entries):
    res = backtest(df["close"], entries=entries, size=1.0, size_type="amount")
    first = res.orders.iloc[0]
    assert first["price"] == df["close"].iloc[1]


def test_stats_unknown_symbol(df):
    with pytest.raises(KeyError, match="unknown symbol"):
        backtest(df).stats("ETH")


def test_package_attribute_is_the_function(df, entries):
    import nbtrade
    import nbtrade.backtesting  # importing the module must not shadow the function

    res = nbtrade.backtest(df, entries=entries)
    assert res.equity.iloc[-1] == backtest(df, entries=entries).equity.iloc[-1]


def test_sizes_at_the_limits_and_short_sl_above_one_are_accepted(df, entries):
    backtest(df, entries=entries, size=1.0)
    backtest(df, entries=entries, size=1.5, size_type="target_percent", leverage=2.0)
    backtest(df, entries=entries, size=5.0, size_type="amount")
    # a short's stop at entry * (1 + 1.5) is reachable: allowed when short signals are given
    res = backtest(df, short_entries=entries, sl_stop=1.5)
    assert res.assumptions["size_type"] == "percent"


def test_large_inputs_are_checked_in_parallel_blocks_with_the_same_answers():
    from nbtrade.backtesting import _PARALLEL_CHECK, _check_prices
    from nbtrade.kernels.checks import check_close_nb, check_ohlc_nb

    rng = np.random.default_rng(1)
    n, m = _PARALLEL_CHECK // 50 + 7, 50
    c = 100 + rng.random((n, m))
    c[rng.random((n, m)) < 0.01] = np.nan
    o, h, l = c.copy(), c * 1.01, c * 0.99
    h[5, 3] = np.nan  # a partial candle
    assert _check_prices(c, c, c, c) == tuple(check_close_nb(c))
    assert _check_prices(o, h, l, c) == tuple(check_ohlc_nb(o, h, l, c))
    for t, j in ((n - 3, 7), (n // 2, 0), (3, 49)):  # the first problem in time order wins
        bad = c.copy()
        bad[t, j] = -1.0
        bad[n - 2, 1] = np.inf
        assert _check_prices(bad, bad, bad, bad)[:4] == tuple(check_close_nb(bad))[:4]
        hi = h.copy()
        hi[t, j] = 50.0
        assert _check_prices(o, hi, l, c)[:4] == tuple(check_ohlc_nb(o, hi, l, c))[:4]
    with pytest.raises(ValueError, match="must be > 0"):
        backtest(np.where(np.arange(n)[:, None] == n - 5, -1.0, c))


def _first_problem(o, h, l, c):
    """Plain-Python oracle of the price scan: (code, bar, column, field) of the first problem."""
    for i in range(c.shape[0]):
        for j in range(c.shape[1]):
            v = (o[i, j], h[i, j], l[i, j], c[i, j])
            if any(x != x for x in v):
                continue
            if not all(abs(x) < np.inf for x in v):
                return (1, i, j, 0)
            if any(x <= 0 for x in v):
                return (2, i, j, next(f for f, x in enumerate(v) if x <= 0))
            if v[1] < v[2] or v[0] > v[1] or v[0] < v[2] or v[3] > v[1] or v[3] < v[2]:
                return (3, i, j, 0)
    return (0, -1, -1, 0)


def test_block_scans_find_the_first_problem_in_time_order():
    # the scans run branch-free over blocks of ROWS bars and rescan a block with a problem
    from nbtrade.kernels.checks import check_close_nb, check_ohlc_nb

    rng = np.random.default_rng(7)
    for trial in range(60):
        n, m = int(rng.integers(1, 200)), int(rng.integers(1, 6))
        c = 100 + rng.random((n, m))
        o, h, l = c * 0.999, c * 1.01, c * 0.99
        arrays = [o, h, l, c]
        for _ in range(int(rng.integers(0, 4))):
            a = arrays[int(rng.integers(0, 4))]
            a[rng.integers(0, n), rng.integers(0, m)] = rng.choice([np.nan, np.inf, -np.inf, -1.0, 0.0, 150.0, 50.0])
        c[rng.random((n, m)) < 0.05] = np.nan
        code = tuple(check_ohlc_nb(o, h, l, c))
        assert code[:4] == _first_problem(o, h, l, c), trial
        if code[0] == 0:
            nans = np.isnan(o).astype(int) + np.isnan(h) + np.isnan(l) + np.isnan(c)
            assert code[4:] == ((nans > 0).sum(), ((nans > 0) & (nans < 4)).sum())
        close = tuple(check_close_nb(c))
        first = next(((1 if x == np.inf else 2, i, j, 3) for (i, j), x in np.ndenumerate(c)
                      if x == x and not 0 < x < np.inf), (0, -1, -1, 0))  # -inf counts as <= 0 here
        assert close[:4] == first
        if close[0] == 0:
            assert close[4] == np.isnan(c).sum()


def test_float_inputs_refuse_booleans_and_text(df):
    from nbtrade.backtesting import backtest_weights

    with pytest.raises(TypeError, match="weights must be numeric"):
        backtest_weights(df, pd.DataFrame(True, index=df.index, columns=["asset"]))
    with pytest.raises(TypeError, match="order_price must be numeric"):
        backtest(df, entries=np.ones(len(df), dtype=bool), order_type="limit",
                 order_price=np.array(["x"] * len(df)))


# ------------------------------------------------------------------ label alignment (one rule for every input)

@pytest.fixture
def two():
    d = market(["A", "B"], "2024-01-01", "2024-01-04", "1h", seed=4)
    close = pd.DataFrame({s: f.close for s, f in d.items()})
    fast, slow = close.rolling(4).mean(), close.rolling(12).mean()
    return d, fast > slow, fast < slow


def test_columns_match_by_symbol_in_any_order(two):
    d, entries, exits = two
    ref = backtest(d, entries=entries, exits=exits, size=0.4, fees=0.001)
    res = backtest(d, entries=entries[["B", "A"]], exits=exits[["B", "A"]], size=0.4, fees=0.001)
    pd.testing.assert_series_equal(ref.equity, res.equity)


def test_a_subset_of_symbols_gets_signals_the_others_none(two):
    d, entries, exits = two
    none = entries.assign(B=False), exits.assign(B=False)
    ref = backtest(d, entries=none[0], exits=none[1], size=0.4)
    res = backtest(d, entries=entries[["A"]], exits=exits[["A"]], size=0.4)
    pd.testing.assert_series_equal(ref.equity, res.equity)
    assert set(res.orders["symbol"]) == {"A"}


def test_unknown_symbol_is_named_also_with_one_symbol(two):
    d, entries, exits = two
    with pytest.raises(ValueError, match=r"entries columns .* not in the data: \['ETH'\]"):
        backtest(d, entries=entries.rename(columns={"B": "ETH"}))
    one = {"BTC": d["A"]}
    with pytest.raises(ValueError, match=r"entries columns \['ETH'\] name symbol\(s\) not in the data: \['ETH'\]"):
        backtest(one, entries=entries[["A"]].rename(columns={"A": "ETH"}))
    with pytest.raises(ValueError, match=r"exits is a Series \(named 'ETH'\) but the data has 2 symbols"):
        backtest(d, exits=exits["A"].rename("ETH"))
    res = backtest(d, entries=entries["B"], exits=exits["B"], size=0.4)  # a Series named after a symbol
    assert set(res.orders["symbol"]) == {"B"}


def test_timestamps_match_as_instants_whatever_the_zone_or_resolution(two):
    d, entries, exits = two
    ref = backtest(d, entries=entries, exits=exits, size=0.4)
    for idx in (entries.index.tz_convert("Asia/Tokyo"), entries.index.tz_localize(None),
                entries.index.as_unit("ms"), entries.index.as_unit("s").tz_convert("America/New_York")):
        res = backtest(d, entries=entries.set_axis(idx), exits=exits.set_axis(idx), size=0.4)
        pd.testing.assert_series_equal(ref.equity, res.equity)
    naive = {s: f.tz_localize(None) for s, f in d.items()}  # naive data = UTC, aware signals
    pd.testing.assert_series_equal(ref.equity, backtest(naive, entries=entries, exits=exits, size=0.4).equity)
    mixed = {"A": d["A"].tz_localize(None), "B": d["B"].tz_convert("Europe/Paris")}
    pd.testing.assert_series_equal(ref.equity, backtest(mixed, entries=entries, exits=exits, size=0.4).equity)


def test_rows_in_another_order_are_matched_by_time(two):
    d, entries, exits = two
    ref = backtest(d, entries=entries, exits=exits, size=0.4)
    res = backtest(d, entries=entries.iloc[::-1], exits=exits.iloc[::-1], size=0.4)
    pd.testing.assert_series_equal(ref.equity, res.equity)


def test_signal_timestamps_not_in_the_data_are_named(two):
    d, entries, exits = two
    late = entries.set_axis(entries.index + pd.Timedelta("30min"))
    with pytest.raises(ValueError, match=r"entries index is not aligned .* first 2024-01-01 00:30:00\+00:00"):
        backtest(d, entries=late)
    with pytest.raises(ValueError, match=r"exits index is not aligned .* lacks 5 of the data's bars, first 2024-01-01"):
        backtest(d, exits=exits.iloc[5:])


@pytest.mark.parametrize("values", [[-1, 0, 1], [0.0, 0.5, 1.0]])
def test_non_boolean_signals_say_how_to_make_entries_and_exits(two, values):
    d, entries, _ = two
    sig = pd.DataFrame(np.resize(values, entries.shape).reshape(entries.shape), index=entries.index,
                       columns=entries.columns)
    with pytest.raises(TypeError, match=r"entries must be boolean.*entries = sig == 1, exits = sig != 1"):
        backtest(d, entries=sig)
    with pytest.raises(TypeError, match=r"short_entries must be boolean.*sig == -1"):
        backtest(d, short_entries=sig.to_numpy())


def test_weights_sizes_and_prices_align_by_label(two):
    from nbtrade.backtesting import backtest_weights

    d, entries, exits = two
    w = pd.DataFrame({"A": 0.3, "B": 0.5}, index=entries.index)
    ref = backtest_weights(d, w, rebalance_every=12)
    res = backtest_weights(d, w[["B", "A"]].tz_convert("Asia/Tokyo"), rebalance_every=12)
    pd.testing.assert_series_equal(ref.equity, res.equity)
    close = pd.DataFrame({s: f.close for s, f in d.items()})
    kw = dict(entries=entries, exits=exits, size=0.4)
    a = backtest(d, sl_price=close * 0.97, exit_size=pd.DataFrame(0.5, index=close.index, columns=["A", "B"]), **kw)
    b = backtest(d, sl_price=(close * 0.97)[["B", "A"]],
                 exit_size=pd.DataFrame(0.5, index=close.index, columns=["B", "A"]), **kw)
    pd.testing.assert_series_equal(a.equity, b.equity)
    only_a = backtest(d, sl_price=(close * 0.97)[["A"]], **kw)  # B: no absolute stop
    no_b = backtest(d, sl_price=(close * 0.97).assign(B=np.nan), **kw)
    pd.testing.assert_series_equal(only_a.equity, no_b.equity)
    with pytest.raises(ValueError, match=r"sl_price columns .* not in the data: \['C'\]"):
        backtest(d, sl_price=(close * 0.97).rename(columns={"B": "C"}), **kw)


def test_fill_close_runs_read_only_the_close(two):
    """A close-fill market-order run without stops converts (and checks) the closes alone, with the
    same result as the full OHLC run."""
    from nbtrade.panel import Market

    d, entries, exits = two
    m = Market(d)
    res = backtest(m, entries=entries, exits=exits, size=0.4, fill="close", fees=0.001)
    assert set(m._arrays) == {"close"}
    full = Market(d).validate()
    pd.testing.assert_series_equal(res.equity, backtest(full, entries=entries, exits=exits, size=0.4,
                                                        fill="close", fees=0.001).equity)


def test_backtest_class_refuses_at_construction_what_run_would_refuse(df):
    from nbtrade.strategy import Backtest, Strategy

    class Noop(Strategy):
        def init(self):
            pass

        def next(self):
            pass

    for kw, match in ((dict(sl_price=df["close"] * 0.9), "does not take sl_price"),
                      (dict(exit_size=0.5), "does not take exit_size"),
                      (dict(fees=-1.0), "fees must be >= 0"),
                      (dict(size=2.0), "size must be <= 1"),
                      (dict(fill="open"), "unknown fill"),
                      (dict(cash_sharing=[1, 2]), "cash_sharing has 2 group labels")):
        with pytest.raises((ValueError, TypeError), match=match):
            Backtest(df, Noop, **kw)


def test_strategy_indicators_align_by_label(two):
    from nbtrade.strategy import Backtest, Strategy, crossover

    d, _, _ = two

    class Cross(Strategy):
        flip = False

        def init(self):
            close = self.data.close
            fast, slow = close.rolling(4).mean(), close.rolling(12).mean()
            if self.flip:  # columns in another order, rows in another time zone
                fast = fast[["B", "A"]].tz_convert("Asia/Tokyo")
            self.fast, self.slow = self.I(lambda: fast), self.I(lambda: slow)

        def next(self):
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    bt = Backtest(d, Cross, size=0.4)
    pd.testing.assert_series_equal(bt.run().equity, bt.run(flip=True).equity)
