"""net/http.py: the httpx factory, and the guarded GET against real servers on 127.0.0.1."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from certbound.net.addresses import AddressPolicy
from certbound.net.errors import FetchError
from certbound.net.http import DEFAULT_LIMITS, GuardedFetcher, async_client
from certbound.net.tls import Trust, build_ssl_context, load_trust
from tests.net.docserver import DocServer, Route, ServerPki, resolver_for

LOCAL = "https://127.0.0.1:8443"  # an issuer on loopback: loopback targets are allowed


async def test_factory_defaults(server_pki: ServerPki) -> None:
    ctx = build_ssl_context(load_trust(server_pki.ca_file), None)
    client = async_client(ctx, timeout=5.0)
    try:
        assert client.follow_redirects is False
        assert client.timeout == httpx.Timeout(5.0)
        assert client._trust_env is False  # no HTTPS_PROXY, no .netrc for calls the server makes
        assert client._transport._pool._ssl_context is ctx  # type: ignore[attr-defined]
        assert client._transport._pool._max_connections == DEFAULT_LIMITS.max_connections  # type: ignore[attr-defined]
    finally:
        await client.aclose()
    proxied = async_client(ctx, timeout=5.0, trust_env=True, headers={"Accept": "application/json"})
    try:
        assert proxied._trust_env is True
        assert proxied.headers["Accept"] == "application/json"
    finally:
        await proxied.aclose()


async def test_factory_never_follows_redirects(server_pki: ServerPki, https_server: DocServer) -> None:
    https_server.routes["/moved"] = Route(status=302, headers={"Location": https_server.url("/there")})
    async with async_client(build_ssl_context(load_trust(server_pki.ca_file), None), timeout=5.0) as client:
        response = await client.get(https_server.url("/moved"))
    assert response.status_code == 302
    assert https_server.requests == ["/moved"]


def fetcher(server_pki: ServerPki, **kwargs: Any) -> GuardedFetcher:
    policy_options: dict[str, Any] = {"issuer_url": LOCAL}
    for name in ("issuer_url", "allow_private", "resolver"):
        if name in kwargs:
            policy_options[name] = kwargs.pop(name)
    trust = kwargs.pop("trust", load_trust(server_pki.ca_file, with_system=True))
    options: dict[str, Any] = {"timeout": 2.0}
    options.update(kwargs)
    return GuardedFetcher(AddressPolicy(**policy_options), build_ssl_context(trust, None), **options)


async def test_get(server_pki: ServerPki, https_server: DocServer) -> None:
    https_server.routes["/doc?x=1"] = Route(b'{"ok": true}')
    f = fetcher(server_pki)
    try:
        assert await f.get(https_server.url("/doc?x=1"), accept="application/json") == b'{"ok": true}'
    finally:
        await f.aclose()
    assert https_server.accepts == ["application/json"]


async def test_pinned_to_the_checked_address_with_host_and_sni_kept(
    server_pki: ServerPki, https_server: DocServer
) -> None:
    """idp.test resolves (once, in the policy) to 127.0.0.1; the request goes there with Host and SNI
    idp.test, so the certificate is verified for idp.test; a name it does not hold fails."""
    https_server.routes["/doc"] = Route(b"hello")
    resolver = resolver_for({"idp.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    f = fetcher(server_pki, resolver=resolver)
    try:
        assert await f.get(https_server.url("/doc", host="idp.test"), accept="*/*") == b"hello"
        assert https_server.hosts[-1] == f"idp.test:{https_server.port}"
        with pytest.raises(FetchError, match=r"request failed|cannot connect"):
            await f.get(https_server.url("/doc", host="other.test"), accept="*/*")
    finally:
        await f.aclose()


async def test_resolved_once_so_rebinding_cannot_switch_the_target(
    server_pki: ServerPki, https_server: DocServer
) -> None:
    """The name is resolved once, by the policy; the connection goes to that checked address. A second
    resolution (what a rebinding attacker would answer differently) never happens."""
    https_server.routes["/doc"] = Route(b"pinned")
    answers = iter([["127.0.0.1"], ["10.255.255.1"]])
    calls: list[str] = []

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    f = fetcher(server_pki, resolver=rebinding)
    try:
        assert await f.get(https_server.url("/doc", host="jwks.test"), accept="*/*") == b"pinned"
    finally:
        await f.aclose()
    assert calls == ["jwks.test"]


async def test_private_target_refused_before_any_request(
    server_pki: ServerPki, https_server: DocServer
) -> None:
    resolver = resolver_for({"as.example.com": ["93.184.216.34"]})
    f = fetcher(server_pki, issuer_url="https://as.example.com", resolver=resolver)
    try:
        with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1"):
            await f.get(https_server.url("/doc"), accept="*/*")
    finally:
        await f.aclose()
    assert https_server.requests == []


@pytest.mark.parametrize(
    ("route", "match"),
    [
        (Route(status=302, headers={"Location": "/elsewhere"}), r"HTTP 302 \(redirects are not followed\)"),
        (Route(b"oops", status=500), r"HTTP 500 \(expected 200\)"),
        (Route(b"x" * 5000), "response larger than 4096 bytes"),
        (Route(b"x" * 50_000, length=False), "response larger than 4096 bytes"),
    ],
)
async def test_bad_answers(server_pki: ServerPki, https_server: DocServer, route: Route, match: str) -> None:
    https_server.routes["/doc"] = route
    f = fetcher(server_pki, max_bytes=4096)
    try:
        with pytest.raises(FetchError, match=match):
            await f.get(https_server.url("/doc"), accept="*/*")
    finally:
        await f.aclose()


async def test_streamed_body_under_the_cap(server_pki: ServerPki, https_server: DocServer) -> None:
    https_server.routes["/doc"] = Route(b"y" * 40_000, length=False)
    f = fetcher(server_pki, max_bytes=40_000)
    try:
        assert len(await f.get(https_server.url("/doc"), accept="*/*")) == 40_000
    finally:
        await f.aclose()


async def test_deadline(server_pki: ServerPki, https_server: DocServer) -> None:
    https_server.routes["/slow"] = Route(b"late")
    https_server.delay = 1.0
    f = fetcher(server_pki, timeout=5.0, deadline=0.3)
    try:
        with pytest.raises(FetchError, match=r"no complete answer within 0\.3s"):
            await f.get(https_server.url("/slow"), accept="*/*")
    finally:
        await f.aclose()


async def test_untrusted_server(server_pki: ServerPki, https_server: DocServer) -> None:
    f = fetcher(server_pki, trust=Trust("system"))
    try:
        with pytest.raises(FetchError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await f.get(https_server.url("/"), accept="*/*")
    finally:
        await f.aclose()


async def test_schemes(server_pki: ServerPki, http_server: DocServer) -> None:
    http_server.routes["/crl"] = Route(b"crl bytes")
    https_only = fetcher(server_pki)
    both = fetcher(server_pki, schemes=("http", "https"))
    try:
        with pytest.raises(FetchError, match=r"^jwks_uri must be an https URL with a host$"):
            await https_only.get(http_server.url("/crl"), accept="*/*", what="jwks_uri")
        with pytest.raises(FetchError, match=r"^URL must be an https URL with a host$"):
            await https_only.get("https:///nohost", accept="*/*")
        assert await both.get(http_server.url("/crl"), accept="*/*") == b"crl bytes"
        assert http_server.hosts == [f"127.0.0.1:{http_server.port}"]
        with pytest.raises(FetchError, match=r"^URL must be an http or https URL with a host$"):
            await both.get("ftp://127.0.0.1/crl", accept="*/*")
    finally:
        await https_only.aclose()
        await both.aclose()


async def test_invalid_port_and_connection_refused(server_pki: ServerPki) -> None:
    f = fetcher(server_pki)
    try:
        with pytest.raises(FetchError, match=r"^CRL has an invalid port$"):
            await f.get("https://127.0.0.1:99999/x", accept="*/*", what="CRL")
        with pytest.raises(FetchError, match=r"cannot connect to 127\.0\.0\.1"):
            await f.get("https://127.0.0.1:1/x", accept="*/*")
    finally:
        await f.aclose()
