"""nginx: ``$ssl_client_escaped_cert`` (URL-encoded PEM) and ``$ssl_client_verify``, in headers we name.

nginx has no standard header for this; deploy/nginx/nginx.conf sets ``X-SSL-Client-Cert`` to
``$ssl_client_escaped_cert`` (nginx >= 1.13.5; the leaf only: nginx has no variable for the chain the
client sent, hence the ``forwarded_cert_intermediates`` setting) and ``X-SSL-Client-Verify`` to
``$ssl_client_verify``: ``SUCCESS``, ``FAILED:<OpenSSL's reason>`` or ``NONE``. That verdict becomes
``tls_verified``/``tls_error`` (information only: the application re-validates). Without the verify
header the verdict is unknown (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import unquote

from certbound.tls.client_certificate import ClientCertificate
from certbound.tls.headers.common import (
    REASON_CERTIFICATE_MISSING,
    ForwardedCertError,
    certificate_from_pem,
    malformed,
    single_value,
)

__all__ = ["CERT", "HEADERS", "SOURCE", "VERIFY", "read"]

SOURCE: Final = "header:nginx"
CERT: Final = b"x-ssl-client-cert"
VERIFY: Final = b"x-ssl-client-verify"
HEADERS: Final = (CERT, VERIFY)


def _verdict(verify: str | None) -> tuple[bool | None, str | None] | None:
    """(tls_verified, tls_error) from ``$ssl_client_verify``; None for ``NONE`` (no certificate)."""
    if verify is None:
        return (None, None)
    if verify == "SUCCESS":
        return (True, None)
    if verify == "NONE":
        return None
    if verify.startswith("FAILED:"):
        return (False, verify.removeprefix("FAILED:").strip() or "failed")
    raise malformed("X-SSL-Client-Verify is not SUCCESS, FAILED:<reason> or NONE")


def read(headers: Mapping[bytes, Sequence[bytes]]) -> ClientCertificate | None:
    """The certificate nginx forwarded; None when the client presented none."""
    escaped = single_value("X-SSL-Client-Cert", headers.get(CERT))
    verdict = _verdict(single_value("X-SSL-Client-Verify", headers.get(VERIFY)))
    if escaped is None:
        if verdict is not None and verdict != (None, None):
            raise ForwardedCertError(
                REASON_CERTIFICATE_MISSING,
                "X-SSL-Client-Verify says a certificate was presented but X-SSL-Client-Cert is absent",
            )
        return None
    if verdict is None:
        raise malformed("X-SSL-Client-Cert is sent with X-SSL-Client-Verify: NONE")
    try:
        pem = unquote(escaped, errors="strict")
    except UnicodeDecodeError:
        raise malformed("X-SSL-Client-Cert is not URL-encoded PEM") from None
    verified, error = verdict
    name = "X-SSL-Client-Cert ($ssl_client_escaped_cert)"
    return certificate_from_pem(name, pem, source=SOURCE, tls_verified=verified, tls_error=error)
