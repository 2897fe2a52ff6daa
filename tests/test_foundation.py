"""Shared plumbing: input conversion, periods, timeframes, lookback, numba cache dir."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nbtrade._arrays import as_float_array, as_float_arrays, check_out, check_period
from nbtrade.lookback import Lookback, decay_bars
from nbtrade.timeframes import bars_per_year, index_to_ms, ms_to_index, timeframe_ms


def test_as_float_array_converts_once():
    arr, w = as_float_array(np.arange(5, dtype=np.int32), "close")
    assert arr.dtype == np.float64 and arr.flags.c_contiguous and w.kind == "ndarray"
    strided = np.arange(20.0)[::2]
    arr, _ = as_float_array(strided, "close")
    assert arr.flags.c_contiguous and np.array_equal(arr, strided)


def test_as_float_array_keeps_fortran_frames():
    df = pd.DataFrame({"a": np.arange(4.0), "b": np.arange(4.0) * 2})
    arr, w = as_float_array(df, "close")
    assert arr.shape == (4, 2) and (arr.flags.f_contiguous or arr.flags.c_contiguous)
    out = w.wrap(arr * 2)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["a", "b"]


def test_series_roundtrip_and_extension_dtype():
    s = pd.Series([1, 2, None], dtype="Float64", name="close")
    arr, w = as_float_array(s, "close")
    assert np.isnan(arr[2])
    assert w.wrap(arr).name == "close"


@pytest.mark.parametrize("bad", [np.array(["a", "b"]), np.array([True, False]), np.array([1 + 2j]),
                                 pd.Series(["x", "y"]), np.array([np.datetime64("2024-01-01")])])
def test_non_numeric_is_type_error(bad):
    with pytest.raises(TypeError, match="close"):
        as_float_array(bad, "close")


def test_dims_checked():
    with pytest.raises(ValueError, match="close"):
        as_float_array(np.zeros((2, 2, 2)), "close")
    with pytest.raises(ValueError, match="1-D"):
        as_float_array(np.zeros((2, 2)), "close", allow_2d=False)
    with pytest.raises(ValueError, match="close"):
        as_float_array(3.0, "close")


def test_aligned_inputs():
    with pytest.raises(ValueError, match="low"):
        as_float_arrays([("high", np.zeros(3)), ("low", np.zeros(4))])
    a = pd.Series([1.0, 2.0], index=[0, 1])
    b = pd.Series([1.0, 2.0], index=[1, 2])
    with pytest.raises(ValueError, match="different indexes"):
        as_float_arrays([("high", a), ("low", b)])


def test_check_out_and_period():
    like = np.zeros(3)
    assert check_out(None, like).shape == (3,)
    mine = np.empty(3)
    assert check_out(mine, like) is mine
    with pytest.raises(ValueError, match="out"):
        check_out(np.empty(4), like)
    with pytest.raises(ValueError, match="timeperiod"):
        check_period(0, "timeperiod")
    with pytest.raises(TypeError, match="timeperiod"):
        check_period(2.5, "timeperiod")
    with pytest.raises(TypeError, match="timeperiod"):
        check_period(True, "timeperiod")


def test_timeframes():
    assert timeframe_ms("1h") == 3_600_000 and bars_per_year("1d") == 365
    with pytest.raises(ValueError, match="unknown timeframe"):
        timeframe_ms("2m")
    with pytest.raises(ValueError, match="calendar month"):
        timeframe_ms("1M")
    ms = np.array([0, 60_000], dtype=np.int64)
    idx = ms_to_index(ms)
    assert str(idx.tz) == "UTC" and np.array_equal(index_to_ms(idx), ms)
    assert np.array_equal(index_to_ms(pd.to_datetime(ms, unit="ms")), ms)


def test_lookback_decay():
    assert decay_bars(1.0) == 0
    k = decay_bars(2 / 31)
    assert (1 - 2 / 31) ** k < 1e-12 <= (1 - 2 / 31) ** (k - 1)
    assert Lookback(29, 29).settle == 29
    with pytest.raises(ValueError):
        decay_bars(0.0)


def test_unwritable_numba_cache_dir_falls_back(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(ro / "sub"), HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    code = "import os, nbtrade.kernels; print(os.environ['NUMBA_CACHE_DIR'])"
    if os.geteuid() == 0:  # root writes anywhere: make the directory a file instead
        ro.chmod(0o700)
        (ro / "sub").write_text("not a directory")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(tmp_path / "xdg"))


def test_public_api_resolves_lazily():
    code = ("import sys, nbtrade; assert 'numba' not in sys.modules and 'pandas' not in sys.modules\n"
            "missing=[n for n in nbtrade.__all__ if n != '__version__' and getattr(nbtrade, n, None) is None]\n"
            "print('MISSING', missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "MISSING []" in out.stdout


def test_cache_dir_named_by_kernel_sources(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    code = ("import numba, os, nbtrade.kernels as k; "
            "print(os.environ['NUMBA_CACHE_DIR'], numba.core.config.CACHE_DIR, k._sources_digest())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    env_dir, numba_dir, digest = out.stdout.split()
    assert env_dir == numba_dir == str(tmp_path / "nbtrade" / "numba" / digest)
