"""Funding rates and mark-price candles in the HDF5 store and the panel (issue 17): layout, round trip,
representation, and every bad input refused with an error naming the field."""
from __future__ import annotations

import numpy as np
import pytest

from nbtrade.data.layout import check_timeframe, mark_timeframe, value_columns
from nbtrade.data.panels import funding_schedule, market_from_series
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

H = 3_600_000
T0 = 1_704_067_200_000  # 2024-01-01
SYM = "BTC/USDT:USDT"
EX = "binance_futures"


def mark_of(c: dict, factor: float = 1.0005) -> dict:
    return {"time": c["time"], **{k: c[k] * factor for k in ("open", "high", "low", "close")}}


def funding_at(hours, rate=1e-4, offset_ms=3) -> dict:
    t = T0 + np.asarray(hours, dtype=np.int64) * H + offset_ms
    return {"time": t, "rate": np.full(t.shape, rate), "mark_price": np.full(t.shape, np.nan)}


@pytest.fixture
def c():
    return candles(SYM, T0, T0 + 48 * H, "1h", seed=3)


def test_layout_keys():
    assert mark_timeframe("1h") == "mark_1h" and mark_timeframe("mark_1h") == "mark_1h"
    assert check_timeframe("mark_4h") == 4 * H and check_timeframe("mark_1M") == 0
    assert value_columns("mark_1h") == ("open", "high", "low", "close")
    assert value_columns("funding") == ("rate", "mark_price")
    with pytest.raises(ValueError, match="timeframe must be one of"):
        check_timeframe("mark_7h")


def test_round_trip_beside_the_candles(tmp_path, c):
    st = Store(tmp_path)
    st.append(EX, SYM, "1h", c)
    st.append(EX, SYM, "mark_1h", mark_of(c))
    st.append(EX, SYM, "funding", funding_at(range(0, 48, 8)))
    got = st.read(EX, SYM, "mark_1h", as_arrays=True)
    for k in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(got[k], mark_of(c)[k])
    kinds = {row["timeframe"] for row in st.ls(EX)}
    assert {"1h", "mark_1h", "funding"} <= kinds
    assert st.verify(EX).ok
    m = st.read_market(EX, [SYM], "1h")
    np.testing.assert_array_equal(m.array("mark_low")[:, 0], c["low"] * 1.0005)
    assert m.mark("high").shape == (48, 1)


def test_funding_representation(c):
    """At the bar containing the timestamp (NaN elsewhere), the exact time kept beside it."""
    f = funding_at([0, 8, 16, 47], offset_ms=5)
    m = market_from_series({SYM: c}, funding={SYM: f}, timeframe="1h")
    rate, t = m.array("funding_rate")[:, 0], m.array("funding_time")[:, 0]
    assert np.flatnonzero(~np.isnan(rate)).tolist() == [0, 8, 16, 47]
    np.testing.assert_array_equal(t[~np.isnan(t)].astype(np.int64), f["time"])
    # a funding timestamp after the last bar's close or before the first bar enters no field
    late = funding_at([-1, 48])
    m2 = market_from_series({SYM: c}, funding={SYM: late}, timeframe="1h")
    assert np.isnan(m2.array("funding_rate")).all()
    # time slices and symbol selection keep the fields and the events
    part = m[8:20]
    assert np.flatnonzero(~np.isnan(part.array("funding_rate")[:, 0])).tolist() == [0, 8]
    assert len(part.funding_events(SYM)) == 2
    assert len(m[[SYM]].funding_events(SYM)) == 4


def test_symbols_without_perp_data_get_nan(c):
    e = candles("ETH/USDT:USDT", T0, T0 + 48 * H, "1h", seed=4)
    m = market_from_series({SYM: c, "ETH/USDT:USDT": e}, funding={SYM: funding_at([8])}, mark={SYM: mark_of(c)})
    assert np.isnan(m.array("mark_close")[:, 1]).all() and np.isnan(m.array("funding_rate")[:, 1]).all()
    assert m.funding_events("ETH/USDT:USDT").empty
    assert m.meta.loc["ETH/USDT:USDT", "funding_events"] is None


