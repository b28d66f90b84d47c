"""`RedisSessionStore` against the real Redis (127.0.0.1:6379): the store-independent behaviour of
`SessionStore` (the SQL store's tests, run again on Redis), and what is Redis's own: the TTL that drops
an unusable session, atomic rotation, nothing readable in Redis without the KEK, and another process
(a new client) finding the session."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from certbound.sealing import Sealer, SealingError
from certbound.sessions import SessionLimits
from certbound.sessions.redis_store import RedisSessionStore
from tests.sessions.conftest import OTHER_KEK, FakeClock

# the SQL store's tests that need nothing but a `sessions` fixture: they run here on Redis
from tests.sessions.test_sql_store import (  # noqa: F401
    test_a_lease_has_one_holder_at_a_time,
    test_a_pending_login_has_no_subject,
    test_bad_subjects_and_naive_times_are_refused,
    test_create_then_get_returns_the_same_session,
    test_delete,
    test_delete_by_subject,
    test_get_refuses_unknown_malformed_and_other_purpose,
    test_idle_timeout_and_touch,
    test_rotate_gives_a_new_id_and_the_old_one_stops_working,
    test_rotate_with_new_limits_starts_the_lifetime_again,
    test_the_absolute_expiry_holds_whatever_happens,
    test_the_session_is_a_copy_of_what_was_given,
    test_touch_never_reaches_past_the_absolute_expiry,
    test_update_cannot_move_a_session_to_another_purpose,
    test_update_never_changes_who_is_logged_in,
    test_update_writes_the_data_whole,
)

URL = "redis://127.0.0.1:6379/0"
HOUR = SessionLimits(timedelta(hours=1))


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own (other tests may share the Redis); its keys deleted after."""
    found = f"certbound-test:{secrets.token_hex(8)}:"
    yield found
    redis = Redis.from_url(URL)
    try:
        keys = [key async for key in redis.scan_iter(match=found + "*")]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()


@pytest.fixture
async def sessions(sealer: Sealer, clock: FakeClock, prefix: str) -> AsyncIterator[RedisSessionStore]:
    store = RedisSessionStore(Redis.from_url(URL), sealer, clock=clock, prefix=prefix)
    try:
        yield store
    finally:
        await store.aclose()


async def test_redis_drops_a_session_when_it_is_no_longer_usable(
    sessions: RedisSessionStore, prefix: str
) -> None:
    limits = SessionLimits(timedelta(hours=8), timedelta(minutes=30))
    created = await sessions.create(purpose="gateway:app", limits=limits, subject="alice")
    redis = Redis.from_url(URL)
    try:
        ttl = await redis.ttl(f"{prefix}s:{created.id_sha256}")
    finally:
        await redis.aclose()
    assert 0 < ttl <= 30 * 60  # the idle limit, the nearer deadline


async def test_of_two_concurrent_rotations_exactly_one_wins(sessions: RedisSessionStore) -> None:
    created = await sessions.create(purpose="gateway:app", limits=HOUR, subject="alice")
    results = await asyncio.gather(*(sessions.rotate(created) for _ in range(5)))
    assert sum(r is not None for r in results) == 1


async def test_redis_never_holds_the_id_or_the_data_in_clear(
    sessions: RedisSessionStore, prefix: str
) -> None:
    created = await sessions.create(purpose="gateway:app", limits=HOUR, subject="alice",
                                    data={"access_token": "the-secret-token"})  # fmt: skip
    redis = Redis.from_url(URL)
    try:
        dump = b""
        async for key in redis.scan_iter(match=prefix + "*"):
            if await redis.type(key) == b"hash":
                dump += key + b"".join((await redis.hgetall(key)).values())
    finally:
        await redis.aclose()
    assert b"the-secret-token" not in dump
    assert created.id.encode() not in dump


async def test_another_process_finds_the_session_and_another_kek_cannot_open_it(
    sessions: RedisSessionStore, sealer: Sealer, clock: FakeClock, prefix: str
) -> None:
    created = await sessions.create(purpose="gateway:app", limits=HOUR, subject="alice", data={"a": 1})
    again = RedisSessionStore(Redis.from_url(URL), sealer, clock=clock, prefix=prefix)
    stranger = RedisSessionStore(Redis.from_url(URL), Sealer(OTHER_KEK), clock=clock, prefix=prefix)
    try:
        assert await again.get(created.id, purpose="gateway:app") == created
        with pytest.raises(SealingError):
            await stranger.get(created.id, purpose="gateway:app")
    finally:
        await again.aclose()
        await stranger.aclose()
