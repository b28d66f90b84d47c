"""The introspection endpoint (RFC 7662), with the JWT response of RFC 9701 on request.

A caller that fails to authenticate gets 401 ``invalid_client`` from the authenticator, never a 200.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.client_auth_request import Authenticator, authenticated_token_request
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import NO_STORE, json_response
from certbound.server.tokens.introspection import INTROSPECTION_JWT_MEDIA_TYPE, Introspector

__all__ = ["IntrospectionEndpoint", "wants_jwt"]


def wants_jwt(accept: str | None) -> bool:
    """Whether the Accept header asks for ``application/token-introspection+jwt`` (with q > 0)."""
    if not accept or INTROSPECTION_JWT_MEDIA_TYPE not in accept.lower():  # most ask for JSON: at once
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


class IntrospectionEndpoint(OAuthEndpoint):
    """POST /introspect, answered by `introspector` (the worker's `TokenService.introspector`)."""

    __slots__ = ("_audiences", "_authenticator", "_introspector")

    def __init__(
        self, authenticator: Authenticator, introspector: Introspector, audiences: frozenset[str]
    ) -> None:
        self._authenticator = authenticator
        self._introspector = introspector
        self._audiences = audiences

    async def handle(self, request: Request) -> Response:
        req = await authenticated_token_request(
            request, self._authenticator, "introspection", self._audiences
        )
        body = await self._introspector.introspect(req.token, req.client)
        if wants_jwt(request.headers.get("accept")):
            signed = await self._introspector.signed(body, req.client)
            return Response(signed, media_type=INTROSPECTION_JWT_MEDIA_TYPE, headers=NO_STORE)
        return json_response(body)
