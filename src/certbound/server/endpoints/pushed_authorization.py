"""The pushed authorization request endpoint (RFC 9126), on the main listener and the mTLS alias.

The client authenticates as at the token endpoint, with its registered method (every method: RFC
9126 section 2); the parameters are checked exactly as /authorize would check them, and kept for 60
seconds under a single-use ``request_uri`` (201 ``{"request_uri", "expires_in"}``). Errors are RFC 6749
section 5.2 JSON.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.errors import OAuthError
from certbound.server.authorization.pushed import PUSHED_REQUEST_LIFETIME, PushedRequests
from certbound.server.authorization.request import AuthorizationError, RequestChecker
from certbound.server.endpoints.client_auth_request import Authenticator, auth_request
from certbound.server.endpoints.form import read_form
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import json_response

__all__ = ["PushedAuthorizationEndpoint"]

#: Client authentication's own parameters: not part of the authorization request.
_AUTHENTICATION = frozenset({"client_secret", "client_assertion", "client_assertion_type"})


class PushedAuthorizationEndpoint(OAuthEndpoint):
    """POST /par."""

    __slots__ = ("_audiences", "_authenticator", "_checker", "_pushed")

    def __init__(
        self,
        authenticator: Authenticator,
        checker: RequestChecker,
        pushed: PushedRequests,
        audiences: frozenset[str],
    ) -> None:
        self._authenticator = authenticator
        self._checker = checker
        self._pushed = pushed
        self._audiences = audiences

    async def handle(self, request: Request) -> Response:
        form = await read_form(request, repeatable={"resource"})
        authenticated = await self._authenticator.authenticate(
            auth_request(request, form, "token", self._audiences)
        )
        params = {k: v for k, v in form.params.items() if k not in _AUTHENTICATION}
        if form.lists.get("resource"):
            params["resource"] = " ".join(form.lists["resource"])
        if "request_uri" in params:
            raise OAuthError(
                "invalid_request", "request_uri must not be pushed", reason="authorize.request_uri"
            )
        try:
            self._checker.check(params, authenticated.client, pushed=True)
        except AuthorizationError as refusal:
            raise refusal.error from None
        request_uri = await self._pushed.push(authenticated.client, params)
        return json_response({"request_uri": request_uri, "expires_in": PUSHED_REQUEST_LIFETIME}, 201)