# -- bad input: each a clear error naming the field ---------------------------------------------------
@pytest.mark.parametrize("case, match", [
    ("unsorted", r"funding 'time' out of order"),
    ("duplicate", r"funding 'time' duplicated"),
    ("nan rate", r"funding 'rate' NaN"),
    ("bad mark", r"funding 'mark_price' <= 0"),
])
def test_bad_funding_is_refused(tmp_path, c, case, match):
    f = funding_at(range(0, 48, 8))
    if case == "unsorted":
        f["time"][[1, 2]] = f["time"][[2, 1]]
    elif case == "duplicate":
        f["time"][2] = f["time"][1]
    elif case == "nan rate":
        f["rate"][3] = np.nan
    else:
        f["mark_price"][:] = 0.0
    with pytest.raises(ValueError, match=match):
        market_from_series({SYM: c}, funding={SYM: f})
    with pytest.raises(ValueError, match=match):
        Store(tmp_path).append(EX, SYM, "funding", f)
    assert Store(tmp_path).last_time(EX, SYM, "funding") is None


@pytest.mark.parametrize("col", ["open", "high", "low", "close"])
def test_mark_prices_le_zero_are_refused(tmp_path, c, col):
    mk = mark_of(c)
    mk[col] = mk[col].copy()
    mk[col][5] = 0.0 if col != "low" else -1.0
    with pytest.raises(ValueError, match=f"'mark_{col}' <= 0"):
        market_from_series({SYM: c}, mark={SYM: mk})
    with pytest.raises(ValueError, match=f"'mark_{col}' <= 0"):
        Store(tmp_path).append(EX, SYM, "mark_1h", mk)


def test_perp_data_of_a_symbol_not_in_the_data(c):
    with pytest.raises(ValueError, match=r"funding given for ETH/USDT:USDT, not in the data's symbols"):
        market_from_series({SYM: c}, funding={"ETH/USDT:USDT": funding_at([0])})
    with pytest.raises(ValueError, match=r"mark given for ETH/USDT:USDT"):
        market_from_series({SYM: c}, mark={"ETH/USDT:USDT": mark_of(c)})


def test_read_market_flags(tmp_path, c):
    st = Store(tmp_path)
    st.append(EX, SYM, "1h", c)
    m = st.read_market(EX, [SYM], "1h")
    assert not m.has_funding and not m.has_mark and "funding_rate" not in m.fields
    with pytest.raises(KeyError, match="funding=True: no funding series stored for BTC/USDT:USDT"):
        st.read_market(EX, [SYM], "1h", funding=True)
    with pytest.raises(ValueError, match="funding must be None"):
        st.read_market(EX, [SYM], "1h", funding="yes")


def test_funding_schedule_flattens_events_with_their_bars(c):
    e = candles("ETH/USDT:USDT", T0, T0 + 48 * H, "1h", seed=4)
    fb, fe = funding_at([0, 8, 16], offset_ms=7), funding_at([4, 8, 60], rate=-2e-4, offset_ms=1)
    m = market_from_series({SYM: c, "ETH/USDT:USDT": e}, funding={SYM: fb, "ETH/USDT:USDT": fe})
    sch = funding_schedule(m)
    assert sch["bar"].tolist() == [0, 4, 8, 8, 16]  # hour 60 is past the last bar: left out
    assert sch["symbol"].tolist() == [0, 1, 1, 0, 0]  # the same bar in time order (ETH at +1 ms first)
    np.testing.assert_array_equal(sch["rate"], [1e-4, -2e-4, -2e-4, 1e-4, 1e-4])
    assert (np.diff(sch["time"]) > 0).all()
    # daily bars: several events in one bar stay separate
    d = candles(SYM, T0, T0 + 2 * 24 * H, "1d", seed=5)
    md = market_from_series({SYM: d}, funding={SYM: funding_at(range(0, 48, 8))}, timeframe="1d")
    assert funding_schedule(md)["bar"].tolist() == [0, 0, 0, 1, 1, 1]
    plain = market_from_series({SYM: c})
    assert funding_schedule(plain)["time"].shape == (0,)


