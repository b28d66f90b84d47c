"""The client-certificate tests' store: the client-authentication tests' migrated SQLite file."""

from __future__ import annotations

import pytest

from certbound.store.sql import SqlStore
from tests.server.clientauth.conftest import sqlite_db  # noqa: F401 - the fixture `store` takes


@pytest.fixture
def store(sqlite_db: SqlStore) -> SqlStore:  # noqa: F811 - the imported fixture, by name
    return sqlite_db
