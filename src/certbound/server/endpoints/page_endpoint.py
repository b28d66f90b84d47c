"""The wrapper of the pages a browser sees (authorize, login, consent, logout): HTML, never JSON.

A page endpoint answers every failure itself: a malformed form or a client that went away gets the
error page, the store out of reach a 503 page (with Retry-After), and anything unexpected a
logged 500 page, so a person never sees a traceback or an OAuth
JSON body.
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.observability.requestlog import note
from certbound.server.endpoints.login_flow import LoginFlow
from certbound.store.availability import RETRY_AFTER_S, describe, is_unavailable

__all__ = ["PageEndpoint"]

log = logging.getLogger("certbound.endpoints")


class PageEndpoint:
    """An ASGI endpoint for pages; subclasses implement `get` and `post`."""

    def __init__(self, flow: LoginFlow) -> None:
        self.flow = flow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await (self.get(request) if request.method in ("GET", "HEAD") else self.post(request))
        except OAuthError as error:
            response = self.flow.pages.message(
                "This request cannot be answered", error.description or error.error, status=error.status
            )
        except ClientDisconnect:
            response = Response(status_code=400)
        except Exception as exc:
            if is_unavailable(exc):
                log.warning("store unavailable on %s %s: %s", request.method, request.url.path, describe(exc))
                note(reason="store.unavailable")
                response = self.flow.pages.message(
                    "Temporarily unavailable", "The server cannot answer just now. Try again in a moment.",
                    status=503,
                )
                response.headers["Retry-After"] = str(RETRY_AFTER_S)
            else:
                log.error("unhandled error on %s", request.url.path, exc_info=True)
                response = self.flow.pages.message(
                    "Something went wrong", "The server could not answer. Try again later.", status=500
                )
        await response(scope, receive, send)

    async def get(self, request: Request) -> Response:
        raise NotImplementedError

    async def post(self, request: Request) -> Response:
        raise NotImplementedError
