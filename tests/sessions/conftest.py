"""Session fixtures: both backends (the store's `database_url`), a fake clock, a KEK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certbound.sealing import Sealer
from certbound.sessions import SqlSessionStore
from certbound.store.sql import SqlStore
from tests.store.conftest import database_url, pg_url, sqlite_url, store  # noqa: F401  (fixtures)

KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))
START = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(KEK)


@pytest.fixture
def sessions(store: SqlStore, sealer: Sealer, clock: FakeClock) -> SqlSessionStore:  # noqa: F811
    return SqlSessionStore(store.engine, sealer, clock=clock)
