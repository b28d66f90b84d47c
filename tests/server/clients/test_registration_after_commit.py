"""A registration change that was committed is answered as done, even when the cache refresh that
follows it cannot reach the store: a 503 there would make the client retry a POST (a second client,
the first one's credentials lost) or a DELETE (a 404 for a deletion that happened).

The fault (the database going away between the commit and the next read) cannot be timed for real:
the generation read after the change raises what asyncpg raises when PostgreSQL refuses connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.sealing import Sealer
from certbound.server.app import create_app
from certbound.server.services import Services, build_services
from certbound.store.sql import SqlStore
from tests.server.clients.conftest import BASE, INITIAL_TOKEN, bearer


async def _refused() -> int:
    raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")


@pytest.fixture
async def services(sqlite_store: SqlStore, sealer: Sealer) -> AsyncIterator[Services]:
    settings = Settings(issuer=BASE, registration_token=INITIAL_TOKEN)
    await KeyManager(sqlite_store, sealer).ensure_keys(datetime.now(UTC))
    async with build_services(settings, sqlite_store, sealer) as built:
        yield built


async def test_committed_changes_are_answered_as_done_when_the_refresh_fails(
    services: Services, sqlite_store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = httpx.ASGITransport(app=create_app(services))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        monkeypatch.setattr(services.watcher, "check", _refused)
        created = await http.post(
            "/register",
            json={
                "redirect_uris": ["https://app.example/cb"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            headers=bearer(INITIAL_TOKEN),
        )
        assert created.status_code == 201, created.text
        body = created.json()
        client_id, rat = body["client_id"], body["registration_access_token"]
        assert await sqlite_store.get_client(client_id) is not None

        replaced = await http.put(
            f"/register/{client_id}",
            json={
                "client_id": client_id,
                "redirect_uris": ["https://app.example/other"],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            headers=bearer(rat),
        )
        assert replaced.status_code == 200, replaced.text
        stored = await sqlite_store.get_client(client_id)
        assert stored is not None
        assert "https://app.example/other" in str(stored)

        deleted = await http.delete(f"/register/{client_id}", headers=bearer(rat))
        assert deleted.status_code == 204, deleted.text
        assert await sqlite_store.get_client(client_id) is None


async def test_a_bug_in_the_refresh_is_still_a_500(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> int:
        raise KeyError("generation")

    transport = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        monkeypatch.setattr(services.watcher, "check", broken)
        answer = await http.post(
            "/register", json={"redirect_uris": ["https://app.example/cb"]}, headers=bearer(INITIAL_TOKEN)
        )
        assert answer.status_code == 500
