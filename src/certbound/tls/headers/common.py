"""What the header readers share: their error, reason codes, limits and small decoding helpers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cryptography import x509

from certbound.tls.client_certificate import ClientCertificate

__all__ = [
    "MAX_CHAIN",
    "MAX_HEADER_BYTES",
    "REASON_CERTIFICATE_MISSING",
    "REASON_MALFORMED",
    "ForwardedCertError",
    "ascii_value",
    "certificate_from_pem",
    "malformed",
    "single_value",
]

#: A header that does not parse, is repeated where it must not be, or is too large.
REASON_MALFORMED: Final = "proxy.malformed_header"
#: The proxy says a certificate was presented but did not forward it (a proxy configuration problem).
REASON_CERTIFICATE_MISSING: Final = "proxy.certificate_missing"

#: Far above a leaf plus a few intermediates in any encoding; a cap on parsing work per request.
MAX_HEADER_BYTES: Final = 64 * 1024
MAX_CHAIN: Final = 10


class ForwardedCertError(ValueError):
    """A trusted proxy's header cannot be used; `reason` is a code for the log, `detail` says what."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def malformed(detail: str) -> ForwardedCertError:
    return ForwardedCertError(REASON_MALFORMED, detail)


def ascii_value(name: str, raw: bytes) -> str:
    """The header value as text; headers carrying certificates are ASCII by construction."""
    if len(raw) > MAX_HEADER_BYTES:
        raise malformed(f"{name} is longer than {MAX_HEADER_BYTES} bytes")
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise malformed(f"{name} is not ASCII") from None


def single_value(name: str, values: Sequence[bytes] | None) -> str | None:
    """The one value of a header that must not be repeated (None when absent or empty)."""
    if not values:
        return None
    if len(values) > 1:
        raise malformed(f"{name} is given {len(values)} times")
    return ascii_value(name, values[0]) or None


_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def certificate_from_pem(
    name: str, pem: str, *, source: str, tls_verified: bool | None, tls_error: str | None
) -> ClientCertificate:
    """A ClientCertificate from PEM text holding the leaf, then optionally its chain."""
    if not pem.lstrip().startswith(_PEM_BEGIN):
        raise malformed(f"{name} is not PEM")
    if pem.count(_PEM_BEGIN) > MAX_CHAIN + 1:
        raise malformed(f"{name} holds more than {MAX_CHAIN + 1} certificates")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise malformed(f"{name} does not hold a PEM X.509 certificate") from None
    return ClientCertificate.from_certificates(
        certs, source=source, tls_verified=tls_verified, tls_error=tls_error
    )
