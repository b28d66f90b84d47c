"""Envoy ``x-forwarded-client-cert`` (XFCC): ``Cert=`` and ``Chain=``, URL-encoded PEM.

The header is a comma-separated list of elements, one per proxy that handled the request; an element
is ``key=value`` pairs separated by semicolons, keys case-insensitive, values double-quoted when they
hold ``,``, ``;`` or ``=`` (a quote inside as ``\\"``). Several header lines are one list.

**The right-most element is used**: it is the one appended by the last proxy, the trusted one that
connects to certbound. Anything to its left came from further away and proves nothing. This is safe
only when the proxy facing clients removes what clients send: configure Envoy's
``forward_client_cert_details`` as ``SANITIZE_SET`` there (with ``set_current_client_cert_details``
``cert: true`` and ``chain: true``). With ``APPEND_FORWARD``, a client without a certificate would
see its own forged element forwarded as the right-most one.

``Cert`` is the leaf; ``Chain`` the whole chain, leaf included (the leaf is dropped from it here).
An element with neither (e.g. only ``Hash``) means the proxy saw a certificate but was not told to
forward it: refused as ``proxy.certificate_missing``. XFCC carries no verification result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import unquote

from cryptography.hazmat.primitives.serialization import Encoding

from certbound.tls.client_certificate import ClientCertificate
from certbound.tls.headers.common import (
    REASON_CERTIFICATE_MISSING,
    ForwardedCertError,
    ascii_value,
    certificate_from_pem,
    malformed,
)

__all__ = ["HEADER", "HEADERS", "SOURCE", "last_element", "read", "split_quoted"]

SOURCE: Final = "header:envoy-xfcc"
HEADER: Final = b"x-forwarded-client-cert"
HEADERS: Final = (HEADER,)


def split_quoted(text: str, separator: str) -> list[str]:
    """Split on `separator` outside double quotes (a backslash escapes the next character)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\" and quoted:
            current.append(char)
            escaped = True
        elif char == '"':
            current.append(char)
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if quoted:
        raise malformed("x-forwarded-client-cert has an unterminated quoted value")
    parts.append("".join(current))
    return parts


def _unquote_value(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if '"' in value:
        raise malformed("x-forwarded-client-cert has a stray quote")
    return value


def last_element(text: str) -> dict[str, list[str]]:
    """The right-most element as lower-case key -> values (URI and DNS may repeat)."""
    elements = [e for e in split_quoted(text, ",") if e.strip()]
    if not elements:
        raise malformed("x-forwarded-client-cert is empty")
    pairs: dict[str, list[str]] = {}
    for pair in split_quoted(elements[-1], ";"):
        if not pair.strip():
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise malformed("x-forwarded-client-cert element is not key=value pairs")
        pairs.setdefault(key.strip().lower(), []).append(_unquote_value(value))
    return pairs


def _pem(name: str, values: list[str] | None) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise malformed(f"x-forwarded-client-cert element has {name} {len(values)} times")
    try:
        return unquote(values[0], errors="strict") or None
    except UnicodeDecodeError:
        raise malformed(f"x-forwarded-client-cert {name} is not URL-encoded PEM") from None


def _certificate(name: str, pem: str) -> ClientCertificate:
    return certificate_from_pem(
        f"x-forwarded-client-cert {name}", pem, source=SOURCE, tls_verified=None, tls_error=None
    )


def read(headers: Mapping[bytes, Sequence[bytes]]) -> ClientCertificate | None:
    """The certificate in the right-most XFCC element; None when there is no XFCC header."""
    values = [ascii_value("x-forwarded-client-cert", v) for v in headers.get(HEADER, ())]
    text = ",".join(v for v in values if v)
    if not text:
        return None
    element = last_element(text)
    cert_pem, chain_pem = _pem("Cert", element.get("cert")), _pem("Chain", element.get("chain"))
    if cert_pem is None and chain_pem is None:
        raise ForwardedCertError(
            REASON_CERTIFICATE_MISSING,
            "x-forwarded-client-cert element has no Cert or Chain (set_current_client_cert_details)",
        )
    chain = _certificate("Chain", chain_pem) if chain_pem else None
    if cert_pem is None:
        assert chain is not None
        return chain
    cert = _certificate("Cert", cert_pem)
    if chain is None:
        return cert
    rest = chain.presented
    if rest[0].public_bytes(Encoding.DER) == cert.der:
        rest = rest[1:]
    return dataclasses.replace(cert, chain=cert.chain + rest)
