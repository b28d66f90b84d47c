"""An in-process cache of access tokens whose signature and claims were already checked.

A signature check is most of what introspecting a JWT costs (docs/performance.md); a resource
server typically introspects the same token many times. So a JWT that verified is remembered, keyed
by the SHA-256 of the token string (the token itself is never kept as a key), until its ``exp``.

What the cache does NOT decide: revocation (checked by the caller on every use, against the store,
see `certbound.store.token_state`) and whether the signing key is still published (re-checked by the
verifier on every hit, a dictionary look-up). A hit therefore only skips the work whose answer cannot
change: the signature and the static claims.

Bounded LRU: memory stays flat whatever the traffic. Not thread-safe; one per worker event loop
(nothing here awaits, so coroutines cannot interleave inside a call).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["DEFAULT_MAX_ENTRIES", "VerifiedCache"]

#: About 1 KiB per entry (claims of a typical token): 16k entries stay under ~20 MB per worker.
DEFAULT_MAX_ENTRIES = 16_384

V = TypeVar("V")


class VerifiedCache(Generic[V]):
    """LRU map from a token digest to what verifying it gave, each entry dropped at its expiry."""

    __slots__ = ("_entries", "_max_entries", "hits", "misses")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: OrderedDict[bytes, tuple[float, V]] = OrderedDict()
        self._max_entries = max_entries
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes, now: float) -> V | None:
        """The value stored under `key` if it has not expired at `now` (an expired one is dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        expires_at, value = entry
        if now >= expires_at:
            del self._entries[key]
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: bytes, value: V, expires_at: float) -> None:
        """Remember `value` until `expires_at` (epoch seconds); the least recently used entry makes room."""
        self._entries[key] = (expires_at, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def discard(self, key: bytes) -> None:
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
