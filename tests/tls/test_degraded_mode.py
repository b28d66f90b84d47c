"""Degraded mode: OpenSSL verifies against client CAs + registered self-signed certificates."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import httpx
import pytest

from certbound.pki.thumbprint import x5t_s256
from certbound.tls.openssl_verify import accept_all_installed
from certbound.tls.server_context import ServerContextFactory

from .conftest import TestPKI, client_context, get_json, serve

VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]


@pytest.fixture(scope="module")
def degraded_factory(pki: TestPKI) -> ServerContextFactory:
    return ServerContextFactory(
        cert_file=str(pki.server_cert),
        key_file=str(pki.server_key),
        client_ca_file=str(pki.ca_file),
        extra_trust_pems=(pki.self_signed.pem,),
        mode="degraded",
    )


@pytest.fixture(scope="module")
def degraded_port(degraded_factory: ServerContextFactory) -> Iterator[int]:
    with serve(degraded_factory) as port:
        yield port


@pytest.fixture
def restore_trust(degraded_factory: ServerContextFactory) -> Iterator[None]:
    yield
    degraded_factory.trust_holder().replace(degraded_factory.extra_trust_pems)


def test_no_callback_in_degraded_mode(degraded_factory: ServerContextFactory) -> None:
    assert not accept_all_installed(degraded_factory.trust_holder().base)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["trusted", "self_signed", "with_intermediate"])
def test_trusted_and_registered_certificates_pass(
    pki: TestPKI, degraded_port: int, version: ssl.TLSVersion, name: str
) -> None:
    cred = getattr(pki, name)
    data = get_json(degraded_port, client_context(pki, cred, version))
    assert data["x5t"] == x5t_s256(cred.cert)
    assert data["tls_verified"] is True
    assert data["tls_error"] is None


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", ["self_signed_other", "expired", "untrusted"])
def test_other_certificates_fail_the_handshake(
    pki: TestPKI, degraded_port: int, version: ssl.TLSVersion, name: str
) -> None:
    # TLS 1.3: the client's handshake ends before the server has checked its certificate, so the
    # server's alert surfaces on the first read rather than in the handshake.
    with pytest.raises(httpx.TransportError):
        get_json(degraded_port, client_context(pki, getattr(pki, name), version))


def test_no_certificate_still_connects(pki: TestPKI, degraded_port: int) -> None:
    data = get_json(degraded_port, client_context(pki, None))
    assert data["has_tls"] is True
    assert data["object_id"] is None


@pytest.mark.usefixtures("restore_trust")
def test_registration_change_swaps_the_trust_store(
    pki: TestPKI, degraded_port: int, degraded_factory: ServerContextFactory
) -> None:
    holder = degraded_factory.trust_holder()
    old, new = pki.self_signed, pki.self_signed_other
    with pytest.raises(httpx.TransportError):
        get_json(degraded_port, client_context(pki, new))

    holder.replace([new.pem])

    assert get_json(degraded_port, client_context(pki, new))["x5t"] == x5t_s256(new.cert)
    with pytest.raises(httpx.TransportError):
        get_json(degraded_port, client_context(pki, old))
    # The CA-issued certificates are unaffected by the swap.
    assert get_json(degraded_port, client_context(pki, pki.trusted))["tls_verified"] is True
