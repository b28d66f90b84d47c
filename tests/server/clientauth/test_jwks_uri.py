"""jwks_uri served over real HTTPS by the test: rotation, fail-closed refreshes, caching, SSRF rules."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from joserfc.jwk import ECKey

from certbound.pki.issue import self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.sealing import Sealer
from certbound.server.clientauth.jwks_fetcher import JwksFetcher, JwksFetchError
from certbound.store.sql import SqlStore
from tests.server.clientauth.conftest import (
    Harness,
    JwksServer,
    Ticker,
    assertion,
    build_harness,
    jwt_bearer,
    presented,
)

LOCAL_ISSUER = "https://127.0.0.1:8443"


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def local(
    sqlite_db: SqlStore, sealer: Sealer, jwks_server: JwksServer, ticker: Ticker
) -> AsyncIterator[Harness]:
    """An issuer on 127.0.0.1 (so jwks_uri on 127.0.0.1 is allowed), trusting the test server's CA."""
    h = await build_harness(
        sqlite_db,
        sealer,
        issuer=LOCAL_ISSUER,
        ca_bundle=jwks_server.ca_file,
        monotonic=ticker,
        max_age=60,
        refetch_interval=10,
    )
    yield h
    await h.watcher.stop()
    await h.auth.aclose()


def pk_uri_md(uri: str) -> dict[str, Any]:
    return {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri}


def ss_uri_md(uri: str) -> dict[str, Any]:
    return {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks_uri": uri}


def public(key: ECKey) -> dict[str, Any]:
    return dict(key.as_dict(private=False))


async def test_private_key_jwt_via_jwks_uri_and_caching(local: Harness, jwks_server: JwksServer) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "a"}, private=True)
    jwks_server.document = {"keys": [public(key)]}
    await local.register("pkj-uri", pk_uri_md(jwks_server.url()))
    for _ in range(3):
        await local.authenticate(jwt_bearer(assertion(key, "pkj-uri")))
    assert jwks_server.requests == 1  # cached for max_age


async def test_rotation_new_key_accepted_after_refetch(
    local: Harness, jwks_server: JwksServer, ticker: Ticker
) -> None:
    old = ECKey.generate_key("P-256", parameters={"kid": "old"}, private=True)
    new = ECKey.generate_key("P-256", parameters={"kid": "new"}, private=True)
    jwks_server.document = {"keys": [public(old)]}
    await local.register("pkj-rot", pk_uri_md(jwks_server.url()))
    await local.authenticate(jwt_bearer(assertion(old, "pkj-rot")))
    jwks_server.document = {"keys": [public(new)]}  # the client publishes its new key
    # refetched on the unknown kid only once the refetch interval has passed
    await local.refused("assertion.unknown_key", jwt_bearer(assertion(new, "pkj-rot")))
    assert jwks_server.requests == 1
    ticker.value += 11
    await local.authenticate(jwt_bearer(assertion(new, "pkj-rot")))
    assert jwks_server.requests == 2
    # unknown kids do not cause a fetch per request
    stranger = ECKey.generate_key("P-256", parameters={"kid": "stranger"}, private=True)
    for _ in range(5):
        await local.refused("assertion.unknown_key", jwt_bearer(assertion(stranger, "pkj-rot")))
    assert jwks_server.requests == 2


async def test_cache_expires_after_max_age(local: Harness, jwks_server: JwksServer, ticker: Ticker) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "a"}, private=True)
    jwks_server.document = {"keys": [public(key)]}
    await local.register("pkj-age", pk_uri_md(jwks_server.url()))
    await local.authenticate(jwt_bearer(assertion(key, "pkj-age")))
    jwks_server.document = {"keys": []}  # the client withdrew the key
    ticker.value += 61
    await local.refused("assertion.unknown_key", jwt_bearer(assertion(key, "pkj-age")))
    assert jwks_server.requests == 2


async def test_failed_refresh_drops_the_cache_and_fails_closed(
    local: Harness, jwks_server: JwksServer, ticker: Ticker
) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "a"}, private=True)
    jwks_server.document = {"keys": [public(key)]}
    await local.register("pkj-fail", pk_uri_md(jwks_server.url()))
    await local.authenticate(jwt_bearer(assertion(key, "pkj-fail")))
    jwks_server.status = 500
    ticker.value += 61  # the cached copy is too old: a refresh is due and fails
    await local.refused("jwks_uri.fetch_failed", jwt_bearer(assertion(key, "pkj-fail")))
    jwks_server.status = 200
    # the old copy is gone, not extended; the failure is remembered for refetch_interval
    await local.refused("jwks_uri.fetch_failed", jwt_bearer(assertion(key, "pkj-fail")))
    assert jwks_server.requests == 2
    ticker.value += 11
    await local.authenticate(jwt_bearer(assertion(key, "pkj-fail")))
    assert jwks_server.requests == 3


