"""certbound's client against certbound's own server (`certbound serve --dev`, a real process): the same
matrix as against oidc-provider, and the README's demo client through `certbound token`.

The server's token, introspection and revocation endpoints are built in parallel with this client:
while `/token` answers 404 the tests are marked xfail with that reason instead of failing.
"""

from __future__ import annotations

import hashlib
import json
import ssl
from collections.abc import Iterator

import httpx
import pytest
import tomli_w

from certbound.client import AsyncOAuthClient, OAuthServerError
from certbound.sealing import Sealer, load_or_create_kek
from tests.client.cli import run_cli
from tests.client.material import Material
from tests.interop.cases import CASES, Case
from tests.server.process.serverproc import RunningServer, free_port, start_server

pytestmark = pytest.mark.slow


def clients_toml(material: Material, sealer: Sealer) -> str:
    """The CASES as certbound's clients file declares them: secrets hashed, or sealed for signing."""
    common = {"grant_types": ["client_credentials"], "scope": "api:read api:write"}
    clients = []
    for case in CASES:
        client = case.registration(material) | common
        if case.bound:
            client["tls_client_certificate_bound_access_tokens"] = True
        if case.secret and case.method == "client_secret_jwt":
            client["client_secret_sealed"] = sealer.seal(case.secret.encode(), aad=case.client_id.encode())
        elif case.secret:
            client["client_secret_sha256"] = hashlib.sha256(case.secret.encode()).hexdigest()
        clients.append(client)
    return tomli_w.dumps({"client": clients})


def _require_token_endpoint(server: RunningServer) -> None:
    with server.client() as http:
        status = http.post(server.url + "/token", data={"grant_type": "client_credentials"}).status_code
    if status == 404:
        pytest.xfail("certbound's /token endpoint is not routed yet (src/certbound/server/app.py)")


@pytest.fixture(scope="module")
def certbound_server(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    data = tmp_path_factory.mktemp("certbound") / "data"
    data.mkdir(mode=0o700)
    sealer = Sealer(load_or_create_kek(data / "kek"))
    clients = data.parent / "clients.toml"
    clients.write_text(clients_toml(material, sealer))
    args = [
        "--clients-file",
        str(clients),
        "--client-ca",
        str(material.ca_file),
        "--mtls-port",
        str(free_port()),
    ]
    server = start_server(args, data)
    yield server
    server.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.method)
async def test_obtain_introspect_revoke(
    case: Case, certbound_server: RunningServer, material: Material
) -> None:
    _require_token_endpoint(certbound_server)
    cert = case.certificate(material)
    config = case.config(certbound_server.url, material, ca_file=certbound_server.pki / "ca.crt")
    async with AsyncOAuthClient(config) as client:
        _, origin = await client.endpoint("token")
        assert origin == ("mtls_alias" if cert else "metadata")
        token = await client.client_credentials(scope="api:read")
        info = await client.introspect(token.access_token)
        assert info.active
        assert info.data.get("client_id") == case.client_id
        if case.bound:
            assert cert is not None
            assert info.cnf_x5t_s256 == cert.thumbprint
            if token.claims() is not None:
                assert token.cnf_x5t_s256 == cert.thumbprint
        else:
            assert info.cnf_x5t_s256 is None
        await client.revoke(token.access_token)
        assert (await client.introspect(token.access_token)).active is False


async def test_unregistered_certificate_is_refused(
    certbound_server: RunningServer, material: Material
) -> None:
    _require_token_endpoint(certbound_server)
    config = CASES[0].config(
        certbound_server.url,
        material,
        ca_file=certbound_server.pki / "ca.crt",
        identities=[material.unregistered.identity()],
    )
    async with AsyncOAuthClient(config) as client:
        with pytest.raises(OAuthServerError) as caught:
            await client.client_credentials()
    assert caught.value.error == "invalid_client"


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server([], tmp_path_factory.mktemp("certbound-demo") / "data")
    yield server
    server.stop()


def test_readme_demo_client_gets_a_bound_token(demo_server: RunningServer) -> None:
    _require_token_endpoint(demo_server)
    pki = demo_server.pki
    client = ["--issuer", demo_server.url, "--client-id", "demo-client", "--ca", str(pki / "ca.crt")]
    client += ["--cert", str(pki / "demo-client.crt"), "--key", str(pki / "demo-client.key")]
    args = [*client, "--auth", "tls_client_auth"]
    got = run_cli(["token", *args])
    assert got.exit_code == 0, got.stderr
    assert "access_token: " in got.stdout
    got_json = run_cli(["token", *args, "--json"])
    token = json.loads(got_json.stdout)["access_token"]
    got = run_cli(["introspect", *args, "--", token])
    assert got.exit_code == 0, got.stderr
    assert "(the certificate presented)" in got.stdout

    doctor = run_cli(["doctor", *client])
    assert doctor.exit_code == 0, doctor.stdout + doctor.stderr


def test_server_answers_over_verified_tls(demo_server: RunningServer) -> None:
    """Independent of /token: discovery against certbound works, with the dev CA and with no other."""
    ctx = ssl.create_default_context(cafile=str(demo_server.pki / "ca.crt"))
    with httpx.Client(verify=ctx) as http:
        assert http.get(demo_server.url + "/.well-known/oauth-authorization-server").status_code == 200
    got = run_cli(["doctor", "--issuer", demo_server.url, "--ca", str(demo_server.pki / "ca.crt")])
    assert "ok    metadata:" in got.stdout
    assert "FAIL  client certificate:" in got.stdout
