"""Input conversion shared by every pandas/numpy-facing wrapper.

Wrappers validate and convert once here, so kernels can assume clean, contiguous
float64 input. pandas inputs are remembered so results come back with the same
index (and columns).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Wrapper:
    """How to turn a kernel's numpy output back into the caller's type."""

    kind: str  # "ndarray", "series" or "frame"
    index: Any = None
    columns: Any = None
    name: Any = None

    def wrap(self, out: np.ndarray, name: Any = None) -> Any:
        if self.kind == "series":
            return pd.Series(out, index=self.index, name=self.name if name is None else name, copy=False)
        if self.kind == "frame":
            return pd.DataFrame(out, index=self.index, columns=self.columns, copy=False)
        return out


def as_float_array(x: Any, name: str, allow_2d: bool = True) -> tuple[np.ndarray, Wrapper]:
    """Convert ``x`` to a contiguous float64 array of 1 or 2 dimensions.

    Accepts numpy arrays of any real numeric dtype and contiguity, lists, pandas
    Series and DataFrames. A 2-D array keeps Fortran order when it already has it
    (DataFrames usually do), so columns stay contiguous without a copy.

    Raises
    ------
    TypeError
        ``x`` is not numeric (object, string, bool, datetime, complex).
    ValueError
        ``x`` has more than 2 dimensions (or 2 where ``allow_2d`` is False).
    """
    if isinstance(x, pd.DataFrame):
        wrapper = Wrapper("frame", index=x.index, columns=x.columns)
        for dtype in x.dtypes:
            _check_dtype(dtype, name)
        arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
    elif isinstance(x, pd.Series):
        wrapper = Wrapper("series", index=x.index, name=x.name)
        _check_dtype(x.dtype, name)
        arr = x.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        wrapper = Wrapper("ndarray")
        arr = np.asarray(x)
        _check_dtype(arr.dtype, name)
    if arr.ndim == 0 or arr.ndim > 2 or (arr.ndim == 2 and not allow_2d):
        want = "1-D" if not allow_2d else "1-D or 2-D (time x symbols)"
        raise ValueError(f"{name} must be {want}, got an array of shape {arr.shape}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    if not (arr.ndim == 2 and arr.flags.f_contiguous and not arr.flags.c_contiguous):
        arr = np.ascontiguousarray(arr)
    return _writeable(arr), wrapper


def _writeable(arr: np.ndarray) -> np.ndarray:
    """The same data as a view typed writeable, where the memory allows it.

    pandas (copy-on-write) hands out read-only views; numba compiles a separate
    specialization of every kernel for read-only arrays, doubling cold compile
    time and the cache. Kernels never write their inputs, so the flag is lifted
    on a view of our own (the caller's array keeps its flag); memory that is
    really read-only (a read-only memmap, a user's read-only array) stays so.
    """
    if arr.flags.writeable:
        return arr
    view = arr.view()
    try:
        view.flags.writeable = True
    except ValueError:
        return arr
    return view


def _check_dtype(dtype: Any, name: str) -> None:
    # pandas extension dtypes (Float64, Int64) expose the numpy dtype they hold
    kind = dtype.kind if isinstance(dtype, np.dtype) else getattr(getattr(dtype, "numpy_dtype", None), "kind", "O")
    if kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {dtype}")


def as_float_arrays(named: Sequence[tuple[str, Any]], allow_2d: bool = True) -> tuple[list[np.ndarray], Wrapper]:
    """Convert several aligned inputs (e.g. high, low, close) at once.

    All must have the same shape, and pandas inputs the same index.
    The wrapper of the first input is returned.
    """
    arrays, wrappers = [], []
    for name, value in named:
        arr, wrapper = as_float_array(value, name, allow_2d=allow_2d)
        arrays.append(arr)
        wrappers.append(wrapper)
    first_name = named[0][0]
    for (name, _), arr, wrapper in zip(named[1:], arrays[1:], wrappers[1:]):
        if arr.shape != arrays[0].shape:
            raise ValueError(f"{name} has shape {arr.shape} but {first_name} has shape {arrays[0].shape}")
        if wrapper.index is not None and wrappers[0].index is not None and not wrapper.index.equals(wrappers[0].index):
            raise ValueError(f"{name} and {first_name} have different indexes")
    if len({a.flags.f_contiguous and a.ndim == 2 and not a.flags.c_contiguous for a in arrays}) > 1:
        arrays = [np.ascontiguousarray(a) for a in arrays]
    return arrays, wrappers[0]


def empty_like(arr: np.ndarray) -> np.ndarray:
    """Allocate an output with numpy (huge pages for large arrays), same layout as ``arr``."""
    return np.empty_like(arr, dtype=np.float64, order="K")


def check_out(out: np.ndarray | None, like: np.ndarray, name: str = "out") -> np.ndarray:
    """Return ``out`` when the caller supplied a usable one, else a fresh array."""
    if out is None:
        return empty_like(like)
    if not isinstance(out, np.ndarray) or out.dtype != np.float64 or out.shape != like.shape:
        raise ValueError(f"{name} must be a float64 array of shape {like.shape}")
    if not (out.flags.c_contiguous or out.flags.f_contiguous) or not out.flags.writeable:
        raise ValueError(f"{name} must be contiguous and writeable")
    return out


def check_period(value: Any, name: str, minimum: int = 1) -> int:
    """Validate an integer period parameter (>= ``minimum``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)
