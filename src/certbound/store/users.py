"""`SqlUserStore`: the people who log in, and their failed logins, in the store's database.

Every method is one statement in its own transaction. A user is read from the database on every
login (no cache), so a user added, disabled or deleted by ``certbound users`` counts at once in every
worker of a running server. Failed logins are counted by one atomic upsert per failure, so workers
and nodes counting at once never lose one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from certbound.store.engine import writer
from certbound.store.records import User
from certbound.store.schema import login_failures, users

__all__ = ["FailureCount", "SqlUserStore", "UserExists"]

Clock = Callable[[], datetime]


class UserExists(Exception):
    """A user with that username is already stored."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FailureCount:
    """How many logins failed under one key (``user:<name>``, ``address:<ip>``), and the last one's time."""

    __slots__ = ("failures", "last_failure_at")

    def __init__(self, failures: int, last_failure_at: datetime) -> None:
        self.failures = failures
        self.last_failure_at = last_failure_at


class SqlUserStore:
    """Users and login failures on an async SQLAlchemy engine (the `SqlStore`'s, migrated)."""

    def __init__(self, engine: AsyncEngine, *, clock: Clock = _utcnow) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._clock = clock
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    # -- users -----------------------------------------------------------------------------------

    async def create(self, user: User) -> User:
        """Insert `user` (stamped now); `UserExists` when the username (or sub) is taken."""
        now = self._clock()
        stored = User(user.sub, user.username, user.password_hash, dict(user.claims), user.enabled, now, now)
        try:
            async with self._writer.begin() as conn:
                await conn.execute(users.insert().values(_values(stored)))
        except IntegrityError:
            raise UserExists(user.username) from None
        return stored

    async def get(self, sub: str) -> User | None:
        return await self._one(users.c.sub == sub)

    async def get_by_username(self, username: str) -> User | None:
        return await self._one(users.c.username == username)

    async def list(self) -> list[User]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_user(row) for row in rows]

    async def update(self, username: str, **values: Any) -> User | None:
        """Change `password_hash`, `claims` or `enabled` of `username`; the user after, None if unknown."""
        allowed = {"password_hash", "claims", "enabled"}
        if not values or set(values) - allowed:
            raise ValueError(f"update() changes only {', '.join(sorted(allowed))}")
        statement = (
            update(users)
            .where(users.c.username == username)
            .values(**values, updated_at=self._clock())
            .returning(*users.c)
        )
        async with self._writer.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _user(row)

    async def delete(self, username: str) -> User | None:
        """Delete `username` (consents and grants go with it); the user deleted, None if unknown."""
        statement = delete(users).where(users.c.username == username).returning(*users.c)
        async with self._writer.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _user(row)

    async def _one(self, condition: Any) -> User | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(users).where(condition))).first()
        return None if row is None else _user(row)

    # -- failed logins ---------------------------------------------------------------------------

    async def record_failure(self, key: str, *, window: timedelta) -> int:
        """Count one failed login under `key`; returns the count, which starts over at 1 when the last
        failure is older than `window`. One atomic upsert: concurrent failures are all counted."""
        now = self._clock()
        table = login_failures
        statement = (
            self._insert(table)
            .values(key=key, failures=1, last_failure_at=now)
            .on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "failures": case((table.c.last_failure_at < now - window, 1), else_=table.c.failures + 1),
                    "last_failure_at": now,
                },
            )
            .returning(table.c.failures)
        )
        async with self._writer.begin() as conn:
            count = (await conn.execute(statement)).scalar_one()
        return int(count)

    async def failures(self, keys: Sequence[str]) -> dict[str, FailureCount]:
        """The failure counts of `keys` that have any."""
        query = select(login_failures).where(login_failures.c.key.in_(list(keys)))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {row.key: FailureCount(row.failures, row.last_failure_at) for row in rows}

    async def clear_failures(self, key: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(delete(login_failures).where(login_failures.c.key == key))

    async def purge_failures(self, before: datetime) -> int:
        """Forget failures whose last one happened before `before`."""
        async with self._writer.begin() as conn:
            result = await conn.execute(
                delete(login_failures).where(login_failures.c.last_failure_at < before)
            )
        return result.rowcount


def _values(user: User) -> dict[str, Any]:
    return {
        "sub": user.sub,
        "username": user.username,
        "password_hash": user.password_hash,
        "claims": user.claims,
        "enabled": user.enabled,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def _user(row: Row[Any]) -> User:
    m = row._mapping
    return User(
        sub=m["sub"],
        username=m["username"],
        password_hash=m["password_hash"],
        claims=dict(m["claims"] or {}),
        enabled=bool(m["enabled"]),
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )
