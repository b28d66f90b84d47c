"""What one worker opens at start and closes at stop, wired together in one place.

Every hot-path component (client directory, token service, keys) reads in-process state refreshed by
one `GenerationWatcher`, so requests do not read the database to learn that something changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.server.bootstrap import open_sealer
from certbound.server.clientauth.registry import ClientAuthenticator, build_client_authenticator
from certbound.server.clients.registrar import Registrar
from certbound.server.endpoints.paths import REGISTRATION_PATH
from certbound.server.grants import GrantRegistry, default_grants
from certbound.server.grants.scope import scope_catalogue
from certbound.server.tokens.service import TokenService
from certbound.store.generation import GenerationWatcher
from certbound.store.sql import SqlStore, open_store

log = logging.getLogger("certbound")
PURGE_INTERVAL_S = 300.0


@dataclass(frozen=True)
class Resources:
    """The per-worker services the endpoints use (through `request.app.state`)."""

    store: SqlStore
    watcher: GenerationWatcher
    keys: KeyManager
    registrar: Registrar
    authenticator: ClientAuthenticator
    tokens: TokenService
    grants: GrantRegistry


@contextlib.asynccontextmanager
async def open_resources(settings: Settings) -> AsyncIterator[Resources]:
    """Open the store and build the services; the parent already migrated and made the first key."""
    store = open_store(settings.effective_database_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        sealer = open_sealer(settings)
        keys = KeyManager(
            store,
            sealer,
            alg=settings.signing_alg,
            max_token_lifetime=timedelta(seconds=settings.access_token_lifetime),
        )
        await keys.keyring()
        watcher = GenerationWatcher(store)
        await watcher.start()
        stack.push_async_callback(watcher.stop)
        authenticator = build_client_authenticator(settings, store, sealer, watcher)
        stack.push_async_callback(authenticator.aclose)
        tokens = TokenService(settings, store, keys, generation=lambda: watcher.value)
        stack.push_async_callback(tokens.close)
        registrar = Registrar(
            store,
            sealer,
            registration_base_url=settings.issuer_url + REGISTRATION_PATH,
            initial_access_token=settings.registration_token_value(),
            allowed_scopes=scope_catalogue(settings),
        )
        purger = asyncio.create_task(_purge_forever(store, settings.clock_skew))
        stack.callback(purger.cancel)
        yield Resources(
            store=store,
            watcher=watcher,
            keys=keys,
            registrar=registrar,
            authenticator=authenticator,
            tokens=tokens,
            grants=default_grants(tokens.minter, settings),
        )


async def _purge_forever(store: SqlStore, clock_skew: int) -> None:
    """Drop expired replay-cache, deny-list and opaque-token rows now and then.

    Rows are purged `clock_skew` late so that a node whose clock runs ahead never deletes a deny-list
    row another node still needs.
    """
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        try:
            await store.purge_expired(datetime.now(UTC) - timedelta(seconds=clock_skew))
        except Exception as exc:  # a transient database error must not stop the worker
            log.warning("purge of expired rows failed: %s", type(exc).__name__)
