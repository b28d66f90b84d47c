"""The three hot endpoints (token, introspection, revocation) served ahead of the middleware stack.

Every other request passes Starlette's error layer, the request log, the forwarded-certificate reader,
the exception layer and the router, each a frame and most a closure around ``send``. With the
``fast_paths`` setting, a request whose path is exactly one of the hot endpoints' is taken before
all of them (`CertboundApp`) and `HotRoutes` does, in one frame, what those layers would do for it:
the forwarded-certificate reader's work through the same instance (`ForwardedCertificateMiddleware.process`),
the request log's through the same code (`Serving`), then the endpoint's answer, sent as it is.
Those endpoints are `OAuthEndpoint`s: they take every method and render every error themselves, so
nothing the skipped exception layers did is lost; an error that still escapes (a bug) is answered
500 as the error layer would, and raised on to the server. Without ``fast_paths`` the same
endpoints are reached through the stack and the router, with the same answers and the same events
(tests/server/endpoints/test_fast_paths.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from certbound.observability.requestlog import Serving
from certbound.server.endpoints.errors import unhandled
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import oauth_error_response
from certbound.tls.forwarded import ForwardedCertificateMiddleware
from certbound.tls.whole_response import respond

__all__ = ["CertboundApp", "HotRoutes"]


class HotRoutes:
    """Exact-path dispatch of `routes` (whose endpoints are `OAuthEndpoint`s), with the work of the
    request log and of `forwarded` done inline."""

    __slots__ = ("_forwarded", "routes")

    def __init__(self, routes: Iterable[Route], forwarded: ForwardedCertificateMiddleware) -> None:
        #: path -> (route, its endpoint)
        self.routes: dict[str, tuple[Route, OAuthEndpoint]] = {}
        for route in routes:
            endpoint = route.endpoint
            # the endpoint is called as it is: a route that wraps it (route middleware, a body limit)
            # or restricts its methods would be bypassed
            if not isinstance(endpoint, OAuthEndpoint) or route.app is not endpoint or route.methods:
                raise TypeError(f"{route.path}: a hot route must be a bare OAuthEndpoint, for every method")
            self.routes[route.path] = (route, endpoint)
        self._forwarded = forwarded

    async def serve(
        self, route: Route, endpoint: OAuthEndpoint, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Answer one request to `route`, as the middleware stack and the route would."""
        with Serving(scope) as answer:
            try:
                self._forwarded.process(scope)
                scope["route"] = route  # the request log names the endpoint by it, as after the router
                response = await endpoint.respond(Request(scope, receive))
            except Exception as exc:  # a bug (the endpoint renders refusals itself): the error layer's 500
                response = oauth_error_response(unhandled(str(scope["method"]), str(scope["path"]), exc))
                await _send(response, answer, send)
                raise
            await _send(response, answer, send)
            if response.background is not None:
                await response.background()


async def _send(response: Response, answer: Any, send: Send) -> None:
    """`response`, as Starlette's ``Response`` sends it (in one write when `send` is uvicorn's own:
    :mod:`certbound.tls.whole_response`), noted for the log (`answer`, what `Serving` gave)."""
    status, headers, body = response.status_code, response.raw_headers, response.body
    answer.started(status, headers)
    answer.sent(body)
    await respond(send, status, headers, body, keep=True)  # the endpoint made its headers


class CertboundApp(Starlette):
    """Starlette, with the hot routes (`hot_routes`, when set) served before its middleware stack.

    The stack is the one given at construction: a body limit (``max_body_size``) or a middleware added
    later would not see the hot requests, so both are refused while hot routes are served.
    """

    hot_routes: HotRoutes | None = None

    def serve_ahead(self, hot: HotRoutes) -> None:
        """Serve `hot` ahead of the stack (which must then impose nothing on every request)."""
        if getattr(self, "max_body_size", None) is not None:
            raise ValueError("max_body_size would not apply to the hot routes")
        self.hot_routes = hot

    def add_middleware(self, *args: Any, **kwargs: Any) -> None:
        if self.hot_routes is not None:
            raise RuntimeError("a middleware added to the stack would not see the hot routes")
        super().add_middleware(*args, **kwargs)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.hot_routes
        if hot is not None and scope["type"] == "http":
            found = hot.routes.get(scope["path"])
            if found is not None:
                scope["app"] = self  # as Starlette does
                await hot.serve(*found, scope, receive, send)
                return
        await super().__call__(scope, receive, send)
