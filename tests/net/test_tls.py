"""net/tls.py: the client-side contexts (trust modes, TLS 1.2+), identities, and the errors they give."""

from __future__ import annotations

import ssl
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from certbound.client.errors import ClientConfigError
from certbound.client.tls import build_ssl_context as client_build_ssl_context
from certbound.client.tls import load_identity as client_load_identity
from certbound.net.tls import TLSConfigError, TLSIdentity, Trust, build_ssl_context, load_identity, load_trust
from certbound.pki.issue import create_ca, issue_client_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.thumbprint import x5t_s256
from tests.net.docserver import DocServer, Route, ServerPki


def identity_files(directory: Path, name: str = "client") -> TLSIdentity:
    ca = create_ca("CN=net test client CA")
    cert, key = issue_client_cert(*ca, f"CN={name}")
    (directory / f"{name}.pem").write_bytes(cert_to_pem(cert))
    (directory / f"{name}.key").write_bytes(key_to_pem(key))
    return TLSIdentity(directory / f"{name}.pem", directory / f"{name}.key")


def test_trust_modes(server_pki: ServerPki) -> None:
    assert load_trust(None) == Trust("system")
    assert load_trust(server_pki.ca_file, verify=False) == Trust("insecure")
    ca = load_trust(server_pki.ca_file)
    assert (ca.mode, ca.ca_file, len(ca.fingerprint)) == ("ca", server_pki.ca_file, 16)
    both = load_trust(server_pki.ca_file, with_system=True)
    assert both.mode == "system+ca"
    assert both.fingerprint == ca.fingerprint
    assert ca.key != both.key != Trust("system").key
    assert "system trust store and" in both.describe()


def test_unreadable_bundle(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="cannot read the CA bundle"):
        load_trust(tmp_path / "missing.pem")


@pytest.mark.parametrize("mode", ["system", "ca", "system+ca", "insecure"])
def test_every_context_is_tls12_or_later(mode: str, server_pki: ServerPki) -> None:
    trust = Trust(mode, server_pki.ca_file) if mode in ("ca", "system+ca") else Trust(mode)  # type: ignore[arg-type]
    ctx = build_ssl_context(trust, None)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.verify_mode == (ssl.CERT_NONE if mode == "insecure" else ssl.CERT_REQUIRED)
    assert ctx.check_hostname is (mode != "insecure")


def test_system_plus_ca_keeps_the_system_store(server_pki: ServerPki) -> None:
    system = len(build_ssl_context(Trust("system"), None).get_ca_certs())
    only = build_ssl_context(load_trust(server_pki.ca_file), None).get_ca_certs()
    both = build_ssl_context(load_trust(server_pki.ca_file, with_system=True), None).get_ca_certs()
    assert len(only) == 1
    assert len(both) == system + 1


async def test_contexts_verify_a_real_server(server_pki: ServerPki, https_server: DocServer) -> None:
    https_server.routes["/"] = Route(b"ok")
    for trust in (load_trust(server_pki.ca_file), load_trust(server_pki.ca_file, with_system=True)):
        async with httpx.AsyncClient(verify=build_ssl_context(trust, None)) as client:
            assert (await client.get(https_server.url("/"))).text == "ok"
    async with httpx.AsyncClient(verify=build_ssl_context(Trust("system"), None)) as client:
        with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await client.get(https_server.url("/"))


def test_bundle_without_certificates(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for mode in ("ca", "system+ca"):
        with pytest.raises(TLSConfigError, match="holds no usable certificate"):
            build_ssl_context(Trust(mode, junk), None)  # type: ignore[arg-type]


def test_identity(tmp_path: Path) -> None:
    identity = identity_files(tmp_path)
    loaded = load_identity(identity)
    assert loaded.thumbprint == x5t_s256(loaded.certificate)
    build_ssl_context(Trust("system"), loaded)  # certificate and key load together


def test_identity_errors_keep_their_messages_in_the_client(tmp_path: Path) -> None:
    good = identity_files(tmp_path, "one")
    other = identity_files(tmp_path, "two")
    mismatched = TLSIdentity(good.cert_file, other.key_file)
    missing = TLSIdentity(tmp_path / "nope.pem", good.key_file)
    with pytest.raises(TLSConfigError, match="no such file") as net_error:
        load_identity(missing)
    with pytest.raises(ClientConfigError) as client_error:
        client_load_identity(missing)
    assert str(client_error.value) == str(net_error.value)
    loaded = load_identity(mismatched)
    with pytest.raises(TLSConfigError, match="is not the key of the certificate"):
        build_ssl_context(Trust("system"), loaded)
    with pytest.raises(ClientConfigError, match="is not the key of the certificate"):
        client_build_ssl_context(Trust("system"), loaded)


def test_use_from_must_be_aware(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match="timezone-aware"):
        TLSIdentity(tmp_path / "c.pem", tmp_path / "c.key", use_from=datetime(2030, 1, 1))
