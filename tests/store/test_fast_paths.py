"""The store's fast paths give the answers of its general path (`fast_paths=False`), on both backends.

Fast: on SQLite the replay-cache and deny-list inserts and the generation read go through a plain
`sqlite3` connection (`store/sqlite_hot.py`) and `token_state()` reads through `sqlite3` with the
commit marker; on PostgreSQL `token_state()` reads through prepared asyncpg statements. General:
every call through SQLAlchemy's async engine. The same scenario runs on each path against a fresh
database of its own and the answers (and the rows stored) are compared; then both paths share one
database, as two workers and as two processes, and each must see what the other wrote.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from certbound.store.interface import OpaqueToken, TokenState
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store
from certbound.store.token_state import PostgresTokenState, SqliteTokenState, StoreTokenState
from tests import pg_helpers
from tests.store import _workers
from tests.store.conftest import BACKENDS

NOW = datetime.now(UTC).replace(microsecond=654321)
LATER = NOW.replace(microsecond=123456) + timedelta(hours=1)
PAST = NOW - timedelta(hours=1)
CLAIMS = {"exp": 1, "scope": "read write", "nested": {"x": [1, "é", None, True]}}


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """Makes empty databases of one backend, each of its own, dropped afterwards."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:

        def make() -> str:
            if request.param == "sqlite":
                return f"sqlite:///{tmp_path / f'db{next(numbers)}.sqlite'}"
            return stack.enter_context(pg_helpers.throwaway_database())

        yield make


@contextlib.asynccontextmanager
async def opened(url: str, *, fast_paths: bool, migrate: bool = True) -> Any:
    store = open_store(url, fast_paths=fast_paths)
    try:
        if migrate:
            await store.migrate()
        yield store
    finally:
        await store.close()


#: The tables the fast paths write, read back with raw SQL: on SQLite the datetimes come back as the
#: text stored, so the two paths must have written the same bytes.
ROWS = (
    "SELECT * FROM assertion_jti ORDER BY client_id, jti",
    "SELECT * FROM revoked_tokens ORDER BY token_key",
    "SELECT * FROM opaque_tokens ORDER BY token_sha256",
)


async def stored_rows(store: SqlStore) -> list[list[tuple[Any, ...]]]:
    async with store.engine.connect() as conn:
        return [[tuple(row) for row in await conn.execute(text(query))] for query in ROWS]


async def scenario(store: SqlStore) -> list[Any]:
    """Every request-path call of the store, and the answers it gave, in order."""
    got: list[Any] = []
    reader = store.token_state()
    try:
        for client_id in ("a", "b"):
            await store.create_client(Client(client_id, {"scope": "read"}))
        got.append(("generation", await store.generation()))

        # the replay cache: first use, replays (another expiry too), the same jti for another client
        for client_id, jti, expires in (
            ("a", "j1", LATER), ("a", "j1", LATER), ("a", "j1", LATER + timedelta(hours=1)),
            ("b", "j1", LATER), ("a", "j2", LATER), ("a", "j2", LATER),
        ):  # fmt: skip
            got.append(("remember", client_id, jti, await store.remember_jti(client_id, jti, expires)))
        racing = await asyncio.gather(*(store.remember_jti("a", f"race-{n % 5}", LATER) for n in range(20)))
        by_jti = {f"race-{k}": racing[k::5].count(True) for k in range(5)}
        got.append(("race: one winner per jti", by_jti))

        # the deny-list, asked through the reader (twice: the second may be remembered) and the store
        got.append(("reader", await reader.is_revoked("t1"), await reader.is_revoked("t1")))
        got.append(("store", await store.is_revoked("t1")))
        await store.revoke_token("t1", LATER)
        await store.revoke_token("t1", LATER + timedelta(hours=1))  # idempotent: the first row stays
        got.append(("reader", await reader.is_revoked("t1"), await reader.is_revoked("t1")))
        got.append(("reader", await reader.is_revoked("t2")))
        got.append(("store", await store.is_revoked("t1"), await store.is_revoked("t2")))

        # opaque tokens
        got.append(("opaque", await reader.opaque_token("ab" * 32)))
        await store.add_opaque_token(OpaqueToken("ab" * 32, "a", CLAIMS, LATER))
        got.append(("opaque", await reader.opaque_token("ab" * 32), await store.get_opaque_token("ab" * 32)))
        got.append(
            ("revoke", await store.revoke_opaque_token("ab" * 32), await store.revoke_opaque_token("cd" * 32))
        )
        got.append(("opaque", await reader.opaque_token("ab" * 32)))
        got.append(("generation", await store.generation()))  # none of the above moves it

        # refused before anything is written
        for call in (
            lambda: store.remember_jti("a", "naive", datetime(2030, 1, 1)),
            lambda: store.revoke_token("naive", datetime(2030, 1, 1)),
        ):
            with pytest.raises(ValueError, match="naive") as refused:
                await call()
            got.append(("refused", str(refused.value)))

        # purging: expired rows go, a purged jti may be remembered again
        assert await store.remember_jti("a", "old", PAST) is True
        await store.revoke_token("old", PAST)
        got.append(("stored", await stored_rows(store)))
        got.append(("purged", await store.purge_expired(NOW)))
        got.append(
            (
                "remember",
                await store.remember_jti("a", "old", LATER),
                await store.remember_jti("a", "j1", LATER),
            )
        )
        got.append(("reader", await reader.is_revoked("old"), await reader.is_revoked("t1")))
        got.append(("stored", await stored_rows(store)))
    finally:
        await reader.close()
        await reader.close()  # idempotent
    return got


