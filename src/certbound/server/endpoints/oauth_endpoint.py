"""The wrapper of the endpoints that authenticate clients (token, introspection, revocation).

Such an endpoint takes every method, so that a wrong one gets its 405 with no-store rather than the
router's, and answers every failure itself: an `OAuthError` through the one renderer, a client that
went away as 400, the store out of reach as 503 ``temporarily_unavailable``, anything else as a logged
500 ``server_error``. It needs no exception layer
around it, which is what lets `HotRoutes` call it ahead of the middleware stack.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.server.endpoints.errors import client_disconnected, method_not_allowed, unexpected_error
from certbound.server.endpoints.responses import oauth_error_response

__all__ = ["OAuthEndpoint"]

log = logging.getLogger("certbound.endpoints")


class OAuthEndpoint:
    """An ASGI endpoint for ``POST`` requests: subclasses implement `handle` and raise `OAuthError`."""

    __slots__ = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        """The answer to `request`: never an exception, whatever the client sent."""
        if request.method != "POST":
            return oauth_error_response(method_not_allowed())
        try:
            return await self.handle(request)
        except OAuthError as err:
            log.info("%s refused: %s (%s)", request.url.path, err.error, err.reason or "-")
            return oauth_error_response(err)
        except ClientDisconnect:
            return oauth_error_response(client_disconnected())
        except Exception as exc:
            return oauth_error_response(unexpected_error(exc, request.method, request.url.path))

    async def handle(self, request: Request) -> Response:
        """The endpoint's own work, for a POST."""
        raise NotImplementedError
