"""Where the gateway keeps sessions: the key made once in data_dir and found again after a restart,
a given key file that must exist, and the purge of sessions (and abandoned logins) no longer usable."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from certbound.gateway import session_storage
from certbound.gateway.config import GatewayConfigError, StoreSettings, parse_gateway_settings
from certbound.gateway.session_storage import migrate_session_store, open_session_backends, session_sealer
from certbound.sessions import SessionLimits
from certbound.store.sql import open_store
from tests.client.material import Material, make_material


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("storage-pki"))


def settings(files: Material, data_dir: Path) -> Any:
    idp = {
        "issuer": "https://idp.example.com",
        "client_id": "gw",
        "ca_bundle": str(files.ca_file),
        "tls_client_auth_cert": str(files.gateway.cert_file),
        "tls_client_auth_key": str(files.gateway.key_file),
    }
    route = {
        "name": "app",
        "paths": ["/app"],
        "upstream": "http://127.0.0.1:9",
        "redirect_uri": "https://gw/app/cb",
        "auth_methods": ["authorization_code", "session"],
    }
    listener = {"tls_cert": str(files.server.cert_file), "tls_key": str(files.server.key_file)}
    return parse_gateway_settings(
        {"listener": listener, "store": {"data_dir": str(data_dir)}, "idp": idp, "routes": [route]}
    )


def test_the_sealing_key_is_made_once_and_a_given_one_must_exist(tmp_path: Path) -> None:
    first = session_sealer(StoreSettings(data_dir=tmp_path))
    assert (tmp_path / "session.key").stat().st_mode & 0o777 == 0o600
    assert session_sealer(StoreSettings(data_dir=tmp_path)).kek_id == first.kek_id
    with pytest.raises(GatewayConfigError, match=r"store\.session_secret_file"):
        session_sealer(StoreSettings(data_dir=tmp_path, session_secret_file=tmp_path / "missing.key"))


def test_sessions_no_longer_usable_are_purged(
    files: Material, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(session_storage, "PURGE_EVERY", 0.1)
    config = settings(files, tmp_path / "data")

    async def count() -> int:
        store = open_store(config.store.effective_database_url())
        try:
            async with store.engine.connect() as conn:
                return int((await conn.execute(text("SELECT count(*) FROM sessions"))).scalar_one())
        finally:
            await store.close()

    async def scenario() -> tuple[int, int]:
        await migrate_session_store(config)
        async with open_session_backends(config) as backends:
            assert backends.store is not None
            await backends.store.create(
                purpose="gateway-login:app", limits=SessionLimits(timedelta(seconds=1))
            )
            await backends.store.create(purpose="gateway:app", limits=SessionLimits(timedelta(hours=1)))
            before = await count()
            for _ in range(100):  # the abandoned login's second passes, then a purge comes
                await asyncio.sleep(0.1)
                if await count() == 1:
                    break
            return before, await count()

    assert asyncio.run(scenario()) == (2, 1)
