"""The one decorator every kernel uses: ``@jit`` (cached, nogil) and ``@pjit`` (parallel)."""
from __future__ import annotations

from numba import njit

#: Serial kernels: cached on disk so a second process starts fast; release the GIL
#: so Python threads can run kernels side by side. ``error_model="numpy"``: a
#: division by zero gives inf/nan as in numpy instead of a per-division check that
#: raises (the check costs ~7 % on KAMA's loop); wrappers validate inputs instead.
jit = njit(cache=True, nogil=True, error_model="numpy")


def pjit(func):
    """Parallel kernels (``prange`` across columns)."""
    return njit(cache=True, nogil=True, parallel=True, error_model="numpy")(func)


#: Small helpers inlined into their callers at numba IR level (order handling in the engine).
#: Numba's cache tracks each function's own file only: after editing an inlined helper,
#: touch the caller's file or clear the cache, or the caller keeps the old code.
ijit = njit(inline="always", cache=True, nogil=True, error_model="numpy")

#: Recursions that may fuse ``a * b + c`` into one FMA ("contract" only; no other fast-math):
#: a shorter dependency chain and, as the TA-Lib wheel is built the same way, bit-identical
#: values to TA-Lib's EMA on x86-64.
jit_fma = njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})

#: Order handlers called from the bar loops, once per order: compiled without NRT reference
#: counting (``_nrt=False``; they never allocate). Otherwise each array argument costs an
#: atomic incref at entry and a decref at every exit: 7 arrays made ~80 % of a rejected
#: order's cost (90 -> 23 ns measured). Arguments are borrowed from the caller, which keeps
#: them alive for the call.
jit_borrow = njit(cache=True, nogil=True, error_model="numpy", _nrt=False)

#: Loops that take a user's compiled function as an argument (``backtest_callback``): not cached.
#: Numba cannot reuse such entries across processes (each run compiled and appended anew), and
#: once it drops the function objects behind old entries, saving fails with ``ReferenceError``.
jit_uncached = njit(nogil=True, error_model="numpy")
