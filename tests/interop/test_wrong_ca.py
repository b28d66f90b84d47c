"""A server certificate from a CA the client does not trust: every call fails, unless --insecure."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest

from certbound.client import AsyncOAuthClient, TLSError
from tests.client.cli import run_cli
from tests.client.material import Material
from tests.interop.peers import OidcProvider
from tests.interop.test_oidc_provider import BY_ID


def _metadata(provider: OidcProvider) -> dict[str, object]:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with httpx.Client(verify=ctx) as http:
        doc: dict[str, object] = http.get(provider.issuer + "/.well-known/oauth-authorization-server").json()
    return doc


async def test_every_call_fails_with_a_verification_error(
    wrong_ca_provider: OidcProvider, material: Material
) -> None:
    case = BY_ID["tls-dn"]
    async with AsyncOAuthClient(case.config(wrong_ca_provider.issuer, material)) as client:
        with pytest.raises(TLSError) as caught:
            await client.metadata()
    assert caught.value.side == "client"
    assert caught.value.reason == "CERTIFICATE_VERIFY_FAILED"

    # With the metadata given, each endpoint is reached and each refuses to verify.
    config = case.config(wrong_ca_provider.issuer, material, metadata=_metadata(wrong_ca_provider))
    async with AsyncOAuthClient(config) as client:
        calls = [client.client_credentials(), client.introspect("x"), client.revoke("x")]
        for call in calls:
            with pytest.raises(TLSError) as caught:
                await call
            assert caught.value.side == "client"
            assert "did not verify" in str(caught.value)
            assert caught.value.url.startswith(str(wrong_ca_provider.mtls_base))


async def test_insecure_mode_succeeds_and_warns_on_each_new_connection(
    wrong_ca_provider: OidcProvider, material: Material, caplog: pytest.LogCaptureFixture
) -> None:
    config = BY_ID["tls-dn"].config(wrong_ca_provider.issuer, material, ca_file=None, verify=False)
    with caplog.at_level(logging.WARNING, logger="certbound.client"):
        async with AsyncOAuthClient(config) as client:
            token = await client.client_credentials(scope="api:read")
            info = await client.introspect(token.access_token)
            await client.revoke(token.access_token)
    assert info.cnf_x5t_s256 == material.tls_client.thumbprint
    warnings = [r.getMessage() for r in caplog.records if "TLS verification is off" in r.getMessage()]
    # One connection to the issuer (metadata), one to the mTLS alias (kept alive for the three calls).
    assert len(warnings) == 2
    assert any(str(wrong_ca_provider.mtls_base) in w for w in warnings)


def test_commands_fail_then_succeed_with_insecure(
    wrong_ca_provider: OidcProvider, material: Material, workdir: Path
) -> None:
    args = BY_ID["tls-dn"].cli_args(wrong_ca_provider.issuer, material, workdir)
    got = run_cli(["token", *args, "--json"])
    assert got.exit_code == 3
    assert got.stdout == ""
    first = got.stderr.splitlines()[0]
    assert first.startswith("certbound token: TLS: the server's certificate did not verify")
    assert len(got.stderr.splitlines()) == 2

    secure = args.index("--ca")
    insecure = [*args[:secure], *args[secure + 2 :], "--insecure"]
    got = run_cli(["token", *insecure, "--json"])
    assert got.exit_code == 0, got.stderr
    assert got.stdout.startswith('{"access_token":')
    assert "TLS verification is off" in got.stderr
