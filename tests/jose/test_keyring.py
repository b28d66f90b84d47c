"""KeyRing snapshots and the KeyManager life cycle, against an in-memory store."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.jose.algorithms import PRIVATE_JWK_MEMBERS, generate_signing_key
from certbound.jose.keyring import (
    DEFAULT_MAX_TOKEN_LIFETIME,
    KeyManager,
    KeyRing,
    KeyRotationError,
    NoActiveKeyError,
    Rotation,
)
from certbound.jose.signer import SigningKeyError
from certbound.sealing import Sealer
from certbound.store.records import SigningKey

from .conftest import MemoryKeyStore

HOUR = timedelta(hours=1)


def make_key(sealer: Sealer, now: datetime, **changes: object) -> SigningKey:
    key = generate_signing_key("ES256", now=now, state="active", sealer=sealer)
    return dataclasses.replace(key, **changes)  # type: ignore[arg-type]


def kids(jwks: dict[str, list[dict[str, object]]]) -> list[object]:
    return [jwk["kid"] for jwk in jwks["keys"]]


# KeyRing -------------------------------------------------------------------------------------------


def test_active_is_the_newest_active_key(sealer: Sealer, now: datetime) -> None:
    old = make_key(sealer, now - HOUR, activated_at=now - HOUR)
    new = make_key(sealer, now - 2 * HOUR, activated_at=now)  # created earlier, activated later
    upcoming = make_key(sealer, now + HOUR, state="next", activated_at=None)
    for order in ([old, new, upcoming], [upcoming, new, old]):
        assert KeyRing(order, sealer).active().kid == new.kid


def test_equal_activation_times_break_ties_on_kid(sealer: Sealer, now: datetime) -> None:
    first, second = make_key(sealer, now), make_key(sealer, now)
    expected = max(first.kid, second.kid)
    assert KeyRing([first, second], sealer).active().kid == expected
    assert KeyRing([second, first], sealer).active().kid == expected


def test_active_signer_is_built_once(sealer: Sealer, now: datetime) -> None:
    ring = KeyRing([make_key(sealer, now)], sealer)
    assert ring.active() is ring.active()


@pytest.mark.parametrize("states", [[], ["next"], ["retired"], ["next", "retired"]])
def test_no_active_key(sealer: Sealer, now: datetime, states: list[str]) -> None:
    ring = KeyRing([make_key(sealer, now, state=state) for state in states], sealer)
    with pytest.raises(NoActiveKeyError, match="certbound keys rotate"):
        ring.active()


def test_jwks_publishes_next_active_and_retired_until_publish_until(sealer: Sealer, now: datetime) -> None:
    active = make_key(sealer, now - HOUR)
    upcoming = make_key(sealer, now, state="next", activated_at=None)
    recent = make_key(
        sealer, now - 2 * HOUR, state="retired", retired_at=now - HOUR, publish_until=now + HOUR
    )
    expiring = make_key(sealer, now - 3 * HOUR, state="retired", retired_at=now - HOUR, publish_until=now)
    expired = make_key(
        sealer, now - 9 * HOUR, state="retired", retired_at=now - 5 * HOUR, publish_until=now - HOUR
    )
    unbounded = make_key(sealer, now - 9 * HOUR, state="retired", retired_at=now - 5 * HOUR)
    ring = KeyRing([expired, recent, upcoming, unbounded, active, expiring], sealer)

    assert kids(ring.jwks(now)) == [active.kid, upcoming.kid, recent.kid]  # active first
    assert kids(ring.jwks(now - 2 * HOUR)) == [
        active.kid,
        upcoming.kid,
        recent.kid,
        expiring.kid,
        expired.kid,
    ]
    assert kids(ring.jwks(now + HOUR)) == [active.kid, upcoming.kid]


def test_jwks_never_contains_private_members(
    sealer: Sealer, now: datetime, keys_by_alg: dict[str, SigningKey]
) -> None:
    # even when a (corrupt or careless) store row holds private members in public_jwk
    leaky = make_key(sealer, now)
    leaky = dataclasses.replace(
        leaky, public_jwk={**leaky.public_jwk, **dict.fromkeys(PRIVATE_JWK_MEMBERS, "x")}
    )
    ring = KeyRing([leaky, *keys_by_alg.values()], sealer)
    jwks = ring.jwks(now)
    assert len(jwks["keys"]) == len(keys_by_alg) + 1
    for jwk in jwks["keys"]:
        assert not PRIVATE_JWK_MEMBERS & jwk.keys()
        assert jwk["use"] == "sig"
        assert {"kid", "alg", "kty"} <= jwk.keys()
    assert not ring.verification_key(leaky.kid).is_private  # type: ignore[union-attr]


def test_jwks_returns_copies(sealer: Sealer, now: datetime) -> None:
    key = make_key(sealer, now)
    ring = KeyRing([key], sealer)
    ring.jwks(now)["keys"][0]["kid"] = "changed"
    assert kids(ring.jwks(now)) == [key.kid]


def test_verification_key(sealer: Sealer, now: datetime) -> None:
    active = make_key(sealer, now)
    upcoming = make_key(sealer, now, state="next", activated_at=None)
    retired = make_key(
        sealer, now - 3 * HOUR, state="retired", retired_at=now - HOUR, publish_until=now + HOUR
    )
    ring = KeyRing([active, upcoming, retired], sealer)
    for record in (active, upcoming, retired):
        key = ring.verification_key(record.kid)
        assert key is not None
        assert not key.is_private
        assert key.kid == record.kid
        assert ring.verification_key(record.kid, now=now) is key
    assert ring.verification_key("unknown") is None
    assert ring.verification_key(retired.kid, now=now + 2 * HOUR) is None
    assert ring.verification_key(active.kid, now=now + 1000 * HOUR) is not None

    token = ring.active().sign({"sub": "x"}, typ="at+jwt")
    verified = jwt.decode(token, ring.verification_key(active.kid), algorithms=["ES256"])  # type: ignore[arg-type]
    assert verified.claims == {"sub": "x"}


def test_public_jwk_must_match_kid(sealer: Sealer, now: datetime) -> None:
    key, other = make_key(sealer, now), make_key(sealer, now)
    with pytest.raises(SigningKeyError, match="does not match its kid"):
        KeyRing([dataclasses.replace(key, public_jwk=other.public_jwk)], sealer)
    with pytest.raises(SigningKeyError, match="invalid"):
        KeyRing([dataclasses.replace(key, public_jwk={"kty": "EC"})], sealer)


def test_keys_are_listed_oldest_first(sealer: Sealer, now: datetime) -> None:
    old, new = make_key(sealer, now - HOUR), make_key(sealer, now)
    ring = KeyRing([new, old], sealer, generation=7)
    assert ring.keys == (old, new)
    assert ring.generation == 7


# KeyManager ----------------------------------------------------------------------------------------


def test_unknown_algorithm_is_refused_at_construction(memory_store: MemoryKeyStore, sealer: Sealer) -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm 'HS256'"):
        KeyManager(memory_store, sealer, alg="HS256")


async def test_ensure_keys_creates_one_active_key_and_is_idempotent(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(memory_store, sealer, alg="EdDSA")
    ring = await manager.ensure_keys(now)
    (key,) = memory_store.keys.values()
    assert (key.state, key.alg, key.activated_at) == ("active", "EdDSA", now)
    assert ring.active().kid == key.kid

    generation = memory_store.gen
    again = await KeyManager(memory_store, sealer, alg="EdDSA").ensure_keys(now + HOUR)
    assert memory_store.gen == generation  # nothing written
    assert again.active().kid == key.kid


async def test_each_algorithm_has_its_own_active_key(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    """The access tokens' algorithm signs by default; an extra algorithm (ID tokens) gets its own key,
    and rotating one algorithm's key leaves the other's alone."""
    manager = KeyManager(memory_store, sealer, alg="ES256", extra_algs=("RS256",))
    ring = await manager.ensure_keys(now)
    assert ring.algs == {"ES256", "RS256"}
    assert ring.active().alg == "ES256"
    assert ring.active("RS256").alg == "RS256"
    rs256 = ring.active("RS256").kid
    await manager.rotate(now + HOUR, alg="ES256")
    step = await manager.rotate(now + 2 * HOUR, alg="ES256")
    ring = await manager.keyring()
    assert ring.active().kid == step.activated
    assert ring.active("RS256").kid == rs256
    with pytest.raises(NoActiveKeyError):
        ring.active("PS256")


async def test_ensure_keys_promotes_a_waiting_next_key(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    upcoming = make_key(sealer, now - HOUR, state="next", activated_at=None)
    await memory_store.add_signing_key(upcoming)
    ring = await KeyManager(memory_store, sealer).ensure_keys(now)
    assert ring.active().kid == upcoming.kid
    assert memory_store.keys[upcoming.kid].activated_at == now
    assert len(memory_store.keys) == 1


async def test_concurrent_ensure_keys_leaves_exactly_one_active_key(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    memory_store.pause_after_list = asyncio.Barrier(2)  # both workers see an empty store
    first = KeyManager(memory_store, sealer)
    second = KeyManager(memory_store, sealer)
    rings = await asyncio.gather(first.ensure_keys(now), second.ensure_keys(now))

    assert len(memory_store.keys) == 2  # both inserted
    states = sorted(k.state for k in memory_store.keys.values())
    assert states == ["active", "retired"]
    (winner,) = (k for k in memory_store.keys.values() if k.state == "active")
    (loser,) = (k for k in memory_store.keys.values() if k.state == "retired")
    assert loser.publish_until == now + DEFAULT_MAX_TOKEN_LIFETIME  # in case it signed already
    # a worker that finished first may have signed with its own key until it sees the change; that
    # key stays published, and from the next keyring() on both workers sign with the same key
    assert {ring.active().kid for ring in rings} <= {winner.kid, loser.kid}
    assert {(await m.keyring()).active().kid for m in (first, second)} == {winner.kid}
    assert set(kids((await first.keyring()).jwks(now))) == {winner.kid, loser.kid}


async def test_ensure_keys_repairs_two_active_keys(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    old, new = make_key(sealer, now - 2 * HOUR), make_key(sealer, now - HOUR)
    await memory_store.add_signing_key(old)
    await memory_store.add_signing_key(new)
    manager = KeyManager(memory_store, sealer, max_token_lifetime=HOUR / 2)
    ring = await manager.ensure_keys(now)
    assert ring.active().kid == new.kid
    assert memory_store.keys[old.kid].state == "retired"
    assert memory_store.keys[old.kid].retired_at == now
    assert memory_store.keys[old.kid].publish_until == now + HOUR / 2


async def test_rotation_life_cycle(memory_store: MemoryKeyStore, sealer: Sealer, now: datetime) -> None:
    manager = KeyManager(memory_store, sealer, alg="ES256")
    first = (await manager.ensure_keys(now)).active()
    old_token = first.sign({"sub": "before"}, typ="at+jwt")

    # step 1: a next key is published, the active key keeps signing
    step1 = await manager.rotate(now + HOUR, token_lifetime=HOUR)
    assert step1.added is not None
    assert step1 == Rotation(added=step1.added)
    upcoming = memory_store.keys[step1.added]
    assert (upcoming.state, upcoming.created_at, upcoming.activated_at) == ("next", now + HOUR, None)
    ring = await manager.keyring()
    assert ring.active().kid == first.kid
    assert kids(ring.jwks(now + HOUR)) == [first.kid, upcoming.kid]

    # step 2: next becomes active, the old key is retired and stays published for the token lifetime
    step2 = await manager.rotate(now + 2 * HOUR, token_lifetime=HOUR)
    assert step2 == Rotation(activated=upcoming.kid, retired=(first.kid,))
    promoted, retired = memory_store.keys[upcoming.kid], memory_store.keys[first.kid]
    assert (promoted.state, promoted.activated_at) == ("active", now + 2 * HOUR)
    assert (retired.state, retired.retired_at, retired.publish_until) == (
        "retired",
        now + 2 * HOUR,
        now + 3 * HOUR,
    )
    ring = await manager.keyring()
    assert ring.active().kid == upcoming.kid
    assert kids(ring.jwks(now + 2 * HOUR)) == [upcoming.kid, first.kid]
    before = KeySet.import_key_set(ring.jwks(now + 2 * HOUR))  # type: ignore[arg-type]
    assert jwt.decode(old_token, before, algorithms=["ES256"]).claims == {"sub": "before"}
    assert kids(ring.jwks(now + 3 * HOUR)) == [upcoming.kid]

    # and again: a new next key
    step3 = await manager.rotate(now + 3 * HOUR, token_lifetime=HOUR)
    assert step3.added is not None
    assert memory_store.keys[step3.added].state == "next"


async def test_rotation_waits_until_the_next_key_was_published_long_enough(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(memory_store, sealer)
    await manager.ensure_keys(now)
    added = (await manager.rotate(now, token_lifetime=HOUR)).added
    generation = memory_store.gen
    with pytest.raises(KeyRotationError, match="rotate again after"):
        await manager.rotate(now + HOUR, token_lifetime=HOUR, min_next_age=2 * HOUR)
    assert memory_store.gen == generation
    done = await manager.rotate(now + 2 * HOUR, token_lifetime=HOUR, min_next_age=2 * HOUR)
    assert done.activated == added


async def test_rotation_uses_the_configured_algorithm(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    await KeyManager(memory_store, sealer, alg="ES256").ensure_keys(now)
    manager = KeyManager(memory_store, sealer, alg="EdDSA", max_token_lifetime=HOUR)
    await manager.rotate(now)
    rotation = await manager.rotate(now + HOUR)
    assert (await manager.keyring()).active().alg == "EdDSA"
    (old,) = rotation.retired
    assert memory_store.keys[old].publish_until == now + 2 * HOUR  # the manager's max_token_lifetime


async def test_rotation_drops_duplicate_next_keys(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(memory_store, sealer)
    await manager.ensure_keys(now)
    (active,) = memory_store.keys
    older = make_key(sealer, now, state="next", activated_at=None)
    newer = make_key(sealer, now + HOUR, state="next", activated_at=None)
    await memory_store.add_signing_key(older)
    await memory_store.add_signing_key(newer)
    rotation = await manager.rotate(now + 2 * HOUR, token_lifetime=HOUR)
    assert rotation.activated == newer.kid
    assert set(rotation.retired) == {active, older.kid}
    assert memory_store.keys[older.kid].publish_until == now + 2 * HOUR  # it never signed
    assert kids((await manager.keyring()).jwks(now + 2 * HOUR)) == [newer.kid, active]


async def test_keyring_is_cached_until_the_generation_changes(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(memory_store, sealer)
    ring = await manager.ensure_keys(now)
    lists = memory_store.list_calls
    assert await manager.keyring() is ring
    assert await manager.keyring() is ring
    assert memory_store.list_calls == lists  # no re-read while the generation is unchanged

    # another worker rotates (same store, other manager): this one sees it on the next call
    signer = ring.active()
    other = KeyManager(memory_store, sealer)
    await other.rotate(now, token_lifetime=HOUR)
    refreshed = await manager.keyring()
    assert refreshed is not ring
    assert refreshed.generation == memory_store.gen
    assert refreshed.active() is signer  # the active key did not change: not unsealed again
    await other.rotate(now + HOUR, token_lifetime=HOUR)
    rotated = await manager.keyring()
    assert rotated.active().kid != signer.kid

    # an unrelated change (e.g. a client) also bumps the generation: rebuilt, signer kept
    memory_store.gen += 1
    again = await manager.keyring()
    assert again is not rotated
    assert again.active() is rotated.active()


async def test_concurrent_keyring_calls_read_once(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    await KeyManager(memory_store, sealer).ensure_keys(now)
    manager = KeyManager(memory_store, sealer)
    lists = memory_store.list_calls
    rings = await asyncio.gather(*(manager.keyring() for _ in range(10)))
    assert len({id(ring) for ring in rings}) == 1
    assert memory_store.list_calls == lists + 1


async def test_current_and_a_known_generation_avoid_store_reads(
    memory_store: MemoryKeyStore, sealer: Sealer, now: datetime
) -> None:
    manager = KeyManager(memory_store, sealer)
    with pytest.raises(RuntimeError, match="ensure_keys"):
        manager.current()
    ring = await manager.ensure_keys(now)
    assert manager.current() is ring
    calls = (memory_store.generation_calls, memory_store.list_calls)
    assert await manager.keyring(generation=ring.generation) is ring
    assert (memory_store.generation_calls, memory_store.list_calls) == calls
    await KeyManager(memory_store, sealer).rotate(now)
    assert manager.current() is ring  # stale until refreshed
    refreshed = await manager.keyring(generation=memory_store.gen)
    assert memory_store.generation_calls == calls[0]
    assert manager.current() is refreshed
    assert len(refreshed.keys) == 2
