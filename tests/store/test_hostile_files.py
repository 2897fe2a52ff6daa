"""Hostile input for the file paths, by class rather than by case (property tests).

Every input either imports exactly what the file says or raises ``ValueError``
(``FileNotFoundError`` for a missing path) naming the file: never another
exception, never a crash, never rows that differ from the file, never a changed
store after a refusal.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nbtrade.data import io
from nbtrade.data.bulk import import_bulk, read_bulk_file, write_bulk_file
from nbtrade.data.store import Store

COLS = ("time", "open", "high", "low", "close", "volume")
T0 = 1_704_067_200_000
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def candle_arrays(draw, max_rows=40):
    n = draw(st.integers(1, max_rows))
    steps = draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    t = T0 + 60_000 * np.cumsum(steps).astype(np.int64)
    price = st.floats(1e-8, 1e9, allow_nan=False, allow_infinity=False)
    o = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    c = np.array(draw(st.lists(price, min_size=n, max_size=n)))
    wick = np.array(draw(st.lists(st.floats(0, 0.5), min_size=n, max_size=n)))
    high = np.maximum(o, c) * (1 + wick)
    low = np.minimum(o, c) * (1 - wick / 2)
    vol = np.array(draw(st.lists(st.floats(0, 1e12, allow_nan=False), min_size=n, max_size=n)))
    return {"time": t, "open": o, "high": high, "low": low, "close": c, "volume": vol}


@SETTINGS
@given(a=candle_arrays(), ext=st.sampled_from([".csv", ".csv.gz"]), iso=st.booleans())
def test_csv_export_import_round_trip_is_exact(tmp_path, a, ext, iso):
    p = tmp_path / f"r{ext}"
    io.export_csv(a, p, time_format="iso" if iso else "ms")
    got = io.read_csv(p)
    np.testing.assert_array_equal(got.index.as_unit("ms").asi8, a["time"])
    for c in COLS[1:]:
        np.testing.assert_array_equal(got[c].to_numpy(), a[c], err_msg=c)


@SETTINGS
@given(a=candle_arrays(), unit=st.sampled_from(["ms", "us"]), header=st.booleans())
def test_bulk_file_round_trip_is_exact(tmp_path, a, unit, header):
    p = write_bulk_file(tmp_path / "BTCUSDT-1m-2024-01.zip", a, "1m", time_unit=unit, header=header)
    got = read_bulk_file(p)
    for c in COLS:
        np.testing.assert_array_equal(got[c], a[c], err_msg=c)


def _mutations():
    cell = st.sampled_from(["", "nan", "-1", "0", "1e400", "abc", "1,2", "\"", "1704067200", "99999999999999999999",
                            "2024-01-01", "\x00", "１"])
    return st.lists(st.tuples(st.integers(0, 30), st.integers(0, 8), cell), min_size=1, max_size=4)


@SETTINGS
@given(a=candle_arrays(max_rows=30), muts=_mutations(), drop=st.integers(0, 40), headerless=st.booleans())
def test_mutated_csv_imports_exactly_or_refuses_cleanly(tmp_path, a, muts, drop, headerless):
    p = tmp_path / "m.csv"
    io.export_csv(a, p)
    lines = p.read_text().split("\n")[1 if headerless else 0:]
    for line, field, value in muts:
        k = 1 + line % max(1, len(lines) - 2)
        cells = lines[k].split(",")
        cells[field % len(cells)] = value
        lines[k] = ",".join(cells)
    text = "\n".join(lines)
    p.write_text(text[:len(text) - drop] if drop < len(text) else text)
    store = Store(tmp_path / "s")
    store.append("x", "BTC/USDT", "1m", {c: v[:1] for c, v in a.items()})
    before = store.path("x").read_bytes()
    try:
        res = io.import_csv(p, store, "x", "BTC/USDT", "1m")
    except ValueError as exc:
        assert "m.csv" in str(exc)
        assert store.path("x").read_bytes() == before
        return
    got = store.read("x", "BTC/USDT", "1m", as_arrays=True)  # whatever was accepted is a valid series
    assert store.verify().ok and res.rows >= 1
    assert np.all(np.diff(got["time"]) > 0) and np.all(got["time"] > 0)


@SETTINGS
@given(blob=st.binary(max_size=300), name=st.sampled_from(["BTCUSDT-1m-2024-01.zip", "BTCUSDT-1m-2024-01.csv"]))
def test_random_bytes_as_bulk_files_refuse_cleanly(tmp_path, blob, name):
    p = tmp_path / name
    p.write_bytes(blob)
    try:
        res = import_bulk(p, tmp_path / "s")
    except ValueError as exc:
        assert name in str(exc)
        assert not (tmp_path / "s" / "binance.h5").exists() or Store(tmp_path / "s").verify().ok
        return
    assert res.rows >= 0


@SETTINGS
@given(a=candle_arrays(max_rows=20), cut=st.integers(1, 400))
def test_truncated_zip_refuses_and_changes_nothing(tmp_path, a, cut):
    p = write_bulk_file(tmp_path / "BTCUSDT-1m-2024-01.zip", a, "1m")
    raw = open(p, "rb").read()
    with open(p, "wb") as fh:
        fh.write(raw[:max(0, len(raw) - cut)])
    with pytest.raises(ValueError, match="BTCUSDT-1m-2024-01.zip"):
        import_bulk(p, tmp_path / "s")
    assert not os.path.exists(tmp_path / "s" / "binance.h5")


def test_zip_bomb_like_member_names_and_folders(tmp_path):
    p = tmp_path / "BTCUSDT-1m-2024-01.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("../../evil.csv", "1704067200000,1,2,0.5,1.5,3\n")
    res = import_bulk(p, tmp_path / "s")  # read in memory: a member's path is never used to write
    assert res.rows == 1 and not (tmp_path.parent / "evil.csv").exists()
