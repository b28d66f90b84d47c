"""`SqlSessionStore` on both backends: lifecycle, expiry on a fake clock, rotation, and what is at rest."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

from certbound.sealing import Sealer, SealingError
from certbound.sessions import Session, SessionLimits, SqlSessionStore
from certbound.sessions.session import new_session_id
from certbound.store.schema import sessions as sessions_table
from certbound.store.sql import SqlStore, open_store
from tests.sessions.conftest import OTHER_KEK, START, FakeClock

HOUR = SessionLimits(absolute=timedelta(hours=1))
EIGHT_HOURS_IDLE_30 = SessionLimits(absolute=timedelta(hours=8), idle=timedelta(minutes=30))
TOKENS = {"access_token": "at-5f1c9e7d-marker", "refresh_token": "rt-0b3a-marker", "expires_in": 300}


async def _rows(store: SqlStore) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(sessions_table)) or 0)


async def test_create_then_get_returns_the_same_session(sessions: SqlSessionStore) -> None:
    created = await sessions.create(
        purpose="gateway:orders",
        limits=EIGHT_HOURS_IDLE_30,
        subject="alice",
        auth_time=START - timedelta(seconds=5),
        data=TOKENS,
    )
    assert created.created_at == created.last_seen_at == START
    assert created.expires_at == START + timedelta(hours=8)
    assert created.idle_timeout == timedelta(minutes=30)
    assert await sessions.get(created.id, purpose="gateway:orders") == created


async def test_a_pending_login_has_no_subject(sessions: SqlSessionStore) -> None:
    pending = await sessions.create(purpose="as-login", limits=HOUR, data={"state": "s", "nonce": "n"})
    found = await sessions.get(pending.id, purpose="as-login")
    assert found is not None
    assert found.subject is None
    assert found.auth_time is None
    assert found.data == {"state": "s", "nonce": "n"}


async def test_get_refuses_unknown_malformed_and_other_purpose(sessions: SqlSessionStore) -> None:
    created = await sessions.create(purpose="gateway:orders", limits=HOUR, subject="alice")
    assert await sessions.get(new_session_id(), purpose="gateway:orders") is None
    assert await sessions.get("not an id", purpose="gateway:orders") is None
    assert await sessions.get(created.id_sha256, purpose="gateway:orders") is None  # the digest is no key
    assert await sessions.get(created.id, purpose="gateway:billing") is None


async def test_the_absolute_expiry_holds_whatever_happens(
    sessions: SqlSessionStore, clock: FakeClock
) -> None:
    created = await sessions.create(purpose="as-login", limits=HOUR, subject="alice")
    clock.advance(3599)
    assert await sessions.touch(created) is not None
    assert await sessions.get(created.id, purpose="as-login") is not None
    clock.advance(1)
    assert await sessions.get(created.id, purpose="as-login") is None
    assert await sessions.touch(created) is None
    assert await sessions.update(dataclasses.replace(created, data={"x": 1})) is None


async def test_idle_timeout_and_touch(sessions: SqlSessionStore, clock: FakeClock) -> None:
    created = await sessions.create(purpose="as-login", limits=EIGHT_HOURS_IDLE_30, subject="alice")
    clock.advance(29 * 60)
    touched = await sessions.touch(created)
    assert touched is not None
    assert touched.last_seen_at == clock.now
    clock.advance(29 * 60)  # 58 minutes in, 29 since the touch
    found = await sessions.get(created.id, purpose="as-login")
    assert found is not None
    assert found.last_seen_at == touched.last_seen_at
    assert found.valid_until == touched.last_seen_at + timedelta(minutes=30)
    clock.advance(60)  # 30 minutes idle
    assert await sessions.get(created.id, purpose="as-login") is None
    assert await sessions.touch(found) is None  # an idle-expired session is not revived by activity


async def test_touch_never_reaches_past_the_absolute_expiry(
    sessions: SqlSessionStore, clock: FakeClock
) -> None:
    limits = SessionLimits(absolute=timedelta(minutes=40), idle=timedelta(minutes=30))
    created = await sessions.create(purpose="as-login", limits=limits)
    clock.advance(25 * 60)
    touched = await sessions.touch(created)
    assert touched is not None
    assert touched.valid_until == created.expires_at
    clock.advance(15 * 60)
    assert await sessions.get(created.id, purpose="as-login") is None


async def test_update_writes_the_data_whole(sessions: SqlSessionStore, clock: FakeClock) -> None:
    created = await sessions.create(
        purpose="as-login",
        limits=EIGHT_HOURS_IDLE_30,
        subject="alice",
        auth_time=START,
        data={"a": 1, "b": 2},
    )
    clock.advance(60)
    written = await sessions.update(dataclasses.replace(created, data={"b": 3}))
    assert written is not None
    assert written.last_seen_at == clock.now
    found = await sessions.get(created.id, purpose="as-login")
    assert found == written
    assert found.data == {"b": 3}  # replaced, not merged
    assert (found.subject, found.auth_time) == ("alice", START)


@pytest.mark.parametrize(
    "change",
    [{"subject": "bob"}, {"subject": None}, {"auth_time": START + timedelta(seconds=1)}, {"auth_time": None}],
)
async def test_update_never_changes_who_is_logged_in(
    sessions: SqlSessionStore, change: dict[str, object]
) -> None:
    """A login (or step-up) takes a new id: an update that would change the subject in place is a bug."""
    created = await sessions.create(
        purpose="as-login", limits=HOUR, subject="alice", auth_time=START, data={"a": 1}
    )
    with pytest.raises(ValueError, match=r"rotate\(\)"):
        await sessions.update(dataclasses.replace(created, data={"a": 2}, **change))  # type: ignore[arg-type]
    assert await sessions.get(created.id, purpose="as-login") == created


async def test_update_and_touch_never_bring_a_deleted_session_back(
    store: SqlStore, sessions: SqlSessionStore
) -> None:
    created = await sessions.create(purpose="as-login", limits=HOUR, subject="alice")
    assert await sessions.delete(created.id)
    assert await sessions.update(dataclasses.replace(created, data={"late": True})) is None
    assert await sessions.touch(created) is None
    assert await _rows(store) == 0


async def test_update_cannot_move_a_session_to_another_purpose(sessions: SqlSessionStore) -> None:
    created = await sessions.create(purpose="gateway:orders", limits=HOUR, subject="alice")
    assert await sessions.update(dataclasses.replace(created, purpose="gateway:billing")) is None
    assert await sessions.get(created.id, purpose="gateway:billing") is None
    assert await sessions.get(created.id, purpose="gateway:orders") == created


async def test_rotate_gives_a_new_id_and_the_old_one_stops_working(
    sessions: SqlSessionStore, clock: FakeClock
) -> None:
    pending = await sessions.create(purpose="as-login", limits=HOUR, data={"return_to": "/authorize?x"})
    clock.advance(10)
    login = dataclasses.replace(pending, subject="alice", auth_time=clock.now)
    rotated = await sessions.rotate(login)
    assert rotated is not None
    assert rotated.id != pending.id
    assert await sessions.get(pending.id, purpose="as-login") is None
    found = await sessions.get(rotated.id, purpose="as-login")
    assert found == rotated
    assert found.data == pending.data
    assert (found.subject, found.auth_time) == ("alice", clock.now)
    assert found.created_at == found.last_seen_at == clock.now
    assert found.expires_at == pending.expires_at  # without new limits, the old deadlines stay


async def test_rotate_with_new_limits_starts_the_lifetime_again(
    sessions: SqlSessionStore, clock: FakeClock
) -> None:
    pending = await sessions.create(purpose="as-login", limits=SessionLimits(timedelta(minutes=10)))
    clock.advance(300)
    rotated = await sessions.rotate(
        dataclasses.replace(pending, subject="alice", auth_time=clock.now), limits=EIGHT_HOURS_IDLE_30
    )
    assert rotated is not None
    assert rotated.expires_at == clock.now + timedelta(hours=8)
    assert rotated.idle_timeout == timedelta(minutes=30)
    assert await sessions.get(rotated.id, purpose="as-login") == rotated


async def test_rotate_of_a_gone_or_expired_session_does_nothing(
    store: SqlStore, sessions: SqlSessionStore, clock: FakeClock
) -> None:
    deleted = await sessions.create(purpose="as-login", limits=HOUR)
    await sessions.delete(deleted.id)
    assert await sessions.rotate(deleted) is None
    expired = await sessions.create(purpose="as-login", limits=HOUR)
    clock.advance(3600)
    assert await sessions.rotate(expired, limits=HOUR) is None
    assert await _rows(store) == 1  # the expired one, left for the purge; nothing new


async def test_of_two_concurrent_rotations_exactly_one_wins(store: SqlStore, sealer: Sealer) -> None:
    first = SqlSessionStore(store.engine, sealer)
    other_store = open_store(store.engine.url.render_as_string(hide_password=False))
    try:
        second = SqlSessionStore(other_store.engine, sealer)
        created = await first.create(purpose="as-login", limits=HOUR, data={"k": "v"})
        results = await asyncio.gather(first.rotate(created), second.rotate(created))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1
        assert await first.get(winners[0].id, purpose="as-login") == winners[0]
        assert await _rows(store) == 1
    finally:
        await other_store.close()


async def test_delete(sessions: SqlSessionStore) -> None:
    created = await sessions.create(purpose="as-login", limits=HOUR)
    assert await sessions.delete(created.id) is True
    assert await sessions.delete(created.id) is False
    assert await sessions.delete("not an id") is False
    assert await sessions.get(created.id, purpose="as-login") is None


async def test_delete_by_subject(sessions: SqlSessionStore) -> None:
    alice_login = await sessions.create(purpose="as-login", limits=HOUR, subject="alice")
    alice_gw = await sessions.create(purpose="gateway:orders", limits=HOUR, subject="alice")
    alice_gw2 = await sessions.create(purpose="gateway:orders", limits=HOUR, subject="alice")
    bob = await sessions.create(purpose="as-login", limits=HOUR, subject="bob")
    pending = await sessions.create(purpose="as-login", limits=HOUR)
    assert await sessions.delete_by_subject("alice", purpose="gateway:orders") == 2
    assert await sessions.get(alice_gw.id, purpose="gateway:orders") is None
    assert await sessions.get(alice_gw2.id, purpose="gateway:orders") is None
    assert await sessions.get(alice_login.id, purpose="as-login") is not None
    assert await sessions.delete_by_subject("alice") == 1
    assert await sessions.delete_by_subject("alice") == 0
    assert await sessions.get(bob.id, purpose="as-login") is not None
    assert await sessions.get(pending.id, purpose="as-login") is not None


async def test_purge_removes_what_is_no_longer_usable(
    store: SqlStore, sessions: SqlSessionStore, clock: FakeClock
) -> None:
    short = await sessions.create(purpose="as-login", limits=SessionLimits(timedelta(minutes=5)))
    idle = await sessions.create(purpose="as-login", limits=EIGHT_HOURS_IDLE_30)
    long = await sessions.create(purpose="as-login", limits=HOUR)
    assert await sessions.purge_expired() == 0
    clock.advance(30 * 60)
    assert await sessions.purge_expired() == 2  # the short one and the idle one
    assert await _rows(store) == 1
    assert await sessions.get(long.id, purpose="as-login") is not None
    assert await sessions.purge_expired(clock.now + timedelta(minutes=30)) == 1
    assert await _rows(store) == 0
    del short, idle


async def test_data_that_is_not_json_is_refused_before_anything_is_written(
    store: SqlStore, sessions: SqlSessionStore
) -> None:
    with pytest.raises(ValueError, match="session data"):
        await sessions.create(purpose="as-login", limits=HOUR, data={"when": START})
    created = await sessions.create(purpose="as-login", limits=HOUR, data={"ok": 1})
    with pytest.raises(ValueError, match="session data"):
        await sessions.update(dataclasses.replace(created, data={"bad": {1, 2}}))
    found = await sessions.get(created.id, purpose="as-login")
    assert found is not None
    assert found.data == {"ok": 1}
    assert await _rows(store) == 1


@pytest.mark.parametrize("subject", ["", 7])
async def test_bad_subjects_and_naive_times_are_refused(sessions: SqlSessionStore, subject: object) -> None:
    with pytest.raises(ValueError, match="subject"):
        await sessions.create(purpose="as-login", limits=HOUR, subject=subject)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="naive"):
        await sessions.create(purpose="as-login", limits=HOUR, auth_time=START.replace(tzinfo=None))


async def test_the_session_is_a_copy_of_what_was_given(sessions: SqlSessionStore) -> None:
    data = {"tokens": {"access": "a"}}
    created = await sessions.create(purpose="as-login", limits=HOUR, data=data)
    data["tokens"]["access"] = "changed afterwards"
    found = await sessions.get(created.id, purpose="as-login")
    assert found is not None
    assert found.data == {"tokens": {"access": "a"}} == created.data


async def test_a_session_survives_a_restart(database_url: str, sealer: Sealer, clock: FakeClock) -> None:
    first = open_store(database_url)
    await first.migrate()
    try:
        created = await SqlSessionStore(first.engine, sealer, clock=clock).create(
            purpose="gateway:orders", limits=HOUR, subject="alice", data=TOKENS
        )
    finally:
        await first.close()
    second = open_store(database_url)
    try:
        found = await SqlSessionStore(second.engine, Sealer(bytes(range(32))), clock=clock).get(
            created.id, purpose="gateway:orders"
        )
        assert found == created
    finally:
        await second.close()


# -- what is at rest -----------------------------------------------------------------------------


async def test_the_database_never_holds_the_id_or_the_data_in_clear(
    store: SqlStore, sessions: SqlSessionStore, database_url: str
) -> None:
    made: list[Session] = []
    for n in range(5):
        created = await sessions.create(
            purpose="gateway:orders", limits=HOUR, subject=f"user{n}", data=TOKENS
        )
        made.append(await sessions.rotate(created) or created)
        await sessions.update(dataclasses.replace(made[-1], data={**TOKENS, "n": n}))
    secrets_ = [s.id for s in made] + [TOKENS["access_token"], TOKENS["refresh_token"], "marker"]
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(sessions_table))).all()
    assert len(rows) == 5
    dumped = repr([tuple(row) for row in rows])
    for secret in secrets_:
        assert secret not in dumped
    assert {row.id_sha256 for row in rows} == {s.id_sha256 for s in made}
    if store.dialect == "sqlite":  # every byte SQLite wrote, the WAL included, old pages too
        await store.close()
        database = Path(make_url(database_url).database or "")
        files = [p for p in database.parent.iterdir() if p.name.startswith(database.name)]
        raw = b"".join(p.read_bytes() for p in files)
        assert b"user0" in raw  # the scan does see the rows
        for secret in secrets_:
            assert secret.encode() not in raw


async def test_another_kek_cannot_open_the_data(
    store: SqlStore, sessions: SqlSessionStore, clock: FakeClock
) -> None:
    created = await sessions.create(purpose="as-login", limits=HOUR, data=TOKENS)
    elsewhere = SqlSessionStore(store.engine, Sealer(OTHER_KEK), clock=clock)
    with pytest.raises(SealingError, match="another key-encryption key"):
        await elsewhere.get(created.id, purpose="as-login")


@pytest.mark.parametrize(
    ("column", "value"),
    [("subject", "mallory"), ("purpose", "gateway:admin"), ("auth_time", START + timedelta(hours=1))],
)
async def test_a_row_edited_in_place_is_refused(
    store: SqlStore, sessions: SqlSessionStore, column: str, value: object
) -> None:
    created = await sessions.create(
        purpose="as-login", limits=HOUR, subject="alice", auth_time=START, data=TOKENS
    )
    async with store.engine.begin() as conn:
        await conn.execute(update(sessions_table).values({column: value}))
    purpose = value if column == "purpose" else "as-login"
    with pytest.raises(SealingError, match="tampered"):
        await sessions.get(created.id, purpose=str(purpose))


async def test_sealed_data_moved_to_another_row_is_refused(
    store: SqlStore, sessions: SqlSessionStore
) -> None:
    victim = await sessions.create(purpose="as-login", limits=HOUR, subject="alice", data=TOKENS)
    attacker = await sessions.create(purpose="as-login", limits=HOUR, subject="alice", data={})
    table = sessions_table
    async with store.engine.begin() as conn:
        stolen = await conn.scalar(select(table.c.data_sealed).where(table.c.id_sha256 == victim.id_sha256))
        await conn.execute(
            update(table).where(table.c.id_sha256 == attacker.id_sha256).values(data_sealed=stolen)
        )
    with pytest.raises(SealingError, match="tampered"):
        await sessions.get(attacker.id, purpose="as-login")


async def test_sessions_are_not_part_of_the_store_generation(
    store: SqlStore, sessions: SqlSessionStore
) -> None:
    """Client and key caches must not be dropped on every login."""
    before = await store.generation()
    created = await sessions.create(purpose="as-login", limits=HOUR, subject="alice")
    await sessions.update(dataclasses.replace(created, data={"x": 1}))
    await sessions.delete(created.id)
    assert await store.generation() == before
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM sessions"))).scalar() == 0


async def test_a_lease_has_one_holder_at_a_time(sessions: SqlSessionStore) -> None:
    """Review 14: the gateway's cross-worker refresh lock. Of many concurrent takers exactly one gets
    it; released, it can be taken again; it is not a session any get() could find."""
    taken = await asyncio.gather(*(sessions.lease("refresh:abc", 30) for _ in range(8)))
    assert taken.count(True) == 1
    assert not await sessions.lease("refresh:abc", 30)
    assert await sessions.lease("refresh:other", 30)  # another name, another lease
    await sessions.release("refresh:abc")
    assert await sessions.lease("refresh:abc", 30)
    await sessions.release("refresh:abc")
    await sessions.release("refresh:abc")  # releasing what is not held is nothing


async def test_a_lease_whose_holder_died_runs_out(sessions: SqlSessionStore, clock: FakeClock) -> None:
    assert await sessions.lease("refresh:dead", 30)
    clock.advance(29)
    assert not await sessions.lease("refresh:dead", 30)
    clock.advance(2)
    assert await sessions.lease("refresh:dead", 30)
    clock.advance(31)
    assert await sessions.purge_expired() == 1  # the purge removes run-out leases too
