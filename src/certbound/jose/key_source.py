"""Where the keys that verify a JWS come from: one small protocol, whatever the source.

Sources: the server's own key ring (:class:`certbound.jose.keyring.KeyRingSource`), a remote JWKS
(:class:`certbound.jose.remote_jwks.RemoteJwks`), or a fixed set (:class:`StaticKeys`). A source
answers "which keys may have signed a JWS with this ``kid`` and ``alg``?"; one that can learn new keys
(a store reload, a JWKS refetch) does so itself, rate-limited, when it knows none. A source that cannot
be read fails closed: it raises :class:`KeysUnavailable`, never answers with stale or no keys as if
that were the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from joserfc.jwk import Key

from certbound.jose.jwk_set import JwkSet

__all__ = ["KeySource", "KeysUnavailable", "StaticKeys"]


class KeysUnavailable(Exception):
    """The key source cannot be read now (a fetch failed, or failed recently); the message says why."""


class KeySource(Protocol):
    """The keys that verify JWSs of one issuer."""

    async def keys_for(self, kid: str | None, alg: str, now: float) -> Sequence[Key]:
        """The keys that may have signed a JWS whose header has `kid` (None: no kid) and `alg`, at
        `now` (epoch seconds); empty when none does. Raises :class:`KeysUnavailable`."""
        ...


class StaticKeys:
    """A :class:`KeySource` over a fixed JWK Set (configured keys, tests)."""

    def __init__(self, jwks: JwkSet) -> None:
        self._jwks = jwks

    async def keys_for(self, kid: str | None, alg: str, now: float) -> Sequence[Key]:
        return self._jwks.candidates(kid, alg)
