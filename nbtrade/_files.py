"""Atomic file writes: a temporary file beside the target, renamed into place when complete.

Readers see the old file or the new one, never a half-written one; a failure (or a
killed process) leaves the target untouched. The temporary file is named
``.<name>.tmp-<pid>-<random>`` in the target's folder (same filesystem, so the rename
is atomic); :func:`remove_stale` deletes those left by killed writers.

>>> with atomic_path("/tmp/out.csv") as tmp:        # doctest: +SKIP
...     write_somehow(tmp)
>>> atomic_write("/tmp/key.bin", b"...")             # doctest: +SKIP
"""
from __future__ import annotations

import glob
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_write", "temp_name", "remove_stale", "fsync_dir"]


def temp_name(path: str | os.PathLike) -> Path:
    """A fresh temporary path beside ``path`` (hidden, unique per process and call)."""
    p = Path(path)
    return p.with_name(f".{p.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def remove_stale(path: str | os.PathLike) -> int:
    """Delete temporary files of ``path`` left by writers killed before their rename.

    Only call it while no other writer of ``path`` can be running (e.g. under its lock).
    """
    p = Path(path)
    n = 0
    for stale in glob.glob(glob.escape(str(p.with_name(f".{p.name}.tmp-"))) + "*"):
        try:
            os.remove(stale)
            n += 1
        except FileNotFoundError:
            pass
    return n


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync the folder holding ``path`` (makes a rename survive power loss)."""
    fd = os.open(os.path.dirname(os.path.abspath(os.fspath(path))) or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike, *, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path``, on error it is removed.

    ``durable`` also fsyncs the file before the rename and the folder after it.
    """
    target = Path(path)
    tmp = temp_name(target)
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, target)
        if durable:
            fsync_dir(target)
    finally:
        if tmp.exists():
            try:
                tmp.unlink()
            except OSError:
                pass


def atomic_write(path: str | os.PathLike, data: bytes, *, durable: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_path(path, durable=durable) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)
