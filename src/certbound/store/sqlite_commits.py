"""Whether anything was committed to a SQLite database since a moment, read without a query.

In WAL mode every process that uses a database shares its *wal-index* (the ``-shm`` file, mapped in
memory by each connection). Its first 96 bytes are two copies of the 48-byte wal-index header, which
every commit rewrites, by any connection of any process: the header holds the number of valid WAL
frames, a transaction counter and frame checksums, and a WAL reset changes its salts. So if the
header read now equals the header read at some earlier moment, no transaction has committed since
then (https://www.sqlite.org/walformat.html, section 2.1, and wal.c: the writer writes the second
copy, then the first; a reader that finds two different copies is looking at a write in progress).

This lets a reader keep the answer of an earlier query for as long as the header stays the same:
comparing 48 bytes of shared memory costs a small fraction of the deny-list query of introspection
(``certbound.store.token_state``; docs/performance.md). It is only ever a reason to skip a query,
never a reason to believe something the database did not say: any doubt (a header being written, a
database not in WAL mode, a ``-shm`` that is not the one SQLite has open here) means "something may
have changed", and the query runs.

Two hazards, and what keeps them away:

- **SQLite's locks.** SQLite marks the wal-index as in use with POSIX ``fcntl`` locks on ``-shm``,
  and POSIX drops *all* of a process's locks on a file when the process closes *any* descriptor of
  it. Closing ours would let the next process that opens the database take the wal-index for
  unused, truncate and rebuild it under the other processes' feet (SIGBUS in their SQLite). So a
  ``-shm`` is opened and mapped at most once per process and never closed (a descriptor and one page
  per database file, for the life of the process).
- **The right file.** The ``-shm`` mapped is the one this process's SQLite has open (same device and
  inode as one of its descriptors, found through ``/proc/self/fd``), not whatever sits next to the
  configured path (a stale ``-shm`` beside a symlink). Where that cannot be checked, no marker.

The database cannot leave WAL mode while the reader's own connection is open (SQLite refuses with
"database is locked"), and that connection's open wal-index keeps the mapped file the live one.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
import threading
from typing import Final

__all__ = ["CommitMarker"]

_HEADER: Final = 48  # sizeof(WalIndexHdr)
_IS_INIT: Final = 12  # offset of WalIndexHdr.isInit: 1 once the header is valid
_MAPPED: Final = 4096  # the wal-index is at least 32 KiB once a connection has opened it

#: Every ``-shm`` this process mapped, by (device, inode); never closed (see the module docstring).
_mapped: dict[tuple[int, int], mmap.mmap] = {}
_kept_open: list[int] = []  # descriptors opened here: closing one would drop SQLite's locks
_mapping = threading.Lock()


class CommitMarker:
    """The wal-index header of one SQLite database, as bytes that change with every commit.

    Open it with the reader's own connection, after that connection has read once (which opens
    the wal-index). Reading is safe from any thread.
    """

    __slots__ = ("_map",)

    def __init__(self, mapped: mmap.mmap) -> None:
        self._map = mapped

    @classmethod
    def open(cls, conn: sqlite3.Connection, path: str) -> CommitMarker | None:
        """The marker of `conn`'s main database, or None when there is none to rely on (not WAL, in
        memory, a ``-shm`` this process's SQLite does not have open)."""
        row = conn.execute("PRAGMA journal_mode").fetchone()
        if row is None or str(row[0]).lower() != "wal":
            return None
        files = {name: file for _, name, file in conn.execute("PRAGMA database_list").fetchall()}
        database = files.get("main") or ""
        if not database:  # in memory, or a temporary database
            return None
        shm = os.path.realpath(database) + "-shm"
        try:
            found = os.stat(shm)
        except OSError:
            return None
        if found.st_size < _MAPPED or not _open_in_this_process(found):
            return None
        mapped = _map_once(shm, (found.st_dev, found.st_ino))
        return None if mapped is None else cls(mapped)

    def current(self) -> bytes | None:
        """The header now, or None while a commit is writing it (or before it was ever written)."""
        first = self._map[0:_HEADER]  # the copy the writer writes last, read first
        if first[_IS_INIT] != 1 or first != self._map[_HEADER : 2 * _HEADER]:
            return None
        return first


def _open_in_this_process(file: os.stat_result) -> bool:
    """Whether one of this process's descriptors is `file` (SQLite's own, for a ``-shm``)."""
    try:
        entries = list(os.scandir("/proc/self/fd"))
    except OSError:  # no /proc: cannot tell, so no marker
        return False
    for entry in entries:
        try:
            target = os.stat(entry.path)  # follows the link; opens nothing
        except OSError:
            continue
        if (target.st_dev, target.st_ino) == (file.st_dev, file.st_ino):
            return True
    return False


def _map_once(shm: str, key: tuple[int, int]) -> mmap.mmap | None:
    with _mapping:
        mapped = _mapped.get(key)
        if mapped is not None:
            return mapped
        try:
            fd = os.open(shm, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        _kept_open.append(fd)  # even if what follows fails
        try:
            opened = os.fstat(fd)
            if (opened.st_dev, opened.st_ino) != key:  # replaced since the check: not SQLite's
                return None
            mapped = mmap.mmap(fd, _MAPPED, mmap.MAP_SHARED, mmap.PROT_READ)
        except (OSError, ValueError):
            return None
        _mapped[key] = mapped
        return mapped
