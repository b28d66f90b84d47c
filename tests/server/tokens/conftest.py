"""Fixtures: a migrated store with signing keys and a few clients, and a TokenService over it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from certbound.jose.keyring import KeyManager
from certbound.server.tokens.service import TokenService
from certbound.store.sql import SqlStore, open_store
from tests.server.endpoints.harness import SEALER, FakeClock, client_record, settings
from tests.store.conftest import database_url, pg_url, sqlite_url  # noqa: F401  (fixtures)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:  # noqa: F811
    opened = open_store(database_url)
    await opened.migrate()
    for client_id in ("a", "b"):
        await opened.create_client(client_record(client_id, {"scope": "read"}))
    yield opened
    await opened.close()


@pytest.fixture
async def keys(store: SqlStore) -> KeyManager:
    manager = KeyManager(store, SEALER)
    await manager.ensure_keys(datetime.now(UTC))
    return manager


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(store: SqlStore, keys: KeyManager, clock: FakeClock) -> AsyncIterator[TokenService]:
    tokens = TokenService(settings(), store, keys, clock=clock)
    yield tokens
    await tokens.close()
