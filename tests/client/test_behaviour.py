"""Discovery, pools, rotation, the token cache and typed failures, over real TLS to a stub server."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certbound.client import (
    AsyncOAuthClient,
    ClientTimeout,
    DiscoveryError,
    NetworkError,
    OAuthServerError,
    TLSError,
    UnexpectedResponse,
)
from certbound.client.discovery import discovery_urls
from certbound.client.failures import CERTIFICATE_ALERTS
from tests.client.conftest import config_for
from tests.client.material import Material
from tests.client.stub_server import StubServer, stub_server


def test_discovery_urls() -> None:
    assert discovery_urls("https://as.example/tenant/1") == (
        "https://as.example/.well-known/oauth-authorization-server/tenant/1",
        "https://as.example/tenant/1/.well-known/openid-configuration",
    )


async def test_falls_back_to_openid_configuration(server: StubServer, material: Material) -> None:
    del server.routes["GET /.well-known/oauth-authorization-server"]
    server.routes["GET /.well-known/openid-configuration"] = lambda s: (200, server.metadata())
    async with AsyncOAuthClient(config_for(server, material)) as client:
        await client.client_credentials()
        assert client.metadata_source == server.url + "/.well-known/openid-configuration"


async def test_issuer_mismatch_and_missing_metadata(server: StubServer, material: Material) -> None:
    server.routes["GET /.well-known/oauth-authorization-server"] = lambda s: (200, {"issuer": "https://evil"})
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(DiscoveryError, match="names issuer 'https://evil'"):
            await client.metadata()
    del server.routes["GET /.well-known/oauth-authorization-server"]
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(DiscoveryError, match="HTTP 404"):
            await client.metadata()


async def test_rediscovery_after_failure_is_rate_limited(server: StubServer, material: Material) -> None:
    now = [1000.0]
    server.routes["POST /token"] = lambda s: (404, "<html>moved</html>")
    async with AsyncOAuthClient(config_for(server, material), monotonic=lambda: now[0]) as client:
        for _ in range(3):
            with pytest.raises(UnexpectedResponse):
                await client.client_credentials(use_cache=False)
        gets = [s for s in server.seen if s.method == "GET"]
        assert len(gets) == 1  # failures within 30 s do not re-discover
        now[0] += 31
        with pytest.raises(UnexpectedResponse):
            await client.client_credentials(use_cache=False)  # marks stale (31 s since discovery)
        with pytest.raises(UnexpectedResponse):
            await client.client_credentials(use_cache=False)  # re-discovers first
        assert len([s for s in server.seen if s.method == "GET"]) == 2


async def test_oauth_errors_are_typed(server: StubServer, material: Material) -> None:
    server.routes["POST /token"] = lambda s: (401, {"error": "invalid_client", "error_description": "nope"})
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(OAuthServerError) as caught:
            await client.client_credentials()
    assert (caught.value.error, caught.value.description, caught.value.status) == (
        "invalid_client",
        "nope",
        401,
    )


async def test_token_cache_until_shortly_before_expiry(server: StubServer, material: Material) -> None:
    now = [time.time()]
    async with AsyncOAuthClient(config_for(server, material), clock=lambda: now[0]) as client:
        first = await client.client_credentials(scope="s")
        now[0] += 500
        assert await client.client_credentials(scope="s") is first
        now[0] += 75  # 25 s left of 600: inside the 30 s margin
        assert (await client.client_credentials(scope="s")).access_token != first.access_token
    assert len(server.posts("/token")) == 2


async def test_two_identities_never_share_a_connection(server: StubServer, material: Material) -> None:
    one = AsyncOAuthClient(config_for(server, material))
    two = AsyncOAuthClient(config_for(server, material, identities=[material.second_tls_client.identity()]))
    async with one, two:
        for _ in range(2):
            await one.client_credentials(use_cache=False)
            await two.client_credentials(use_cache=False)
    posts = server.posts("/token")
    by_cert: dict[str | None, set[int]] = {}
    for seen in posts:
        by_cert.setdefault(seen.client_cert, set()).add(seen.connection)
    assert set(by_cert) == {material.tls_client.thumbprint, material.second_tls_client.thumbprint}
    assert by_cert[material.tls_client.thumbprint].isdisjoint(by_cert[material.second_tls_client.thumbprint])
    assert len(by_cert[material.tls_client.thumbprint]) == 1  # kept alive and reused


async def test_rotation_switches_certificate_at_the_given_time(
    server: StubServer, material: Material
) -> None:
    switch = datetime.now(UTC) + timedelta(hours=1)
    now = [datetime.now(UTC)]
    identities = [material.tls_client.identity(), material.second_tls_client.identity(use_from=switch)]
    async with AsyncOAuthClient(
        config_for(server, material, identities=identities), now=lambda: now[0]
    ) as client:
        before = await client.client_credentials()
        now[0] = switch + timedelta(seconds=1)
        after = await client.client_credentials()
        assert after.access_token != before.access_token  # the cached token was bound to the old certificate
        assert len(client.pools.keys) == 2
    first, second = server.posts("/token")
    assert first.client_cert == material.tls_client.thumbprint
    assert second.client_cert == material.second_tls_client.thumbprint


async def test_wrong_server_ca_is_a_client_side_tls_error(server: StubServer, material: Material) -> None:
    async with AsyncOAuthClient(config_for(server, material, ca_file=material.other_ca_file)) as client:
        with pytest.raises(TLSError) as caught:
            await client.metadata()
    assert caught.value.side == "client"
    assert caught.value.reason == "CERTIFICATE_VERIFY_FAILED"


async def test_system_store_honours_ssl_cert_file(
    server: StubServer, material: Material, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(material.ca_file))
    async with AsyncOAuthClient(config_for(server, material, ca_file=None)) as client:
        assert client.trust.mode == "system"
        await client.client_credentials()


async def test_insecure_warns_on_every_new_connection(
    server: StubServer, material: Material, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_for(server, material, ca_file=None, verify=False)
    with caplog.at_level(logging.WARNING, logger="certbound.client"):
        for _ in range(2):
            async with AsyncOAuthClient(config) as client:
                await client.client_credentials()
                await client.client_credentials(use_cache=False)
    warnings = [r for r in caplog.records if "TLS verification is off" in r.getMessage()]
    assert len(warnings) == 2  # two clients, one connection each


async def test_server_rejecting_the_client_certificate_under_tls13(material: Material) -> None:
    with stub_server(material.server, client_ca=material.ca_file, require_cert=True) as strict:
        config = config_for(strict, material, identities=[material.other_ca_client.identity()])
        async with AsyncOAuthClient(config) as client:
            with pytest.raises(TLSError) as caught:
                await client.metadata()
    assert caught.value.side == "server"
    assert caught.value.reason in CERTIFICATE_ALERTS
    assert str(caught.value).startswith("the server rejected the client certificate")


async def test_timeout_and_refused_connection(material: Material, tmp_path: Path) -> None:
    with stub_server(material.server, client_ca=material.ca_file) as slow:

        def sleepy(seen: object) -> tuple[int, dict[str, str]]:
            time.sleep(1.0)
            return 200, {}

        slow.routes["GET /.well-known/oauth-authorization-server"] = sleepy
        async with AsyncOAuthClient(config_for(slow, material, timeout=0.3)) as client:
            with pytest.raises(ClientTimeout) as caught:
                await client.metadata()
        assert caught.value.phase == "read"
        url = slow.url
    async with AsyncOAuthClient(config_for(slow, material, issuer=url)) as client:
        with pytest.raises(NetworkError, match="cannot connect"):
            await client.metadata()


async def test_a_failed_discovery_is_not_repeated_at_once(server: StubServer, material: Material) -> None:
    """While the server is down, calls fail at once with the first error; after `discovery_retry_after`
    the next call tries again and picks the server up."""
    now = [1000.0]
    server.routes["GET /.well-known/oauth-authorization-server"] = lambda s: (503, "<html>down</html>")
    config = config_for(server, material, discovery_retry_after=5.0)
    async with AsyncOAuthClient(config, monotonic=lambda: now[0]) as client:
        for _ in range(3):
            with pytest.raises(DiscoveryError, match="HTTP 503"):
                await client.metadata()
        # the RFC 8414 URL and the OIDC one, once
        assert len([s for s in server.seen if s.method == "GET"]) == 2
        server.routes["GET /.well-known/oauth-authorization-server"] = lambda s: (200, server.metadata())
        now[0] += 5
        assert (await client.metadata())["issuer"] == server.url


async def test_trust_env_off_ignores_proxy_variables(
    server: StubServer, material: Material, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens: a proxy would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with AsyncOAuthClient(config_for(server, material, trust_env=False)) as client:
        assert (await client.metadata())["issuer"] == server.url
    async with AsyncOAuthClient(config_for(server, material)) as client:
        with pytest.raises(NetworkError):
            await client.metadata()
