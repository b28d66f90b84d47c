"""Cache of ``client_credentials`` tokens, reused until shortly before they expire.

The key includes the presented certificate's thumbprint: a token bound to the old certificate is
useless once the client presents the new one. A token without ``expires_in`` is not cached (nothing
says how long it lives). One lock per key makes concurrent callers share one token request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from certbound.client.responses import TokenResponse

__all__ = ["CacheKey", "TokenCache"]

CacheKey = tuple[str | None, tuple[str, ...], str | None, tuple[tuple[str, str], ...]]


class TokenCache:
    """Tokens by (scope, resources, certificate thumbprint, extra parameters)."""

    def __init__(self, *, margin: float = 30.0, clock: Callable[[], float] = time.time) -> None:
        self._margin = margin
        self._clock = clock
        self._tokens: dict[CacheKey, TokenResponse] = {}
        self._locks: dict[CacheKey, asyncio.Lock] = {}

    def lock(self, key: CacheKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def get(self, key: CacheKey) -> TokenResponse | None:
        token = self._tokens.get(key)
        if token is None:
            return None
        if self._usable(token):
            return token
        del self._tokens[key]
        return None

    def put(self, key: CacheKey, token: TokenResponse) -> None:
        if token.expires_in is not None and self._usable(token):
            self._tokens[key] = token

    def clear(self) -> None:
        self._tokens.clear()

    def _usable(self, token: TokenResponse) -> bool:
        """Still good for `margin` seconds, or for a tenth of its life when that is shorter."""
        expires_at = token.expires_at
        if expires_at is None:
            return False
        lifetime = expires_at - token.obtained_at
        return self._clock() < expires_at - min(self._margin, lifetime / 10)
