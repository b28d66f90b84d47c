"""Minting access tokens: RFC 9068 JWTs by default, opaque reference tokens on request.

A JWT access token (header ``typ`` ``at+jwt``, ``kid`` of the signing key) carries ``iss``, ``sub``
(the client_id for client_credentials), ``aud``, ``exp``, ``iat``, ``nbf``, ``jti``, ``client_id``,
``scope`` when any was granted, and ``cnf`` ``{"x5t#S256": ...}`` when it is bound to the client's
certificate (RFC 8705 section 3.1). It is signed with the active key of the worker's current key ring,
without I/O.

An opaque token is 256 random bits (base64url, 43 characters). Only its SHA-256 is stored, with the
same claims a JWT would carry, so introspection answers the same for both formats. The format is the
client's ``access_token_format`` metadata if set, else the ``access_token_format`` setting.

``token_type`` stays ``Bearer`` for bound tokens too: RFC 8705 section 3 keeps the Bearer scheme,
the binding is checked by the resource server against the TLS connection.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from certbound.jose.keyring import KeyRing
from certbound.store.interface import OpaqueToken
from certbound.store.records import Client

__all__ = [
    "AT_JWT_TYP",
    "BEARER",
    "OPAQUE_TOKEN_PATTERN",
    "AccessTokenIssuer",
    "Clock",
    "CurrentKeys",
    "IssuedToken",
    "KeySource",
    "OpaqueTokenWriter",
    "TokenFormat",
    "new_jti",
    "token_digest",
]

AT_JWT_TYP = "at+jwt"
BEARER = "Bearer"
TokenFormat = Literal["jwt", "opaque"]
#: What an opaque token of ours looks like: anything else is not looked up in the store at all.
OPAQUE_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")

Clock = Callable[[], float]


class KeySource(Protocol):
    """What token code needs from `certbound.jose.keyring.KeyManager`."""

    def current(self) -> KeyRing: ...

    async def keyring(self, *, generation: int | None = None) -> KeyRing: ...


class CurrentKeys:
    """The worker's key ring, kept current without I/O on the hot path.

    With `generation` (e.g. ``lambda: watcher.value`` of `certbound.store.generation.GenerationWatcher`), a
    ring older than the store's generation is reloaded before use: one integer comparison per call
    when nothing changed. Without it, the ring is what the key manager last loaded.
    """

    __slots__ = ("_generation", "_keys")

    def __init__(self, keys: KeySource, generation: Callable[[], int | None] | None = None) -> None:
        self._keys = keys
        self._generation = generation

    async def ring(self) -> KeyRing:
        ring = self._keys.current()
        if self._generation is not None:
            value = self._generation()
            if value is not None and value != ring.generation:
                ring = await self._keys.keyring(generation=value)
        return ring

    async def reload(self) -> KeyRing:
        """Ask the store (one read of its generation; the keys only when it moved)."""
        return await self._keys.keyring()


class OpaqueTokenWriter(Protocol):
    async def add_opaque_token(self, token: OpaqueToken) -> None: ...


def token_digest(token: str) -> bytes:
    """SHA-256 of the token string: the cache key of a verified JWT, the store key of an opaque token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class _RandomBlocks:
    """``os.urandom`` read 4 KiB at a time: one system call per 256 ``jti``s instead of one each
    (~2% of a token request's CPU). The bytes are the kernel's CSPRNG output either way; a forked
    child starts with an empty block, so it never hands out its parent's bytes."""

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


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """What the token endpoint returns (RFC 6749 section 5.1)."""

    access_token: str
    expires_in: int
    scope: str | None
    token_type: str = BEARER

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.scope:
            body["scope"] = self.scope
        return body


class AccessTokenIssuer:
    """Mints access tokens for a client; the grant has already decided scope, audience and binding."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: CurrentKeys,
        store: OpaqueTokenWriter,
        lifetime: int,
        default_format: TokenFormat = "jwt",
        clock: Clock = time.time,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._store = store
        self._lifetime = lifetime
        self._default_format: TokenFormat = default_format
        self._clock = clock

    @property
    def lifetime(self) -> int:
        return self._lifetime

    def format_for(self, client: Client) -> TokenFormat:
        """The client's ``access_token_format`` when it registered one, else the server default."""
        chosen = client.metadata.get("access_token_format")
        if chosen == "opaque":
            return "opaque"
        if chosen == "jwt":
            return "jwt"
        return self._default_format

    def claims(
        self, client: Client, *, scope: Sequence[str], audience: str, x5t_s256: str | None, now: int
    ) -> dict[str, Any]:
        """The RFC 9068 claim set (also what is stored for an opaque token)."""
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": client.client_id,
            "aud": audience,
            "exp": now + self._lifetime,
            "iat": now,
            "nbf": now,
            "jti": new_jti(),
            "client_id": client.client_id,
        }
        if scope:
            claims["scope"] = " ".join(scope)
        if x5t_s256 is not None:
            claims["cnf"] = {"x5t#S256": x5t_s256}
        return claims

    async def issue(
        self, client: Client, *, scope: Sequence[str], audience: str, x5t_s256: str | None
    ) -> IssuedToken:
        """A new access token; an opaque one is stored (one insert) before it is returned."""
        now = int(self._clock())
        claims = self.claims(client, scope=scope, audience=audience, x5t_s256=x5t_s256, now=now)
        if self.format_for(client) == "opaque":
            token = secrets.token_urlsafe(32)
            await self._store.add_opaque_token(
                OpaqueToken(
                    token_sha256=token_digest(token).hex(),
                    client_id=client.client_id,
                    claims=claims,
                    expires_at=datetime.fromtimestamp(claims["exp"], UTC),
                )
            )
        else:
            token = (await self._keys.ring()).active().sign(claims, typ=AT_JWT_TYP)
        return IssuedToken(token, self._lifetime, claims.get("scope"))
