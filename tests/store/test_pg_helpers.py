"""tests/pg_helpers.py itself: PostgreSQL being down is a skip locally and a failure in CI."""

from __future__ import annotations

import asyncpg
import pytest

from tests import pg_helpers

NOBODY_LISTENS = "postgresql://postgres@127.0.0.1:1/postgres"


def test_down_is_a_skip_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"not reachable.*CI=true"):
        pg_helpers.require_postgres(NOBODY_LISTENS)


def test_down_is_a_failure_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="must run in CI"):
        pg_helpers.require_postgres(NOBODY_LISTENS)


@pytest.mark.postgres
async def test_throwaway_database_is_created_and_dropped() -> None:
    with pg_helpers.throwaway_database() as url:
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT current_database()") == url.rsplit("/", 1)[1]
        finally:
            await conn.close()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await asyncpg.connect(url)


def test_refuses_to_drop_shared_databases() -> None:
    for name in ("postgres", "test"):
        with pytest.raises(ValueError, match="refusing"):
            pg_helpers.drop_database(f"postgresql://postgres@127.0.0.1:5432/{name}")
