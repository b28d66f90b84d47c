"""Pushed authorization requests (RFC 9126): the parameters kept server-side, found by a request_uri.

A request_uri is 256 random bits under the RFC's URN prefix; only its SHA-256 is stored. It lives 60
seconds and is used once (taken by one atomic statement), by the client that pushed it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Protocol

from certbound.server.clients.model import ClientModel
from certbound.store.records import PushedRequest

__all__ = ["PUSHED_REQUEST_LIFETIME", "REQUEST_URI_PREFIX", "PushedRequests"]

REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"
PUSHED_REQUEST_LIFETIME = 60


class PushedStore(Protocol):
    async def add_pushed(self, request: PushedRequest) -> None: ...

    async def take_pushed(self, request_uri_sha256: str, client_id: str) -> dict[str, str] | None: ...


def _digest(request_uri: str) -> str:
    return hashlib.sha256(request_uri.encode("utf-8", "surrogatepass")).hexdigest()


class PushedRequests:
    """Keeps pushed requests and hands each out once."""

    def __init__(
        self, store: PushedStore, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._store = store
        self._clock = clock

    async def push(self, client: ClientModel, params: Mapping[str, str]) -> str:
        """Store `params` (already checked) for `client`; returns the request_uri."""
        request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
        expires_at = self._clock() + timedelta(seconds=PUSHED_REQUEST_LIFETIME)
        await self._store.add_pushed(
            PushedRequest(_digest(request_uri), client.client_id, dict(params), expires_at)
        )
        return request_uri

    async def take(self, request_uri: str, client: ClientModel) -> dict[str, str] | None:
        if not request_uri.startswith(REQUEST_URI_PREFIX) or len(request_uri) > 200:
            return None
        return await self._store.take_pushed(_digest(request_uri), client.client_id)
