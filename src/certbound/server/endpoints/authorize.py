"""The authorization endpoint (RFC 6749 section 3.1, OpenID Connect Core section 3.1.2), GET and POST.

Parse and check the request (`certbound.server.authorization.request`), then let the login flow take
the browser to the login page, the consent page or straight back to the client with a code.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from certbound.server.authorization.request import AuthorizationError, RequestChecker
from certbound.server.endpoints.login_flow import LoginFlow, read_pairs
from certbound.server.endpoints.page_endpoint import PageEndpoint

__all__ = ["AuthorizeEndpoint"]


class AuthorizeEndpoint(PageEndpoint):
    def __init__(self, flow: LoginFlow, checker: RequestChecker) -> None:
        super().__init__(flow)
        self._checker = checker

    async def get(self, request: Request) -> Response:
        return await self.post(request)

    async def post(self, request: Request) -> Response:
        pairs = await read_pairs(request)
        try:
            checked, client = await self._checker.parse(pairs)
        except AuthorizationError as refusal:
            return self.flow.refused(refusal)
        return await self.flow.start(await self.flow.session(request), checked, client)
