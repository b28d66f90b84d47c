"""The ASGI application: routes, error rendering, and the per-worker resources opened at start."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from certbound.config import Settings
from certbound.errors import OAuthError
from certbound.observability.metrics import track_cache
from certbound.observability.requestlog import RequestLogMiddleware
from certbound.server.degraded_trust import keep_trust_current, refresh_trust
from certbound.server.endpoints import introspection, registration, revocation, token
from certbound.server.endpoints.direct_routes import DirectRoutes
from certbound.server.endpoints.health import healthz
from certbound.server.endpoints.jwks import jwks
from certbound.server.endpoints.metadata import build_metadata, metadata
from certbound.server.endpoints.paths import HEALTH_PATH, JWKS_PATH, METADATA_PATHS
from certbound.server.endpoints.responses import json_response, oauth_error_response
from certbound.server.services import open_resources
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware
from certbound.tls.server_context import TrustHolder

log = logging.getLogger("certbound")


def routes() -> list[BaseRoute]:
    out: list[BaseRoute] = [Route(p, metadata, methods=["GET"]) for p in METADATA_PATHS]
    out += [
        Route(JWKS_PATH, jwks, methods=["GET"]),
        Route(HEALTH_PATH, healthz, methods=["GET"]),
    ]
    out += registration.routes()
    out += hot_routes()
    return out


def hot_routes() -> list[Route]:
    """The endpoints on every token's path, dispatched by `DirectRoutes` (and kept in the router)."""
    return token.routes() + introspection.routes() + revocation.routes()


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


def create_app(settings: Settings, trust_holders: Sequence[TrustHolder] = ()) -> Starlette:
    """Build the app; the store, keys and registrar are opened in the lifespan of each worker.

    `trust_holders` are the degraded-mode TLS contexts of this worker (docs/tls.md): kept trusting
    exactly the registered self-signed certificates.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_resources(settings) as res, contextlib.AsyncExitStack() as stack:
            if trust_holders:
                seen = res.watcher.value
                await refresh_trust(trust_holders, res.store)
                task = asyncio.create_task(keep_trust_current(trust_holders, res.store, res.watcher, seen))
                stack.callback(task.cancel)
            app.state.settings = settings
            app.state.metadata = build_metadata(settings)
            app.state.store = res.store
            app.state.watcher = res.watcher
            app.state.keys = res.keys
            app.state.registrar = res.registrar
            app.state.authenticator = res.authenticator
            app.state.tokens = res.tokens
            app.state.grants = res.grants
            track_cache("certificate_verdicts", res.authenticator.verdicts)
            track_cache("verified_tokens", res.tokens.cache)
            yield

    forwarded = ForwardedCertConfig.from_settings(settings)
    return Starlette(
        routes=routes(),
        lifespan=lifespan,
        # outermost first: the request log sees the certificate the forwarded-header reader put in place
        middleware=[
            Middleware(RequestLogMiddleware),
            Middleware(ForwardedCertificateMiddleware, forwarded),
            Middleware(DirectRoutes, hot_routes()),
        ],
        exception_handlers={
            OAuthError: _oauth_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
