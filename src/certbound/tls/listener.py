"""Pieces the server start-up needs from the native TLS listener: mode, message, protocol class.

Call :func:`tls_mode` once in the main process before starting workers, pass the mode to
:class:`~certbound.tls.server_context.ServerContextFactory` (so workers need not run the self-check
again), and log :func:`tls_mode_message` (the full :func:`degraded_mode_message` when degraded).
"""

from __future__ import annotations

import threading
from typing import Literal

from certbound.tls.openssl_verify import SelfCheckResult, self_check, self_check_isolated
from certbound.tls.protocol import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    HttpToolsTLSProtocol,
    limited,
)

__all__ = [
    "DEGRADED_MODE_LIMITATIONS",
    "degraded_mode_message",
    "protocol_class",
    "self_check_result",
    "tls_mode",
    "tls_mode_message",
]

DEGRADED_MODE_LIMITATIONS: tuple[str, ...] = (
    "expired client certificates fail the TLS handshake and never reach the application",
    "certificates from CAs not in the client CA bundle fail the handshake (no invalid_client answer)",
    "self-signed certificates reach the application only once registered "
    "(self_signed_tls_client_auth with an unregistered or not yet loaded certificate fails the handshake)",
    "a client's certificate rotated through its jwks_uri cannot be followed: the new certificate is "
    "refused in the handshake until it is registered and the trust store reloaded",
    "for handshake failures the TLS layer's verdict is the only verdict: they are not logged with "
    "certbound's reasons, and the client gets a TLS alert instead of an OAuth error",
)

_lock = threading.Lock()
_result: SelfCheckResult | None = None


def protocol_class(
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S,
) -> type[HttpToolsTLSProtocol]:
    """The uvicorn ``http`` protocol class that fills ``scope["extensions"]["tls"]`` and refuses request
    heads past the limits (431) or too slow to arrive (408)."""
    return limited(max_header_bytes, max_header_count, header_timeout)


def self_check_result() -> SelfCheckResult:
    """The start-up self-check, run once per process: first in a child process, then in this one.

    The child run means an unforeseen crash inside OpenSSL costs a child, not the server; the in-process
    run proves the mechanism in the interpreter that will serve.
    """
    global _result
    with _lock:
        if _result is None:
            isolated = self_check_isolated()
            if isolated.ok:
                _result = self_check()
            else:
                _result = SelfCheckResult(False, f"isolated self-check: {isolated.detail}")
        return _result


def tls_mode() -> Literal["native", "degraded"]:
    """``native`` when the self-check passed, else ``degraded`` (cached per process)."""
    return "native" if self_check_result().ok else "degraded"


def tls_mode_message() -> str:
    """One start-up line for native mode; the full :func:`degraded_mode_message` otherwise."""
    result = self_check_result()
    if result.ok:
        return "TLS listener in native mode: every client certificate reaches the application."
    return degraded_mode_message(result)


def degraded_mode_message(result: SelfCheckResult | None = None) -> str:
    """What an operator must be told at start-up when the listener runs degraded."""
    result = result if result is not None else self_check_result()
    lines = [
        f"TLS listener in DEGRADED mode: the client-certificate self-check failed ({result.detail}).",
        "The TLS layer now verifies client certificates itself, against the client CA bundle and the",
        "registered self-signed certificates only. What does not work:",
        *(f"  - {item}" for item in DEGRADED_MODE_LIMITATIONS),
        "Proxy mode (nginx optional_no_ca, Envoy XFCC, RFC 9440 Client-Cert) is the full-featured",
        "alternative: the proxy accepts any certificate and certbound decides.",
    ]
    return "\n".join(lines)
