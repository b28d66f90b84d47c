"""Migrations: packaged, idempotent, safe from several processes at once, and in step with schema.py."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from certbound.store import migrate as migrations
from certbound.store.schema import metadata
from certbound.store.sql import SqlStore, open_store
from tests.store import _workers

TABLES = {
    "clients",
    "client_credentials",
    "signing_keys",
    "store_generation",
    "assertion_jti",
    "revoked_tokens",
    "opaque_tokens",
    "sessions",
    "cert_status",
    "cert_expiry_warnings",
    "users",
    "login_failures",
    "grants",
    "authorization_codes",
    "refresh_tokens",
    "grant_access_tokens",
    "consents",
    "pushed_requests",
    migrations.VERSION_TABLE,
}
CERT_TABLES = {"cert_status", "cert_expiry_warnings"}  # 0003


#: What 0004 adds.
LOGIN_TABLES = {
    "users",
    "login_failures",
    "grants",
    "authorization_codes",
    "refresh_tokens",
    "grant_access_tokens",
    "consents",
    "pushed_requests",
}


def _table_names(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def test_migrations_are_packaged() -> None:
    assert (migrations.MIGRATIONS_DIR / "env.py").is_file()
    assert migrations.head_revision() == "0005"


async def test_fresh_database_has_no_revision(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert await migrations.current_revision(store.engine) is None
    finally:
        await store.close()


async def test_migrate_twice_is_a_no_op(database_url: str) -> None:
    store = open_store(database_url)
    try:
        await store.migrate()
        assert await migrations.current_revision(store.engine) == migrations.head_revision()
        await store.migrate()
        async with store.engine.connect() as conn:
            assert await conn.run_sync(_table_names) == TABLES
            versions = (await conn.execute(text(f"SELECT * FROM {migrations.VERSION_TABLE}"))).all()  # noqa: S608
            generation_rows = (await conn.execute(text("SELECT id, value FROM store_generation"))).all()
        assert [tuple(v) for v in versions] == [("0005",)]
        assert [tuple(r) for r in generation_rows] == [(1, 0)]
        assert await store.generation() == 0
    finally:
        await store.close()


async def test_migrated_schema_matches_schema_py(store: Any) -> None:
    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "version_table": migrations.VERSION_TABLE}
        )
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_concurrent_migrate_from_several_processes(database_url: str) -> None:
    """Three fresh interpreters migrate one empty database at the same moment, like workers at boot."""
    _workers.run_together(_workers.migrate, database_url, count=3)
    store = open_store(database_url)
    try:
        assert await migrations.current_revision(store.engine) == migrations.head_revision()
        assert await store.generation() == 0
    finally:
        await store.close()


async def _downgrade(store: SqlStore, revision: str) -> None:
    def downgrade(connection: Connection) -> None:
        config = migrations.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(downgrade)


async def _tables(store: SqlStore) -> set[str]:
    async with store.engine.connect() as conn:
        return await conn.run_sync(_table_names)


async def test_0002_adds_sessions_to_a_database_in_use_and_comes_off_again(database_url: str) -> None:
    """An existing 0001 database keeps its rows through the upgrade; the downgrade removes only sessions."""
    store = open_store(database_url)
    try:
        await migrations.upgrade(store.engine, "0001")
        assert await migrations.current_revision(store.engine) == "0001"
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE store_generation SET value = 7 WHERE id = 1"))
        await migrations.upgrade(store.engine, "0002")
        assert await migrations.current_revision(store.engine) == "0002"
        assert await store.generation() == 7
        assert await _tables(store) == TABLES - CERT_TABLES - LOGIN_TABLES
        await _downgrade(store, "0001")
        assert await _tables(store) == TABLES - {"sessions"} - CERT_TABLES - LOGIN_TABLES
        assert await migrations.current_revision(store.engine) == "0001"
        assert await store.generation() == 7
    finally:
        await store.close()


async def test_0003_adds_cert_status_and_comes_off_again(database_url: str) -> None:
    store = open_store(database_url)
    try:
        await migrations.upgrade(store.engine, "0002")
        await migrations.upgrade(store.engine, "0003")
        assert await _tables(store) == TABLES - LOGIN_TABLES
        await _downgrade(store, "0002")
        assert await _tables(store) == TABLES - CERT_TABLES - LOGIN_TABLES
        assert await migrations.current_revision(store.engine) == "0002"
    finally:
        await store.close()


async def test_0004_adds_users_and_grants_and_comes_off_again(database_url: str) -> None:
    """A 0003 database keeps its sessions through the upgrade; the downgrade removes only 0004's tables."""
    store = open_store(database_url)
    try:
        await migrations.upgrade(store.engine, "0003")
        await migrations.upgrade(store.engine, "0004")
        assert await migrations.current_revision(store.engine) == "0004"
        assert await _tables(store) == TABLES
        await _downgrade(store, "0003")
        assert await _tables(store) == TABLES - LOGIN_TABLES
        assert await migrations.current_revision(store.engine) == "0003"
    finally:
        await store.close()