# -- export, resample, ls/info of the perp series --------------------------------------------------
def _perp_store(tmp_path, c):
    st = Store(tmp_path / "s")
    st.append(EX, SYM, "1h", c)
    st.append(EX, SYM, "mark_1h", mark_of(c))
    st.append(EX, SYM, "funding", funding_at(range(0, 48, 8)))
    return st


@pytest.mark.parametrize("ext", ["csv", "csv.gz", "parquet"])
def test_export_writes_the_columns_each_series_has(tmp_path, c, ext):
    import pandas as pd

    from nbtrade.data.imports import export_path

    st = _perp_store(tmp_path, c)
    res = export_path(st, EX, SYM, "mark_1h", str(tmp_path / f"m.{ext}"))
    assert res.rows == 48
    read = pd.read_parquet if ext == "parquet" else pd.read_csv
    m = read(tmp_path / f"m.{ext}")
    assert list(m.columns)[1:] == ["open", "high", "low", "close"]  # no volume invented
    np.testing.assert_array_equal(m["low"].to_numpy(), mark_of(c)["low"])
    export_path(st, EX, SYM, "funding", str(tmp_path / f"f.{ext}"))
    f = read(tmp_path / f"f.{ext}")
    assert list(f.columns)[1:] == ["rate", "mark_price"]
    want = funding_at(range(0, 48, 8))
    t = f.iloc[:, 0]
    got_t = t.to_numpy() if ext != "parquet" else t.astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    np.testing.assert_array_equal(got_t, want["time"])  # exact times, ms off the hour kept
    np.testing.assert_array_equal(f["rate"].to_numpy(), want["rate"])
    assert f["mark_price"].isna().all()


def test_export_refuses_bad_funding_rows_naming_the_field(tmp_path):
    from nbtrade.data.io import export_csv

    bad = funding_at([0, 8])
    bad["rate"][1] = np.nan
    with pytest.raises(ValueError, match="funding rate not a finite number"):
        export_csv(bad, tmp_path / "f.csv")
    assert not (tmp_path / "f.csv").exists()


def test_resample_mark_candles_and_refuse_funding(tmp_path, c):
    import pandas as pd

    from nbtrade.data.resample import resample_store

    st = _perp_store(tmp_path, c)
    res, out = resample_store(st, EX, SYM, "mark_1h", "4h")
    assert res.target == "mark_4h" and res.rows == 12 and "volume" not in out
    frame = pd.DataFrame({k: mark_of(c)[k] for k in ("open", "high", "low", "close")},
                         index=pd.to_datetime(c["time"], unit="ms", utc=True))
    want = frame.resample("4h").agg({"open": "first", "high": "max", "low": "min", "close": "last"})
    got = st.read(EX, SYM, "mark_4h", as_arrays=True)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k].to_numpy(), err_msg=k)
    with pytest.raises(ValueError, match="funding rows have no timeframe grid"):
        resample_store(st, EX, SYM, "funding", "4h")
    with pytest.raises(ValueError, match="mark-price key"):
        resample_store(st, EX, SYM, "1h", "mark_4h")


def test_cli_ls_info_export_resample_of_perp_series(tmp_path, c, capsys):
    from nbtrade.cli import main

    st = _perp_store(tmp_path, c)
    root = str(st.root)
    assert main(["data", "ls", "--store", root]) == 0
    out = capsys.readouterr().out
    assert "funding rates" in out and "mark-price candles" in out
    assert main(["data", "info", EX, SYM, "funding", "--store", root]) == 0
    out = capsys.readouterr().out
    assert "rate, mark_price" in out and "8h (median spacing" in out and "missing_bars" not in out
    assert main(["data", "info", EX, SYM, "mark_1h", "--store", root]) == 0
    assert "open, high, low, close" in capsys.readouterr().out
    assert main(["data", "export", EX, SYM, "funding", str(tmp_path / "f.csv"), "--store", root]) == 0
    assert (tmp_path / "f.csv").read_text().splitlines()[0] == "timestamp_ms,rate,mark_price"
    assert main(["data", "resample", EX, SYM, "--from", "mark_1h", "--to", "1d", "--store", root]) == 0
    assert "mark_1d" in capsys.readouterr().out
    assert main(["data", "resample", EX, SYM, "--from", "funding", "--to", "1d", "--store", root]) == 1
