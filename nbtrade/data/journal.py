"""Crash-safe writes to an HDF5 file: a rollback journal and an fcntl lock.

HDF5 updates a file in place (superblock, object headers, chunk indexes and
chunks are rewritten at flush and close). A process killed in the middle
leaves metadata half written and the file may no longer open: appending with
bare h5py in a loop and SIGKILLing it, 29 of 30 files could not be opened
again ("file is already open for write ... h5clear"), the others risk torn
metadata. SWMR mode does not help here: after a killed SWMR writer the file
stays marked as open until ``h5clear`` runs, and SWMR cannot create new groups
(a new symbol) while readers are attached.

So every write transaction goes through :class:`JournaledFile`, a file object
handed to h5py's ``fileobj`` driver. Before it overwrites any byte that
existed when the transaction began, it copies the original 4 KiB page to
``<file>.journal`` (a rollback journal, as SQLite's). Bytes past the original
end need no copy: a rollback truncates them. The transaction commits by
unlinking the journal after HDF5 closed the file. On the next access, a
journal left behind by a dead writer is played back (original pages restored,
file truncated to its original size), which returns the file to the last
committed state byte for byte.

Write errors (ENOSPC, EIO) are never raised into HDF5: an exception raised
inside h5py's ``fileobj`` driver callbacks stays set while HDF5 goes on calling
the driver (flush, truncate at close), which gave ``SystemError ... returned a
result with an exception set`` and, once the half-closed ``h5py.File`` was
released from the traceback, a segfault (4 of 7 disk-full runs). So the first
failed write is kept in :attr:`JournaledFile.error`, every later write or
truncate becomes a no-op (nothing unjournaled reaches the file) and the
transaction raises that error after HDF5 closed the file, then rolls back.

Ordering makes this safe against a killed process (SIGKILL, OOM killer):
journal and file are written unbuffered, so a page reaches the OS before the
write that overwrites it. Against power loss, ``durable=True`` also fsyncs the
journal before overwriting and the file before committing.

Concurrency: ``<file>.lock`` is locked with ``flock``; a writer holds it
exclusively for its whole transaction, readers hold it shared while they read.
Readers therefore never see a half-written file, and a writer waits for
running reads to end (reads of a day take about a millisecond). The lock
file's first 8 bytes count write sessions (:class:`LockState`): a reader that
finds the count it saw before may keep using what it read from the file then.
"""
from __future__ import annotations

import errno
import fcntl
import os
import struct
import threading
import zlib
from contextlib import contextmanager
from typing import Iterator

PAGE = 4096
MAGIC = b"NBTJRNL1"
_HEADER = struct.Struct("<8sQI")  # magic, original size, crc32 of the first two
_RECORD = struct.Struct("<QII")  # offset, length, crc32 of the data


def journal_path(path: str) -> str:
    return path + ".journal"


def lock_path(path: str) -> str:
    return path + ".lock"


