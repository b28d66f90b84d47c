"""The revocation endpoint (RFC 7009): 200 with an empty body whenever the request itself is valid.

Expects on ``request.app.state``: ``settings``, ``authenticator`` and ``tokens``
(`certbound.server.tokens.service.TokenService`). See `certbound.server.tokens.revocation` for what is
revoked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from certbound.server.endpoints.form import OAuthEndpoint, authenticated_token_request
from certbound.server.endpoints.paths import REVOCATION_PATH
from certbound.server.endpoints.responses import NO_STORE
from certbound.server.tokens.service import TokenService

__all__ = ["revoke", "routes"]


async def revoke(request: Request) -> Response:
    req = await authenticated_token_request(request, "revocation", REVOCATION_PATH)
    tokens: TokenService = request.app.state.tokens
    await tokens.revoker.revoke(req.token, req.client, token_type_hint=req.form.params.get("token_type_hint"))
    return Response(status_code=200, headers=NO_STORE)


def routes() -> list[Route]:
    """POST /revoke."""
    return [Route(REVOCATION_PATH, OAuthEndpoint(revoke))]