async def test_failed_refetch_on_unknown_kid_drops_the_cache(
    local: Harness, jwks_server: JwksServer, ticker: Ticker
) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "a"}, private=True)
    jwks_server.document = {"keys": [public(key)]}
    await local.register("pkj-fail2", pk_uri_md(jwks_server.url()))
    await local.authenticate(jwt_bearer(assertion(key, "pkj-fail2")))
    ticker.value += 11
    jwks_server.status = 503
    other = ECKey.generate_key("P-256", parameters={"kid": "b"}, private=True)
    await local.refused("jwks_uri.fetch_failed", jwt_bearer(assertion(other, "pkj-fail2")))
    # the known key no longer works either: the failed refresh dropped the copy it came from
    await local.refused("jwks_uri.fetch_failed", jwt_bearer(assertion(key, "pkj-fail2")))


async def test_self_signed_via_jwks_uri_and_rotation(
    local: Harness, jwks_server: JwksServer, ticker: Ticker
) -> None:
    old, _ = self_signed_client_cert("CN=ss-uri")
    new, _ = self_signed_client_cert("CN=ss-uri")
    jwks_server.document = {"keys": [jwk_with_x5c(old)]}
    await local.register("ss-uri", ss_uri_md(jwks_server.url()))
    await local.authenticate({"client_id": "ss-uri"}, certificate=presented(old))
    jwks_server.document = {"keys": [jwk_with_x5c(old), jwk_with_x5c(new)]}
    await local.refused("cert.unregistered", {"client_id": "ss-uri"}, certificate=presented(new))
    ticker.value += 11
    await local.authenticate({"client_id": "ss-uri"}, certificate=presented(new))
    stranger, _ = self_signed_client_cert("CN=ss-uri")
    await local.refused("cert.unregistered", {"client_id": "ss-uri"}, certificate=presented(stranger))


async def test_self_signed_expired_certificate_in_jwks_uri(local: Harness, jwks_server: JwksServer) -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    old, _ = self_signed_client_cert(
        "CN=ss-old", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1)
    )
    jwks_server.document = {"keys": [jwk_with_x5c(old)]}
    await local.register("ss-uri-exp", ss_uri_md(jwks_server.url()))
    await local.refused("cert.expired", {"client_id": "ss-uri-exp"}, certificate=presented(old))


async def test_contradictory_x5c_is_ignored(local: Harness, jwks_server: JwksServer) -> None:
    cert, _ = self_signed_client_cert("CN=ss-bad")
    other = ECKey.generate_key("P-256", private=True)
    bad = {**public(other), "x5c": jwk_with_x5c(cert)["x5c"]}  # a key that is not the certificate's
    jwks_server.document = {"keys": [bad]}
    await local.register("ss-uri-bad", ss_uri_md(jwks_server.url()))
    await local.refused("cert.unregistered", {"client_id": "ss-uri-bad"}, certificate=presented(cert))


# --- the fetcher on its own ------------------------------------------------------------------------------


def fetcher(jwks_server: JwksServer, **kwargs: Any) -> JwksFetcher:
    options: dict[str, Any] = {"issuer_url": LOCAL_ISSUER, "ca_bundle": jwks_server.ca_file, "timeout": 2.0}
    options.update(kwargs)
    return JwksFetcher(**options)


async def test_private_address_refused_when_issuer_is_public(jwks_server: JwksServer) -> None:
    f = fetcher(
        jwks_server,
        issuer_url="https://as.example.com",
        resolver=_resolver({"as.example.com": ["93.184.216.34"]}),
    )
    try:
        with pytest.raises(JwksFetchError, match=r"non-public address 127\.0\.0\.1"):
            await f.get(jwks_server.url())
        assert jwks_server.requests == 0
    finally:
        await f.aclose()


async def test_private_address_allowed_by_setting(jwks_server: JwksServer) -> None:
    jwks_server.document = {"keys": [public(ECKey.generate_key("P-256", private=True))]}
    f = fetcher(jwks_server, issuer_url="https://as.example.com", allow_private=True)
    try:
        fetched = await f.get(jwks_server.url())
        assert len(fetched.keys) == 1
    finally:
        await f.aclose()


async def test_issuer_named_localhost_allows_loopback(jwks_server: JwksServer) -> None:
    f = fetcher(jwks_server, issuer_url="https://localhost:8443")
    try:
        await f.get(jwks_server.url())
    finally:
        await f.aclose()


def _resolver(table: dict[str, list[str]]) -> Any:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve


async def test_name_resolving_to_private_address_is_refused(jwks_server: JwksServer) -> None:
    resolver = _resolver({"jwks.test": ["93.184.216.34", "10.1.2.3"], "as.example.com": ["93.184.216.34"]})
    f = fetcher(jwks_server, issuer_url="https://as.example.com", resolver=resolver)
    try:
        with pytest.raises(JwksFetchError, match=r"10\.1\.2\.3"):
            await f.get(jwks_server.url("jwks.test"))
    finally:
        await f.aclose()


NON_PUBLIC = ["169.254.169.254", "0.0.0.0", "::1", "fe80::1", "::ffff:127.0.0.1", "100.64.0.1"]  # noqa: S104


