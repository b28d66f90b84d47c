"""Minting the tokens a grant decided on: one `TokenMinter`, returning a `TokenSet`.

A grant works out what a request gets (subject, scope, audience, binding) and hands it over as
`Granted`; the minter makes the tokens and `TokenSet.response()` is the RFC 6749 section 5.1 body.
The access token is an RFC 9068 JWT by default, an opaque reference token when the client (its
``access_token_format``) or the server (the setting) asks for one. The login flows' grants also ask
for a refresh token (`refresh_token`: 256 random bits, of which the store keeps the SHA-256) and an
OpenID Connect ID token (`id_token`), and write what they mint under their grant in one transaction
(`access` mints without writing, for that).

A JWT access token (header ``typ`` ``at+jwt``, ``kid`` of the signing key) carries ``iss``, ``sub``,
``aud``, ``exp``, ``iat``, ``nbf``, ``jti``, ``client_id``, ``scope`` when any was granted, and ``cnf``
``{"x5t#S256": ...}`` when it is bound to the client's certificate (RFC 8705 section 3.1). It is signed
with the active key of the worker's current key ring, without I/O.

An opaque token is 256 random bits (base64url, 43 characters). Only its SHA-256 is stored, with the
same claims a JWT would carry, so introspection answers the same for both formats.

``token_type`` stays ``Bearer`` for bound tokens too: RFC 8705 section 3 keeps the Bearer scheme,
the binding is checked by the resource server against the TLS connection.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from certbound.jose.claims import left_hash
from certbound.server.clients.model import ClientModel, TokenFormat
from certbound.server.tokens.access_token import (
    AT_JWT_TYP,
    BEARER,
    Clock,
    CurrentKeys,
    token_digest,
)
from certbound.store.interface import OpaqueToken

__all__ = [
    "ID_TOKEN_TYP",
    "Granted",
    "MintedAccess",
    "OpaqueTokenWriter",
    "TokenMinter",
    "TokenSet",
    "new_jti",
]

#: The ``typ`` of our ID tokens (OpenID Connect Core leaves it open; JWT is what relying parties expect).
ID_TOKEN_TYP = "JWT"  # noqa: S105 (a media type)


class OpaqueTokenWriter(Protocol):
    async def add_opaque_token(self, token: OpaqueToken) -> None: ...


class _RandomBlocks:
    """``os.urandom`` read 4 KiB at a time: one system call per 256 ``jti``s instead of one each
    (docs/performance.md). The bytes are the kernel's CSPRNG output either way; a forked child starts
    with an empty block, so it never hands out its parent's bytes."""

    BLOCK = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._used = 0

    def take(self, size: int) -> bytes:
        with self._lock:
            if self._used + size > len(self._block):
                self._block, self._used = os.urandom(max(self.BLOCK, size)), 0
            start, self._used = self._used, self._used + size
            return self._block[start : self._used]

    def forget(self) -> None:
        """In a forked child: a new lock too (another thread may have held it at the fork)."""
        self._lock = threading.Lock()
        self._block, self._used = b"", 0


_random = _RandomBlocks()
os.register_at_fork(after_in_child=_random.forget)


def new_jti() -> str:
    """128 random bits, base64url: unique without coordination between workers."""
    return base64.urlsafe_b64encode(_random.take(16)).rstrip(b"=").decode("ascii")


@dataclass(slots=True)
class Granted:
    """What a grant decided a token request gets; `TokenMinter.mint` turns it into tokens.

    `subject` is the tokens' ``sub``: the client_id for client_credentials, the user for a flow that
    acts for one. `scope` is in the order to answer it. `x5t_s256` binds the access token to that
    certificate (RFC 8705 section 3), None for an unbound token.

    Treat it as read-only. It is not a frozen dataclass because one is made on every token request
    and a frozen dataclass's constructor is several times slower.
    """

    client: ClientModel
    subject: str
    scope: tuple[str, ...]
    audience: str
    x5t_s256: str | None = None


