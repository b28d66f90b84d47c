"""The generation counter: bumped by every change to clients, credentials or keys; never by reads."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from certbound.store.interface import ClientExists, SigningKeyExists
from certbound.store.records import Client, Credential, SigningKey
from certbound.store.sql import SqlStore, open_store

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", "next", {"kty": "EC", "kid": kid}, "sealed", created_at=T0)


async def test_every_change_bumps_and_reads_do_not(store: SqlStore) -> None:
    seen = [await store.generation()]

    async def changed() -> None:
        seen.append(await store.generation())
        assert seen[-1] == seen[-2] + 1, seen

    async def unchanged() -> None:
        seen.append(await store.generation())
        assert seen[-1] == seen[-2], seen

    async def reads() -> None:
        await store.get_client("c1")
        await store.list_clients()
        await store.list_signing_keys()
        await store.generation()
        await store.is_revoked("t")
        await unchanged()

    await store.create_client(Client("c1", {}, credentials=(Credential("k1", "c1", "jwk", "{}"),)))
    await changed()
    await reads()
    await store.replace_client(Client("c1", {"a": 1}))
    await changed()
    await store.sync_file_clients([Client("f1", {})])
    await changed()
    await store.sync_file_clients([Client("f1", {})])
    await unchanged()
    await store.sync_file_clients([])
    await changed()
    await store.add_signing_key(key("s1"))
    await changed()
    assert await store.set_signing_key_state("s1", "active", T0) is True
    await changed()
    assert await store.delete_client("c1") is True
    await changed()
    await reads()

    # no-op and failed writes leave it alone
    assert await store.delete_client("c1") is False
    assert await store.replace_client(Client("c1", {})) is False
    assert await store.set_signing_key_state("missing", "active", T0) is False
    await store.create_client(Client("c2", {}))
    await changed()
    with pytest.raises(ClientExists):
        await store.create_client(Client("c2", {}))
    with pytest.raises(SigningKeyExists):
        await store.add_signing_key(key("s1"))
    with pytest.raises(IntegrityError):
        await store.create_client(Client("c3", {}, credentials=(Credential("x", "c3", "jwk", "{}"),) * 2))
    await unchanged()

    # the shared short-lived state is not what caches depend on
    await store.remember_jti("c2", "j", T0)
    await store.revoke_token("t", T0)
    await store.purge_expired(T0 + timedelta(days=1))
    await unchanged()


async def test_generation_is_shared_between_workers(database_url: str) -> None:
    """A change made through one engine is what another engine's generation() reports."""
    first, second = open_store(database_url), open_store(database_url)
    await first.migrate()
    try:
        before = await second.generation()
        await first.create_client(Client("c1", {}))
        assert await second.generation() == before + 1
    finally:
        await first.close()
        await second.close()


async def test_concurrent_writes_from_two_workers_all_land(database_url: str) -> None:
    """Writers on two engines queue (SQLite: BEGIN IMMEDIATE + busy timeout; PostgreSQL: the counter's
    row lock) instead of failing, and each change is counted once."""
    first, second = open_store(database_url), open_store(database_url)
    await first.migrate()
    try:
        before = await first.generation()
        await asyncio.gather(
            *(
                (first if i % 2 else second).create_client(
                    Client(f"c{i}", {}, credentials=(Credential(f"k{i}", f"c{i}", "jwk", "{}"),))
                )
                for i in range(12)
            ),
            first.sync_file_clients([Client("f1", {})]),
            second.add_signing_key(key("s1")),
        )
        assert await second.generation() == before + 14
        assert len(await first.list_clients()) == 13
    finally:
        await first.close()
        await second.close()
