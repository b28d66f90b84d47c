"""DirectRoutes: exact paths go straight to their endpoint (with the route in the scope), the rest on."""

from __future__ import annotations

import httpx
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from certbound.server.endpoints.direct_routes import DirectRoutes


class _answer:  # an ASGI app that says who answered (an instance: Route calls it as ASGI)
    def __init__(self, text: str) -> None:
        self.text = text

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("route")
        body = f"{self.text} route={getattr(route, 'path', None)} method={scope['method']}"
        await PlainTextResponse(body)(scope, receive, send)


async def test_exact_paths_reach_their_endpoint_and_the_rest_the_app() -> None:
    app = DirectRoutes(_answer("fallback"), [Route("/token", _answer("token"))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://as.test") as http:
        assert (await http.post("/token")).text == "token route=/token method=POST"
        assert (await http.get("/token")).text == "token route=/token method=GET"  # the endpoint's 405
        assert (await http.post("/token/")).text == "fallback route=None method=POST"
        assert (await http.post("/tokens")).text == "fallback route=None method=POST"
        assert (await http.get("/")).text == "fallback route=None method=GET"
