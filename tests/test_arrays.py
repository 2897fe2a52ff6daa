"""nbtrade._arrays: input conversion, periods, the one kernel dispatcher."""
import numpy as np
import pandas as pd
import pytest

from nbtrade._arrays import as_float_array, as_float_arrays, check_out, check_period


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


def test_check_period_range_is_in_the_message():
    from nbtrade._arrays import MAX_PERIOD

    assert check_period(MAX_PERIOD, "timeperiod") == MAX_PERIOD
    with pytest.raises(ValueError, match=r"timeperiod must be an integer in \[1, 4294967296\], got 18446744073709551616"):
        check_period(2 ** 64, "timeperiod")
    with pytest.raises(ValueError, match=r"n must be an integer in \[2, 4294967296\], got 1"):
        check_period(1, "n", 2)


@pytest.mark.parametrize("name, call", [
    ("ema", lambda x, **kw: __import__("nbtrade.indicators").indicators.ema(x, 7, **kw)),
    ("rsi", lambda x, **kw: __import__("nbtrade.indicators").indicators.rsi(x, 7, **kw)),
    ("rolling_std", lambda x, **kw: __import__("nbtrade.rolling").rolling.rolling_std(x, 7, **kw)),
    ("rolling_max", lambda x, **kw: __import__("nbtrade.rolling").rolling.rolling_max(x, 7, **kw)),
    ("ret", lambda x, **kw: __import__("nbtrade.rolling").rolling.ret(x, 2, **kw)),
])
def test_one_dispatch_policy_for_indicators_and_rolling(name, call):
    """Column loop (small panels) and parallel kernel (large) agree; out may be C or F ordered or an input."""
    from nbtrade._arrays import PARALLEL_MIN_SIZE

    rng = np.random.default_rng(1)
    for rows in (50, PARALLEL_MIN_SIZE // 3 + 1):
        x = 100.0 * np.exp(np.cumsum(rng.standard_normal((rows, 3)) * 1e-3, axis=0))
        x[5, 1] = np.nan
        want = np.column_stack([call(np.ascontiguousarray(x[:, j])) for j in range(3)])
        for order in ("C", "F"):
            xi = np.array(x, order=order)
            np.testing.assert_array_equal(call(xi), want)
            buf = np.empty_like(x, order=order)
            assert call(xi, out=buf) is buf
            np.testing.assert_array_equal(buf, want)
            alias = xi.copy(order=order)
            assert call(alias, out=alias) is alias  # out is the input: read before overwritten
            np.testing.assert_array_equal(alias, want)
    frame = pd.DataFrame(x[:60], columns=["a", "b", "c"])
    got = call(frame)
    assert isinstance(got, pd.DataFrame) and list(got.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(got.to_numpy(), call(x[:60]))


def test_out_with_several_outputs_is_refused():
    from nbtrade._arrays import apply_kernel

    with pytest.raises(ValueError, match="out= is only supported for functions with one output, macd has 3"):
        apply_kernel("macd", [("close", np.ones(40))], (2, 3, 2), n_out=3, out=np.empty(40), fn="macd")
