"""Clients and their credentials: round trips, duplicates, replace, delete, file sync, atomicity."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from certbound.store.interface import ClientExists
from certbound.store.records import Client, Credential
from certbound.store.schema import client_credentials, clients, opaque_tokens
from certbound.store.sql import SqlStore, open_store

T0 = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
CET = timezone(timedelta(hours=1))


def credential(client_id: str, cred_id: str, **changes: object) -> Credential:
    cred = Credential(
        id=cred_id,
        client_id=client_id,
        kind="certificate",
        value=f"-----BEGIN CERTIFICATE-----{cred_id}",
        thumbprint=f"x5t-{cred_id}",
        not_before=T0,
        not_after=T0 + timedelta(days=365),
    )
    return dataclasses.replace(cred, **changes)  # type: ignore[arg-type]


def client(client_id: str, *cred_ids: str, **changes: object) -> Client:
    c = Client(
        client_id=client_id,
        metadata={"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "CN=x"},
        client_id_issued_at=T0,
        credentials=tuple(credential(client_id, cid) for cid in cred_ids),
    )
    return dataclasses.replace(c, **changes)  # type: ignore[arg-type]


async def count(store: SqlStore, table: object) -> int:
    async with store.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def content(c: Client | None) -> Client | None:
    """The record minus the store's own bookkeeping stamps."""
    if c is None:
        return None
    creds = tuple(
        sorted((dataclasses.replace(x, created_at=None) for x in c.credentials), key=lambda x: x.id)
    )
    return dataclasses.replace(c, updated_at=None, credentials=creds)


async def test_round_trip_with_credentials_and_aware_datetimes(database_url: str) -> None:
    written = client(
        "c1",
        "k1",
        "k2",
        metadata={"jwks": {"keys": [{"kty": "EC", "crv": "P-256"}]}, "name": "é ü", "n": 1.5, "ok": True},
        registration_access_token_sha256="ab" * 32,
        client_id_issued_at=datetime(2025, 3, 1, 13, 0, 0, 123456, tzinfo=CET),  # == T0
        client_secret_expires_at=T0 + timedelta(days=30),
    )
    store = open_store(database_url, clock=lambda: T0 + timedelta(seconds=5))
    await store.migrate()
    try:
        await store.create_client(written)
        got = await store.get_client("c1")
    finally:
        await store.close()

    assert got is not None
    assert content(got) == content(written)
    assert got.updated_at == T0 + timedelta(seconds=5)
    assert [c.created_at for c in got.credentials] == [T0 + timedelta(seconds=5)] * 2
    every_datetime = [
        got.client_id_issued_at,
        got.client_secret_expires_at,
        got.updated_at,
        *(d for c in got.credentials for d in (c.not_before, c.not_after, c.created_at)),
    ]
    for value in every_datetime:
        assert value is not None
        assert value.tzinfo is UTC, value
    assert got.client_id_issued_at == T0


async def test_given_update_time_is_kept(store: SqlStore) -> None:
    await store.create_client(client("c1", updated_at=T0 - timedelta(days=1)))
    got = await store.get_client("c1")
    assert got is not None
    assert got.updated_at == T0 - timedelta(days=1)


async def test_get_missing_client(store: SqlStore) -> None:
    assert await store.get_client("nope") is None
    assert await store.list_clients() == []


async def test_client_without_credentials_and_list_order(store: SqlStore) -> None:
    await store.create_client(client("b", "kb"))
    await store.create_client(client("a"))
    listed = await store.list_clients()
    assert [c.client_id for c in listed] == ["a", "b"]
    assert listed[0].credentials == ()
    assert [c.id for c in listed[1].credentials] == ["kb"]


async def test_naive_datetime_is_refused_and_nothing_written(store: SqlStore) -> None:
    naive = client("c1", client_id_issued_at=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="naive datetime"):
        await store.create_client(naive)
    naive_cred = client("c1", credentials=(credential("c1", "k1", not_after=datetime(2026, 1, 1)),))
    with pytest.raises(ValueError, match="naive datetime"):
        await store.create_client(naive_cred)
    assert await store.get_client("c1") is None


async def test_credential_of_another_client_is_refused(store: SqlStore) -> None:
    wrong = client("c1", credentials=(credential("c2", "k1"),))
    with pytest.raises(ValueError, match="belongs to 'c2'"):
        await store.create_client(wrong)
    assert await store.get_client("c1") is None


async def test_duplicate_client_raises_and_keeps_the_first(store: SqlStore) -> None:
    await store.create_client(client("c1", "k1"))
    generation = await store.generation()
    with pytest.raises(ClientExists):
        await store.create_client(client("c1", "k2", metadata={"other": True}))
    got = await store.get_client("c1")
    assert got is not None
    assert got.metadata["token_endpoint_auth_method"] == "tls_client_auth"
    assert [c.id for c in got.credentials] == ["k1"]
    assert await store.generation() == generation


async def test_failing_create_leaves_nothing(store: SqlStore) -> None:
    """The second credential violates the primary key: the client row must not survive either."""
    bad = client("c1", "k1", "k1")
    generation = await store.generation()
    with pytest.raises(IntegrityError):
        await store.create_client(bad)
    assert await store.get_client("c1") is None
    assert await count(store, clients) == 0
    assert await count(store, client_credentials) == 0
    assert await store.generation() == generation


