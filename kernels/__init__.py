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

import hashlib
import os
import sys
import tempfile


def _sources_digest() -> str:
    """Digest of every kernel source file: it names the cache directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.blake2b(digest_size=6)
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            h.update(name.encode())
            with open(os.path.join(here, name), "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def _configure_cache_dir() -> None:
    """Choose numba's cache directory before any kernel compiles.

    Numba invalidates a cached function when its own file changes, not when a
    kernel it calls (or inlines) from another file does, which would leave stale
    machine code after an edit or an upgrade. Unless the user set
    ``NUMBA_CACHE_DIR`` to a writable folder, kernels cache under a per-user
    folder named by a digest of all kernel sources, so any change starts a fresh
    cache. A ``NUMBA_CACHE_DIR`` that is set but not writable is replaced the
    same way instead of failing.
    """
    configured = os.environ.get("NUMBA_CACHE_DIR")
    if configured:
        try:
            os.makedirs(configured, exist_ok=True)
            if os.access(configured, os.W_OK | os.X_OK):
                return
        except OSError:
            pass
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    target = os.path.join(base, "nbtrade", "numba", _sources_digest())
    try:
        os.makedirs(target, exist_ok=True)
        if not os.access(target, os.W_OK | os.X_OK):
            raise OSError(target)
    except OSError:
        target = os.path.join(tempfile.gettempdir(), f"nbtrade-numba-{os.getuid()}", _sources_digest())
        os.makedirs(target, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = target
    numba = sys.modules.get("numba")
    if numba is not None:  # imported before nbtrade: its config was already read
        numba.core.config.CACHE_DIR = target


_configure_cache_dir()
# numba's OpenMP threads spin while they wait for work; on a busy (shared) machine
# every parallel kernel then stalls for a scheduler tick (~4-8 ms measured). Passive
# waiting costs nothing measurable when the machine is idle. A user's setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
