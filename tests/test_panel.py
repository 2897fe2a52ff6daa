"""``nbtrade.Market``: one panel built from every candle layout, validated once, sliced as views."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import nbtrade
from nbtrade.panel import Market
from nbtrade.synthetic import market, planted_market


@pytest.fixture
def frames():
    return market(["BTC", "ETH"], "2024-01-01", "2024-01-03", "1h", seed=2)


def _close(frames):
    return pd.DataFrame({s: f["close"] for s, f in frames.items()}).to_numpy()


def test_every_layout_gives_the_same_panel(frames):
    ref = _close(frames)
    upper = {s: f.rename(columns=str.upper).drop(columns="VOLUME") for s, f in frames.items()}
    by_field = pd.concat(frames, axis=1).swaplevel(axis=1)  # (field, symbol)
    by_symbol = pd.concat(frames, axis=1)  # (symbol, field)
    fields = {f: pd.DataFrame({s: d[f] for s, d in frames.items()}) for f in ("open", "high", "low", "close")}
    t = frames["BTC"].index.as_unit("ns").asi8 // 1_000_000
    arrays = Market.from_arrays(t, ["BTC", "ETH"], **{f: v.to_numpy() for f, v in fields.items()})
    for data in (frames, upper, by_field, by_symbol, fields, arrays):
        m = Market(data)
        assert m.symbols == ["BTC", "ETH"] and m.shape == ref.shape and m.timeframe == "1h"
        np.testing.assert_array_equal(m.array("close"), ref)
        np.testing.assert_array_equal(m.array("high"), fields["high"].to_numpy())
        assert m.index.tz is not None and str(m.index.tz) == "UTC"
    assert Market(frames).has("volume") and not Market(upper).has("volume")
    one = Market(frames["BTC"])
    assert one.symbols == ["asset"] and Market(frames["BTC"], symbol="BTC").symbols == ["BTC"]
    assert Market(Market(frames)).shape == ref.shape
    assert Market(planted_market(["A", "B"], "2024-01-01", "2024-01-05", "1h")).shape == (96, 2)


def test_close_prices_alone_stand_for_all_four(frames):
    close = pd.DataFrame({s: f["close"] for s, f in frames.items()})
    m = Market(close)
    assert m.close_only and m.array("open") is m.array("close")
    np.testing.assert_array_equal(m.array("close"), close.to_numpy())


def test_fields_convert_lazily_and_time_ms(frames):
    m = Market(frames)
    assert m._arrays == {}  # nothing converted before use
    m.close
    assert set(m._arrays) == {"close"}
    assert m.time_ms[1] - m.time_ms[0] == 3_600_000 and m.freq_ms == 3_600_000.0
    assert isinstance(m.close, pd.DataFrame) and np.shares_memory(m.close.to_numpy(), m.array("close"))
    fast = nbtrade.indicators.sma(m.close, 5)  # indicators take the panel's DataFrames
    assert list(fast.columns) == ["BTC", "ETH"]


def test_union_of_indexes_is_never_forward_filled(frames):
    late = dict(frames)
    late["ETH"] = frames["ETH"].iloc[10:].drop(frames["ETH"].index[20:23])
    m = Market(late)
    close = m.array("close")
    assert np.isnan(close[:10, 1]).all() and np.isnan(close[20:23, 1]).all() and m.n_missing == 13
    assert m.missing[:10, 1].all()
    gaps = m.gaps()
    assert gaps[["symbol", "kind", "bars"]].values.tolist() == [["ETH", "nan", 3]]
    assert gaps["start"].iloc[0] == frames["ETH"].index[20] and gaps["end"].iloc[0] == frames["ETH"].index[22]
    holed = {s: f.drop(f.index[5:8]) for s, f in frames.items()}
    gaps = Market(holed).gaps()
    assert gaps[["kind", "bars"]].values.tolist() == [["missing_time", 3]]
    assert gaps["start"].iloc[0] == frames["BTC"].index[5] and gaps["end"].iloc[0] == frames["BTC"].index[7]
    assert Market(holed).gaps() is not None and len(Market(frames).gaps()) == 0


def test_time_zones_and_resolutions_are_instants(frames):
    naive = frames["BTC"].tz_localize(None)
    tokyo = frames["ETH"].tz_convert("Asia/Tokyo")
    m = Market({"BTC": naive, "ETH": tokyo})  # naive means UTC
    assert m.n_missing == 0 and m.shape == (48, 2)
    ms = frames["ETH"].copy()
    ms.index = ms.index.as_unit("ms")
    m2 = Market({"BTC": frames["BTC"], "ETH": ms})
    assert m2.n_missing == 0 and m2.index.equals(m.index)


def test_slices_are_views_and_symbol_selection_copies(frames):
    m = Market(frames)
    c = m.array("close")
    part = m[5:10]
    assert part.shape == (5, 2) and np.shares_memory(part.array("close"), c)
    by_time = m["2024-01-02":]
    assert by_time.shape == (24, 2) and by_time.index[0] == pd.Timestamp("2024-01-02", tz="UTC")
    eth = m[["ETH"]]
    assert eth.symbols == ["ETH"] and not np.shares_memory(eth.array("close"), c)
    np.testing.assert_array_equal(eth.array("close")[:, 0], c[:, 1])
    assert m["ETH"].symbols == ["ETH"] and len(m.meta) == 2 and len(eth.meta) == 1
    with pytest.raises(KeyError, match="unknown symbol 'XRP'"):
        m["XRP"]


def test_extra_numeric_fields_are_kept(frames):
    with_funding = {s: f.assign(funding=0.0001) for s, f in frames.items()}
    m = Market(with_funding)
    assert "funding" in m.fields and (m.array("funding") == 0.0001).all()
    with pytest.raises(AttributeError, match="no field 'oi'"):
        m.array("oi")


def test_private_copies_of_arrays():
    close = np.full((5, 2), 10.0)
    m = Market(close)
    close[:] = 1.0
    assert (m.array("close") == 10.0).all()


# ------------------------------------------------------------------ bad input

def test_unsorted_and_duplicate_timestamps_name_the_symbol_and_the_fix(frames):
    with pytest.raises(ValueError, match=r"data\['ETH'\] index is not sorted .*first: .*sort_index"):
        Market({"BTC": frames["BTC"], "ETH": frames["ETH"].iloc[::-1]})
    dup = pd.concat([frames["ETH"].iloc[:3], frames["ETH"].iloc[2:]])
    with pytest.raises(ValueError, match=r"data\['ETH'\] has duplicate timestamps \(first: 2024-01-01 02:00"):
        Market({"BTC": frames["BTC"], "ETH": dup})


def test_mixed_timeframes_are_refused(frames):
    minutes = market("SOL", "2024-01-01", "2024-01-01 03:00", "1m")
    with pytest.raises(ValueError, match="mixes timeframes: 'BTC' .* 'SOL'.*resample"):
        Market({"BTC": frames["BTC"], "SOL": minutes})


@pytest.mark.parametrize("field,value", [("close", 0.0), ("close", -3.0), ("low", -1.0)])
def test_non_positive_prices_name_symbol_and_time(frames, field, value):
    bad = dict(frames)
    bad["ETH"] = frames["ETH"].copy()
    bad["ETH"].iloc[7, bad["ETH"].columns.get_loc(field)] = value
    m = Market(bad)
    with pytest.raises(ValueError, match=rf"{field} prices must be > 0.*2024-01-01 07:00:00\+00:00 \(ETH\)"):
        m.validate()


def test_high_below_low_partial_candles_and_inf(frames):
    bad = {s: f.copy() for s, f in frames.items()}
    bad["BTC"].iloc[4, bad["BTC"].columns.get_loc("high")] = bad["BTC"]["low"].iloc[4] * 0.5
    with pytest.raises(ValueError, match=r"inconsistent candle at 2024-01-01 04:00:00\+00:00 \(BTC\)"):
        Market(bad).validate()
    part = {s: f.copy() for s, f in frames.items()}
    part["ETH"].iloc[9, part["ETH"].columns.get_loc("open")] = np.nan
    with pytest.raises(ValueError, match=r"partial candle.*2024-01-01 09:00:00\+00:00 \(ETH\)"):
        Market(part).validate()
    inf = {s: f.copy() for s, f in frames.items()}
    inf["ETH"].iloc[2, inf["ETH"].columns.get_loc("close")] = np.inf
    with pytest.raises(ValueError, match=r"inf at 2024-01-01 02:00:00\+00:00 \(ETH\)"):
        Market(inf).array("close")


def test_bad_forms(frames):
    with pytest.raises(TypeError, match=r"data\['A'\] must be a DataFrame"):
        Market({"A": [1.0, 2.0]})
    with pytest.raises(TypeError, match=r"data\['BTC'\]\['close'\] must be numeric"):
        Market({"BTC": frames["BTC"].assign(close="x")})
    with pytest.raises(ValueError, match="lacks high, low"):
        Market({"BTC": frames["BTC"][["open", "close"]]})
    with pytest.raises(ValueError, match="empty"):
        Market({})
    with pytest.raises(ValueError, match="open/high/low or none"):
        Market.from_arrays(np.arange(3) * 60_000, ["A"], close=np.ones(3), open=np.ones(3))
    with pytest.raises(ValueError, match="close has shape"):
        Market.from_arrays(np.arange(3) * 60_000, ["A", "B"], close=np.ones(3))


# ------------------------------------------------------------------ consumers take a Market

def test_features_and_checks_take_a_market(frames):
    from nbtrade.checks import check_lookahead
    from nbtrade.features import compute_features

    specs = [("rsi", 14), ("ema", 10), ("atr", 14), ("volume_ratio", 6)]
    m = Market(frames)
    pd.testing.assert_frame_equal(compute_features(m, specs), compute_features(frames, specs))
    report = check_lookahead(lambda d: compute_features(d, specs), m, cuts=4, min_bars=20)
    assert report.ok, str(report)


def test_every_engine_mode_takes_a_market(frames):
    from numba import njit

    from nbtrade.kernels.callback import enter_long_nb

    @njit
    def buy_first(ctx, i):
        if i == 1:
            for c in range(ctx.close.shape[1]):
                enter_long_nb(ctx, i, c)

    m = Market(frames)
    close = m.close
    entries, exits = close > close.rolling(5).mean(), close < close.rolling(5).mean()
    kw = dict(size=0.4, fees=0.001)
    pd.testing.assert_series_equal(nbtrade.backtest(m, entries, exits, **kw).equity,
                                   nbtrade.backtest(frames, entries, exits, **kw).equity)
    w = pd.DataFrame(0.4, index=m.index, columns=m.symbols)
    pd.testing.assert_series_equal(nbtrade.backtest_weights(m, w, rebalance_every=6).equity,
                                   nbtrade.backtest_weights(frames, w, rebalance_every=6).equity)
    pd.testing.assert_series_equal(nbtrade.backtest_callback(m, buy_first, **kw).equity,
                                   nbtrade.backtest_callback(frames, buy_first, **kw).equity)
    assert nbtrade.prepare(m) is m and nbtrade.Inputs is Market


def _gaps_reference(index, close, symbols, freq_ms):
    """The gap list as the engine used to build it: one row at a time (missing times, then NaN runs)."""
    rows = []
    ms = index.as_unit("ms").asi8
    for k in np.flatnonzero(np.diff(ms) > freq_ms * 1.5):
        rows.append((None, "missing_time", index[k] + pd.Timedelta(milliseconds=freq_ms),
                     index[k + 1] - pd.Timedelta(milliseconds=freq_ms), int(round((ms[k + 1] - ms[k]) / freq_ms)) - 1))
    for j, sym in enumerate(symbols):
        valid = np.flatnonzero(~np.isnan(close[:, j]))
        if valid.size == 0:
            continue
        i = valid[0]
        while i <= valid[-1]:
            if np.isnan(close[i, j]):
                s = i
                while np.isnan(close[i, j]):
                    i += 1
                rows.append((sym, "nan", index[s], index[i - 1], i - s))
            i += 1
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_vectorised_gaps_equal_a_row_by_row_search(seed):
    rng = np.random.default_rng(seed)
    n, m = 300, 4
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC")
    index = index[rng.random(n) > 0.05]  # missing timestamps
    close = 100 + rng.random((len(index), m))
    close[rng.random(close.shape) < 0.1] = np.nan
    close[:20, 1] = np.nan  # listed later
    close[-15:, 2] = np.nan  # delisted
    close[:, 3] = np.nan  # never listed
    mk = Market(pd.DataFrame(close, index=index, columns=list("ABCD")))
    got = [tuple(None if isinstance(v, float) and np.isnan(v) else v for v in r)
           for r in mk.gaps(3_600_000.0).itertuples(index=False)]
    assert got == _gaps_reference(index, close, list("ABCD"), 3_600_000.0)


def test_doctests():
    import doctest

    import nbtrade.panel

    res = doctest.testmod(nbtrade.panel, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0 and res.attempted > 0


def test_large_panels_take_the_parallel_path_with_the_same_answers():
    from nbtrade.panel import PARALLEL_CHECK

    n, m = PARALLEL_CHECK // 16 + 11, 16
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    close = 100 + rng.random((n, m))
    close[rng.random((n, m)) < 0.01] = np.nan
    frames = {f"S{j}": pd.DataFrame({"open": close[:, j], "high": close[:, j], "low": close[:, j],
                                     "close": close[:, j]}, index=index) for j in range(m)}
    mk = Market(frames)
    np.testing.assert_array_equal(mk.array("close"), close)
    assert mk.array("close").flags.c_contiguous and mk.n_missing == int(np.isnan(close).sum())
    late = dict(frames, S3=frames["S3"].iloc[1000:])  # a joined index: the scatter path
    np.testing.assert_array_equal(Market(late).array("close")[1000:, 3], close[1000:, 3])
    for t, j in ((n - 2, 15), (n // 2 + 1, 0), (5, 7)):
        bad = dict(frames)
        bad[f"S{j}"] = frames[f"S{j}"].copy()
        bad[f"S{j}"].iloc[t, 3] = -1.0
        bad["S1"] = frames["S1"].copy()
        bad["S1"].iloc[n - 1, 3] = 0.0  # a later problem elsewhere: the first in time order is reported
        at = re.escape(str(index[t]))
        with pytest.raises(ValueError, match=rf"close prices must be > 0; got -1.0 at {at} \(S{j}\)"):
            Market(bad).array("close")
