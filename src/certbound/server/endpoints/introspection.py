"""The introspection endpoint (RFC 7662), with the JWT response of RFC 9701 on request.

Expects on ``request.app.state``: ``settings``, ``authenticator`` and ``tokens``
(`certbound.server.tokens.service.TokenService`). A caller that fails to authenticate gets 401
``invalid_client`` from the authenticator, never a 200.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from certbound.server.endpoints.form import OAuthEndpoint, authenticated_token_request
from certbound.server.endpoints.paths import INTROSPECTION_PATH
from certbound.server.endpoints.responses import NO_STORE, json_response
from certbound.server.tokens.introspection import INTROSPECTION_JWT_MEDIA_TYPE
from certbound.server.tokens.service import TokenService

__all__ = ["introspect", "routes", "wants_jwt"]


def wants_jwt(accept: str | None) -> bool:
    """Whether the Accept header asks for ``application/token-introspection+jwt`` (with q > 0)."""
    if not accept:
        return False
    for item in accept.split(","):
        media_type, *params = (p.strip() for p in item.split(";"))
        if media_type.lower() != INTROSPECTION_JWT_MEDIA_TYPE:
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


async def introspect(request: Request) -> Response:
    req = await authenticated_token_request(request, "introspection", INTROSPECTION_PATH)
    tokens: TokenService = request.app.state.tokens
    body = await tokens.introspector.introspect(req.token, req.client)
    if wants_jwt(request.headers.get("accept")):
        signed = await tokens.introspector.signed(body, req.client)
        return Response(signed, media_type=INTROSPECTION_JWT_MEDIA_TYPE, headers=NO_STORE)
    return json_response(body)


def routes() -> list[Route]:
    """POST /introspect."""
    return [Route(INTROSPECTION_PATH, OAuthEndpoint(introspect))]