@pytest.mark.parametrize("address", NON_PUBLIC)
async def test_non_public_addresses(jwks_server: JwksServer, address: str) -> None:
    resolver = _resolver({"evil.test": [address], "as.example.com": ["93.184.216.34"]})
    f = fetcher(jwks_server, issuer_url="https://as.example.com", resolver=resolver)
    try:
        with pytest.raises(JwksFetchError, match="non-public"):
            await f.get("https://evil.test/jwks")
    finally:
        await f.aclose()


async def test_connects_to_the_checked_address_and_verifies_the_host_name(jwks_server: JwksServer) -> None:
    """jwks.test resolves (once, here) to 127.0.0.1; the request goes there with Host and SNI jwks.test."""
    jwks_server.document = {"keys": [public(ECKey.generate_key("P-256", private=True))]}
    f = fetcher(jwks_server, resolver=_resolver({"jwks.test": ["127.0.0.1"]}))
    try:
        await f.get(jwks_server.url("jwks.test"))
        assert jwks_server.hosts[-1] == f"jwks.test:{jwks_server.port}"
        # a name the server certificate does not hold fails verification
        f2 = fetcher(jwks_server, resolver=_resolver({"other.test": ["127.0.0.1"]}))
        try:
            with pytest.raises(JwksFetchError):
                await f2.get(jwks_server.url("other.test"))
        finally:
            await f2.aclose()
    finally:
        await f.aclose()


async def test_untrusted_server_certificate(jwks_server: JwksServer) -> None:
    f = fetcher(jwks_server, ca_bundle=None)
    try:
        with pytest.raises(JwksFetchError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await f.get(jwks_server.url())
    finally:
        await f.aclose()


@pytest.mark.parametrize(
    ("path", "match"),
    [("/redirect", "redirects are not followed"), ("/big", "larger than"), ("/notjson", "not JSON")],
)
async def test_bad_answers(jwks_server: JwksServer, path: str, match: str) -> None:
    f = fetcher(jwks_server)
    try:
        with pytest.raises(JwksFetchError, match=match):
            await f.get(jwks_server.url(path=path))
    finally:
        await f.aclose()


async def test_not_a_jwk_set(jwks_server: JwksServer) -> None:
    jwks_server.document = {"keys": "nope"}
    f = fetcher(jwks_server)
    try:
        with pytest.raises(JwksFetchError, match="not a JWK Set"):
            await f.get(jwks_server.url())
    finally:
        await f.aclose()


async def test_private_and_symmetric_keys_are_skipped(jwks_server: JwksServer) -> None:
    good = ECKey.generate_key("P-256", private=True)
    leaked = ECKey.generate_key("P-256", private=True)
    jwks_server.document = {
        "keys": [public(good), dict(leaked.as_dict(private=True)), {"kty": "oct", "k": "AAAA"}]
    }
    f = fetcher(jwks_server)
    try:
        fetched = await f.get(jwks_server.url())
        assert [k.thumbprint for k in fetched.keys] == [good.thumbprint()]
    finally:
        await f.aclose()


async def test_timeout(jwks_server: JwksServer) -> None:
    jwks_server.delay = 1.5
    f = fetcher(jwks_server, timeout=0.3)
    try:
        with pytest.raises(JwksFetchError):
            await f.get(jwks_server.url())
    finally:
        await f.aclose()


async def test_http_is_refused(jwks_server: JwksServer) -> None:
    f = fetcher(jwks_server)
    try:
        with pytest.raises(JwksFetchError, match="https"):
            await f.get(f"http://127.0.0.1:{jwks_server.port}/jwks")
    finally:
        await f.aclose()


async def test_concurrent_requests_share_one_fetch(jwks_server: JwksServer) -> None:
    jwks_server.document = {"keys": [public(ECKey.generate_key("P-256", private=True))]}
    jwks_server.delay = 0.2
    f = fetcher(jwks_server)
    try:
        results = await asyncio.gather(*(f.get(jwks_server.url()) for _ in range(10)))
        assert all(r is results[0] for r in results)
        assert jwks_server.requests == 1
    finally:
        await f.aclose()


async def test_unresolvable_host(jwks_server: JwksServer) -> None:
    f = fetcher(jwks_server, resolver=_resolver({}))
    try:
        with pytest.raises(JwksFetchError, match=r"cannot resolve nowhere\.test"):
            await f.get("https://nowhere.test/jwks")
    finally:
        await f.aclose()


async def test_registry_refuses_a_private_jwks_uri_when_the_issuer_is_public(
    sqlite_db: SqlStore, sealer: Sealer, jwks_server: JwksServer
) -> None:
    key = ECKey.generate_key("P-256", parameters={"kid": "a"}, private=True)
    jwks_server.document = {"keys": [public(key)]}
    h = await build_harness(
        sqlite_db,
        sealer,
        ca_bundle=jwks_server.ca_file,
        resolver=_resolver({"as.example.com": ["93.184.216.34"]}),
    )
    try:
        await h.register("pkj-ssrf", pk_uri_md(jwks_server.url()))
        await h.refused("jwks_uri.fetch_failed", jwt_bearer(assertion(key, "pkj-ssrf")))
        assert jwks_server.requests == 0
    finally:
        await h.watcher.stop()
        await h.auth.aclose()
