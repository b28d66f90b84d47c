"""The hot-path readers of the deny-list and opaque tokens agree with the store, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certbound.store.interface import OpaqueToken
from certbound.store.records import Client
from certbound.store.sql import SqlStore
from certbound.store.token_state import PostgresTokenState, SqliteTokenState, StoreTokenState

LATER = datetime.now(UTC).replace(microsecond=123456) + timedelta(hours=1)


@pytest.fixture
async def store(store: SqlStore) -> SqlStore:
    """The two-backend store of tests/store, with the clients "a" and "b" that tokens belong to."""
    for client_id in ("a", "b"):
        await store.create_client(Client(client_id, {"scope": "read"}))
    return store


async def test_fast_reader_matches_the_store(store: SqlStore) -> None:
    fast = store.token_state()
    assert isinstance(fast, SqliteTokenState if store.dialect == "sqlite" else PostgresTokenState)
    slow = StoreTokenState(store)
    try:
        for reader in (fast, slow):
            assert await reader.is_revoked("jti-1") is False
            assert await reader.opaque_token("00" * 32) is None
        await store.revoke_token("jti-1", LATER)
        token = OpaqueToken("ab" * 32, "a", {"exp": 1, "scope": "read", "nested": {"x": [1, "é"]}}, LATER)
        await store.add_opaque_token(token)
        for reader in (fast, slow):
            assert await reader.is_revoked("jti-1") is True
            assert await reader.is_revoked("jti-2") is False
            assert await reader.opaque_token("ab" * 32) == token
        assert await store.revoke_opaque_token("ab" * 32) is True
        assert await store.revoke_opaque_token("cd" * 32) is False
        for reader in (fast, slow):
            found = await reader.opaque_token("ab" * 32)
            assert found is not None
            assert found.revoked is True
    finally:
        await fast.close()
        await fast.close()  # idempotent


async def test_sqlite_reader_cannot_write(store: SqlStore) -> None:
    if store.dialect != "sqlite":
        return
    reader = store.token_state()
    assert isinstance(reader, SqliteTokenState)
    await reader.is_revoked("x")
    conn = reader._connection()
    try:
        conn.execute("DELETE FROM revoked_tokens")
    except Exception as exc:
        assert "readonly" in str(exc).lower()  # noqa: PT017
    else:
        raise AssertionError("the token-state connection could write")
    finally:
        await reader.close()


async def test_deleting_a_client_drops_its_opaque_tokens(store: SqlStore) -> None:
    await store.add_opaque_token(OpaqueToken("ef" * 32, "b", {"exp": 1}, LATER))
    await store.delete_client("b")
    assert await store.get_opaque_token("ef" * 32) is None


async def test_postgres_reader_reconnects_after_a_broken_connection(store: SqlStore) -> None:
    if store.dialect != "postgresql":
        return
    reader = store.token_state()
    assert isinstance(reader, PostgresTokenState)
    try:
        assert await reader.is_revoked("x") is False
        for prepared in reader._slots:
            if prepared is not None:
                prepared.conn.terminate()
        failures = 0
        for _ in range(8):  # every slot may hold a dead connection: each fails once, then reconnects
            try:
                assert await reader.is_revoked("x") is False
            except Exception:
                failures += 1
        assert failures <= 1
        assert await reader.is_revoked("x") is False
    finally:
        await reader.close()
