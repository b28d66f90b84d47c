"""Whether anything was committed to a SQLite database since a moment, read without a query.

In WAL mode every process that uses a database shares its *wal-index* (the ``-shm`` file, mapped in
memory by each connection). Its first 96 bytes are two copies of the 48-byte wal-index header, which
every commit rewrites, by any connection of any process: the header holds the number of valid WAL
frames, a transaction counter and frame checksums, and a WAL reset changes its salts. So if the
header read now equals the header read at some earlier moment, no transaction has committed since
then (https://www.sqlite.org/walformat.html, section 2.1, and wal.c: the writer writes the second
copy, then the first; a reader that finds two different copies is looking at a write in progress).

This lets a reader keep the answer of an earlier query for as long as the header stays the same: the
deny-list read of introspection (``certbound.tokens.token_state``) costs ~10 µs of CPU on the wire,
reading the header well under one. It is only ever a reason to skip a query, never a reason to
believe something the database did not say: any doubt (a header being written, a database not in
WAL mode, a ``-shm`` that cannot be mapped) means "something may have changed", and the query runs.

What keeps it sound: the header is read *before* the query whose answer is kept; the database cannot
leave WAL mode while the reader's own connection is open (SQLite refuses with "database is locked"),
and that connection keeps the wal-index from being re-created, so the mapped file stays the live one.
"""

from __future__ import annotations

import mmap
import os
import sqlite3
from typing import Final

__all__ = ["CommitMarker"]

_HEADER: Final = 48  # sizeof(WalIndexHdr)
_IS_INIT: Final = 12  # offset of WalIndexHdr.isInit: 1 once the header is valid
_MAPPED: Final = 4096  # the wal-index is at least 32 KiB once a connection has opened it


class CommitMarker:
    """The wal-index header of one SQLite database, as bytes that change with every commit.

    Open it with the reader's own connection, after that connection has read once (which creates
    the wal-index). Not thread-safe; one per connection.
    """

    __slots__ = ("_map",)

    def __init__(self, mapped: mmap.mmap) -> None:
        self._map = mapped

    @classmethod
    def open(cls, conn: sqlite3.Connection, path: str) -> CommitMarker | None:
        """The marker of the database at `path`, or None when there is none to rely on (not WAL,
        an in-memory database, a ``-shm`` that cannot be mapped)."""
        row = conn.execute("PRAGMA journal_mode").fetchone()
        if row is None or str(row[0]).lower() != "wal" or not path or path == ":memory:":
            return None
        try:
            fd = os.open(f"{path}-shm", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            if os.fstat(fd).st_size < _MAPPED:
                return None
            return cls(mmap.mmap(fd, _MAPPED, mmap.MAP_SHARED, mmap.PROT_READ))
        except (OSError, ValueError):
            return None
        finally:
            os.close(fd)  # the mapping keeps the file

    def current(self) -> bytes | None:
        """The header now, or None while a commit is writing it (or before it was ever written)."""
        first = self._map[0:_HEADER]  # the copy the writer writes last, read first
        if first[_IS_INIT] != 1 or first != self._map[_HEADER : 2 * _HEADER]:
            return None
        return first

    def close(self) -> None:
        self._map.close()