async def test_failing_create_on_another_clients_credential_id(store: SqlStore) -> None:
    await store.create_client(client("c1", "shared"))
    with pytest.raises(IntegrityError):
        await store.create_client(client("c2", "k2", "shared"))
    assert await store.get_client("c2") is None
    assert await count(store, client_credentials) == 1


async def test_replace_swaps_metadata_and_whole_credential_set(database_url: str) -> None:
    times = iter([T0, T0 + timedelta(hours=1)])
    store = open_store(database_url, clock=lambda: next(times))
    await store.migrate()
    try:
        await store.create_client(client("c1", "k1", "k2"))
        replacement = client("c1", "k2", "k3", metadata={"token_endpoint_auth_method": "private_key_jwt"})
        assert await store.replace_client(replacement) is True
        got = await store.get_client("c1")
    finally:
        await store.close()
    assert got is not None
    assert content(got) == content(replacement)
    assert got.updated_at == T0 + timedelta(hours=1)
    created = {c.id: c.created_at for c in got.credentials}
    assert created == {"k2": T0, "k3": T0 + timedelta(hours=1)}  # k2 is the same credential: kept its stamp


async def test_replace_missing_client(store: SqlStore) -> None:
    generation = await store.generation()
    assert await store.replace_client(client("ghost", "k1")) is False
    assert await store.get_client("ghost") is None
    assert await count(store, client_credentials) == 0
    assert await store.generation() == generation


async def test_failing_replace_keeps_the_old_client(store: SqlStore) -> None:
    await store.create_client(client("c1", "k1"))
    before = await store.get_client("c1")
    with pytest.raises(IntegrityError):
        await store.replace_client(client("c1", "k2", "k2", metadata={"changed": True}))
    assert await store.get_client("c1") == before


async def test_delete_cascades_to_credentials_and_opaque_tokens(store: SqlStore) -> None:
    await store.create_client(client("c1", "k1", "k2"))
    await store.create_client(client("c2", "k3"))
    async with store.engine.begin() as conn:
        await conn.execute(
            opaque_tokens.insert(),
            [
                {"token_sha256": "t1", "client_id": "c1", "claims": {"sub": "c1"}, "expires_at": T0},
                {"token_sha256": "t2", "client_id": "c2", "claims": {}, "expires_at": T0},
            ],
        )
    assert await store.delete_client("c1") is True
    assert await store.get_client("c1") is None
    assert await count(store, client_credentials) == 1
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(opaque_tokens.c.token_sha256))).scalars().all() == ["t2"]
    assert await store.delete_client("c1") is False


async def test_sync_file_clients(store: SqlStore) -> None:
    await store.create_client(client("api-client", "ka"))
    await store.sync_file_clients([client("f1", "k1"), client("f2", "k2")])
    listed = {c.client_id: c for c in await store.list_clients()}
    assert set(listed) == {"api-client", "f1", "f2"}
    assert listed["f1"].source == "file"
    assert listed["api-client"].source == "api"

    # change f1, drop f2, add f3; the API client is untouched
    changed_f1 = client("f1", "k1b", metadata={"token_endpoint_auth_method": "private_key_jwt"})
    await store.sync_file_clients([changed_f1, client("f3", "k3")])
    listed = {c.client_id: c for c in await store.list_clients()}
    assert set(listed) == {"api-client", "f1", "f3"}
    assert content(listed["f1"]) == content(dataclasses.replace(changed_f1, source="file"))
    assert await count(store, client_credentials) == 3  # ka, k1b, k3

    await store.sync_file_clients([])
    assert [c.client_id for c in await store.list_clients()] == ["api-client"]


async def test_sync_file_clients_unchanged_does_not_bump_or_rewrite(store: SqlStore) -> None:
    file_clients = [client("f1", "k1"), client("f2")]
    await store.sync_file_clients(file_clients)
    generation = await store.generation()
    before = await store.list_clients()
    await store.sync_file_clients(list(reversed(file_clients)))
    assert await store.generation() == generation
    assert await store.list_clients() == before


async def test_sync_file_clients_refuses_to_take_over_an_api_client(store: SqlStore) -> None:
    await store.create_client(client("taken", "ka"))
    await store.sync_file_clients([client("f1", "k1")])
    generation = await store.generation()
    with pytest.raises(ClientExists, match="taken"):
        await store.sync_file_clients([client("f2", "k2"), client("taken", "kb")])
    assert {c.client_id: c.source for c in await store.list_clients()} == {"f1": "file", "taken": "api"}
    assert await store.generation() == generation


async def test_sync_file_clients_failing_midway_writes_nothing(store: SqlStore) -> None:
    await store.sync_file_clients([client("f1", "k1")])
    before = await store.list_clients()
    with pytest.raises(IntegrityError):
        await store.sync_file_clients([client("f2", "k2"), client("f3", "k3", "k3")])
    assert await store.list_clients() == before


async def test_sync_file_clients_refuses_duplicates(store: SqlStore) -> None:
    with pytest.raises(ValueError, match="more than once"):
        await store.sync_file_clients([client("f1"), client("f1")])
    assert await store.list_clients() == []
