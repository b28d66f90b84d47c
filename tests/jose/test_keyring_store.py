"""KeyManager on the real store (SQLite file and PostgreSQL): start-up, races between workers,
rotation, and cache invalidation through the store's generation counter."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.jose.keyring import KeyManager
from certbound.jose.signer import SigningKeyError
from certbound.sealing import Sealer
from certbound.store.records import KeyState, SigningKey
from certbound.store.sql import SqlStore, open_store
from tests.store.conftest import database_url, pg_url, sqlite_url, store

__all__ = ["database_url", "pg_url", "sqlite_url", "store"]  # fixtures used here

HOUR = timedelta(hours=1)


@pytest.fixture
async def open_stores(database_url: str) -> AsyncIterator[Callable[[], SqlStore]]:
    """Opens further stores (other workers) on the same database; closes them afterwards."""
    opened: list[SqlStore] = []

    def open_one() -> SqlStore:
        opened.append(open_store(database_url))
        return opened[-1]

    yield open_one
    for one in opened:
        await one.close()


class BarrierStore:
    """A worker's store whose first listing waits for the other workers' first listing."""

    def __init__(self, inner: SqlStore, barrier: asyncio.Barrier) -> None:
        self._inner = inner
        self._barrier: asyncio.Barrier | None = barrier

    async def generation(self) -> int:
        return await self._inner.generation()

    async def add_signing_key(self, key: SigningKey) -> None:
        await self._inner.add_signing_key(key)

    async def list_signing_keys(self) -> list[SigningKey]:
        keys = await self._inner.list_signing_keys()
        barrier, self._barrier = self._barrier, None
        if barrier is not None:
            await barrier.wait()
        return keys

    async def set_signing_key_state(
        self, kid: str, state: KeyState, at: datetime, publish_until: datetime | None = None
    ) -> bool:
        return await self._inner.set_signing_key_state(kid, state, at, publish_until)


async def test_ensure_keys_round_trips_and_is_idempotent(
    store: SqlStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(store, sealer, alg="ES256")
    ring = await manager.ensure_keys(now)
    (stored,) = await store.list_signing_keys()
    assert stored.state == "active"
    assert stored.created_at == stored.activated_at == now
    assert ring.keys == (stored,)

    generation = await store.generation()
    again = await KeyManager(store, sealer).ensure_keys(now + HOUR)
    assert await store.generation() == generation
    assert again.active().kid == stored.kid

    token = again.active().sign({"sub": "x", "exp": now + HOUR}, typ="at+jwt")
    key_set = KeySet.import_key_set(again.jwks(now))  # type: ignore[arg-type]
    assert jwt.decode(token, key_set, algorithms=["ES256"]).claims["sub"] == "x"


async def test_a_restart_with_another_kek_is_a_clear_error(
    store: SqlStore, sealer: Sealer, now: datetime
) -> None:
    await KeyManager(store, sealer).ensure_keys(now)
    wrong = KeyManager(store, Sealer(b"w" * 32))
    with pytest.raises(SigningKeyError, match="another key-encryption key"):
        await wrong.ensure_keys(now)  # at start-up, not at the first token request
    assert wrong.current().jwks(now)["keys"]  # publishing needs no KEK
    assert len(await store.list_signing_keys()) == 1  # and nothing was written


@pytest.mark.parametrize("forced", [True, False], ids=["both-insert", "free-race"])
async def test_workers_starting_together_agree_on_one_active_key(
    open_stores: Callable[[], SqlStore], store: SqlStore, sealer: Sealer, now: datetime, forced: bool
) -> None:
    workers = 3
    barrier = asyncio.Barrier(workers)
    stores = [open_stores() for _ in range(workers)]
    managers = [
        KeyManager(BarrierStore(one, barrier) if forced else one, sealer, max_token_lifetime=HOUR)
        for one in stores
    ]
    await asyncio.gather(*(manager.ensure_keys(now) for manager in managers))

    keys = await store.list_signing_keys()
    actives = [k for k in keys if k.state == "active"]
    assert len(actives) == 1
    if forced:
        assert len(keys) == workers  # every worker inserted one; all but one were retired
    for retired in (k for k in keys if k.state == "retired"):
        assert retired.publish_until == now + HOUR
    rings = [await manager.keyring() for manager in managers]
    assert {ring.active().kid for ring in rings} == {actives[0].kid}


async def test_rotation_on_the_store(
    open_stores: Callable[[], SqlStore], store: SqlStore, sealer: Sealer, now: datetime
) -> None:
    worker = KeyManager(store, sealer)
    first = (await worker.ensure_keys(now)).active()
    admin = KeyManager(open_stores(), sealer, alg="EdDSA")  # `certbound keys rotate`, another process

    added = (await admin.rotate(now + HOUR, token_lifetime=HOUR)).added
    assert added is not None
    ring = await worker.keyring()  # the worker notices through the generation counter
    assert ring.active() is first
    assert [jwk["kid"] for jwk in ring.jwks(now + HOUR)["keys"]] == [first.kid, added]

    rotation = await admin.rotate(now + 2 * HOUR, token_lifetime=HOUR)
    assert rotation.activated == added
    assert rotation.retired == (first.kid,)
    ring = await worker.keyring()
    assert (ring.active().kid, ring.active().alg) == (added, "EdDSA")
    by_kid = {k.kid: k for k in await store.list_signing_keys()}
    assert by_kid[first.kid].state == "retired"
    assert by_kid[first.kid].retired_at == now + 2 * HOUR
    assert by_kid[first.kid].publish_until == now + 3 * HOUR
    assert by_kid[added].state == "active"
    assert by_kid[added].activated_at == now + 2 * HOUR
    assert [jwk["kid"] for jwk in ring.jwks(now + 3 * HOUR)["keys"]] == [added]


async def test_keyring_cache_follows_the_generation(
    open_stores: Callable[[], SqlStore], store: SqlStore, sealer: Sealer, now: datetime
) -> None:
    worker = KeyManager(store, sealer)
    ring = await worker.ensure_keys(now)
    assert await worker.keyring() is ring
    await KeyManager(open_stores(), sealer).rotate(now, token_lifetime=HOUR)
    refreshed = await worker.keyring()
    assert refreshed is not ring
    assert refreshed.generation == await store.generation()
    assert len(refreshed.keys) == 2
    assert await worker.keyring() is refreshed
