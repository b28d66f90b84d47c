"""Start-up pieces: the mode decision and what an operator is told in degraded mode."""

from __future__ import annotations

from certbound.tls.listener import (
    DEGRADED_MODE_LIMITATIONS,
    degraded_mode_message,
    protocol_class,
    self_check_result,
    tls_mode,
)
from certbound.tls.openssl_verify import SelfCheckResult
from certbound.tls.protocol import HttpToolsTLSProtocol


def test_native_mode_on_this_machine() -> None:
    assert self_check_result().ok, self_check_result().detail
    assert tls_mode() == "native"


def test_protocol_class() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    assert protocol_class() is HttpToolsTLSProtocol
    assert issubclass(protocol_class(), HttpToolsProtocol)


def test_degraded_message_says_what_does_not_work() -> None:
    message = degraded_mode_message(SelfCheckResult(False, "symbol SSL_CTX_set_verify not found"))
    assert "SSL_CTX_set_verify" in message
    for item in DEGRADED_MODE_LIMITATIONS:
        assert item in message
    for word in ("expired", "self-signed", "jwks_uri", "Proxy mode"):
        assert word in message