@dataclass(frozen=True, slots=True)
class TokenSet:
    """The tokens of one successful token request (RFC 6749 section 5.1, OpenID Connect Core 3.1.3.3).

    `scope` is the granted scope string (None when nothing was granted). `refresh_token` and
    `id_token` are None unless the grant issued them.
    """

    access_token: str
    expires_in: int
    scope: str | None
    token_type: str = BEARER
    refresh_token: str | None = None
    id_token: str | None = None

    def response(self) -> dict[str, Any]:
        """The token response body: only the members that are present, in the RFC's order."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        if self.scope:
            body["scope"] = self.scope
        if self.id_token is not None:
            body["id_token"] = self.id_token
        return body


@dataclass(frozen=True, slots=True)
class MintedAccess:
    """An access token before anything is written: its claims, and an opaque token's record to store."""

    token: str
    claims: dict[str, Any]
    opaque: OpaqueToken | None


class TokenMinter:
    """Mints the tokens of a `Granted`; the grant has already decided scope, audience and binding."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: CurrentKeys,
        store: OpaqueTokenWriter,
        lifetime: int,
        default_format: TokenFormat = "jwt",
        id_token_lifetime: int = 600,
        clock: Clock = time.time,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._store = store
        self._lifetime = lifetime
        self._id_token_lifetime = id_token_lifetime
        self._default_format: TokenFormat = default_format
        self._clock = clock

    @property
    def lifetime(self) -> int:
        """Seconds an access token lives (its ``expires_in``)."""
        return self._lifetime

    def format_for(self, client: ClientModel) -> TokenFormat:
        """The client's ``access_token_format`` when it registered one, else the server default."""
        return client.access_token_format or self._default_format

    def claims(self, granted: Granted, *, now: int) -> dict[str, Any]:
        """The RFC 9068 claim set of the access token (also what is stored for an opaque one)."""
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": granted.subject,
            "aud": granted.audience,
            "exp": now + self._lifetime,
            "iat": now,
            "nbf": now,
            "jti": new_jti(),
            "client_id": granted.client.client_id,
        }
        if granted.scope:
            claims["scope"] = " ".join(granted.scope)
        if granted.x5t_s256 is not None:
            claims["cnf"] = {"x5t#S256": granted.x5t_s256}
        return claims

    async def mint(self, granted: Granted) -> TokenSet:
        """The tokens for `granted`; an opaque access token is stored (one insert) before it is returned."""
        minted = await self.access(granted)
        if minted.opaque is not None:
            await self._store.add_opaque_token(minted.opaque)
        return TokenSet(minted.token, self._lifetime, minted.claims.get("scope"))

    async def access(self, granted: Granted) -> MintedAccess:
        """The access token for `granted`, signed (JWT) or with its record to store (opaque)."""
        claims = self.claims(granted, now=int(self._clock()))
        if self.format_for(granted.client) == "opaque":
            token = secrets.token_urlsafe(32)
            opaque = OpaqueToken(
                token_sha256=token_digest(token).hex(),
                client_id=granted.client.client_id,
                claims=claims,
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
            return MintedAccess(token, claims, opaque)
        token = (await self._keys.ring()).active().sign(claims, typ=AT_JWT_TYP)
        return MintedAccess(token, claims, None)

    @staticmethod
    def refresh_token() -> tuple[str, str]:
        """A new refresh token and the SHA-256 (hex) the store keeps of it."""
        token = secrets.token_urlsafe(32)
        return token, token_digest(token).hex()

    async def id_token(
        self,
        client: ClientModel,
        subject: str,
        *,
        auth_time: int,
        sid: str | None,
        nonce: str | None,
        access_token: str,
    ) -> str:
        """The ID token (OpenID Connect Core section 2) for `client`, signed with its registered
        ``id_token_signed_response_alg`` (RS256 by default); ``at_hash`` is of `access_token`."""
        alg = client.id_token_signed_response_alg
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": client.client_id,
            "exp": now + self._id_token_lifetime,
            "iat": now,
            "auth_time": auth_time,
            "at_hash": left_hash(access_token, alg),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        if sid is not None:
            claims["sid"] = sid
        return (await self._keys.ring()).active(alg).sign(claims, typ=ID_TOKEN_TYP)
