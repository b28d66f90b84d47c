"""Throwaway PostgreSQL databases for tests, usable from any suite (sync functions, no fixtures).

Each call creates a uniquely named database through the `postgres` maintenance database, so test
runs (and engineers sharing one server) never see each other's rows, and the tests may run
migrations, several processes and DDL freely. `drop_database` removes it even with connections
still open.

PostgreSQL being down is a skip on a developer's machine and a failure when CI=true: a CI run that
silently skipped every PostgreSQL test would claim a coverage it does not have.

Environment: CERTBOUND_TEST_PG_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import secrets
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

ADMIN_URL = os.environ.get("CERTBOUND_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PREFIX = "certbound_test"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

T = TypeVar("T")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@functools.cache
def unavailable_reason(admin_url: str = ADMIN_URL) -> str | None:
    """None when the server answers; otherwise why not (probed once per process)."""
    try:
        _run(_probe(admin_url))
    except Exception as exc:
        return f"PostgreSQL at {_safe(admin_url)} is not reachable: {type(exc).__name__}: {exc}"
    return None


def require_postgres(admin_url: str = ADMIN_URL) -> None:
    """Skip the current test when PostgreSQL is down, or fail it when running in CI (CI=true)."""
    reason = unavailable_reason(admin_url)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run in CI)", pytrace=False)
    pytest.skip(f"{reason}; start it or run with CI=true to make this a failure")


def create_database(prefix: str = PREFIX, admin_url: str = ADMIN_URL) -> str:
    """Create an empty, uniquely named database; returns its ``postgresql://`` URL."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"
    if not _NAME.match(name):
        raise ValueError(f"bad database name {name!r}: prefix must be lowercase letters, digits, _")
    _run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, admin_url: str = ADMIN_URL) -> None:
    """Drop a database made by `create_database`, disconnecting whoever is still connected."""
    name = make_url(url).database or ""
    if not _NAME.match(name) or name in {"postgres", "test", "template0", "template1"}:
        raise ValueError(f"refusing to drop database {name!r}")
    _run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def throwaway_database(prefix: str = PREFIX, admin_url: str = ADMIN_URL) -> Iterator[str]:
    """`require_postgres`, then a fresh database for the duration of the block."""
    require_postgres(admin_url)
    url = create_database(prefix, admin_url)
    try:
        yield url
    finally:
        drop_database(url, admin_url)


async def _probe(admin_url: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url), timeout=5)
    await conn.close()


async def _admin(admin_url: str, statement: str) -> None:
    conn = await asyncpg.connect(_dsn(admin_url), timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a private event loop in a worker thread: works inside and outside async tests."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
