"""Run the Alembic migrations shipped in this package, from code, safely from many processes at once.

Several workers may start together and each call `upgrade`; they must not race to create the same
tables. PostgreSQL: the upgrade runs in one transaction holding a transaction-scoped advisory lock
(DDL is transactional there, so a failed upgrade leaves nothing behind). SQLite: the upgrade runs in
one BEGIN IMMEDIATE transaction, which holds the database's write lock. Either way the second worker
waits, then finds the schema at head and does nothing.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from certbound.store.engine import SQLITE_BUSY_TIMEOUT_MS, WRITE_OPTION

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
VERSION_TABLE = "certbound_alembic_version"  # not alembic_version: the database may be shared

#: Arbitrary, fixed key of the PostgreSQL advisory lock that serializes migrations ("certbmig").
PG_MIGRATION_LOCK_KEY = int.from_bytes(b"certbmig", "big")
#: How long a SQLite worker waits for another one's migration before giving up.
SQLITE_MIGRATION_WAIT_MS = 120_000


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations; no alembic.ini involved."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    """The newest revision this code ships."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database behind `engine` to `revision` (idempotent; concurrent callers serialize)."""
    async with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(select(func.pg_advisory_xact_lock(PG_MIGRATION_LOCK_KEY)))
            await conn.run_sync(_run_upgrade, revision)
            await conn.commit()
            return
        # SQLite: wait longer than usual for another worker's migration, then take the write lock.
        await conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_MIGRATION_WAIT_MS}")
        await conn.commit()
        try:
            await conn.execution_options(**{WRITE_OPTION: True})
            await conn.begin()
            await conn.run_sync(_run_upgrade, revision)
            await conn.commit()
        finally:
            await conn.rollback()
            await conn.execution_options(**{WRITE_OPTION: False})
            await conn.exec_driver_sql(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            await conn.commit()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it was never migrated)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_current_revision)


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()
