"""The caches that keep the database off the hot path: generation watcher, client directory, verdicts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from certbound.pki.chain import ChainVerifier
from certbound.pki.issue import issue_client_cert
from certbound.sealing import Sealer
from certbound.server.clientauth.directory import ClientDirectory, compile_client
from certbound.store.generation import GenerationWatcher
from certbound.store.records import Client, Credential
from certbound.store.sql import SqlStore, open_store
from certbound.tls.chain_verdicts import VerdictCache
from tests.server.clientauth.conftest import (
    CountingStore,
    Harness,
    Pki,
    Ticker,
    basic,
    client_cert,
    make_client,
    presented,
)

SECRET = "secret-0123456789-0123456789-0123456789"
BASIC_MD = {"token_endpoint_auth_method": "client_secret_basic"}


# --- GenerationWatcher ----------------------------------------------------------------------------------


async def test_watcher_sees_changes_from_another_worker(sqlite_db: SqlStore, sealer: Sealer) -> None:
    watcher = GenerationWatcher(sqlite_db, interval=0.02)
    assert watcher.value is None
    await watcher.start()
    first = watcher.value
    assert first is not None
    other = open_store(str(sqlite_db.engine.url).replace("+aiosqlite", ""))
    try:
        await other.create_client(make_client("w-1", BASIC_MD, sealer, secret=SECRET))
        for _ in range(100):
            if watcher.value != first:
                break
            await asyncio.sleep(0.02)
        assert watcher.value == first + 1
    finally:
        await other.close()
        await watcher.stop()
    assert not watcher.running


async def test_watcher_check_is_shared_and_survives_store_errors() -> None:
    class Flaky:
        def __init__(self) -> None:
            self.calls = 0
            self.fail = False

        async def generation(self) -> int:
            self.calls += 1
            await asyncio.sleep(0.01)
            if self.fail:
                raise OSError("database is down")
            return self.calls

    store = Flaky()
    watcher = GenerationWatcher(store, interval=0.01)
    values = await asyncio.gather(*(watcher.check() for _ in range(5)))
    assert values == [1] * 5
    assert store.calls == 1
    await watcher.start()
    store.fail = True
    with pytest.raises(OSError, match="database is down"):
        await watcher.check()
    kept = watcher.value
    await asyncio.sleep(0.05)  # polls fail in the background without killing the task
    assert watcher.running
    assert watcher.value == kept
    store.fail = False
    await asyncio.sleep(0.05)
    assert watcher.value is not None
    assert kept is not None
    assert watcher.value > kept
    await watcher.stop()


def test_watcher_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        GenerationWatcher(object(), interval=0)  # type: ignore[arg-type]


# --- ClientDirectory ------------------------------------------------------------------------------------


async def test_one_store_read_per_client_per_generation(harness: Harness) -> None:
    await harness.register("d-1", BASIC_MD, secret=SECRET)
    harness.reads.clear()
    for _ in range(10):
        await harness.authenticate(authorization=basic("d-1", SECRET))
    assert harness.reads.count("get_client") == 1


async def test_negative_cache_and_new_registration(sqlite_db: SqlStore, sealer: Sealer) -> None:
    ticker = Ticker()
    reads: list[str] = []
    counted: Any = CountingStore(sqlite_db, reads)
    watcher = GenerationWatcher(counted, interval=10)
    await watcher.check()
    directory = ClientDirectory(counted, watcher, sealer, negative_ttl=5, monotonic=ticker)
    assert await directory.get("ghost") is None
    assert await directory.get("ghost") is None
    assert reads.count("get_client") == 1  # remembered
    ticker.value += 6
    assert await directory.get("ghost") is None
    assert reads.count("get_client") == 2  # forgotten after negative_ttl
    await sqlite_db.create_client(make_client("ghost", BASIC_MD, sealer, secret=SECRET))
    await watcher.check()  # the generation moved: the negative entry goes at once
    found = await directory.get("ghost")
    assert found is not None
    assert found.client_id == "ghost"


async def test_flood_of_unknown_ids_is_bounded(sqlite_db: SqlStore, sealer: Sealer) -> None:
    in_flight = 0
    peak = 0
    asked: list[str] = []

    class Slow:
        async def generation(self) -> int:
            return await sqlite_db.generation()

        async def get_client(self, client_id: str) -> Client | None:
            nonlocal in_flight, peak
            asked.append(client_id)
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.005)
            in_flight -= 1
            return None

    store: Any = Slow()
    watcher = GenerationWatcher(store, interval=10)
    directory = ClientDirectory(store, watcher, sealer, max_concurrent_lookups=4, max_negative=50)
    await asyncio.gather(*(directory.get(f"unknown-{i}") for i in range(200)))
    assert peak <= 4
    assert len(directory._unknown) == 50  # bounded
    assert len(asked) == 200
    # the same id asked many times at once: one read
    results = await asyncio.gather(*(directory.get("same-id") for _ in range(20)))
    assert results == [None] * 20
    assert asked.count("same-id") == 1


async def test_change_during_a_read_is_not_cached_stale(sqlite_db: SqlStore, sealer: Sealer) -> None:
    watcher = GenerationWatcher(sqlite_db, interval=10)
    await watcher.check()
    directory = ClientDirectory(sqlite_db, watcher, sealer)
    await sqlite_db.create_client(make_client("d-2", BASIC_MD, sealer, secret=SECRET))
    # the watcher has not seen the change yet: the entry is filed under the old generation...
    found = await directory.get("d-2")
    assert found is not None
    await sqlite_db.replace_client(
        make_client("d-2", {"token_endpoint_auth_method": "client_secret_post"}, sealer, secret=SECRET)
    )
    await watcher.check()
    # ...and dropped as soon as the watcher moves on
    again = await directory.get("d-2")
    assert again is not None
    assert again.method_for("token") == "client_secret_post"


def test_compile_client_methods_and_defaults(sealer: Sealer) -> None:
    client = make_client(
        "c-1",
        {
            "token_endpoint_auth_method": "client_secret_jwt",
            "revocation_endpoint_auth_method": "client_secret_basic",
        },
        sealer,
        secret=SECRET,
    )
    compiled = compile_client(client, sealer)
    assert compiled.methods == {
        "token": "client_secret_jwt",
        "introspection": "client_secret_jwt",
        "revocation": "client_secret_basic",
    }
    assert len(compiled.hmac_keys) == 1
    assert len(compiled.secret_digests) == 1
    assert compiled.problems == ()
    bare = compile_client(Client("c-2", {}), sealer)
    assert bare.method_for("token") == "client_secret_basic"  # RFC 7591 default


async def test_the_client_model_is_built_once_and_travels_with_the_client(harness: Harness) -> None:
    """Authentication hands on the model compiled with the client: the same object on every request."""
    await harness.register(
        "m-1", {**BASIC_MD, "scope": "read", "grant_types": ["client_credentials"]}, secret=SECRET
    )
    first = await harness.authenticate(authorization=basic("m-1", SECRET))
    second = await harness.authenticate(authorization=basic("m-1", SECRET), endpoint="introspection")
    compiled = await harness.directory.get("m-1")
    assert compiled is not None
    assert first.client is compiled.model
    assert second.client is compiled.model
    assert (compiled.model.client_id, compiled.model.scope) == ("m-1", ("read",))
    assert compiled.model.grant_types == frozenset({"client_credentials"})


def test_compile_client_never_raises(sealer: Sealer) -> None:
    broken = Client(
        "c-3",
        {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "not a dn"},
        credentials=(
            Credential("a", "c-3", "secret_sealed", "v1.deadbeef.AAAA"),
            Credential("b", "c-3", "secret_sha256", "zz"),
            Credential("c", "c-3", "jwk", "{not json"),
            Credential(
                "d", "c-3", "certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
            ),
        ),
    )
    compiled = compile_client(broken, sealer)
    assert compiled.subject is None
    assert not compiled.hmac_keys
    assert not compiled.jwks
    assert len(compiled.problems) == 5


async def test_misconfigured_client_fails_closed(harness: Harness, pki: Pki) -> None:
    await harness.add(
        Client(
            "bad-tls", {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": "="}
        )
    )
    cert = presented(client_cert(pki)[0])
    await harness.refused("client.misconfigured", {"client_id": "bad-tls"}, certificate=cert)
    await harness.add(Client("no-secret", {"token_endpoint_auth_method": "client_secret_basic"}))
    await harness.refused("client.misconfigured", authorization=basic("no-secret", "x"))


async def test_sealed_secret_under_another_kek(harness: Harness) -> None:
    client = make_client(
        "csj-kek", {"token_endpoint_auth_method": "client_secret_jwt"}, Sealer(bytes(32)), secret=SECRET
    )
    await harness.add(client)
    compiled = await harness.directory.get("csj-kek")
    assert compiled is not None
    assert compiled.hmac_keys == ()
    assert compiled.problems


# --- VerdictCache --------------------------------------------------------------------------------------


def test_verdict_cache_key_includes_the_chain(pki: Pki) -> None:
    cache = VerdictCache(ChainVerifier([pki.ca[0]]))
    leaf, _ = issue_client_cert(pki.intermediate[0], pki.intermediate[1], "CN=x")
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    assert cache.facts(presented(leaf), now).reason == "cert.untrusted"
    # the same leaf with its intermediate is another chain: not served the cached refusal
    assert cache.facts(presented(leaf, pki.intermediate[0]), now).ok
    # ... nor the other way round: one chain is kept per leaf, and another one is checked afresh
    misses = cache.misses
    assert cache.facts(presented(leaf), now).reason == "cert.untrusted"
    assert cache.misses == misses + 1
    assert len(cache) == 1
    # an equal chain in other objects (another connection of the same client) is a hit
    with_intermediate = presented(leaf, pki.intermediate[0])
    assert cache.facts(with_intermediate, now).ok
    assert cache.facts(presented(leaf, pki.intermediate[0]), now).ok
    assert cache.misses == misses + 2


def test_verdict_cache_is_bounded_and_failures_expire(pki: Pki) -> None:
    from datetime import UTC, datetime

    cache = VerdictCache(ChainVerifier([pki.ca[0]]), max_entries=3, failure_ttl=10)
    now = datetime.now(UTC)
    certs = [presented(client_cert(pki, f"CN=c{i}")[0]) for i in range(5)]
    for cert in certs:
        assert cache.facts(cert, now).ok
    assert len(cache) == 3
    untrusted = presented(issue_client_cert(pki.other_ca[0], pki.other_ca[1], "CN=u")[0])
    cache.facts(untrusted, now)
    misses = cache.misses
    cache.facts(untrusted, now + timedelta(seconds=5))
    assert cache.misses == misses  # cached failure
    cache.facts(untrusted, now + timedelta(seconds=11))
    assert cache.misses == misses + 1  # re-checked
    cache.facts(untrusted, now - timedelta(seconds=60))  # the clock went back: re-checked too
    assert cache.misses == misses + 2


def test_a_verdict_keeps_a_digest_of_its_chain_not_the_certificates(pki: Pki) -> None:
    """Anyone can present chains that fail (up to ~100 KB each): a verdict keeps 32 bytes, and is
    still served only to the same chain (another chain, or none, is checked afresh); so does a
    success (comparing the certificates on every request cost ~2% of one)."""
    from datetime import UTC, datetime

    cache = VerdictCache(ChainVerifier([pki.ca[0]]))
    now = datetime.now(UTC)
    stranger = issue_client_cert(pki.other_ca[0], pki.other_ca[1], "CN=u")[0]
    with_chain = presented(stranger, pki.other_ca[0])
    assert cache.facts(with_chain, now).reason == "cert.untrusted"
    [(kept, _)] = cache._entries.values()
    assert isinstance(kept, bytes)
    assert len(kept) == 32
    misses = cache.misses
    assert cache.facts(presented(stranger, pki.other_ca[0]), now).reason == "cert.untrusted"  # equal chain
    assert cache.misses == misses
    cache.facts(presented(stranger), now)  # the same leaf alone: another chain
    assert cache.misses == misses + 1
    ok_leaf = client_cert(pki, "CN=ok")[0]
    assert cache.facts(presented(ok_leaf), now).ok
    assert list(cache._entries.values())[-1][0] == presented(ok_leaf).chain_digest
    misses = cache.misses
    assert cache.facts(presented(ok_leaf), now).ok  # an equal chain (another object): served
    assert cache.misses == misses
    cache.facts(presented(ok_leaf, pki.other_ca[0]), now)  # the same leaf with another chain: afresh
    assert cache.misses == misses + 1


def test_a_failed_chains_digest_is_computed_once_per_connection(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each request of a kept connection that failed looks the verdict up again: the chain (up to
    ~100 KB) is hashed once for its certificate object, not on every request."""
    from datetime import UTC, datetime

    from certbound.tls import client_certificate

    hashed: list[object] = []
    sha256 = client_certificate.hashlib.sha256

    def counting(*args: object) -> object:
        hashed.append(args)
        return sha256(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(client_certificate.hashlib, "sha256", counting)
    cache = VerdictCache(ChainVerifier([pki.ca[0]]))
    now = datetime.now(UTC)
    connection = presented(issue_client_cert(pki.other_ca[0], pki.other_ca[1], "CN=u")[0], pki.other_ca[0])
    for _ in range(5):
        assert cache.facts(connection, now).reason == "cert.untrusted"
    assert cache.misses == 1
    assert len([args for args in hashed if not args]) == 1  # the digest starts empty; a thumbprint does not

