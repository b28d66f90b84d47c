"""The ASGI application: routes, error rendering, and the per-worker resources opened at start."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from certbound.config import Settings
from certbound.endpoints import introspection, registration, revocation, token
from certbound.endpoints.health import healthz
from certbound.endpoints.jwks import jwks
from certbound.endpoints.metadata import build_metadata, metadata
from certbound.endpoints.paths import HEALTH_PATH, JWKS_PATH, METADATA_PATHS
from certbound.endpoints.responses import json_response, oauth_error_response
from certbound.errors import OAuthError
from certbound.resources import open_resources

log = logging.getLogger("certbound")


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = [Route(p, metadata, methods=["GET"]) for p in METADATA_PATHS]
    out += [
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
    ]
    out += registration.routes()
    out += token.routes() + introspection.routes() + revocation.routes()
    return out


async def _oauth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "invalid_request"}.get(exc.status_code, "invalid_request")
    return json_response({"error": code, "error_description": str(exc.detail)}, exc.status_code, exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return json_response({"error": "server_error"}, 500)


def create_app(settings: Settings) -> Starlette:
    """Build the app; the store, keys and registrar are opened in the lifespan of each worker."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_resources(settings) as res:
            app.state.settings = settings
            app.state.metadata = build_metadata(settings)
            app.state.store = res.store
            app.state.watcher = res.watcher
            app.state.keys = res.keys
            app.state.registrar = res.registrar
            app.state.authenticator = res.authenticator
            app.state.tokens = res.tokens
            app.state.grants = res.grants
            yield

    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        exception_handlers={
            OAuthError: _oauth_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
