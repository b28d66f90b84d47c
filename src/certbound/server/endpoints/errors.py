"""Every failure as an `OAuthError`, rendered by the one renderer; the app's exception handlers.

`certbound.server.endpoints.responses.oauth_error_response` turns an `OAuthError` into its answer
(RFC 6749 section 5.2 JSON, no-store, a challenge on a 401). The failures that do not start as one
(a wrong method, a client that went away, the router's 404 and 405, a bug) are made into one here,
so the hot endpoints' wrapper, the registration endpoints and the app-level handlers all answer
through that renderer.

An exception that is the store out of reach (`certbound.store.availability.is_unavailable`: a
PostgreSQL restart, a cut network, a timeout) is not a bug: it is answered 503
``temporarily_unavailable`` with ``Retry-After``, logged as one warning line without a traceback,
and the next request tries the database again (the pools reconnect by themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from certbound.errors import OAuthError
from certbound.server.endpoints.responses import oauth_error_response
from certbound.store.availability import RETRY_AFTER_S, STORE_ERRORS, describe, is_unavailable

__all__ = [
    "EXCEPTION_HANDLERS",
    "client_disconnected",
    "from_http_exception",
    "invalid_request",
    "method_not_allowed",
    "server_error",
    "temporarily_unavailable",
    "unexpected_error",
    "unhandled",
]

log = logging.getLogger("certbound")

_HTTP_ERRORS = {404: "not_found", 405: "invalid_request"}


def invalid_request(description: str, reason: str) -> OAuthError:
    """A malformed request (RFC 6749 section 5.2); `reason` is its ``request.*`` code, for the log."""
    return OAuthError("invalid_request", description, reason=reason)


def method_not_allowed() -> OAuthError:
    """The 405 of the endpoints that take POST only (their own, so that it carries no-store too)."""
    return OAuthError(
        "invalid_request", "this endpoint accepts POST only", status=405, headers={"Allow": "POST"}
    )


def client_disconnected() -> OAuthError:
    """The client went away mid-body: nobody reads the answer, but one is due."""
    return OAuthError("invalid_request")


def server_error() -> OAuthError:
    """The server could not answer: no description, since whatever went wrong is ours, not the client's."""
    return OAuthError("server_error", status=500)


def temporarily_unavailable() -> OAuthError:
    """The store could not be reached in time: the client should retry (RFC 6749 section 4.1.2.1's
    error code, with the HTTP answer that says so)."""
    return OAuthError(
        "temporarily_unavailable",
        "the service is temporarily unavailable; retry later",
        status=503,
        reason="store.unavailable",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def unexpected_error(exc: BaseException, method: str, path: str) -> OAuthError:
    """The answer to an exception nobody handled: 503 for the store out of reach (one warning line),
    else 500 with the traceback in the log."""
    if is_unavailable(exc):
        log.warning("store unavailable on %s %s: %s", method, path, describe(exc))
        return temporarily_unavailable()
    log.error("unhandled error on %s %s: %s", method, path, type(exc).__name__, exc_info=exc)
    return server_error()


def from_http_exception(exc: HTTPException) -> OAuthError:
    """The router's 404 and 405 (and any other HTTPException) as JSON rather than Starlette's text."""
    return OAuthError(
        _HTTP_ERRORS.get(exc.status_code, "invalid_request"),
        str(exc.detail),
        status=exc.status_code,
        headers=dict(exc.headers or {}),
    )


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return oauth_error_response(from_http_exception(exc))


def unhandled(method: str, path: str, exc: BaseException) -> OAuthError:
    """The answer to an exception that escaped every handler: 500, one line here (the server logs
    the traceback when it is raised on)."""
    log.error("unhandled error on %s %s: %s", method, path, type(exc).__name__)
    return server_error()


async def _unhandled(request: Request, exc: Exception) -> Response:
    return oauth_error_response(unhandled(request.method, request.url.path, exc))


async def _store_error(request: Request, exc: Exception) -> Response:
    """The store's exception types, in the exception middleware (so no traceback for an outage);
    anything of those types that is not an outage goes on to the 500 handler."""
    if not is_unavailable(exc):
        raise exc
    log.warning("store unavailable on %s %s: %s", request.method, request.url.path, describe(exc))
    return oauth_error_response(temporarily_unavailable())


#: Starlette's ``exception_handlers``, for what reaches the app's exception layers.
EXCEPTION_HANDLERS: Mapping[Any, Any] = {
    OAuthError: _oauth_error,
    HTTPException: _http_error,
    **dict.fromkeys(STORE_ERRORS, _store_error),
    Exception: _unhandled,
}
