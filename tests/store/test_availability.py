"""Telling a database outage from a bug, on exceptions the real drivers raise."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from certbound.store.availability import describe, is_unavailable
from certbound.store.engine import create_engine
from tests.server.process.serverproc import free_port


async def test_postgresql_not_listening_is_unavailable() -> None:
    engine = create_engine(f"postgresql://postgres:pw-secret@127.0.0.1:{free_port()}/x")
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the driver raises
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert is_unavailable(caught.value)
    assert "pw-secret" not in describe(caught.value)


async def test_a_wrong_statement_is_not_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011
            async with engine.connect() as conn:
                await conn.execute(text("SELECT * FROM no_such_table"))
    finally:
        await engine.dispose()
    assert not is_unavailable(caught.value)


def test_a_locked_sqlite_database_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (v int)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        holder.close()
    assert is_unavailable(caught.value)


@pytest.mark.parametrize("exc", [ValueError("x"), KeyError("k"), RuntimeError("boom")])
def test_bugs_are_not_unavailable(exc: Exception) -> None:
    assert not is_unavailable(exc)


def test_the_cause_chain_is_followed() -> None:
    outer = RuntimeError("wrapped")
    outer.__cause__ = ConnectionResetError("reset by peer")
    assert is_unavailable(outer)


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


async def _pg_error(statement: str, *params: object) -> BaseException:
    """What the project's engine raises for `statement` on the real PostgreSQL (which is up)."""
    engine = create_engine(PG_URL)
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever the driver raises
            async with engine.connect() as conn:
                await conn.exec_driver_sql(statement, params)
    finally:
        await engine.dispose()
    return caught.value


async def test_a_value_the_driver_cannot_encode_is_not_unavailable() -> None:
    # asyncpg's DataError (an InterfaceError): bad input or a bug, not an outage; a 503 would make
    # the client retry for ever and hide the bug
    exc = await _pg_error("SELECT $1::int8", 2**70)
    assert not is_unavailable(exc)


async def test_a_statement_postgresql_refuses_is_not_unavailable() -> None:
    exc = await _pg_error("SELECT * FROM certbound_no_such_table")
    assert not is_unavailable(exc)


async def test_a_connection_used_by_two_operations_at_once_is_not_unavailable() -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        first = asyncio.ensure_future(conn.execute("SELECT pg_sleep(0.3)"))
        await asyncio.sleep(0.05)
        with pytest.raises(asyncpg.InterfaceError) as caught:  # "another operation is in progress"
            await conn.execute("SELECT 1")
        await first
    finally:
        await conn.close()
    assert not is_unavailable(caught.value)


async def test_a_closed_connection_is_unavailable() -> None:
    conn = await asyncpg.connect(PG_URL)
    await conn.close()
    with pytest.raises(asyncpg.InterfaceError) as caught:  # "connection is closed"
        await conn.execute("SELECT 1")
    assert is_unavailable(caught.value)


def test_a_missing_file_is_not_unavailable(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        (tmp_path / "no-such-file").read_bytes()
    assert not is_unavailable(caught.value)


def test_a_bug_while_handling_an_outage_is_not_unavailable() -> None:
    # a KeyError raised in an `except ConnectionError:` block is a bug in that block: a 500 with its
    # traceback, not a 503 that hides it (only an explicit `raise ... from` carries the outage over)
    try:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionError:
            {}["missing"]
    except KeyError as exc:
        bug = exc
    assert not is_unavailable(bug)
