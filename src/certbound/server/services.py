"""What one worker opens at start and closes at stop, wired together in one place.

Every hot-path component (client directory, token service, keys) reads in-process state refreshed by
one `GenerationWatcher`, so requests do not read the database to learn that something changed.

`open_services` is the server's: it opens the store and starts the periodic purge. `build_services`
builds the same `Services` over a store the caller opened, with the clock and poll interval it gives:
the tests and the bench use it, so they run exactly the wiring the server runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.observability.metrics import track_cache
from certbound.sealing import Sealer
from certbound.server.authorization.pushed import PushedRequests
from certbound.server.authorization.request import RequestChecker
from certbound.server.bootstrap import open_sealer
from certbound.server.clientauth.registry import ClientAuthenticator, build_client_authenticator
from certbound.server.clientcerts import CertificateWatch, ExpiryMonitor
from certbound.server.clients.model import ClientModel
from certbound.server.clients.registrar import Registrar
from certbound.server.grants import GrantRegistry, default_grants
from certbound.server.grants.scope import scope_catalogue
from certbound.server.login_cookie import login_cookie
from certbound.server.paths import REGISTRATION_PATH
from certbound.server.tokens.access_token import Clock
from certbound.server.tokens.service import TokenService
from certbound.server.users.login import Logins
from certbound.server.users.throttle import MAX_LOCKOUT, LoginThrottle, ThrottleLimits
from certbound.sessions import SessionCookie, SqlSessionStore
from certbound.store.cert_status import CertStatusStore
from certbound.store.generation import GenerationWatcher
from certbound.store.sql import SqlStore, open_store

__all__ = ["PURGE_INTERVAL_S", "Services", "build_services", "open_services"]

log = logging.getLogger("certbound")
PURGE_INTERVAL_S = 300.0


@dataclass(frozen=True)
class Services:
    """The per-worker services; `certbound.server.app.create_app` builds the endpoints from them.

    `certificates.is_revoked(x5t_s256)` says, without I/O, whether a leaf certificate is known to be
    revoked: ``tokens.verifier.active`` already refuses tokens bound to one; an endpoint that reads a
    bound token another way (userinfo, the refresh grant) asks it too.
    """

    settings: Settings
    store: SqlStore
    watcher: GenerationWatcher
    keys: KeyManager
    registrar: Registrar
    authenticator: ClientAuthenticator
    tokens: TokenService
    grants: GrantRegistry
    certificates: CertificateWatch
    sessions: SqlSessionStore
    cookie: SessionCookie
    checker: RequestChecker
    pushed: PushedRequests
    logins: Logins


@contextlib.asynccontextmanager
async def open_services(settings: Settings) -> AsyncIterator[Services]:
    """Open the store and build the services; the parent already migrated and made the first key."""
    store = open_store(settings.effective_database_url, fast_paths=settings.fast_paths)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        services = await stack.enter_async_context(build_services(settings, store, open_sealer(settings)))
        purger = asyncio.create_task(_purge_forever(store, services.sessions, settings.clock_skew))
        stack.callback(purger.cancel)
        yield services


@contextlib.asynccontextmanager
async def build_services(
    settings: Settings,
    store: SqlStore,
    sealer: Sealer,
    *,
    clock: Clock = time.time,
    watch_interval: float | None = None,
) -> AsyncIterator[Services]:
    """The services over `store` (opened, migrated, with a signing key; the caller closes it).

    `clock` is the tokens' (epoch seconds); `watch_interval` how often the store generation is polled
    (None: the watcher's default).
    Everything started here (the watcher, the outbound client of jwks_uri fetching, the token-state
    reader) is stopped on exit.
    """
    async with contextlib.AsyncExitStack() as stack:
        keys = KeyManager(
            store,
            sealer,
            alg=settings.signing_alg,
            extra_algs=settings.id_token_signing_algs,
            max_token_lifetime=timedelta(seconds=settings.access_token_lifetime),
        )
        await keys.keyring()
        listener = store.generation_listener()
        watcher = (
            GenerationWatcher(store, listener=listener)
            if watch_interval is None
            else GenerationWatcher(store, interval=watch_interval, listener=listener)
        )
        await watcher.start()
        stack.push_async_callback(watcher.stop)
        authenticator = build_client_authenticator(settings, store, sealer, watcher)
        stack.push_async_callback(authenticator.aclose)
        cert_table = CertStatusStore(store.engine)
        certificates = CertificateWatch(cert_table, authenticator.revocation)
        authenticator.observe_certificates(certificates.note)
        authenticator.deny_revoked(certificates.is_revoked)
        await certificates.start()
        stack.push_async_callback(certificates.aclose)
        expiry = ExpiryMonitor(store, cert_table)
        await expiry.start()
        stack.push_async_callback(expiry.aclose)
        if authenticator.revocation is not None:
            await authenticator.revocation.start()
        tokens = TokenService(
            settings,
            store,
            keys,
            generation=lambda: watcher.value,
            clock=clock,
            revoked_certificates=certificates.is_revoked,
            grants=store.grants,
        )
        stack.push_async_callback(tokens.close)
        registrar = Registrar(
            store,
            sealer,
            registration_base_url=settings.issuer_url + REGISTRATION_PATH,
            initial_access_token=settings.registration_token_value(),
            allowed_scopes=scope_catalogue(settings),
            certificate_overlap=timedelta(seconds=settings.client_cert_rotation_overlap),
            id_token_algs=settings.id_token_signing_algs,
        )
        track_cache("certificate_verdicts", authenticator.verdicts)
        track_cache("verified_tokens", tokens.cache)
        pushed = PushedRequests(store.grants)

        async def client_model(client_id: str) -> ClientModel | None:
            compiled = await authenticator.directory.get(client_id)
            return compiled.model if compiled is not None else None

        yield Services(
            settings=settings,
            store=store,
            watcher=watcher,
            keys=keys,
            registrar=registrar,
            authenticator=authenticator,
            tokens=tokens,
            grants=default_grants(
                tokens.minter,
                settings,
                store=store.grants,
                users=store.users,
                revoked_certificates=certificates.is_revoked,
            ),
            certificates=certificates,
            sessions=SqlSessionStore(store.engine, sealer),
            cookie=login_cookie(sealer),
            checker=RequestChecker(
                client_model,
                pushed,
                require_pkce=settings.require_pkce,
                require_pushed=settings.require_pushed_authorization_requests,
                catalogue=scope_catalogue(settings),
                default_audience=settings.default_audience or settings.issuer_url,
            ),
            pushed=pushed,
            logins=Logins(
                store.users,
                LoginThrottle(
                    store.users,
                    ThrottleLimits(
                        settings.login_max_failures,
                        settings.login_max_address_failures,
                        timedelta(seconds=settings.login_lockout),
                    ),
                ),
            ),
        )


async def _purge_forever(store: SqlStore, sessions: SqlSessionStore, clock_skew: int) -> None:
    """Drop expired replay-cache, deny-list and opaque-token rows, codes, grants, PAR requests, login
    sessions and old login failures now and then.

    Rows are purged `clock_skew` late so that a node whose clock runs ahead never deletes a deny-list
    row another node still needs.
    """
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            before = datetime.now(UTC) - timedelta(seconds=clock_skew)
            await store.purge_expired(before)
            await store.grants.purge_expired(before)
            await store.users.purge_failures(before - MAX_LOCKOUT)
            await sessions.purge_expired()
        except Exception as exc:  # a transient database error must not stop the worker
            log.warning("purge of expired rows failed: %s", type(exc).__name__)
