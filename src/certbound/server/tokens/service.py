"""`TokenService`: one worker's access-token machinery, built once at start-up (`certbound.server.services`).

It wires the pieces that must share state: the minter signs with the key manager's current ring, the
verifier's cache is the one the revoker clears, and the token-state reader (the fast deny-list and
opaque-token reads, `certbound.store.token_state`) is opened once per worker and closed at shutdown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from certbound.config import Settings
from certbound.jose.verified_cache import DEFAULT_MAX_ENTRIES, VerifiedCache
from certbound.server.tokens.access_token import Clock, CurrentKeys, KeySource
from certbound.server.tokens.introspection import Introspector
from certbound.server.tokens.minter import TokenMinter
from certbound.server.tokens.revocation import RefreshRevoker, Revoker
from certbound.server.tokens.verifier import AccessTokenVerifier, ActiveToken
from certbound.store.interface import OpaqueToken, TokenState

__all__ = ["TokenService", "TokenStore"]


class TokenStore(Protocol):
    """The part of `certbound.store.interface.Store` that access tokens use."""

    async def add_opaque_token(self, token: OpaqueToken) -> None: ...

    async def get_opaque_token(self, token_sha256: str) -> OpaqueToken | None: ...

    async def revoke_opaque_token(self, token_sha256: str) -> bool: ...

    async def revoke_token(self, token_key: str, expires_at: datetime) -> None: ...

    async def is_revoked(self, token_key: str) -> bool: ...

    def token_state(self) -> TokenState: ...


class TokenService:
    """Minter, verifier, introspector and revoker of one worker.

    `keys` is the worker's `KeyManager` (its ring must be loaded: `ensure_keys` or `keyring` at
    start-up). `generation` returns the store generation last seen by the worker's
    `GenerationWatcher` (``lambda: watcher.value``): with it, a key rotation made anywhere is picked up
    without I/O on the hot path. `state` defaults to `store.token_state()`. `revoked_certificates`
    says whether a leaf (its ``x5t#S256``) is known to be revoked: tokens bound to one are inactive.
    """

    def __init__(
        self,
        settings: Settings,
        store: TokenStore,
        keys: KeySource,
        *,
        generation: Callable[[], int | None] | None = None,
        state: TokenState | None = None,
        cache_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Clock = time.time,
        revoked_certificates: Callable[[str], bool] | None = None,
        grants: RefreshRevoker | None = None,
    ) -> None:
        issuer = settings.issuer_url
        current = CurrentKeys(keys, generation)
        self.keys = current
        self.settings = settings
        self.state = state if state is not None else store.token_state()
        self.minter = TokenMinter(
            issuer=issuer,
            keys=current,
            store=store,
            lifetime=settings.access_token_lifetime,
            default_format=settings.access_token_format,
            id_token_lifetime=settings.id_token_lifetime,
            clock=clock,
        )
        self.cache: VerifiedCache[ActiveToken] = VerifiedCache(cache_entries)
        self.verifier = AccessTokenVerifier(
            issuer=issuer,
            keys=current,
            state=self.state,
            cache=self.cache,
            clock_skew=settings.clock_skew,
            clock=clock,
            revoked_certificates=revoked_certificates,
        )
        self.introspector = Introspector(
            self.verifier,
            issuer=issuer,
            keys=current,
            clock=clock,
            refresh_tokens=grants,
            revoked_certificates=revoked_certificates,
        )
        self.revoker = Revoker(self.verifier, store, grants)

    async def close(self) -> None:
        """Close the token-state reader (its own connections); the store is the caller's."""
        await self.state.close()
