"""`certbound doctor` against oidc-provider: a good set-up passes; each misconfiguration is named."""

from __future__ import annotations

from tests.client.cli import run_cli
from tests.client.material import Material
from tests.interop.peers import OidcProvider


def _base(provider: OidcProvider, material: Material) -> list[str]:
    return ["doctor", "--issuer", provider.issuer, "--client-id", "tls-dn"]


def _cert(material: Material, name: str = "tls_client") -> list[str]:
    files = getattr(material, name)
    return ["--cert", str(files.cert_file), "--key", str(files.key_file)]


def test_a_working_setup_passes(oidc_provider: OidcProvider, material: Material) -> None:
    got = run_cli([*_base(oidc_provider, material), *_cert(material), "--ca", str(material.ca_file)])
    assert got.exit_code == 0, got.stdout + got.stderr
    out = got.stdout
    assert "all checks passed" in out
    assert f"token_endpoint -> {oidc_provider.mtls_base}/token" in out
    assert "asks for a client certificate" in out
    assert "CA name: CN = certbound interop CA" in out or "CA name: O = certbound tests" in out
    assert f"x5t#S256: {material.tls_client.thumbprint}" in out
    assert "bound to this certificate (cnf.x5t#S256 matches)" in out
    assert got.stderr == ""


def test_wrong_ca(oidc_provider: OidcProvider, material: Material) -> None:
    got = run_cli([*_base(oidc_provider, material), *_cert(material), "--ca", str(material.other_ca_file)])
    assert got.exit_code == 1
    problems = got.stderr.strip().splitlines()
    assert len(problems) == 1
    assert "the server's certificate did not verify" in problems[0]
    assert "wrong CA?" in problems[0]


def test_missing_certificate(oidc_provider: OidcProvider, material: Material) -> None:
    got = run_cli([*_base(oidc_provider, material), "--ca", str(material.ca_file)])
    assert got.exit_code == 1
    assert got.stderr.strip().splitlines() == [
        "certbound doctor: no client certificate given (--cert and --key): an mTLS server cannot "
        "authenticate this client or bind its tokens"
    ]


def test_unregistered_certificate(oidc_provider: OidcProvider, material: Material) -> None:
    got = run_cli(
        [*_base(oidc_provider, material), *_cert(material, "unregistered"), "--ca", str(material.ca_file)]
    )
    assert got.exit_code == 1
    problems = got.stderr.strip().splitlines()
    assert len(problems) == 1
    assert "the server refused client 'tls-dn' with this certificate" in problems[0]
    assert material.unregistered.thumbprint in problems[0]
    assert "is not registered for this client" in problems[0]


def test_client_certificate_from_a_ca_the_server_does_not_trust(
    oidc_provider: OidcProvider, material: Material
) -> None:
    got = run_cli(
        [*_base(oidc_provider, material), *_cert(material, "other_ca_client"), "--ca", str(material.ca_file)]
    )
    assert got.exit_code == 1
    problems = got.stderr.strip().splitlines()
    assert len(problems) == 1
    assert "a CA the server does not advertise as trusted" in problems[0]
    assert "warn  certificate request" in got.stdout
