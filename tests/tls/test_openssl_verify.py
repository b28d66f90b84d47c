"""The ctypes mechanism on its own: self-check, fail-closed paths, callback, session cache, CA list."""

from __future__ import annotations

import ssl
import sys
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.issue import create_ca, issue_client_cert
from certbound.tls import openssl_verify
from certbound.tls.openssl_verify import (
    OpenSSLVerifyError,
    accept_all_installed,
    install_accept_all,
    self_check,
    self_check_isolated,
    unverified_chain_der,
    verify_error_string,
    verify_result,
)
from certbound.tls.server_context import ServerContextFactory

from .conftest import TestPKI, client_context


def _server_context(pki: TestPKI) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(cafile=pki.ca_file)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def _handshake(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> ssl.SSLObject:
    """The server side of a completed in-memory handshake."""
    server, error = openssl_verify._memory_handshake(server_ctx, client_ctx)
    assert error is None, error
    return server


def test_self_check_passes_here() -> None:
    result = self_check()
    assert result.ok, result.detail
    assert "TLSv1_2" in result.detail
    assert "TLSv1_3" in result.detail


def test_isolated_self_check_passes_here() -> None:
    result = self_check_isolated()
    assert result.ok, result.detail


def test_self_check_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openssl_verify, "_lib_cache", OpenSSLVerifyError("simulated: symbols missing"))
    result = self_check()
    assert not result.ok
    assert "simulated" in result.detail
    with pytest.raises(OpenSSLVerifyError, match="simulated"):
        install_accept_all(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    assert not accept_all_installed(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))


def test_unsupported_layout_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openssl_verify, "_lib_cache", None)
    monkeypatch.setattr(openssl_verify, "_callback_lib", None)
    monkeypatch.setattr(openssl_verify, "_CHECKED_CPYTHON", ((3, 0), (3, 1)))
    result = self_check()
    assert not result.ok
    assert "layout" in result.detail


def test_native_factory_fails_closed(monkeypatch: pytest.MonkeyPatch, pki: TestPKI) -> None:
    monkeypatch.setattr(openssl_verify, "_lib_cache", OpenSSLVerifyError("simulated"))
    factory = ServerContextFactory(
        cert_file=str(pki.server_cert), key_file=str(pki.server_key), mode="native"
    )
    with pytest.raises(OpenSSLVerifyError):
        factory(None, None)


def test_pointer_check_rejects_a_context_it_does_not_know() -> None:
    lib = openssl_verify._load()
    with pytest.raises(OpenSSLVerifyError, match=r"not an _ssl\._SSLContext"):
        openssl_verify._ssl_ctx_pointer(lib, object())  # type: ignore[arg-type]


def test_verify_mode_setter_and_the_callback(pki: TestPKI) -> None:
    """Up to 3.12 _ssl.c keeps the callback when verify_mode is set; 3.13 resets it (seen on 3.13.0)."""
    ctx = _server_context(pki)
    assert not accept_all_installed(ctx)
    install_accept_all(ctx)
    assert accept_all_installed(ctx)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_mode = ssl.CERT_OPTIONAL
    assert accept_all_installed(ctx) is (sys.version_info < (3, 13))
    install_accept_all(ctx)  # idempotent, and the way back after a verify_mode change
    assert accept_all_installed(ctx)
    assert ctx.verify_mode == ssl.CERT_OPTIONAL


def test_first_error_is_reported(pki: TestPKI) -> None:
    """Expired *and* from an unknown CA: the first error, as OpenSSL alone would have said."""
    stranger = create_ca("CN=Another stranger")
    now = datetime.now(UTC)
    cert, key = issue_client_cert(
        *stranger, "CN=old stranger", not_before=now - timedelta(days=9), not_after=now - timedelta(days=1)
    )
    cred = pki.write_cred("old-stranger", cert, key)
    plain = _server_context(pki)
    server, error = openssl_verify._memory_handshake(plain, client_context(pki, cred))
    assert isinstance(error, ssl.SSLCertVerificationError)
    ctx = _server_context(pki)
    install_accept_all(ctx)
    server = _handshake(ctx, client_context(pki, cred))
    code = verify_result(server)
    assert code == error.verify_code
    assert verify_error_string(code) == error.verify_message
    assert unverified_chain_der(server) == [cert.public_bytes(Encoding.DER)]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_factory_context_resumes_no_session(pki: TestPKI, version: ssl.TLSVersion) -> None:
    """A resumed session would carry the leaf without its intermediates and skip verification."""
    ctx = ServerContextFactory(cert_file=str(pki.server_cert), key_file=str(pki.server_key), mode="native")()
    client_ctx = client_context(pki, pki.with_intermediate, version)
    session = _client_session(ctx, client_ctx)
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost", session=session)
    _pump(server, client, s_in, s_out, c_in, c_out)
    assert not server.session_reused
    assert len(unverified_chain_der(server)) == 2


def test_plain_context_would_resume_without_the_chain(pki: TestPKI) -> None:
    """The reason for the factory's default: what OpenSSL gives on a resumed session."""
    ctx = _server_context(pki)
    install_accept_all(ctx)
    client_ctx = client_context(pki, pki.with_intermediate, ssl.TLSVersion.TLSv1_2)
    session = _client_session(ctx, client_ctx)
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost", session=session)
    _pump(server, client, s_in, s_out, c_in, c_out)
    assert server.session_reused
    assert len(unverified_chain_der(server)) == 1  # the leaf only


def _client_session(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> ssl.SSLSession | None:
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    _pump(server, client, s_in, s_out, c_in, c_out)
    server.write(b"x")  # TLS 1.3 tickets arrive after the handshake
    c_in.write(s_out.read())
    assert client.read() == b"x"
    return client.session


def _pump(
    server: ssl.SSLObject,
    client: ssl.SSLObject,
    s_in: ssl.MemoryBIO,
    s_out: ssl.MemoryBIO,
    c_in: ssl.MemoryBIO,
    c_out: ssl.MemoryBIO,
) -> None:
    done = {"s": False, "c": False}
    for _ in range(16):
        for key, obj in (("c", client), ("s", server)):
            if not done[key]:
                try:
                    obj.do_handshake()
                    done[key] = True
                except ssl.SSLWantReadError:
                    pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_client_ca_list_can_be_advertised(pki: TestPKI) -> None:
    ctx = _server_context(pki)
    assert openssl_verify.set_client_ca_list(ctx, pki.ca_file) == 1
    factory = ServerContextFactory(
        cert_file=str(pki.server_cert),
        key_file=str(pki.server_key),
        client_ca_file=str(pki.ca_file),
        advertise_client_cas=True,
        mode="native",
    )
    assert accept_all_installed(factory(None, None))
