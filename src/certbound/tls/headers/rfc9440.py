"""RFC 9440 ``Client-Cert`` and ``Client-Cert-Chain``: DER certificates as Structured Field byte sequences.

``Client-Cert: :MIIB...:`` is one RFC 8941 byte sequence (an Item: the header must appear once);
``Client-Cert-Chain: :MIIB...:, :MIIB...:`` is a List of them (several lines are joined with commas,
RFC 8941 section 3.1), the certificates that came with the leaf, leaf excluded. A chain without a
leaf is refused (RFC 9440 section 2.2). Parameters are ignored, as RFC 8941 requires of unknown
ones. The format says nothing about the proxy's verification, so ``tls_verified`` is None.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from typing import Final

from certbound.tls.client_certificate import ClientCertificate
from certbound.tls.headers.common import MAX_CHAIN, ascii_value, malformed, single_value

__all__ = ["CERT", "CHAIN", "HEADERS", "SOURCE", "encode_byte_sequence", "read"]

SOURCE: Final = "header:rfc9440"
CERT: Final = b"client-cert"
CHAIN: Final = b"client-cert-chain"
HEADERS: Final = (CERT, CHAIN)

# sf-binary, then parameters (RFC 8941 sections 3.3.5 and 3.1.2), without quoted strings: a parameter
# value in quotes could hide a comma, and RFC 9440 defines no parameters anyway.
_ITEM = re.compile(r":([A-Za-z0-9+/]*={0,2}):((?:;[a-z*][a-z0-9_.*-]*(?:=[A-Za-z0-9_.:*/+-]+)?)*)")


def encode_byte_sequence(der: bytes) -> str:
    """One certificate as an RFC 8941 byte sequence (what a proxy sends; used by tests and tools)."""
    return ":" + base64.b64encode(der).decode("ascii") + ":"


def _byte_sequence(name: str, text: str) -> bytes:
    match = _ITEM.fullmatch(text.strip(" \t"))
    if match is None:
        raise malformed(f"{name} is not an RFC 8941 byte sequence")
    try:
        der = base64.b64decode(match.group(1), validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"{name} has invalid base64") from None
    if not der:
        raise malformed(f"{name} is an empty byte sequence")
    return der


def read(headers: Mapping[bytes, Sequence[bytes]]) -> ClientCertificate | None:
    """The certificate from ``Client-Cert`` (+ ``Client-Cert-Chain``); None when neither is sent."""
    leaf_text = single_value("Client-Cert", headers.get(CERT))
    chain_values = [ascii_value("Client-Cert-Chain", v) for v in headers.get(CHAIN, ())]
    chain_text = ", ".join(v for v in chain_values if v)
    if leaf_text is None:
        if chain_text:
            raise malformed("Client-Cert-Chain is sent without Client-Cert")
        return None
    if "," in leaf_text:
        raise malformed("Client-Cert holds a list; it must be one certificate")
    leaf = _byte_sequence("Client-Cert", leaf_text)
    members = chain_text.split(",") if chain_text else []
    if len(members) > MAX_CHAIN:
        raise malformed(f"Client-Cert-Chain has more than {MAX_CHAIN} certificates")
    chain = [_byte_sequence("Client-Cert-Chain", member) for member in members]
    try:
        return ClientCertificate.from_der(leaf, chain, source=SOURCE, tls_verified=None, tls_error=None)
    except ValueError:
        raise malformed("Client-Cert or Client-Cert-Chain is not a DER X.509 certificate") from None
