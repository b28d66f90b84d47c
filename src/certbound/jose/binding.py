"""Certificate-bound tokens (RFC 8705 section 3): the ``cnf`` / ``x5t#S256`` check.

A token bound to a certificate carries ``"cnf": {"x5t#S256": <base64url SHA-256 of the DER
certificate>}``; whoever presents it must do so over a TLS connection with that certificate (the
handshake proved possession of its key). Reading the claim is strict: a ``cnf`` that is not an
object, or an ``x5t#S256`` that is not a non-empty string, is refused rather than read as "unbound",
so that a token cannot escape its binding by a type trick. Other confirmation methods (``jkt``, ...)
leave the token unbound as far as certificates go. Thumbprints are compared in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from certbound.jose.errors import JwtError

__all__ = ["bound_thumbprint", "check_binding", "thumbprints_match"]


def bound_thumbprint(claims: Mapping[str, Any]) -> str | None:
    """The ``cnf.x5t#S256`` the token is bound to; None when it has no certificate confirmation.
    JwtError(cnf.malformed) when ``cnf`` or its member is not well-typed."""
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    if not isinstance(cnf, Mapping):
        raise JwtError("cnf.malformed", "cnf is not a JSON object")
    if "x5t#S256" not in cnf:
        return None
    thumbprint = cnf["x5t#S256"]
    if not isinstance(thumbprint, str) or not thumbprint:
        raise JwtError("cnf.malformed", "cnf.x5t#S256 is not a non-empty string")
    return thumbprint


def thumbprints_match(expected: str, presented: str) -> bool:
    """Whether two ``x5t#S256`` values are equal, compared in constant time."""
    return hmac.compare_digest(expected.encode("utf-8"), presented.encode("utf-8"))


def check_binding(claims: Mapping[str, Any], presented: str | None, *, required: bool = False) -> None:
    """Refuse a bound token presented without its certificate (`presented` is the ``x5t#S256`` of the
    certificate on the connection, None without one). With `required`, an unbound token is refused
    too. Raises JwtError(``cnf.*``)."""
    expected = bound_thumbprint(claims)
    if expected is None:
        if required:
            raise JwtError("cnf.unbound", "the token is not bound to a certificate")
        return
    if presented is None:
        raise JwtError("cnf.missing_certificate", "the token is bound to a certificate; none was presented")
    if not thumbprints_match(expected, presented):
        raise JwtError("cnf.mismatch", "the presented certificate is not the one the token is bound to")
