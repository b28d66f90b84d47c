"""The revocation endpoint (RFC 7009): 200 with an empty body whenever the request itself is valid.

Expects on ``request.app.state``: ``settings``, ``authenticator`` and ``tokens``
(`certbound.tokens.service.TokenService`). See `certbound.tokens.revocation` for what is revoked.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from certbound.endpoints.form import Authenticator, OAuthEndpoint, auth_request, read_form
from certbound.endpoints.paths import REVOCATION_PATH
from certbound.endpoints.responses import NO_STORE
from certbound.errors import OAuthError
from certbound.tokens.service import TokenService

__all__ = ["revoke", "routes"]


async def revoke(request: Request) -> Response:
    form = await read_form(request)
    authenticator: Authenticator = request.app.state.authenticator
    authenticated = await authenticator.authenticate(
        auth_request(request, form, "revocation", REVOCATION_PATH)
    )
    token = form.params.get("token")
    if token is None:
        raise OAuthError("invalid_request", "token is required", reason="request.missing_token")
    tokens: TokenService = request.app.state.tokens
    await tokens.revoker.revoke(
        token, authenticated.client, token_type_hint=form.params.get("token_type_hint")
    )
    return Response(status_code=200, headers=NO_STORE)


def routes() -> list[Route]:
    """POST /revoke."""
    return [Route(REVOCATION_PATH, OAuthEndpoint(revoke))]
