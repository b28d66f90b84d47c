"""Telling a database outage from a bug, on exceptions the real drivers raise."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
