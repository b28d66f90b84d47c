"""Store fixtures, reusable by other suites: ``from tests.store.conftest import store, database_url``.

`database_url` (and so `store`) is parametrized over both backends: a SQLite file in tmp_path, and a
throwaway PostgreSQL database (marked ``postgres``; skipped when the server is down, failed in CI).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from certbound.store.sql import SqlStore, open_store
from tests import pg_helpers

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A not-yet-created SQLite file, absolute path."""
    return f"sqlite:///{tmp_path / 'certbound.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own, dropped afterwards."""
    with pg_helpers.throwaway_database() as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str:
    """An empty database on each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlStore]:
    """A migrated, empty store on each backend in turn."""
    opened = open_store(database_url)
    await opened.migrate()
    yield opened
    await opened.close()
