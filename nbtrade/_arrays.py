"""Input conversion and the one kernel dispatcher shared by every pandas/numpy-facing wrapper.

Wrappers validate and convert once here, so kernels can assume clean, contiguous
float64 input. pandas inputs are remembered so results come back with the same
index (and columns). :func:`apply_kernel` runs a same-shape kernel of
``nbtrade.kernels.indicators.KERNELS`` on 1-D / 2-D arrays, Series or DataFrames
with one policy for layout, threads, ``out`` and input checks; :mod:`nbtrade.indicators`
and :mod:`nbtrade.rolling` both call it.
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
    if arr.ndim == 2 and arr.shape[0] == 1 and arr.shape[1] > 1 and wrapper.kind == "ndarray":
        raise ValueError(f"{name} has shape {arr.shape}: 2-D inputs are time x symbols, so this is ONE bar of "
                         f"{arr.shape[1]} symbols. For {arr.shape[1]} bars of one series pass a 1-D array "
                         f"({name}.ravel()); for one bar of many symbols pass a one-row DataFrame")
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


#: Largest window or period any function accepts: 2**32 bars (8,000 years of 1-minute
#: bars), far beyond any data, and small enough that kernels' index arithmetic
#: (``start + period``) stays inside int64.
MAX_PERIOD = 2 ** 32


def check_period(value: Any, name: str, minimum: int = 1, maximum: int = MAX_PERIOD) -> int:
    """Validate an integer period parameter in ``[minimum, maximum]``; errors name ``name`` and the range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer in [{minimum}, {maximum}], got {type(value).__name__} "
                        f"{value!r}")
    if not minimum <= value <= maximum:
        raise ValueError(f"{name} must be an integer in [{minimum}, {maximum}], got {value}")
    return int(value)


#: 2-D inputs with fewer values run column by column in one thread: below this, a
#: parallel launch (and, on a busy machine, waiting for a second core) costs more.
PARALLEL_MIN_SIZE = 200_000


def _strided_2d(a: np.ndarray) -> bool:
    return a.ndim == 2 and a.shape[1] > 1 and not a.flags.f_contiguous


def columns_contiguous(arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Time x symbols arrays in Fortran order, so each column is contiguous.

    Kernels walk each column in time order: on a row-major array every value is
    on its own cache line (measured 5-10x slower than one blocked copy first).
    """
    if _strided_2d(arrays[0]):
        return [np.asfortranarray(a) for a in arrays]
    return arrays


def check_high_low(arrays: list[np.ndarray], names: Sequence[str], wrapper: Wrapper, fn: str) -> None:
    """Refuse ``high < low`` on any bar (NaN/inf bars are skipped), naming the arguments and the bar.

    One memory-bound pass over high and low (0.55 ms per million bars measured): about
    +60 % on TRANGE, +40 % on ATR, +5 % on ADX and STOCH. Kept for every call: swapped
    arguments otherwise give plausible, wrong values.
    """
    from .kernels.input_checks import first_below_nb

    ih, il = names.index("high"), names.index("low")
    high, low = arrays[ih], arrays[il]
    flat = first_below_nb(high.ravel(order="K"), low.ravel(order="K"))
    if flat < 0:
        return
    if high.ndim == 1:
        i, where = flat, ""
    else:
        i, j = np.unravel_index(flat, high.shape, order="F" if high.flags.f_contiguous and not
                                high.flags.c_contiguous else "C")
        col = wrapper.columns[j] if wrapper.columns is not None else j
        where = f", column {col!r}"
    bar = wrapper.index[i] if wrapper.index is not None else i
    h = high[(i,) if high.ndim == 1 else (i, j)]
    lo = low[(i,) if low.ndim == 1 else (i, j)]
    raise ValueError(f"{fn}: high < low at bar {bar}{where} (high={float(h)!r}, low={float(lo)!r}); high must be >= low: are "
                     f"the arguments swapped? The order is {fn}({', '.join(names)}, ...)")


_KERNELS: dict[str, Any] = {}


def _kernels() -> dict[str, Any]:
    # kernels import numba: loaded on first use (a module global, not an import per call: ~1 us)
    if not _KERNELS:
        from .kernels.indicators import KERNELS

        _KERNELS.update(KERNELS)
    return _KERNELS


def apply_kernel(name: str, inputs: Sequence[tuple[str, Any]], args: tuple = (), n_out: int = 1,
                 out: np.ndarray | None = None, out_names: Sequence[str] | None = None, fn: str | None = None) -> Any:
    """Run the same-shape kernel ``name`` on named inputs; results come back in the input's type.

    Parameters
    ----------
    name : key of ``nbtrade.kernels.indicators.KERNELS``.
    inputs : ``(argument name, value)`` pairs: numpy arrays of any real dtype and layout,
        lists, Series or DataFrames, 1-D or time x symbols, all the same shape.
    args : the kernel's scalar parameters, already validated.
    n_out : outputs the kernel writes.
    out : optional float64 array to write the (single) output into; it may be an input.
    out_names : names of several outputs (Series names).
    fn : the public function's name, for error messages (default ``name``).

    Returns
    -------
    One output, or a tuple of ``n_out``, shaped and typed like the first input.

    Policy (the same for every indicator and rolling statistic): a 1-D input runs the
    1-D kernel; a 2-D one with one column, or under :data:`PARALLEL_MIN_SIZE` values,
    runs the 1-D kernel column by column in this thread, a larger one the parallel
    2-D kernel. Row-major 2-D inputs are copied to Fortran order first. An ``out``
    that is row-major is filled through a Fortran buffer; one that overlaps an input
    gets that input copied first (kernels read inputs after writing outputs).
    Where the inputs hold both ``high`` and ``low``, ``high < low`` on any bar is an error.
    """
    names = [nm for nm, _ in inputs]
    if len(inputs) == 1:
        arr, wrapper = as_float_array(inputs[0][1], names[0])
        arrays = [arr]
    else:
        arrays, wrapper = as_float_arrays(inputs)
    if "high" in names and "low" in names:
        check_high_low(arrays, names, wrapper, fn or name)
    arrays = columns_contiguous(arrays)
    like = arrays[0]
    if out is None:
        outs = [empty_like(like) for _ in range(n_out)]
        target = None
    else:
        if n_out != 1:
            raise ValueError(f"out= is only supported for functions with one output, {fn or name} has {n_out}")
        target = check_out(out, like)
        if _strided_2d(target):
            outs = [empty_like(like)]
        else:
            outs = [target]
            arrays = [a.copy() if np.may_share_memory(target, a) else a for a in arrays]
    pair = _kernels()[name]
    if like.ndim == 1:
        pair.one(*arrays, *args, *outs)
    elif like.shape[1] == 1 or like.size < PARALLEL_MIN_SIZE:
        for j in range(like.shape[1]):
            pair.one(*[a[:, j] for a in arrays], *args, *[o[:, j] for o in outs])
    else:
        pair.many(*arrays, *args, *outs)
    if target is not None and outs[0] is not target:
        np.copyto(target, outs[0])
        outs = [target]
    if n_out == 1:
        return wrapper.wrap(outs[0])
    return tuple(wrapper.wrap(o, name=nm) for o, nm in zip(outs, out_names or [None] * n_out))
