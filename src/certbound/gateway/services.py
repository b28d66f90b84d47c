"""What one gateway worker holds, built once from the settings: IdPs, upstream pools, the route table.

`build_services` compiles the settings (files read, certificates and keys loaded, scope rules and
header names decided) without any network call, so ``certbound gateway --check`` runs it too and a
bad file is named before anything listens. `open_services` is a worker's: it builds, and closes every
pool on the way out.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from certbound.certstatus import RevocationChecker, RevocationPolicy, build_checker
from certbound.gateway.config import (
    GatewayConfigError,
    GatewaySettings,
    ListenerSettings,
    RouteSettings,
    idp_key,
)
from certbound.gateway.grants import CallerGrants
from certbound.gateway.headers import IdentityHeaders
from certbound.gateway.idp import IdentityProvider
from certbound.gateway.login import BrowserLogin
from certbound.gateway.presented import RefreshTokens, Userinfo
from certbound.gateway.proof import CertificateRevocation, ProofOfPossession
from certbound.gateway.relying import RelyingParty
from certbound.gateway.routes import Route, RouteTable
from certbound.gateway.rules import Requirement
from certbound.gateway.session_storage import SessionBackends, open_session_backends, session_sealer
from certbound.gateway.upstream import Upstream, UpstreamPools
from certbound.gateway.validation import TokenValidator
from certbound.net.tls import TLSConfigError
from certbound.observability.metrics import track_cache
from certbound.pki.chain import ChainVerifier
from certbound.pki.pem import load_certs_file
from certbound.tls.chain_verdicts import VerdictCache
from certbound.tls.forwarded import ForwardedCertConfig

__all__ = ["GatewayServices", "build_services", "open_services"]


@dataclass(frozen=True)
class GatewayServices:
    """A worker's gateway: what `certbound.gateway.app.create_app` is built from, and what to close."""

    settings: GatewaySettings
    idps: Mapping[str, IdentityProvider]
    routes: RouteTable
    upstreams: UpstreamPools
    forwarded: ForwardedCertConfig
    verdicts: VerdictCache | None
    revocation: RevocationChecker | None = None

    async def aclose(self) -> None:
        for idp in self.idps.values():
            await idp.aclose()
        await self.upstreams.aclose()
        if self.revocation is not None:
            await self.revocation.aclose()


def _client_ca(path: Path | None) -> list[x509.Certificate] | None:
    if path is None:
        return None
    try:
        return load_certs_file(path)
    except (OSError, ValueError) as exc:
        raise GatewayConfigError(f"listener.client_ca: {exc}") from None


def _revocation(
    listener: ListenerSettings, anchors: list[x509.Certificate], clock: Callable[[], float]
) -> RevocationChecker | None:
    """The checker of proof-of-possession chains (issue 16), as serve's: the same settings, the
    outbound address rules for the URLs certificates name (no issuer of its own: private targets only
    with ``outbound_allow_private``)."""
    if listener.client_cert_revocation == "off":
        return None
    policy = RevocationPolicy(
        mode=listener.client_cert_revocation,
        soft_fail=listener.client_cert_revocation_soft_fail,
        max_age=float(listener.client_cert_revocation_max_age),
        crls=tuple(listener.client_ca_crls),
    )
    known = list(anchors)
    if listener.forwarded_cert_intermediates is not None:
        try:
            known += load_certs_file(listener.forwarded_cert_intermediates)
        except (OSError, ValueError) as exc:
            raise GatewayConfigError(f"listener.forwarded_cert_intermediates: {exc}") from None
    return build_checker(
        policy,
        issuer_url=None,
        allow_private=listener.outbound_allow_private,
        known_cas=known,
        clock=clock,
    )


def _forwarded(settings: GatewaySettings) -> ForwardedCertConfig:
    try:
        return ForwardedCertConfig.from_settings(settings.listener)
    except ValueError as exc:
        raise GatewayConfigError(f"listener.{exc}") from None


def _identity_providers(settings: GatewaySettings, clock: Callable[[], float]) -> dict[str, IdentityProvider]:
    idps: dict[str, IdentityProvider] = {}
    for name, idp in settings.identity_providers().items():
        routes = [r for r in settings.routes if settings.idp_of(r) == name]
        if not routes:
            continue  # an IdP no route uses: checked, never called
        ttl_max = max(r.cache_ttl_max for r in routes)
        idps[name] = IdentityProvider(name, idp, idp_key(settings, name), cache_ttl_max=ttl_max, clock=clock)
    return idps


