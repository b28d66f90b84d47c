"""The three hot endpoints (token, introspection, revocation) reached without Starlette's router.

Every request to the server passes the same middleware (request log, forwarded certificates); this
one sits innermost and sends a request whose path is exactly one of `routes` straight to that
route's endpoint, skipping Starlette's exception middleware and the router's walk over every route
(a measurable share of a token request's CPU, docs/performance.md). Those endpoints are `OAuthEndpoint`s:
they take every method and render every error themselves, so nothing the skipped layers did is lost.
Anything else goes on to the router unchanged. Installed only with the ``fast_paths`` setting
(`certbound.server.app.create_app`); without it, the same endpoints are reached through the router.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["DirectRoutes"]


class DirectRoutes:
    """ASGI middleware: exact-path dispatch for `routes`, the rest to `app`."""

    def __init__(self, app: ASGIApp, routes: Iterable[Route]) -> None:
        self.app = app
        self._routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes.get(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        scope["route"] = route  # the request log names the endpoint by it, as after the router
        await route.app(scope, receive, send)
