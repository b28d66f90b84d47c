"""The token endpoint (RFC 6749 section 3.2): parse, authenticate the client, dispatch the grant, render.

Expects on ``request.app.state``: ``settings`` (`certbound.config.Settings`), ``authenticator``
(``authenticate(AuthRequest) -> Authenticated``, `certbound.server.endpoints.form.Authenticator`) and
``grants`` (`certbound.server.grants.GrantRegistry`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from certbound.server.endpoints.form import Authenticator, OAuthEndpoint, auth_request, read_form
from certbound.server.endpoints.paths import TOKEN_PATH
from certbound.server.endpoints.responses import json_response
from certbound.server.grants import GrantRegistry, GrantRequest

__all__ = ["routes", "token"]

_REPEATABLE = frozenset({"resource"})  # RFC 8707 section 2; the grant decides how many it takes


async def token(request: Request) -> Response:
    form = await read_form(request, repeatable=_REPEATABLE)
    authenticator: Authenticator = request.app.state.authenticator
    authenticated = await authenticator.authenticate(auth_request(request, form, "token", TOKEN_PATH))
    grants: GrantRegistry = request.app.state.grants
    issued = await grants.dispatch(
        GrantRequest(
            client=authenticated.client,
            params=form.params,
            resources=form.lists.get("resource", ()),
            certificate=authenticated.certificate,
        )
    )
    return json_response(issued.response())


def routes() -> list[Route]:
    """POST /token (any other method: 405 from the endpoint itself, with no-store headers)."""
    return [Route(TOKEN_PATH, OAuthEndpoint(token))]
