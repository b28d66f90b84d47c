"""The revocation endpoint (RFC 7009): 200 with an empty body whenever the request itself is valid.

See `certbound.server.tokens.revocation` for what is revoked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.client_auth_request import Authenticator, authenticated_token_request
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import NO_STORE
from certbound.server.tokens.revocation import Revoker

__all__ = ["RevocationEndpoint"]


class RevocationEndpoint(OAuthEndpoint):
    """POST /revoke, done by `revoker` (the worker's `TokenService.revoker`)."""

    __slots__ = ("_audiences", "_authenticator", "_revoker")

    def __init__(self, authenticator: Authenticator, revoker: Revoker, audiences: frozenset[str]) -> None:
        self._authenticator = authenticator
        self._revoker = revoker
        self._audiences = audiences

    async def handle(self, request: Request) -> Response:
        req = await authenticated_token_request(request, self._authenticator, "revocation", self._audiences)
        await self._revoker.revoke(
            req.token, req.client, token_type_hint=req.form.params.get("token_type_hint")
        )
        return Response(status_code=200, headers=NO_STORE)