class JournaledFile:
    """Unbuffered file object for h5py's ``fileobj`` driver that journals overwrites."""

    def __init__(self, path: str, durable: bool = False):
        self.path = path
        self.durable = durable
        self._raw = open(path, "r+b", buffering=0)
        self._fd = self._raw.fileno()
        self.orig_size = os.fstat(self._fd).st_size
        self._saved: set[int] = set()
        #: First OSError of a write, truncate or journal write; the transaction must roll back.
        self.error: OSError | None = None
        try:
            jfd = os.open(journal_path(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError:
            self._raw.close()
            raise
        self._jfd = jfd
        try:
            head = struct.pack("<8sQ", MAGIC, self.orig_size)
            _write_all(jfd, _HEADER.pack(MAGIC, self.orig_size, zlib.crc32(head)))
            if durable:
                os.fsync(jfd)
                _fsync_dir(path)
        except OSError:  # e.g. a full disk: nothing was touched, leave no journal behind
            self._raw.close()
            os.close(jfd)
            os.unlink(journal_path(path))
            raise
        self.closed = False

    # --- file protocol used by h5py ------------------------------------------
    def seek(self, pos: int, whence: int = 0) -> int:
        return self._raw.seek(pos, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._raw.read(size)

    def readinto(self, buf) -> int:
        return self._raw.readinto(buf)

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        if self.error is not None:
            return size  # the transaction is lost already: write nothing more
        try:
            pos = self._raw.tell()
            if pos < self.orig_size and size:
                self._save(pos, min(pos + size, self.orig_size))
            view = memoryview(data).cast("B")
            done = 0
            while done < size:  # unbuffered writes may be short
                done += self._raw.write(view[done:])
        except OSError as exc:
            self.error = exc
        return size

    def truncate(self, size: int | None = None) -> int:
        if size is None:
            size = self._raw.tell()
        if self.error is not None:
            return size
        try:
            if size < self.orig_size:
                self._save(size, self.orig_size)
            return self._raw.truncate(size)
        except OSError as exc:
            self.error = exc
            return size

    def flush(self) -> None:
        pass  # unbuffered: every write is already with the OS

    # --- journal ----------------------------------------------------------
    def _save(self, lo: int, hi: int) -> None:
        """Copy original pages covering ``[lo, hi)`` to the journal, once each."""
        parts = []
        run_start = None
        last = (hi - 1) // PAGE
        for page in range(lo // PAGE, last + 2):
            fresh = page <= last and page not in self._saved
            if fresh:
                self._saved.add(page)
                if run_start is None:
                    run_start = page
            elif run_start is not None:  # one record per run of consecutive unsaved pages
                off = run_start * PAGE
                data = os.pread(self._fd, min(page * PAGE, self.orig_size) - off, off)
                parts.append(_RECORD.pack(off, len(data), zlib.crc32(data)) + data)
                run_start = None
        if parts:
            _write_all(self._jfd, b"".join(parts))
            if self.durable:
                os.fsync(self._jfd)

    def commit(self) -> None:
        """Make the transaction permanent: the file is complete, drop the journal.

        Raises the kept write error instead (the caller then rolls back).
        """
        if self.error is not None:
            raise self.error
        if self.durable:
            os.fsync(self._fd)
        self._close_handles()
        os.unlink(journal_path(self.path))
        if self.durable:
            _fsync_dir(self.path)

    def rollback(self) -> None:
        """Undo every write of this transaction."""
        self._close_handles()
        recover(self.path, durable=self.durable)

    def close(self) -> None:  # h5py may call close(); commit/rollback decide the outcome
        pass

    def _close_handles(self) -> None:
        if not self.closed:
            self.closed = True
            self._raw.close()
            os.close(self._jfd)


def recover(path: str, durable: bool = False) -> bool:
    """Play back a leftover journal of ``path``; True if one was found.

    The caller must hold the exclusive lock.
    """
    jpath = journal_path(path)
    try:
        with open(jpath, "rb") as fh:
            blob = fh.read()
    except FileNotFoundError:
        return False
    if len(blob) >= _HEADER.size:
        magic, orig_size, crc = _HEADER.unpack_from(blob, 0)
        valid = magic == MAGIC and crc == zlib.crc32(blob[:16])
    else:
        valid = False
    # An incomplete header means the writer died before touching the file.
    if valid and os.path.exists(path):
        with open(path, "r+b", buffering=0) as fh:
            fd = fh.fileno()
            pos = _HEADER.size
            while pos + _RECORD.size <= len(blob):
                off, length, crc = _RECORD.unpack_from(blob, pos)
                data = blob[pos + _RECORD.size:pos + _RECORD.size + length]
                if len(data) != length or zlib.crc32(data) != crc:
                    break  # torn record: its overwrite never happened
                view = memoryview(data)
                while view:
                    n = os.pwrite(fd, view, off)
                    view, off = view[n:], off + n
                pos += _RECORD.size + length
            os.ftruncate(fd, orig_size)
            if durable:
                os.fsync(fd)
    os.unlink(jpath)
    if durable:
        _fsync_dir(path)
    return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: errno of a folder or filesystem we may read but not write: permission denied, read-only filesystem.
_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)
_held = threading.local()  # paths this thread holds a lock on (to refuse a self-deadlock)


class LockState:
    """What a lock holder knows: the file's write ``generation`` (None without a readable lock file).

    Every exclusive lock bumps the counter kept in the lock file's first 8 bytes
    as soon as it is taken, before the file can change (so also for a writer that
    is then killed, and for a journal played back). A reader holding the shared
    lock that sees the generation it saw before knows the file is byte for byte
    the one it read then, and may reuse what it kept from it.
    """

    __slots__ = ("generation",)

    def __init__(self, generation: int | None = None):
        self.generation = generation


_GEN = struct.Struct("<Q")


def _read_generation(fd: int) -> int:
    raw = os.pread(fd, _GEN.size, 0)
    return _GEN.unpack(raw)[0] if len(raw) == _GEN.size else 0


def _bump_generation(fd: int) -> int:
    gen = (_read_generation(fd) + 1) % (1 << 64)
    os.pwrite(fd, _GEN.pack(gen), 0)
    return gen


@contextmanager
def locked(path: str, exclusive: bool, durable: bool = False) -> Iterator[LockState]:
    """Hold ``<path>.lock`` (flock, shared or exclusive); recovers a dead writer's journal.

    Yields a :class:`LockState`. Raises ``RuntimeError`` instead of deadlocking
    when this thread already holds a lock on ``path`` and asks for the exclusive
    one (a write inside a read session).
    """
    held = _held.__dict__.setdefault("paths", {})
    shared, excl = held.get(path, (0, 0))
    if excl or (exclusive and shared):
        raise RuntimeError(f"this thread already holds a lock on {path} (inside a Store.reader, iter_blocks "
                           "or transaction block): use the block's own reader/writer, another access would "
                           "deadlock")
    held[path] = (shared + (not exclusive), excl + exclusive)
    try:
        with _locked(path, exclusive, durable) as state:
            yield state
    finally:
        s_, e_ = held[path]
        held[path] = (s_ - (not exclusive), e_ - exclusive)


@contextmanager
def _locked(path: str, exclusive: bool, durable: bool) -> Iterator[LockState]:
    writable = True
    try:
        fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in _READ_ONLY:
            raise
        if exclusive:
            raise OSError(exc.errno, f"cannot write to the store at {path}: {exc.strerror} (a read-only "
                                     "folder or filesystem); reading works, writing needs a writable folder") \
                from None
        try:  # a read-only folder: lock an existing lock file, or read unlocked (no writer can write here)
            fd = os.open(lock_path(path), os.O_RDONLY)
            writable = False
        except FileNotFoundError:
            yield LockState()
            return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        if exclusive:
            _bump_generation(fd)
        while os.path.exists(journal_path(path)):
            # A journal seen under the lock belongs to a writer that died.
            if exclusive:
                recover(path, durable=durable)
            else:  # flock upgrades are not atomic: look again after each switch
                fcntl.flock(fd, fcntl.LOCK_EX)
                if writable:
                    _bump_generation(fd)
                recover(path, durable=durable)
                fcntl.flock(fd, fcntl.LOCK_SH)
        yield LockState(_read_generation(fd) if writable or exclusive else None)
    finally:
        os.close(fd)  # releases the lock