async def test_the_same_answers_on_both_paths(new_database: Callable[[], str]) -> None:
    answers = []
    for fast_paths in (True, False):
        async with opened(new_database(), fast_paths=fast_paths) as store:
            assert store.fast_paths is fast_paths
            answers.append(await scenario(store))
    fast, general = answers
    assert fast == general
    assert ("race: one winner per jti", {f"race-{k}": 1 for k in range(5)}) in general
    assert ("reader", True, True) in general  # the scenario did exercise a revocation


async def test_the_same_errors_without_tables(new_database: Callable[[], str]) -> None:
    errors: list[list[type[BaseException]]] = []
    for fast_paths in (True, False):
        async with opened(new_database(), fast_paths=fast_paths, migrate=False) as store:
            raised = []
            for call in (
                lambda: store.remember_jti("a", "j", LATER),
                lambda: store.revoke_token("t", LATER),
                lambda: store.generation(),
            ):
                with pytest.raises(Exception) as caught:  # noqa: PT011 - compared below
                    await call()
                raised.append(type(caught.value))
            errors.append(raised)
            reader = store.token_state()
            with pytest.raises(Exception) as failed:  # noqa: PT011 - the driver's own: a 500, not "active"
                await reader.is_revoked("t")
            assert "revoked_tokens" in str(failed.value)
            await reader.close()
    assert errors[0] == errors[1]


def reader_kind(store: SqlStore) -> type[TokenState]:
    if not store.fast_paths:
        return StoreTokenState
    return SqliteTokenState if store.dialect == "sqlite" else PostgresTokenState


def hot_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("certbound-sqlite")]


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])
async def test_the_switch_chooses_the_path(new_database: Callable[[], str], fast_paths: bool) -> None:
    before = hot_threads()
    async with opened(new_database(), fast_paths=fast_paths) as store:
        reader = store.token_state()
        try:
            assert type(reader) is reader_kind(store)
            assert await store.remember_jti("a", "j", LATER) is True
            await store.revoke_token("t", LATER)
            assert await reader.is_revoked("t") is True
        finally:
            await reader.close()
        # the SQLite hot writer runs its checkpoints on a thread of its own; the engine never does
        started = len(hot_threads()) > len(before)
        assert started is (fast_paths and store.dialect == "sqlite")


async def test_each_path_sees_what_the_other_wrote(database_url: str) -> None:
    """Two workers on one database, one on each path."""
    async with (
        opened(database_url, fast_paths=True) as fast,
        opened(database_url, fast_paths=False, migrate=False) as general,
    ):
        readers = [fast.token_state(), general.token_state()]
        try:
            for writer, other in ((fast, general), (general, fast)):
                key = f"t-{writer.fast_paths}"
                for reader in readers:
                    assert await reader.is_revoked(key) is False
                    assert await reader.is_revoked(key) is False  # remembered where it can be
                await writer.revoke_token(key, LATER)
                for reader in readers:
                    assert await reader.is_revoked(key) is True
                assert await other.is_revoked(key) is True
                assert await writer.remember_jti("c", key, LATER) is True
                assert await other.remember_jti("c", key, LATER) is False
            outcomes = await asyncio.gather(
                *(store.remember_jti("c", f"race-{n}", LATER) for n in range(20) for store in (fast, general))
            )
            assert [outcomes[2 * n] != outcomes[2 * n + 1] for n in range(20)] == [True] * 20
        finally:
            for reader in readers:
                await reader.close()


async def test_revocations_and_replays_across_processes_on_both_paths(database_url: str) -> None:
    """A process on each path races the other for every jti and deny-lists the ones it won; this
    process's readers, on both paths, see every revocation (after answering "not revoked" first)."""
    jtis = [f"j{n}" for n in range(25)]
    async with (
        opened(database_url, fast_paths=True) as fast,
        opened(database_url, fast_paths=False, migrate=False) as general,
    ):
        readers = [fast.token_state(), general.token_state()]
        try:
            for reader in readers:
                for jti in jtis:
                    assert await reader.is_revoked(f"revoked-{jti}") is False
            args = [(fast_paths, "c", jtis, LATER) for fast_paths in (True, False)]
            won = _workers.run_each(_workers.remember_and_revoke, database_url, args)
            assert sorted(itertools.chain.from_iterable(won)) == sorted(jtis)  # one winner each
            for reader in readers:
                assert [await reader.is_revoked(f"revoked-{jti}") for jti in jtis] == [True] * len(jtis)
            for store in (fast, general):
                assert await store.remember_jti("c", "j0", LATER) is False
                assert await store.is_revoked("revoked-j24") is True
        finally:
            for reader in readers:
                await reader.close()
