"""Readers of the headers in which a TLS-terminating proxy forwards the client certificate.

One module per format. Each exposes ``SOURCE`` (the ``ClientCertificate.source`` it sets), ``HEADERS``
(the lower-case header names it reads) and ``read(headers)``, which returns the forwarded
:class:`~certbound.tls.client_certificate.ClientCertificate`, None when the proxy says no certificate
was presented, or raises :class:`ForwardedCertError` with a reason code. Readers trust their input to
come from a trusted proxy: deciding that is :mod:`certbound.tls.forwarded`'s job, not theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from certbound.tls.client_certificate import ClientCertificate
from certbound.tls.headers import envoy_xfcc, nginx, rfc9440
from certbound.tls.headers.common import (
    MAX_CHAIN,
    MAX_HEADER_BYTES,
    REASON_CERTIFICATE_MISSING,
    REASON_MALFORMED,
    ForwardedCertError,
)

__all__ = [
    "ALL_HEADERS",
    "FORMATS",
    "MAX_CHAIN",
    "MAX_HEADER_BYTES",
    "REASON_CERTIFICATE_MISSING",
    "REASON_MALFORMED",
    "ForwardedCertError",
    "HeaderFormat",
    "Headers",
]

Headers = Mapping[bytes, Sequence[bytes]]


@dataclass(frozen=True, slots=True)
class HeaderFormat:
    """One forwarding convention: its name in the settings, headers, and reader."""

    name: str
    source: str
    headers: tuple[bytes, ...]
    read: Callable[[Headers], ClientCertificate | None]


FORMATS: Final[dict[str, HeaderFormat]] = {
    "rfc9440": HeaderFormat("rfc9440", rfc9440.SOURCE, rfc9440.HEADERS, rfc9440.read),
    "nginx": HeaderFormat("nginx", nginx.SOURCE, nginx.HEADERS, nginx.read),
    "envoy-xfcc": HeaderFormat("envoy-xfcc", envoy_xfcc.SOURCE, envoy_xfcc.HEADERS, envoy_xfcc.read),
}

#: Every header any format reads: none of them is ever passed on to the application.
ALL_HEADERS: Final[frozenset[bytes]] = frozenset(name for fmt in FORMATS.values() for name in fmt.headers)
