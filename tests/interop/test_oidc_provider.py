"""certbound's client against oidc-provider (npm), a real process over real mutual TLS on 127.0.0.1.

The provider has two listeners: the issuer's, which never asks for a client certificate, and an
mTLS one published as ``mtls_endpoint_aliases``; a client that holds a certificate must follow the
aliases or its certificate methods fail.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.client import AsyncOAuthClient, OAuthClient, OAuthServerError
from tests.client.cli import run_cli
from tests.client.material import Material
from tests.interop.cases import CASES, Case
from tests.interop.peers import RESOURCE, OidcProvider

BY_ID = {case.client_id: case for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.method)
async def test_obtain_introspect_revoke(case: Case, oidc_provider: OidcProvider, material: Material) -> None:
    cert = case.certificate(material)
    async with AsyncOAuthClient(case.config(oidc_provider.issuer, material)) as client:
        url, origin = await client.endpoint("token")
        if cert is not None:
            assert (url, origin) == (f"{oidc_provider.mtls_base}/token", "mtls_alias")
        else:
            assert (url, origin) == (f"{oidc_provider.issuer}/token", "metadata")

        token = await client.client_credentials(scope="api:read")
        assert token.token_type == "Bearer"
        assert token.scope == "api:read"

        info = await client.introspect(token.access_token)
        assert info.active
        assert info.data["client_id"] == case.client_id
        if case.bound:
            assert cert is not None
            assert info.cnf_x5t_s256 == cert.thumbprint
        else:
            assert "cnf" not in info.data

        revoked = await client.revoke(token.access_token)
        assert revoked.status == 200
        after = await client.introspect(token.access_token)
        assert after.active is False
        assert after.raw == '{"active":false}'


async def test_jwt_access_token_carries_the_certificate_thumbprint(
    oidc_provider: OidcProvider, material: Material
) -> None:
    case = BY_ID["tls-dn"]
    async with AsyncOAuthClient(case.config(oidc_provider.issuer, material)) as client:
        token = await client.client_credentials(scope="api:read", resource=RESOURCE)
        jwks_uri = (await client.metadata())["jwks_uri"]
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(material.ca_file))) as http:
            keys = KeySet.import_key_set((await http.get(jwks_uri)).json())
        verified = jwt.decode(token.access_token, keys, algorithms=["ES256"])
        assert verified.claims["cnf"] == {"x5t#S256": material.tls_client.thumbprint}
        assert verified.claims["aud"] == RESOURCE
        assert token.cnf_x5t_s256 == material.tls_client.thumbprint

        with pytest.raises(OAuthServerError) as caught:  # oidc-provider only introspects opaque tokens
            await client.introspect(token.access_token)
        assert caught.value.error == "unsupported_token_type"
        assert caught.value.status == 400


async def test_assertion_audience_can_be_the_endpoint(
    oidc_provider: OidcProvider, material: Material
) -> None:
    case = BY_ID["pk-jwt"]
    config = case.config(oidc_provider.issuer, material, assertion_audience="endpoint")
    async with AsyncOAuthClient(config) as client:
        token = await client.client_credentials(scope="api:read")
        assert (await client.introspect(token.access_token)).active


async def test_client_credentials_tokens_are_cached(oidc_provider: OidcProvider, material: Material) -> None:
    async with AsyncOAuthClient(BY_ID["tls-dn"].config(oidc_provider.issuer, material)) as client:
        first = await client.client_credentials(scope="api:read")
        assert (await client.client_credentials(scope="api:read")) is first
        other = await client.client_credentials(scope="api:write")
        assert other.access_token != first.access_token
        fresh = await client.client_credentials(scope="api:read", use_cache=False)
        assert fresh.access_token != first.access_token


async def test_server_errors_are_typed(oidc_provider: OidcProvider, material: Material) -> None:
    async with AsyncOAuthClient(BY_ID["post"].config(oidc_provider.issuer, material)) as client:
        with pytest.raises(OAuthServerError) as caught:
            await client.refresh_token("not-a-refresh-token")
        assert (
            caught.value.error == "invalid_request"
        )  # oidc-provider's answer: grant not allowed for the client
        assert "grant type is not allowed" in caught.value.description
        with pytest.raises(OAuthServerError) as caught:
            await client.grant("urn:example:unknown-grant", {"foo": "bar"})
        assert caught.value.error == "unsupported_grant_type"


@pytest.mark.parametrize("cert", ["unregistered", "other_ca_client"])
async def test_a_certificate_the_provider_does_not_accept(
    cert: str, oidc_provider: OidcProvider, material: Material
) -> None:
    wrong = getattr(material, cert)
    config = BY_ID["tls-dn"].config(oidc_provider.issuer, material, identities=[wrong.identity()])
    async with AsyncOAuthClient(config) as client:
        with pytest.raises(OAuthServerError) as caught:
            await client.client_credentials()
    assert caught.value.error == "invalid_client"
    assert caught.value.status == 401


async def test_explicit_mtls_endpoint_wins_over_the_alias(
    oidc_provider: OidcProvider, material: Material
) -> None:
    # The issuer's own listener never asks for a certificate: pointing the override there proves it is used.
    override = f"{oidc_provider.issuer}/token"
    config = BY_ID["tls-dn"].config(oidc_provider.issuer, material, mtls_token_endpoint=override)
    async with AsyncOAuthClient(config) as client:
        assert await client.endpoint("token") == (override, "override")
        with pytest.raises(OAuthServerError) as caught:
            await client.client_credentials()
    assert caught.value.error == "invalid_client"


def test_sync_client(oidc_provider: OidcProvider, material: Material) -> None:
    with OAuthClient(BY_ID["self-signed"].config(oidc_provider.issuer, material)) as client:
        token = client.client_credentials(scope="api:read")
        assert client.introspect(token.access_token).cnf_x5t_s256 == material.self_signed.thumbprint
        client.revoke(token.access_token)
        assert client.introspect(token.access_token).active is False


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.method)
def test_commands(case: Case, oidc_provider: OidcProvider, material: Material, workdir: Path) -> None:
    args = case.cli_args(oidc_provider.issuer, material, workdir)
    env = {"CERTBOUND_CLIENT_SECRET": case.secret} if case.secret else {}
    got = run_cli(["token", *args, "--scope", "api:read", "--json"], env)
    assert got.exit_code == 0, got.stderr
    assert got.stderr == ""
    body = json.loads(got.stdout)  # stdout is the server's JSON and nothing else
    assert got.stdout.strip() == json.dumps(body, separators=(",", ":"))
    token = body["access_token"]

    got = run_cli(["introspect", *args, "--", token], env)
    assert got.exit_code == 0, got.stderr
    assert "active: true" in got.stdout
    if case.bound:
        thumb = case.certificate(material).thumbprint  # type: ignore[union-attr]
        assert f"bound to certificate: {thumb} (the certificate presented)" in got.stdout

    got = run_cli(["revoke", *args, "--", token], env)
    assert got.exit_code == 0, got.stderr
    assert got.stdout.startswith("revoked")

    got = run_cli(["introspect", *args, "--json", "-"], {**env}, stdin=token + "\n")
    assert got.exit_code == 0, got.stderr
    assert got.stdout == '{"active":false}\n'


def test_command_failure_is_one_or_two_lines(
    oidc_provider: OidcProvider, material: Material, workdir: Path
) -> None:
    args = BY_ID["tls-dn"].cli_args(oidc_provider.issuer, material, workdir)
    cert = ["--cert", str(material.unregistered.cert_file), "--key", str(material.unregistered.key_file)]
    got = run_cli(["token", *args, *cert, "--json"])
    assert got.exit_code == 1
    assert got.stdout == ""
    lines = got.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith("certbound token: invalid_client")
    assert "Traceback" not in got.stderr
