"""The ASGI application: every endpoint built with the services it uses, routed from one table.

`create_app` gets the worker's `Services` already open (`certbound.server.services.open_services`)
and builds each endpoint of `certbound.server.paths.ENDPOINTS` with what it needs; nothing
is looked up by name at request time. Errors that reach the app's exception layers are answered by
`certbound.server.endpoints.errors.EXCEPTION_HANDLERS`, through the same renderer as the endpoints'.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from certbound.observability.requestlog import RequestLogMiddleware
from certbound.server import paths
from certbound.server.authorization.codes import CodeIssuer
from certbound.server.clientauth.audiences import assertion_audiences
from certbound.server.degraded_trust import trust_kept_current
from certbound.server.endpoints.authorize import AuthorizeEndpoint
from certbound.server.endpoints.consent import ConsentEndpoint
from certbound.server.endpoints.errors import EXCEPTION_HANDLERS
from certbound.server.endpoints.health import ReadinessEndpoint, healthz
from certbound.server.endpoints.hot_routes import CertboundApp, HotRoutes
from certbound.server.endpoints.introspection import IntrospectionEndpoint
from certbound.server.endpoints.jwks import JwksEndpoint
from certbound.server.endpoints.login import LoginEndpoint
from certbound.server.endpoints.login_flow import LoginFlow
from certbound.server.endpoints.logout import LogoutEndpoint
from certbound.server.endpoints.metadata import MetadataEndpoint, build_metadata
from certbound.server.endpoints.pushed_authorization import PushedAuthorizationEndpoint
from certbound.server.endpoints.registration import ClientConfigurationEndpoint, RegistrationEndpoint
from certbound.server.endpoints.revocation import RevocationEndpoint
from certbound.server.endpoints.token import TokenEndpoint
from certbound.server.endpoints.userinfo import UserinfoEndpoint
from certbound.server.pages import Pages
from certbound.server.paths import ENDPOINTS, EndpointEntry
from certbound.server.services import Services
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware
from certbound.tls.server_context import TrustHolder

__all__ = ["build_endpoints", "create_app"]

#: What a `Route` takes: an ASGI callable built with its dependencies (or a request function).
Endpoint = Callable[..., Any]


def build_endpoints(services: Services) -> Mapping[EndpointEntry, Endpoint]:
    """Every endpoint of the table, built with what it uses (a missing one fails here, at start)."""
    settings = services.settings

    def audiences(entry: EndpointEntry) -> frozenset[str]:
        return assertion_audiences(settings.issuer_url, settings.mtls_url, entry.path)

    authenticator, tokens, store = services.authenticator, services.tokens, services.store
    document = build_metadata(
        settings, grant_types=services.grants.grant_types, auth_methods=authenticator.methods
    )
    flow = LoginFlow(
        issuer=settings.issuer_url,
        clients=services.checker.clients,
        sessions=services.sessions,
        cookie=services.cookie,
        users=store.users,
        grants=store.grants,
        codes=CodeIssuer(store.grants),
        pages=Pages(),
        login_lifetime=settings.login_session_lifetime,
    )
    built: dict[EndpointEntry, Endpoint] = {
        paths.TOKEN: TokenEndpoint(authenticator, services.grants, audiences(paths.TOKEN)),
        paths.INTROSPECTION: IntrospectionEndpoint(
            authenticator, tokens.introspector, audiences(paths.INTROSPECTION)
        ),
        paths.REVOCATION: RevocationEndpoint(authenticator, tokens.revoker, audiences(paths.REVOCATION)),
        paths.JWKS: JwksEndpoint(tokens.keys),
        paths.REGISTRATION: RegistrationEndpoint(services.registrar, services.watcher),
        paths.CLIENT_CONFIGURATION: ClientConfigurationEndpoint(services.registrar, services.watcher),
        paths.HEALTH: healthz,
        paths.READINESS: ReadinessEndpoint(store, services.keys),
        paths.METADATA: MetadataEndpoint(document),
        paths.AUTHORIZATION: AuthorizeEndpoint(flow, services.checker),
        paths.PUSHED_AUTHORIZATION: PushedAuthorizationEndpoint(
            authenticator, services.checker, services.pushed, audiences(paths.PUSHED_AUTHORIZATION)
        ),
        paths.LOGIN: LoginEndpoint(
            flow, services.logins, tuple(ipaddress.ip_network(c) for c in settings.trusted_proxies)
        ),
        paths.CONSENT: ConsentEndpoint(flow),
        paths.END_SESSION: LogoutEndpoint(flow, tokens.keys),
        paths.USERINFO: UserinfoEndpoint(
            tokens.verifier,
            store.users,
            clients=services.checker.clients,
            keys=tokens.keys,
            issuer=settings.issuer_url,
        ),
    }
    missing = [entry.name for entry in ENDPOINTS if entry not in built]
    if missing:
        raise RuntimeError(f"no endpoint built for {', '.join(missing)}")
    return built


def _routes(endpoints: Mapping[EndpointEntry, Endpoint], *, hot: bool | None = None) -> list[Route]:
    """The routes of the table's endpoints (`hot`: only those that are, or are not, hot)."""
    return [
        Route(path, endpoints[entry], methods=entry.methods)
        for entry in ENDPOINTS
        if hot is None or entry.hot == hot
        for path in entry.paths
    ]


def create_app(services: Services, trust_holders: Sequence[TrustHolder] = ()) -> CertboundApp:
    """The app of one worker, over its open `services`.

    `trust_holders` are the degraded-mode TLS contexts of this worker (docs/tls.md): kept trusting
    exactly the registered self-signed certificates while the app runs (its lifespan). With the
    ``fast_paths`` setting, the hot endpoints are served by exact path ahead of the middleware stack
    (`HotRoutes`); without it they go through Starlette's layers and router like the others, with
    the same answers.
    """
    settings = services.settings
    endpoints = build_endpoints(services)
    hot = _routes(endpoints, hot=True)
    routes: list[BaseRoute] = [*_routes(endpoints, hot=False), *hot]  # the router keeps the hot ones too

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with trust_kept_current(trust_holders, services.store, services.watcher):
            yield

    # one reader for the stack and the hot routes: one cache of parsed forwarded certificates
    forwarded = ForwardedCertificateMiddleware(None, ForwardedCertConfig.from_settings(settings))  # type: ignore[arg-type]
    # outermost first: the request log sees the certificate the forwarded-header reader put in place
    app = CertboundApp(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(RequestLogMiddleware), Middleware(forwarded.around)],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    if settings.fast_paths:
        app.serve_ahead(HotRoutes(hot, forwarded))
    return app
