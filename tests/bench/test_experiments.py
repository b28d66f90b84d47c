"""The ``no-denylist`` experiment changes what it says, through the store interface, on both backends."""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from certbound.store.interface import OpaqueToken
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store
from tests.store.conftest import database_url, pg_url, sqlite_url  # noqa: F401  (fixtures)

LATER = datetime.now(UTC) + timedelta(hours=1)
EXPERIMENTS = Path(__file__).resolve().parents[2] / "bench" / "experiments.py"


def experiments() -> ModuleType:
    """bench/experiments.py by its path: the name ``bench`` is this test package's here."""
    spec = importlib.util.spec_from_file_location("certbound_bench_experiments", EXPERIMENTS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
async def migrated(database_url: str) -> AsyncIterator[SqlStore]:  # noqa: F811
    opened = open_store(database_url)
    await opened.migrate()
    yield opened
    await opened.close()


async def test_no_denylist_takes_every_jti_as_not_revoked(
    migrated: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SqlStore, "token_state", SqlStore.token_state)  # restored afterwards
    await migrated.create_client(Client("a", {}))
    await migrated.revoke_token("j1", LATER)
    token = OpaqueToken("ab" * 32, "a", {"exp": 1}, LATER)
    await migrated.add_opaque_token(token)
    product = migrated.token_state()
    assert await product.is_revoked("j1") is True
    await product.close()

    experiments().apply("no-denylist")
    patched = migrated.token_state()
    try:
        assert await patched.is_revoked("j1") is False
        assert await patched.opaque_token("ab" * 32) == token  # the rest is the product's
    finally:
        await patched.close()
