"""A migrated SQLite store per test, for the client-certificate records and listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from certbound.store.sql import SqlStore, open_store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'certbound.db'}")
    await opened.migrate()
    yield opened
    await opened.close()
