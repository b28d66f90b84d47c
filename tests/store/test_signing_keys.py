"""Signing keys: add, list, state changes with their time stamps."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from certbound.store.interface import SigningKeyExists
from certbound.store.records import SigningKey
from certbound.store.sql import SqlStore

T0 = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)


def key(kid: str, created_at: datetime = T0, **changes: object) -> SigningKey:
    made = SigningKey(
        kid=kid,
        alg="ES256",
        state="next",
        public_jwk={"kty": "EC", "crv": "P-256", "x": "abc", "y": "def", "kid": kid},
        private_jwk_sealed=f"sealed-{kid}",
        created_at=created_at,
    )
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


async def test_add_and_list_in_creation_order(store: SqlStore) -> None:
    assert await store.list_signing_keys() == []
    later = key("b", T0 + timedelta(days=1))
    first = key("a", T0, activated_at=T0, publish_until=T0 + timedelta(days=90))
    await store.add_signing_key(later)
    await store.add_signing_key(first)
    assert await store.list_signing_keys() == [first, later]
    for k in await store.list_signing_keys():
        assert k.created_at.tzinfo is UTC


async def test_duplicate_kid(store: SqlStore) -> None:
    await store.add_signing_key(key("a"))
    with pytest.raises(SigningKeyExists):
        await store.add_signing_key(key("a", alg="RS256"))
    assert [k.alg for k in await store.list_signing_keys()] == ["ES256"]


async def test_state_changes_stamp_their_times(store: SqlStore) -> None:
    await store.add_signing_key(key("a"))
    activated = T0 + timedelta(hours=1)
    assert await store.set_signing_key_state("a", "active", activated) is True
    (a,) = await store.list_signing_keys()
    assert (a.state, a.activated_at, a.retired_at, a.publish_until) == ("active", activated, None, None)

    retired, until = T0 + timedelta(days=30), T0 + timedelta(days=31)
    assert await store.set_signing_key_state("a", "retired", retired, publish_until=until) is True
    (a,) = await store.list_signing_keys()
    assert (a.state, a.activated_at, a.retired_at, a.publish_until) == ("retired", activated, retired, until)


async def test_set_state_of_missing_key(store: SqlStore) -> None:
    assert await store.set_signing_key_state("nope", "active", T0) is False


async def test_naive_times_are_refused(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="naive"):
        await store.add_signing_key(key("a", datetime(2025, 1, 1)))
    await store.add_signing_key(key("a"))
    with pytest.raises(ValueError, match="naive"):
        await store.set_signing_key_state("a", "active", datetime(2025, 1, 1))
    assert [k.state for k in await store.list_signing_keys()] == ["next"]
