"""A validated access token as every later step reads it, whatever validated it (JWT or introspection).

Made once per validation and cached by token hash, so the values read on every request (the scopes,
audiences, the ``cnf`` thumbprint, each identity header's value) are derived once per token and
remembered on the object, not recomputed per request.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import orjson

from certbound.gateway.rules import claim_values
from certbound.jose.binding import bound_thumbprint

__all__ = ["Inactive", "TokenInfo", "header_value", "token_digest"]

Source = Literal[
    "jwt", "introspection", "session", "client_credentials", "password", "userinfo", "refresh_token"
]
_MAX_HEADER_VALUE: Final = 4096


def token_digest(token: str) -> bytes:
    """The cache key of a token: its SHA-256 (the token itself is never kept as a key)."""
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


def _number(value: Any) -> float | None:
    """A time claim as a float: an integer beyond the float range as an infinity of its sign, so a
    past ``exp`` or a future ``nbf`` is still refused however it is written; None for a non-number
    (and NaN), which the token does not carry then."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
    return None if math.isnan(number) else number


def header_value(value: Any) -> bytes | None:
    """A claim's value as a header value: a plain string as it is when it is printable ASCII, anything
    else (numbers, booleans, lists, objects, strings with other characters) as compact JSON, which
    escapes every control and non-ASCII character; None when the claim is absent or too long."""
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isprintable():
        encoded = value.encode("ascii")
    else:
        try:
            encoded = orjson.dumps(value)
        except TypeError:
            return None
        if not encoded.isascii():  # orjson writes UTF-8 as it is; json escapes it (\u00e9)
            encoded = json.dumps(value, separators=(",", ":")).encode("ascii")
    return encoded if len(encoded) <= _MAX_HEADER_VALUE else None


class TokenInfo:
    """A token the IdP vouches for: its claims (or introspection answer) and what is read from them.

    `checked_at` is when it was validated (epoch seconds); `expires_at` its ``exp`` when it has one;
    `thumbprint` the ``cnf.x5t#S256`` it is bound to (read strictly: a malformed ``cnf`` is refused
    before a TokenInfo is made).
    """

    __slots__ = (
        "_headers",
        "_scopes",
        "checked_at",
        "claims",
        "expires_at",
        "not_before",
        "source",
        "thumbprint",
    )

    def __init__(self, claims: Mapping[str, Any], source: Source, checked_at: float) -> None:
        self.claims = claims
        self.source = source
        self.checked_at = checked_at
        self.expires_at = _number(claims.get("exp"))
        self.not_before = _number(claims.get("nbf"))
        self.thumbprint = bound_thumbprint(claims)  # JwtError(cnf.malformed)
        self._scopes: dict[str, frozenset[str]] = {}
        self._headers: dict[str, bytes | None] = {}

    @property
    def client_id(self) -> str | None:
        value = self.claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def subject(self) -> str | None:
        value = self.claims.get("sub")
        return value if isinstance(value, str) else None

    def values(self, claim: str) -> frozenset[str]:
        """The values of `claim` (scopes, audiences), derived once per claim."""
        found = self._scopes.get(claim)
        if found is None:
            found = self._scopes[claim] = claim_values(self.claims.get(claim))
        return found

    def header(self, claim: str) -> bytes | None:
        """`claim`'s value as an identity header value (None: the token lacks it), derived once."""
        if claim in self._headers:
            return self._headers[claim]
        value = self._headers[claim] = header_value(self.claims.get(claim))
        return value


class Inactive:
    """A remembered "not active" answer (``cache_ttl_neg``)."""

    __slots__ = ("checked_at",)

    def __init__(self, checked_at: float) -> None:
        self.checked_at = checked_at