def _relying(
    route: RouteSettings,
    idp: IdentityProvider,
    backends: SessionBackends | None,
    clock: Callable[[], float],
) -> RelyingParty | None:
    """A route's part-2 methods; None for a route of part 1 only (or when checking: no store open)."""
    methods = set(route.auth_methods)
    if not methods - {"bearer", "introspection"}:
        return None
    login = None
    if route.login_enabled():
        if backends is None:  # checking the file: no store is opened
            return None
        assert backends.sealer is not None
        sessions = backends.for_route(route.session_storage, route.redis_url)
        login = BrowserLogin(route, idp, sessions, backends.sealer, clock=clock)
    grants = None
    if methods & {"client_credentials", "password"}:
        grants = CallerGrants(
            idp,
            methods=route.auth_methods,
            client_credentials_param_type=route.client_credentials_param_type,
            password_param_type=route.password_param_type,
            scope=" ".join(route.scopes) if "scopes" in route.model_fields_set else None,
            cache_tokens=route.cache_tokens,
            cache_tokens_leeway=route.cache_tokens_leeway,
            salt=route.cache_tokens_salt,
            clock=clock,
        )
    userinfo = None
    if "userinfo" in methods:
        userinfo = Userinfo(idp, cache_ttl_max=route.cache_ttl_max, clock=clock)
    refresh = None
    if "refresh_token" in methods:
        refresh = RefreshTokens(
            idp, cache_tokens_leeway=route.cache_tokens_leeway, salt=route.cache_tokens_salt, clock=clock
        )
    return RelyingParty(
        login,
        grants=grants,
        userinfo=userinfo,
        refresh=refresh,
        bearer=bool(methods & {"bearer", "introspection"}),
        upstream_access_token_header=route.upstream_access_token_header,
        logout_uri_suffix=route.logout_uri_suffix,
        logout_methods=route.logout_methods,
        downstream_refresh_token_header=route.downstream_refresh_token_header,
    )


def _routes(
    settings: GatewaySettings,
    idps: Mapping[str, IdentityProvider],
    upstreams: UpstreamPools,
    verdicts: VerdictCache | None,
    revocation: CertificateRevocation | None,
    clock: Callable[[], float],
    backends: SessionBackends | None,
) -> RouteTable:
    compiled = []
    identity_names = {name for route in settings.routes for name in route.upstream_headers}
    for index, route in enumerate(settings.routes):
        upstream = None
        if route.upstream is not None:
            try:
                pool = upstreams.pool(route.upstream, route.upstream_ca_bundle)
            except TLSConfigError as exc:
                raise GatewayConfigError(f"routes[{index}].upstream_ca_bundle: {exc}") from None
            upstream = Upstream(
                route.upstream,
                pool,
                connect_timeout=route.upstream_connect_timeout,
                read_timeout=route.upstream_read_timeout,
            )
        validator = TokenValidator(
            idps[settings.idp_of(route)],
            methods=route.auth_methods,
            leeway=route.leeway,
            cache_introspection=route.cache_introspection,
            cache_ttl_max=route.cache_ttl_max,
            cache_ttl_neg=route.cache_ttl_neg,
            clock=clock,
        )
        compiled.append(
            Route(
                name=route.name,
                prefixes=tuple(route.paths),
                realm=route.realm or route.name,
                upstream=upstream,
                strip_path=route.strip_path,
                hide_credentials=route.hide_credentials,
                validator=validator,
                proof=ProofOfPossession(route.proof_of_possession_mtls, verdicts, revocation),
                scopes=Requirement.parse(route.scopes_required),
                scopes_claim=route.scopes_claim,
                audiences=Requirement.parse(route.audience_required),
                audience_claim=route.audience_claim,
                identity=IdentityHeaders.of(route.upstream_headers, identity_names),
                relying=_relying(route, idps[settings.idp_of(route)], backends, clock),
            )
        )
    return RouteTable(compiled)


def build_services(
    settings: GatewaySettings,
    *,
    clock: Callable[[], float] = time.time,
    backends: SessionBackends | None = None,
) -> GatewayServices:
    """Compile the settings (no network I/O); GatewayConfigError names what cannot be used. Without
    `backends` (``--check``) the routes' logins are not built: only the sealing key file is read."""
    forwarded = _forwarded(settings)
    anchors = _client_ca(settings.listener.client_ca)
    verdicts = VerdictCache(ChainVerifier(anchors)) if anchors is not None else None
    checker = _revocation(settings.listener, anchors, clock) if anchors is not None else None
    revocation = CertificateRevocation(checker) if checker is not None else None
    idps = _identity_providers(settings, clock)
    if backends is None and settings.store.session_secret_file is not None:
        session_sealer(settings.store)
    upstreams = UpstreamPools()
    routes = _routes(settings, idps, upstreams, verdicts, revocation, clock, backends)
    return GatewayServices(settings, idps, routes, upstreams, forwarded, verdicts, checker)


@contextlib.asynccontextmanager
async def open_services(
    settings: GatewaySettings, *, clock: Callable[[], float] = time.time
) -> AsyncIterator[GatewayServices]:
    """A worker's services, closed (every pool) on exit; their caches reported to the metrics."""
    async with open_session_backends(settings) as backends:
        services = build_services(settings, clock=clock, backends=backends)
        async with _closing(services):
            yield services


@contextlib.asynccontextmanager
async def _closing(services: GatewayServices) -> AsyncIterator[None]:
    try:
        for name, idp in services.idps.items():
            track_cache(f"gateway_jwt:{name}", idp.verified)
            track_cache(f"gateway_introspection:{name}", idp.introspected)
        if services.verdicts is not None:
            track_cache("gateway_certificate_verdicts", services.verdicts)
        if services.revocation is not None:
            await services.revocation.start()  # background refreshes; stopped by aclose
        yield
    finally:
        await services.aclose()
