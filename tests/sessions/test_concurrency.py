"""Two workers updating one session at once: every read is one writer's whole record, the last wins."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from certbound.sealing import Sealer
from certbound.sessions import SessionLimits, SqlSessionStore
from certbound.store.sql import SqlStore
from tests.sessions import _workers
from tests.sessions.conftest import KEK
from tests.store._workers import run_together

UPDATES = 40
HOUR = SessionLimits(absolute=timedelta(hours=1))


async def test_two_processes_updating_one_session(store: SqlStore, database_url: str) -> None:
    sessions = SqlSessionStore(store.engine, Sealer(KEK))
    created = await sessions.create(purpose="gateway:orders", limits=HOUR, subject="alice")
    names = run_together(
        _workers.update_many, database_url, KEK, created.id, "gateway:orders", UPDATES, count=2, timeout=180
    )
    assert len(set(names)) == 2
    final = await sessions.get(created.id, purpose="gateway:orders")
    assert final is not None
    assert final.data["writer"] in names
    # Each worker's writes are sequential, so whichever worker wrote last, it wrote its last update.
    assert final.data == _workers.expected_data(final.data["writer"], UPDATES - 1)
    assert final.subject == "alice"


async def test_the_later_of_two_updates_wins_whole(store: SqlStore) -> None:
    first = SqlSessionStore(store.engine, Sealer(KEK))
    second = SqlSessionStore(store.engine, Sealer(KEK))
    created = await first.create(purpose="as-login", limits=HOUR, subject="alice")
    assert await first.update(dataclasses.replace(created, data={"a": 1}))
    assert await second.update(dataclasses.replace(created, data={"b": 2}))
    final = await first.get(created.id, purpose="as-login")
    assert final is not None
    assert (final.subject, final.data) == ("alice", {"b": 2})
