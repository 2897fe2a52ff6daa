"""CSV rules of issues 12 and 14: layouts from common tools, field counts, time units, export = import."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from nbtrade.data import io
from nbtrade.data.store import Store
from nbtrade.synthetic import candles

EX, SYM, TF = "binance", "BTC/USDT", "1m"
COLS = ("time", "open", "high", "low", "close", "volume")


@pytest.fixture(scope="module")
def data():
    return candles(SYM, "2024-01-01", "2024-01-02", TF, seed=9)  # 1,440 rows


def rows(data, lo, hi, time=lambda t: t, extra=()):
    out = []
    for i in range(lo, hi):
        cells = [str(time(int(data["time"][i])))] + [repr(float(data[c][i])) for c in COLS[1:]]
        out.append(",".join(cells + [str(e) for e in extra]))
    return "\n".join(out) + "\n"


def write(tmp_path, text, name="x.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def check(got, data, n):
    for c in COLS:
        np.testing.assert_array_equal(got[c], data[c][:n], err_msg=c)


# --- field counts --------------------------------------------------------------------
def test_headerless_seven_fields_is_refused_not_guessed(tmp_path, data):
    p = write(tmp_path, rows(data, 0, 10, extra=[7]))
    with pytest.raises(ValueError, match=r"x\.csv.*7 fields.*which field is the volume.*header"):
        io.read_csv(p)


def test_every_row_having_a_field_more_than_the_header_is_refused(tmp_path, data):
    p = write(tmp_path, "timestamp_ms,open,high,low,close,volume\n" + rows(data, 0, 10, extra=[42]))
    with pytest.raises(ValueError, match=r"data row 1 has 7 fields but the header names 6"):
        io.read_csv(p)


def test_a_later_row_with_a_field_more_is_refused(tmp_path, data):
    text = "timestamp_ms,open,high,low,close,volume\n" + rows(data, 0, 10) + rows(data, 10, 11, extra=[1])
    with pytest.raises(ValueError, match=r"malformed CSV"):
        io.read_csv(write(tmp_path, text))


def test_headerless_binance_row_missing_fields_is_refused(tmp_path, data):
    full = rows(data, 0, 5, extra=[1, 2, 3, 4, 5, 0])
    short = rows(data, 5, 6, extra=[1, 2])
    with pytest.raises(ValueError, match=r"data row 6 has missing fields"):
        io.read_csv(write(tmp_path, full + short))


# --- time units ----------------------------------------------------------------------
@pytest.mark.parametrize("unit,scale", [("s", 0.001), ("ms", 1), ("us", 1000), ("ns", 1_000_000)])
def test_epoch_units_by_magnitude(tmp_path, data, unit, scale):
    text = "time,open,high,low,close,volume\n" + rows(data, 0, 100, time=lambda t: int(t * scale))
    check(io.read_csv(write(tmp_path, text), timeframe=TF).reset_index().assign(
        time=lambda d: d["time"].astype("datetime64[ms, UTC]").astype("int64")), data, 100)


def test_seconds_and_milliseconds_mixed_are_refused_also_across_chunks(tmp_path, data):
    head = "time,open,high,low,close,volume\n"
    mixed = head + rows(data, 0, 50, time=lambda t: t // 1000) + rows(data, 50, 100)
    with pytest.raises(ValueError, match=r"mixed timestamp units.*row 1 holds \d+ \(seconds\).*row 51 holds \d+ "
                                         r"\(milliseconds\)"):
        io.read_csv(write(tmp_path, mixed))
    with pytest.raises(ValueError, match=r"mixed timestamp units"):  # the first chunk alone looks fine
        io.read_csv(write(tmp_path, mixed, "y.csv"), chunk_rows=50)


@pytest.mark.parametrize("bad", ["0", "-60000", "1969-12-31T23:59:00Z"])
def test_times_at_or_before_the_epoch_are_refused(tmp_path, data, bad):
    iso = (lambda t: pd.Timestamp(t, unit="ms").isoformat() + "Z") if ":" in bad else (lambda t: t)
    text = "time,open,high,low,close,volume\n" + f"{bad},1,2,0.5,1.5,3\n" + rows(data, 0, 3, time=iso)
    store = Store(tmp_path / "s")
    with pytest.raises(ValueError, match=r"at or before 1970-01-01"):
        io.import_csv(write(tmp_path, text), store, EX, SYM, TF)
    assert not store.path(EX).exists()


# --- layouts of common tools ---------------------------------------------------------
def test_yahoo_layout_iso_dates_extra_columns_listed(tmp_path):
    df = candles(SYM, "2024-01-01", "2024-02-01", "1d", seed=2)
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for i in range(df["time"].size):
        day = pd.Timestamp(int(df["time"][i]), unit="ms").strftime("%Y-%m-%d")
        o, h, lo, c, v = (float(df[k][i]) for k in COLS[1:])
        lines.append(f"{day},{o!r},{h!r},{lo!r},{c!r},{c * 0.99!r},{v!r}")
    p = write(tmp_path, "\n".join(lines) + "\n", "GOOG.csv")
    store = Store(tmp_path / "s")
    res = io.import_csv(p, store, EX, "GOOG/USD", "1d")
    assert res.rows == df["time"].size and res.ignored_columns == ["Adj Close"]
    np.testing.assert_array_equal(store.read(EX, "GOOG/USD", "1d", as_arrays=True)["close"], df["close"])


def test_binance_headered_layout(tmp_path, data):
    head = ("Open time,Open,High,Low,Close,Volume,Close time,Quote asset volume,Number of trades,"
            "Taker buy base asset volume,Taker buy quote asset volume,Ignore\n")
    p = write(tmp_path, head + rows(data, 0, 60, extra=[1, 2, 3, 4, 5, 0]))
    res = io.import_csv(p, Store(tmp_path / "s"), EX, SYM, TF)
    assert res.rows == 60 and res.ignored_columns[0] == "Close time" and len(res.ignored_columns) == 6
    check(Store(tmp_path / "s").read(EX, SYM, TF, as_arrays=True), data, 60)


def test_time_zones_are_respected(tmp_path, data):
    def tokyo(t):
        return pd.Timestamp(t, unit="ms", tz="UTC").tz_convert("Asia/Tokyo").isoformat()

    p = write(tmp_path, "DateTime,OPEN,high,Low,close,Volume\n" + rows(data, 0, 30, time=tokyo))
    got = io.read_csv(p, timeframe=TF)
    assert got.index[0] == pd.Timestamp("2024-01-01", tz="UTC")
    np.testing.assert_array_equal(got["close"].to_numpy(), data["close"][:30])


@pytest.mark.parametrize("header,match", [
    ("when,open,high,low,close,volume", "no time column"),
    ("time,date,open,high,low,close,volume", "several time columns"),
    ("time,open,high,low,close", "missing"),
    ("time,open,high,low,close,volume,Close", "more than once"),
])
def test_bad_headers_name_the_problem(tmp_path, data, header, match):
    with pytest.raises(ValueError, match=match):
        io.read_csv(write(tmp_path, header + "\n" + rows(data, 0, 3)))


# --- export writes only what import reads back -----------------------------------------
def _frame(data, n=20):
    return {c: data[c][:n].copy() for c in COLS}


BAD_EXPORTS = {
    "unsorted": lambda a: a["time"].__setitem__(slice(3, 5), a["time"][4:2:-1].copy()),
    "negative price": lambda a: a["low"].__setitem__(5, -1.0),
    "nan": lambda a: a["close"].__setitem__(6, np.nan),
    "high < low": lambda a: (a["high"].__setitem__(7, 0.5), a["low"].__setitem__(7, 2.0)),
    "epoch zero": lambda a: a["time"].__setitem__(0, 0),
}


@pytest.mark.parametrize("case", sorted(BAD_EXPORTS))
def test_export_refuses_rows_its_import_refuses(tmp_path, data, case):
    a = _frame(data)
    BAD_EXPORTS[case](a)
    target = tmp_path / "out.csv"
    target.write_text("old\n")
    with pytest.raises(ValueError, match=r"out\.csv.*would not import back"):
        io.export_csv(a, target)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_export_across_blocks_refuses_unsorted(tmp_path, data):
    a = _frame(data, 40)
    blocks = [{c: v[20:] for c, v in a.items()}, {c: v[:20] for c, v in a.items()}]
    with pytest.raises(ValueError, match="not sorted"):
        io.export_csv(blocks, tmp_path / "x.csv")
    assert not (tmp_path / "x.csv").exists()


def test_headerless_malformed_value_names_the_file(tmp_path, data):
    text = rows(data, 0, 5) + "1704067500000,abc,2,0.5,1.5,3\n"
    with pytest.raises(ValueError, match=r"x\.csv.*malformed value.*abc"):
        io.read_csv(write(tmp_path, text))
