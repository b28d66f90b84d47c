"""The cert_status table on both backends: upserts keep first_seen, move last_seen forward only, and
never replace a recorded revocation; workers poll revocations by when they were learned."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from certbound.store.cert_status import CertificateRecord, CertStatusStore
from certbound.store.sql import SqlStore

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def record(key: str = "leaf-1", *, seen: datetime = T0, **changes: object) -> CertificateRecord:
    base = CertificateRecord(
        x5t_s256=key,
        client_id="billing",
        subject="CN=billing",
        issuer="CN=CA",
        serial="0a1b",
        not_after=T0 + timedelta(days=30),
        chain_pem="-----BEGIN CERTIFICATE-----\n...",
        first_seen=seen,
        last_seen=seen,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_upsert_keeps_first_seen_and_moves_last_seen_forward(store: SqlStore) -> None:
    table = CertStatusStore(store.engine)
    await table.record([record()])
    await table.record([record(seen=T0 + timedelta(hours=2), client_id=None)])
    await table.record([record(seen=T0 + timedelta(hours=1))])  # late, out of order
    found = await table.get("leaf-1")
    assert found is not None
    assert (found.first_seen, found.last_seen, found.client_id) == (T0, T0 + timedelta(hours=2), "billing")


async def test_a_revocation_is_recorded_once_and_polled_by_when_it_was_learned(store: SqlStore) -> None:
    table = CertStatusStore(store.engine)
    await table.record([record("a"), record("b")])
    assert await table.revoked_since(None) == []
    learned = T0 + timedelta(minutes=5)
    revoked = {"revoked_at": T0, "revocation_reason": "keyCompromise", "revocation_source": "ocsp http://o",
               "learned_at": learned}  # fmt: skip
    await table.record([record("a", **revoked)])
    later = {**revoked, "revocation_reason": "superseded", "learned_at": learned + timedelta(minutes=1)}
    await table.record([record("a", **later), record("b")])  # neither replaces nor clears it
    found = await table.get("a")
    assert found is not None
    assert (found.revocation_reason, found.learned_at) == ("keyCompromise", learned)
    [polled] = await table.revoked_since(None)
    assert (polled.x5t_s256, polled.learned_at) == ("a", learned)
    assert await table.revoked_since(learned) == []
    assert [r.x5t_s256 for r in await table.revoked_since(learned - timedelta(seconds=1))] == ["a"]
    # a revocation learned before the certificate was ever recorded as seen is an insert
    await table.record([record("c", **revoked)])
    assert {r.x5t_s256 for r in await table.revoked_since(None)} == {"a", "c"}


async def test_seen_since_and_purge(store: SqlStore) -> None:
    table = CertStatusStore(store.engine)
    old = record("old", seen=T0 - timedelta(days=60), not_after=T0 - timedelta(days=1))
    await table.record([old, record("new")])
    assert [r.x5t_s256 for r in await table.seen_since(T0 - timedelta(days=1))] == ["new"]
    assert await table.purge(T0) == 1
    assert await table.get("old") is None
    assert await table.get("new") is not None


async def test_a_warning_is_claimed_once(store: SqlStore) -> None:
    table = CertStatusStore(store.engine)
    assert await table.claim_warning("leaf", 7, T0)
    assert not await table.claim_warning("leaf", 7, T0 + timedelta(minutes=1))
    assert await table.claim_warning("leaf", 1, T0)
    assert await table.purge(T0 + timedelta(days=1)) == 2
    assert await table.claim_warning("leaf", 7, T0 + timedelta(days=2))
