"""The assertion replay cache, the revocation deny-list and purging: shared by every worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from certbound.store.records import Client
from certbound.store.schema import assertion_jti, opaque_tokens, revoked_tokens
from certbound.store.sql import SqlStore, open_store
from tests.store import _workers

T0 = datetime(2025, 3, 1, tzinfo=UTC)
LATER = datetime.now(UTC) + timedelta(hours=1)


async def test_remember_jti_once(store: SqlStore) -> None:
    assert await store.remember_jti("c1", "j1", LATER) is True
    assert await store.remember_jti("c1", "j1", LATER) is False
    assert await store.remember_jti("c1", "j1", LATER + timedelta(hours=1)) is False
    assert await store.remember_jti("c2", "j1", LATER) is True  # jti is per client (RFC 7523 iss)
    assert await store.remember_jti("c1", "j2", LATER) is True


async def test_remember_jti_across_two_workers(database_url: str) -> None:
    """Two engines (two pools) on one database stand in for two worker processes."""
    first, second = open_store(database_url), open_store(database_url)
    await first.migrate()
    try:
        assert await first.remember_jti("c1", "j1", LATER) is True
        assert await second.remember_jti("c1", "j1", LATER) is False
        assert await second.remember_jti("c1", "j2", LATER) is True
        assert await first.remember_jti("c1", "j2", LATER) is False

        # racing: for each jti exactly one of the two wins
        jtis = [f"race-{i}" for i in range(20)]
        outcomes = await asyncio.gather(
            *(s.remember_jti("c1", j, LATER) for j in jtis for s in (first, second))
        )
        assert sum(outcomes) == len(jtis)
        for i in range(len(jtis)):
            assert outcomes[2 * i] != outcomes[2 * i + 1]
    finally:
        await first.close()
        await second.close()


async def test_remember_jti_across_processes(store: SqlStore, database_url: str) -> None:
    jtis = [f"j{i}" for i in range(25)]
    won = _workers.run_together(_workers.remember_jtis, database_url, "c1", jtis, LATER, count=3)
    winners = sorted(j for per_worker in won for j in per_worker)
    assert winners == sorted(jtis)  # every jti won exactly once, over all workers
    assert await store.remember_jti("c1", "j0", LATER) is False


async def test_naive_expiry_is_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.remember_jti("c1", "j1", datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        await store.revoke_token("t", datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        await store.purge_expired(datetime(2030, 1, 1))


async def test_revoke_and_check(store: SqlStore) -> None:
    assert await store.is_revoked("t1") is False
    await store.revoke_token("t1", LATER)
    await store.revoke_token("t1", LATER)  # idempotent
    assert await store.is_revoked("t1") is True
    assert await store.is_revoked("t2") is False


async def test_purge_expired(store: SqlStore) -> None:
    await store.create_client(Client("c1", {}))
    for i, offset in enumerate((-10, 0, 10)):  # before, exactly at, after "now"
        expires = T0 + timedelta(seconds=offset)
        assert await store.remember_jti("c1", f"j{i}", expires)
        await store.revoke_token(f"r{i}", expires)
        async with store.engine.begin() as conn:
            await conn.execute(
                opaque_tokens.insert().values(
                    token_sha256=f"o{i}", client_id="c1", claims={"scope": "a"}, expires_at=expires
                )
            )

    assert await store.purge_expired(T0) == 6  # expires_at <= now goes
    assert await store.purge_expired(T0) == 0
    async with store.engine.connect() as conn:
        for table in (assertion_jti, revoked_tokens, opaque_tokens):
            assert await conn.scalar(select(func.count()).select_from(table)) == 1
    assert await store.is_revoked("r2") is True
    assert await store.is_revoked("r1") is False
    # a purged jti may be remembered again; a kept one still counts as a replay
    assert await store.remember_jti("c1", "j0", LATER) is True
    assert await store.remember_jti("c1", "j2", LATER) is False
