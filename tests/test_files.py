"""nbtrade._files: the one atomic-write utility (used by the cache, the store and file exports)."""
from __future__ import annotations

import os

import pytest

from nbtrade._files import atomic_path, atomic_write, remove_stale, temp_name


def test_atomic_write_replaces_whole(tmp_path):
    p = tmp_path / "a.bin"
    p.write_bytes(b"old")
    atomic_write(p, b"new contents", durable=True)
    assert p.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failure_leaves_target_and_no_temporary(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(p) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old" and os.listdir(tmp_path) == ["a.csv"]


def test_stale_temporaries_are_removed(tmp_path):
    p = tmp_path / "x.h5"
    stale = temp_name(p)
    stale.write_bytes(b"killed writer")
    other = tmp_path / ".y.h5.tmp-1-abcd"
    other.write_bytes(b"")
    assert stale.name.startswith(".x.h5.tmp-") and remove_stale(p) == 1
    assert not stale.exists() and other.exists()


def test_users_share_it():
    import inspect

    from nbtrade import cache
    from nbtrade.data import io, store

    for mod in (cache, io, store):
        src = inspect.getsource(mod)
        assert "os.replace(tmp" not in src.replace("os.replace(tmp[c]", ""), mod.__name__
        assert "nbtrade._files" in src or "._files import" in src
