"""The token endpoint (RFC 6749 section 3.2): parse, authenticate the client, dispatch the grant, render."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.endpoints.client_auth_request import Authenticator, auth_request
from certbound.server.endpoints.form import read_form
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import json_response
from certbound.server.grants import GrantRegistry, GrantRequest

__all__ = ["TokenEndpoint"]

_REPEATABLE = frozenset({"resource"})  # RFC 8707 section 2; the grant decides how many it takes


class TokenEndpoint(OAuthEndpoint):
    """POST /token. `audiences`: what a client assertion may name here (`assertion_audiences`)."""

    __slots__ = ("_audiences", "_authenticator", "_grants")

    def __init__(
        self, authenticator: Authenticator, grants: GrantRegistry, audiences: frozenset[str]
    ) -> None:
        self._authenticator = authenticator
        self._grants = grants
        self._audiences = audiences

    async def handle(self, request: Request) -> Response:
        form = await read_form(request, repeatable=_REPEATABLE)
        authenticated = await self._authenticator.authenticate(
            auth_request(request, form, "token", self._audiences)
        )
        issued = await self._grants.dispatch(
            GrantRequest(
                client=authenticated.client,
                params=form.params,
                resources=form.lists.get("resource", ()),
                certificate=authenticated.certificate,
            )
        )
        return json_response(issued.response())
