"""Users, failed logins, codes, grants, refresh tokens, consent and PAR requests, on both backends:
the single-use and rotation rules hold when several redemptions race."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from certbound.store.grants import Issue
from certbound.store.interface import OpaqueToken
from certbound.store.records import (
    AuthorizationCode,
    Client,
    Grant,
    GrantAccessToken,
    PushedRequest,
    RefreshToken,
    User,
)
from certbound.store.schema import consents, grants, refresh_tokens, sessions
from certbound.store.sql import SqlStore
from certbound.store.users import UserExists

NOW = datetime.now(UTC).replace(microsecond=0)
LATER = NOW + timedelta(hours=1)


async def _setup(store: SqlStore) -> User:
    await store.create_client(Client("app", {"grant_types": ["authorization_code"]}))
    return await store.users.create(User("sub-1", "alice", "$argon2id$hash", {"name": "Alice"}))


def _grant(grant_id: str = "g1", subject: str = "sub-1") -> Grant:
    return Grant(grant_id, "app", subject, {"scope": "openid"}, NOW, LATER)


def _access(jti: str, grant_id: str = "g1", opaque: str | None = None) -> GrantAccessToken:
    return GrantAccessToken(jti, grant_id, LATER, opaque)


def _refresh(sha: str, grant_id: str = "g1") -> RefreshToken:
    return RefreshToken(sha, grant_id, NOW, LATER)


async def test_users_are_unique_by_username_and_found_both_ways(store: SqlStore) -> None:
    alice = await _setup(store)
    assert alice.created_at is not None
    with pytest.raises(UserExists):
        await store.users.create(User("sub-2", "alice", "x"))
    assert await store.users.get("sub-1") == alice
    assert await store.users.get_by_username("alice") == alice
    assert await store.users.get_by_username("bob") is None
    changed = await store.users.update("alice", enabled=False, claims={"email": "a@example.com"})
    assert changed is not None
    assert not changed.enabled
    assert changed.claims == {"email": "a@example.com"}
    assert await store.users.update("bob", enabled=False) is None
    assert [u.username for u in await store.users.list()] == ["alice"]


async def test_deleting_a_user_takes_consent_and_grants_with_it(store: SqlStore) -> None:
    await _setup(store)
    await store.grants.add_consent("sub-1", "app", ["openid", "profile"])
    assert await store.grants.issue(Issue("g1", _access("j1"), grant=_grant())) == "issued"
    deleted = await store.users.delete("alice")
    assert deleted is not None
    assert deleted.sub == "sub-1"
    async with store.engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(consents)) == 0
        assert await conn.scalar(select(func.count()).select_from(grants)) == 0
    assert await store.users.delete("alice") is None


async def test_failures_are_counted_atomically_and_start_over_after_the_window(store: SqlStore) -> None:
    window = timedelta(minutes=5)
    counts = await asyncio.gather(
        *(store.users.record_failure("user:alice", window=window) for _ in range(12))
    )
    assert sorted(counts) == list(range(1, 13))
    found = await store.users.failures(["user:alice", "address:10.0.0.1"])
    assert set(found) == {"user:alice"}
    assert found["user:alice"].failures == 12
    # a failure older than the window: the count starts over
    assert await store.users.record_failure("user:alice", window=timedelta(0)) == 1
    await store.users.clear_failures("user:alice")
    assert await store.users.failures(["user:alice"]) == {}


async def test_a_code_is_redeemed_once_even_when_redemptions_race(store: SqlStore) -> None:
    await _setup(store)
    await store.grants.add_code(AuthorizationCode("c" * 64, "app", "g1", {"scope": "openid"}, LATER))
    results = await asyncio.gather(*(store.grants.redeem_code("c" * 64) for _ in range(6)))
    assert sorted(r.status for r in results) == ["redeemed"] + ["used"] * 5
    winner = next(r for r in results if r.status == "redeemed")
    assert winner.code is not None
    assert winner.code.data == {"scope": "openid"}
    assert (await store.grants.redeem_code("unknown")).status == "unknown"
    await store.grants.add_code(AuthorizationCode("e" * 64, "app", "g2", {}, NOW - timedelta(seconds=1)))
    assert (await store.grants.redeem_code("e" * 64)).status == "expired"


async def test_a_refresh_token_rotates_once_even_when_refreshes_race(store: SqlStore) -> None:
    await _setup(store)
    first = Issue("g1", _access("j0"), grant=_grant(), refresh_token=_refresh("r0"))
    assert await store.grants.issue(first) == "issued"
    attempts = [
        Issue("g1", _access(f"j{n}"), rotate="r0", refresh_token=_refresh(f"r{n}")) for n in range(1, 6)
    ]
    outcomes = await asyncio.gather(*(store.grants.issue(a) for a in attempts))
    assert sorted(outcomes) == ["issued"] + ["reused"] * 4
    async with store.engine.connect() as conn:
        rows = (await conn.execute(select(refresh_tokens.c.token_sha256, refresh_tokens.c.rotated_at))).all()
    assert len(rows) == 2  # r0 (rotated) and the one winner: the losers wrote nothing
    assert sum(1 for r in rows if r.rotated_at is None) == 1
    found = await store.grants.refresh_token("r0")
    assert found is not None
    token, grant = found
    assert token.rotated_at is not None
    assert grant.grant_id == "g1"
    assert grant.subject == "sub-1"


async def test_revoking_a_grant_deny_lists_its_access_tokens_and_stops_issuing(store: SqlStore) -> None:
    await _setup(store)
    await store.create_client(Client("other", {}))
    opaque = OpaqueToken("o" * 64, "app", {"jti": "j2"}, LATER)
    first = Issue("g1", _access("j1"), grant=_grant(), refresh_token=_refresh("r1"))
    assert await store.grants.issue(first) == "issued"
    second = Issue(
        "g1", _access("j2", opaque="o" * 64), rotate="r1", refresh_token=_refresh("r2"), opaque=opaque
    )
    assert await store.grants.issue(second) == "issued"
    assert await store.grants.revoke_grant("g1")
    assert await store.is_revoked("j1")
    assert await store.is_revoked("j2")
    stored = await store.get_opaque_token("o" * 64)
    assert stored is not None
    assert stored.revoked
    refused = Issue("g1", _access("j3"), rotate="r2", refresh_token=_refresh("r3"))
    assert await store.grants.issue(refused) == "revoked"
    assert not await store.is_revoked("j3")
    assert not await store.grants.revoke_grant("g1")  # already revoked


async def test_a_replay_marker_stops_a_redemption_still_under_way(store: SqlStore) -> None:
    await _setup(store)
    assert await store.grants.revoke_grant("g9", marker=_grant("g9"))
    assert await store.grants.issue(Issue("g9", _access("j9"), grant=_grant("g9"))) == "revoked"


async def test_revoking_a_subject_revokes_every_grant(store: SqlStore) -> None:
    await _setup(store)
    await store.grants.issue(Issue("g1", _access("j1"), grant=_grant("g1")))
    await store.grants.issue(Issue("g2", _access("j2"), grant=_grant("g2")))
    assert await store.grants.revoke_subject("sub-1") == (2, 0)
    assert await store.is_revoked("j1")
    assert await store.is_revoked("j2")


async def test_nothing_is_issued_for_a_user_disabled_or_deleted_meanwhile(store: SqlStore) -> None:
    """The user is read in the issuing transaction, so an issue racing `users disable/delete` loses."""
    await _setup(store)
    assert (
        await store.grants.issue(Issue("g1", _access("j1"), grant=_grant(), refresh_token=_refresh("r1")))
        == "issued"
    )
    await store.users.update("alice", enabled=False)
    assert await store.grants.issue(Issue("g2", _access("j2"), grant=_grant("g2"))) == "user_gone"
    refresh = Issue("g1", _access("j3"), rotate="r1", refresh_token=_refresh("r3"))
    assert await store.grants.issue(refresh) == "user_gone"
    await store.users.delete("alice")
    assert await store.grants.issue(Issue("g4", _access("j4"), grant=_grant("g4"))) == "user_gone"
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(grants))).scalar_one() == 0


async def test_revoking_a_subject_ends_their_sessions_of_that_purpose(store: SqlStore) -> None:
    await _setup(store)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = [
        {"id_sha256": name, "purpose": purpose, "subject": subject, "created_at": now, "expires_at": LATER,
         "last_seen_at": now, "valid_until": LATER, "data_sealed": "x"}
        for name, purpose, subject in (
            ("a", "as-login", "sub-1"), ("b", "gateway", "sub-1"), ("c", "as-login", "sub-2")
        )
    ]  # fmt: skip
    async with store.engine.begin() as conn:
        await conn.execute(sessions.insert(), rows)
    assert await store.grants.revoke_subject("sub-1", session_purpose="as-login") == (0, 1)
    async with store.engine.connect() as conn:
        left = (await conn.execute(select(sessions.c.id_sha256).order_by(sessions.c.id_sha256))).scalars()
        assert list(left) == ["b", "c"]


async def test_consent_is_remembered_per_scope(store: SqlStore) -> None:
    await _setup(store)
    await store.grants.add_consent("sub-1", "app", ["openid", "profile"])
    await store.grants.add_consent("sub-1", "app", ["profile", "email"])
    assert await store.grants.consented("sub-1", "app") == {"openid", "profile", "email"}
    assert await store.grants.consented("sub-1", "other") == frozenset()


async def test_a_pushed_request_is_taken_once_by_its_client(store: SqlStore) -> None:
    await _setup(store)
    await store.grants.add_pushed(PushedRequest("p" * 64, "app", {"scope": "openid"}, LATER))
    assert await store.grants.take_pushed("p" * 64, "other") is None
    taken = await asyncio.gather(*(store.grants.take_pushed("p" * 64, "app") for _ in range(4)))
    assert sorted(taken, key=lambda t: t is None) == [{"scope": "openid"}, None, None, None]
    await store.grants.add_pushed(PushedRequest("q" * 64, "app", {}, NOW - timedelta(seconds=1)))
    assert await store.grants.take_pushed("q" * 64, "app") is None


async def test_purge_removes_what_expired(store: SqlStore) -> None:
    await _setup(store)
    past = NOW - timedelta(minutes=1)
    await store.grants.add_code(AuthorizationCode("c" * 64, "app", "g1", {}, past))
    await store.grants.issue(
        Issue("g1", GrantAccessToken("j1", "g1", past), grant=Grant("g1", "app", "sub-1", {}, past, past))
    )
    await store.grants.add_pushed(PushedRequest("p" * 64, "app", {}, past))
    assert await store.grants.purge_expired(NOW) == 4
    assert await store.grants.purge_expired(NOW) == 0
