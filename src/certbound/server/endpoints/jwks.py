"""The JWKS endpoint: the public signing keys (next, active, and retired ones still in use)."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.responses import json_response


async def jwks(request: Request) -> Response:
    """GET /jwks. Short cache lifetime so that a rotation is picked up quickly by relying parties."""
    ring = await request.app.state.tokens.keys.ring()
    return json_response(
        ring.jwks(datetime.now(UTC)),
        no_store=False,
        headers={"Cache-Control": "public, max-age=60", "Content-Type": "application/jwk-set+json"},
    )
