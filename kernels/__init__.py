"""Compiled kernels (numba + numpy only), installed as ``nbtrade.kernels``.

Contract shared by every kernel module:

* time runs along axis 0; 1-D kernels end in ``_1d_nb`` and take ``(n_bars,)``
  arrays, 2-D kernels end in ``_nb`` and take ``(n_bars, n_cols)`` arrays;
* inputs are float64 and contiguous, validated by the Python layer, never here;
* outputs are written into a caller-supplied ``out`` array (allocated by numpy
  in the Python layer: its large allocations get transparent huge pages);
* every kernel is ``@njit(cache=True, nogil=True)``; nothing compiles at import.
"""
from __future__ import annotations

import os
import tempfile


def _ensure_writable_cache_dir() -> None:
    """Point numba at a writable cache directory before numba is imported.

    Numba already falls back from the source tree to a per-user directory when
    the tree is read-only, but a ``NUMBA_CACHE_DIR`` that is set and not
    writable makes every cached kernel fail. Replace such a value with a
    per-user directory instead of failing.
    """
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if not configured:
        return
    try:
        os.makedirs(configured, exist_ok=True)
        if os.access(configured, os.W_OK | os.X_OK):
            return
    except OSError:
        pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    fallback = os.path.join(base, "nbtrade", "numba")
    try:
        os.makedirs(fallback, exist_ok=True)
    except OSError:
        fallback = os.path.join(tempfile.gettempdir(), f"nbtrade-numba-{os.getuid()}")
        os.makedirs(fallback, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = fallback


_ensure_writable_cache_dir()
# numba's OpenMP threads spin while they wait for work; on a busy (shared) machine
# every parallel kernel then stalls for a scheduler tick (~4-8 ms measured). Passive
# waiting costs nothing measurable when the machine is idle. A user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
