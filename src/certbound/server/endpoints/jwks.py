"""The JWKS endpoint: the public signing keys (next, active, and retired ones still in use)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from starlette.types import Receive, Scope, Send

from certbound.jose.keyring import KeyRing
from certbound.server.endpoints.responses import json_response

__all__ = ["JwksEndpoint"]


class CurrentRing(Protocol):
    """`certbound.server.tokens.access_token.CurrentKeys`: the ring, kept current with the store."""

    async def ring(self) -> KeyRing: ...


class JwksEndpoint:
    """GET /jwks. Short cache lifetime so that a rotation is picked up quickly by relying parties."""

    def __init__(self, keys: CurrentRing) -> None:
        self._keys = keys

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ring = await self._keys.ring()
        response = json_response(
            ring.jwks(datetime.now(UTC)),
            no_store=False,
            headers={"Cache-Control": "public, max-age=60", "Content-Type": "application/jwk-set+json"},
        )
        await response(scope, receive, send)
