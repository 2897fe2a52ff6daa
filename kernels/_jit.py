"""The one decorator every kernel uses: ``@jit`` (cached, nogil) and ``@pjit`` (parallel)."""
from __future__ import annotations

from numba import njit

#: Serial kernels: cached on disk so a second process starts fast; release the GIL
#: so Python threads can run kernels side by side.
jit = njit(cache=True, nogil=True)


def pjit(func):
    """Parallel kernels (``prange`` across columns)."""
    return njit(cache=True, nogil=True, parallel=True)(func)
