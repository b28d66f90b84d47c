"""What each authentication method puts on the wire, and which URL it goes to (real TLS, stub server)."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from urllib.parse import unquote_plus

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from certbound.client import METHODS, AsyncOAuthClient, ClientConfigError
from certbound.client.auth import ASSERTION_TYPE, basic_authorization
from tests.client.conftest import config_for
from tests.client.material import Material
from tests.client.stub_server import StubServer


def test_the_client_does_not_pull_in_the_server() -> None:
    """The gateway and the CLI use the client without the store: importing it must stay light."""
    code = "import sys, certbound.client; print([m for m in ('sqlalchemy', 'starlette') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert len(METHODS) == 7


def test_basic_credentials_are_form_urlencoded_before_base64() -> None:
    value = basic_authorization("client:1", "s3cr:et+%/ é")
    decoded = base64.b64decode(value.removeprefix("Basic ")).decode()
    assert decoded == "client%3A1:s3cr%3Aet%2B%25%2F+%C3%A9"
    client_id, secret = decoded.split(":")
    assert (unquote_plus(client_id), unquote_plus(secret)) == ("client:1", "s3cr:et+%/ é")


async def test_mtls_methods_send_client_id_and_no_secret(server: StubServer, material: Material) -> None:
    for method in ("tls_client_auth", "self_signed_tls_client_auth"):
        async with AsyncOAuthClient(config_for(server, material, auth_method=method)) as client:
            await client.client_credentials(scope="a b", resource=["https://r1/", "https://r2/"])
    for seen in server.posts("/token"):
        assert seen.form["client_id"] == ["client-1"]
        assert "client_secret" not in seen.form
        assert "authorization" not in seen.headers
        assert seen.form["scope"] == ["a b"]
        assert seen.form["resource"] == ["https://r1/", "https://r2/"]
        assert seen.client_cert == material.tls_client.thumbprint


async def test_secret_methods(server: StubServer, material: Material) -> None:
    async with AsyncOAuthClient(
        config_for(server, material, auth_method="client_secret_basic", client_secret="a:b+c", identities=[])
    ) as client:
        await client.client_credentials()
    async with AsyncOAuthClient(
        config_for(server, material, auth_method="client_secret_post", client_secret="a:b+c", identities=[])
    ) as client:
        await client.client_credentials()
    basic, post = server.posts("/token")
    assert basic.headers["authorization"] == basic_authorization("client-1", "a:b+c")
    assert "client_id" not in basic.form
    assert basic.client_cert is None
    assert post.form["client_id"] == ["client-1"]
    assert post.form["client_secret"] == ["a:b+c"]


@pytest.mark.parametrize("audience", ["issuer", "endpoint"])
async def test_assertions_are_fresh_and_short_lived(
    audience: str, server: StubServer, material: Material
) -> None:
    config = config_for(
        server, material, auth_method="private_key_jwt", jwk=material.jwt_key, assertion_audience=audience
    )
    async with AsyncOAuthClient(config) as client:
        await client.client_credentials(use_cache=False)
        await client.client_credentials(use_cache=False)
    key = ECKey.import_key(material.jwt_public)
    claims = []
    for seen in server.posts("/token"):
        assert seen.form["client_assertion_type"] == [ASSERTION_TYPE]
        token = jwt.decode(seen.form["client_assertion"][0], key, algorithms=["ES256"])
        assert token.header["kid"] == "client-key-1"
        assert seen.client_cert == material.tls_client.thumbprint  # a certificate goes with any method
        claims.append(token.claims)
    first, second = claims
    assert first["jti"] != second["jti"]
    assert first["iss"] == first["sub"] == "client-1"
    assert 0 < first["exp"] - first["iat"] <= 60
    assert abs(first["iat"] - time.time()) < 5
    assert first["aud"] == (server.url if audience == "issuer" else server.url + "/token")


async def test_client_secret_jwt_signs_with_the_secret(server: StubServer, material: Material) -> None:
    secret = "x" * 40
    config = config_for(
        server, material, auth_method="client_secret_jwt", client_secret=secret, identities=[]
    )
    async with AsyncOAuthClient(config) as client:
        await client.client_credentials()
    (seen,) = server.posts("/token")
    token = jwt.decode(seen.form["client_assertion"][0], OctKey.import_key(secret), algorithms=["HS256"])
    assert token.claims["sub"] == "client-1"
    assert "client_secret" not in seen.form


async def test_aliases_are_followed_only_with_a_certificate(server: StubServer, material: Material) -> None:
    alias = server.url + "/mtls/token"
    server.routes["GET /.well-known/oauth-authorization-server"] = lambda s: (
        200,
        server.metadata(mtls_endpoint_aliases={"token_endpoint": alias}),
    )
    server.routes["POST /mtls/token"] = server.routes["POST /token"]
    async with AsyncOAuthClient(config_for(server, material)) as client:
        assert await client.endpoint("token") == (alias, "mtls_alias")
        assert await client.endpoint("introspection") == (server.url + "/introspect", "metadata")
        await client.client_credentials()
    plain = config_for(server, material, auth_method="none", identities=[])
    async with AsyncOAuthClient(plain) as client:
        assert await client.endpoint("token") == (server.url + "/token", "metadata")
    override = config_for(server, material, mtls_token_endpoint=server.url + "/token")
    async with AsyncOAuthClient(override) as client:
        assert await client.endpoint("token") == (server.url + "/token", "override")
    assert [s.path for s in server.seen if s.method == "POST"] == ["/mtls/token"]


def test_contradictions_are_refused(material: Material) -> None:
    base = {"issuer": "https://as.example", "client_id": "c"}
    from certbound.client import ClientConfig

    with pytest.raises(ClientConfigError, match="needs a client secret"):
        ClientConfig(**base, auth_method="client_secret_basic")
    with pytest.raises(ClientConfigError, match="needs a client certificate"):
        ClientConfig(**base, auth_method="tls_client_auth")
    with pytest.raises(ClientConfigError, match="contradict"):
        ClientConfig(**base, auth_method="none", ca_file=material.ca_file, verify=False)
    with pytest.raises(ClientConfigError, match="mtls_token_endpoint"):
        ClientConfig(**base, auth_method="none", mtls_token_endpoint="https://x/token")
    with pytest.raises(ClientConfigError, match="unknown auth method"):
        ClientConfig(**base, auth_method="magic")


async def test_an_endpoint_can_use_another_method(server: StubServer, material: Material) -> None:
    """`endpoint_auth_methods`: a client registered with its own introspection_endpoint_auth_method."""
    server.routes["POST /introspect"] = lambda s: (200, {"active": False})
    config = config_for(
        server,
        material,
        client_secret="in-secret",
        endpoint_auth_methods={"introspection": "client_secret_basic"},
    )
    async with AsyncOAuthClient(config) as client:
        await client.client_credentials()
        await client.introspect("opaque-token")
    (token,), (introspection,) = server.posts("/token"), server.posts("/introspect")
    assert token.form["client_id"] == ["client-1"]
    assert "authorization" not in token.headers
    assert "client_id" not in introspection.form
    assert introspection.headers["authorization"] == basic_authorization("client-1", "in-secret")


def test_an_endpoint_method_needs_its_credentials(material: Material) -> None:
    from certbound.client import ClientConfig

    base = {"issuer": "https://as.example", "client_id": "c", "auth_method": "none"}
    with pytest.raises(ClientConfigError, match="client_secret_post needs a client secret"):
        ClientConfig(**base, endpoint_auth_methods={"introspection": "client_secret_post"})
    with pytest.raises(ClientConfigError, match="'userinfo' is not one of"):
        ClientConfig(**base, endpoint_auth_methods={"userinfo": "none"})  # type: ignore[dict-item]
