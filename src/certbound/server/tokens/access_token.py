"""What an access token of ours is: its formats, its shape, its digest, and the keys it is signed with.

Shared by the minter (`certbound.server.tokens.minter`), the verifier and introspection. A JWT access
token is an RFC 9068 ``at+jwt`` signed with the worker's current key ring (`CurrentKeys`); an opaque
one is 43 base64url characters whose SHA-256 (`token_digest`) is what the store keeps. Which format a
client gets is the client's ``access_token_format`` if set, else the ``access_token_format`` setting.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Protocol

from certbound.jose.keyring import KeyRing

__all__ = [
    "AT_JWT_TYP",
    "BEARER",
    "OPAQUE_TOKEN_PATTERN",
    "Clock",
    "CurrentKeys",
    "KeySource",
    "token_digest",
]

AT_JWT_TYP = "at+jwt"
BEARER = "Bearer"
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


def token_digest(token: str) -> bytes:
    """SHA-256 of the token string: the cache key of a verified JWT, the store key of an opaque token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
