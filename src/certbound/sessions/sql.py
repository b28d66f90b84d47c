"""`SqlSessionStore`: sessions in the store's database (SQLite or PostgreSQL), on its SQLAlchemy engine.

Each method is one statement in its own transaction (`rotate`: a delete and an insert in one), so a
session row is always whole: of two workers updating one session, the last write wins entirely.
Who is logged in (subject, ``auth_time``) changes only with the id (`rotate`): `update` refuses to
change it in place, so a login cannot forget the rotation that defeats session fixation.
Rows are found by the SHA-256 of the session id; the data is sealed under the KEK (`sealed_data`).
Reads compare `valid_until` with the clock in SQL, so an expired session is never returned even
before the purge removes it. On SQLite, writes go through the store's writer (BEGIN IMMEDIATE), so
they queue on the busy timeout instead of failing.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Row, case, delete, literal, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from certbound.sealing import Sealer
from certbound.sessions.interface import SessionStore
from certbound.sessions.sealed_data import open_data, seal_data
from certbound.sessions.session import (
    Clock,
    Session,
    SessionLimits,
    check_purpose,
    check_subject,
    copy_data,
    hash_session_id,
    is_session_id,
    new_session_id,
    start_session,
    utcnow,
    whole_seconds,
)
from certbound.store.engine import writer
from certbound.store.schema import sessions
from certbound.store.types import UTCDateTime

__all__ = ["SqlSessionStore"]


class SqlSessionStore:
    """The `SessionStore` on an async SQLAlchemy engine (usually `SqlStore.engine`, migrated)."""

    def __init__(self, engine: AsyncEngine, sealer: Sealer, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._sealer = sealer
        self._clock = clock

    async def create(
        self,
        *,
        purpose: str,
        limits: SessionLimits,
        subject: str | None = None,
        auth_time: datetime | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Session:
        now = self._now()
        session = start_session(
            now, purpose=purpose, limits=limits, subject=subject, auth_time=auth_time, data=data
        )
        sealed = self._seal(session)
        async with self._writer.begin() as conn:
            await conn.execute(sessions.insert().values(_row(session, sealed)))
        return session

    async def get(self, session_id: str, *, purpose: str) -> Session | None:
        if not is_session_id(session_id):
            return None
        query = select(sessions).where(
            sessions.c.id_sha256 == hash_session_id(session_id),
            sessions.c.purpose == check_purpose(purpose),
            sessions.c.valid_until > self._now(),
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else self._from_row(session_id, row)

    async def touch(self, session: Session) -> Session | None:
        now = self._now()
        values = {"last_seen_at": now, "valid_until": _valid_until(now, session.idle_timeout)}
        if not await self._write_live(session, now, values):
            return None
        return dataclasses.replace(session, last_seen_at=now)

    async def update(self, session: Session) -> Session | None:
        now = self._now()
        written = dataclasses.replace(session, last_seen_at=now, data=copy_data(session.data))
        values = {
            "data_sealed": self._seal(written),
            "last_seen_at": now,
            "valid_until": _valid_until(now, session.idle_timeout),
        }
        same_identity = (
            sessions.c.subject.is_not_distinct_from(session.subject),
            sessions.c.auth_time.is_not_distinct_from(session.auth_time),
        )
        if await self._write_live(session, now, values, *same_identity):
            return written
        if await self.get(session.id, purpose=session.purpose) is not None:
            raise ValueError(
                "update() writes a session's data only: a new subject or auth_time is a login, "
                "which takes a new id (rotate())"
            )
        return None

    async def rotate(self, session: Session, *, limits: SessionLimits | None = None) -> Session | None:
        now = self._now()
        fresh = dataclasses.replace(
            session,
            id=new_session_id(),
            subject=check_subject(session.subject),
            auth_time=None if session.auth_time is None else whole_seconds(session.auth_time),
            created_at=now,
            last_seen_at=now,
            data=copy_data(session.data),
        )
        sealed = self._seal(fresh)  # before the transaction: the write lock is held only for the swap
        old = delete(sessions).where(
            sessions.c.id_sha256 == session.id_sha256,
            sessions.c.purpose == session.purpose,
            sessions.c.valid_until > now,
        )
        async with self._writer.connect() as conn:
            kept = (
                await conn.execute(old.returning(sessions.c.expires_at, sessions.c.idle_timeout_seconds))
            ).first()
            if kept is None:
                await conn.rollback()
                return None
            if limits is None:
                expires_at, idle = kept.expires_at, _idle(kept.idle_timeout_seconds)
            else:
                expires_at, idle = now + limits.absolute, limits.idle
            fresh = dataclasses.replace(fresh, expires_at=expires_at, idle_timeout=idle)
            await conn.execute(sessions.insert().values(_row(fresh, sealed)))
            await conn.commit()
        return fresh

    async def delete(self, session_id: str) -> bool:
        if not is_session_id(session_id):
            return False
        statement = delete(sessions).where(sessions.c.id_sha256 == hash_session_id(session_id))
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount > 0

    async def delete_by_subject(self, subject: str, *, purpose: str | None = None) -> int:
        statement = delete(sessions).where(sessions.c.subject == check_subject(subject))
        if purpose is not None:
            statement = statement.where(sessions.c.purpose == check_purpose(purpose))
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount

    async def purge_expired(self, now: datetime | None = None) -> int:
        moment = self._now() if now is None else whole_seconds(now)
        async with self._writer.begin() as conn:
            result = await conn.execute(delete(sessions).where(sessions.c.valid_until <= moment))
        return result.rowcount

    async def lease(self, name: str, seconds: int) -> bool:
        """A row of the sessions table whose key no session id can have (``lease:`` and a digest):
        the primary key makes one insert win; an expired one is deleted first (`purge_expired` too)."""
        now = self._now()
        key = _lease_key(name)
        async with self._writer.begin() as conn:
            await conn.execute(
                delete(sessions).where(sessions.c.id_sha256 == key, sessions.c.valid_until <= now)
            )
        until = now + timedelta(seconds=seconds)
        row = {"id_sha256": key, "purpose": _LEASE, "subject": None, "auth_time": None, "created_at": now,
               "expires_at": until, "idle_timeout_seconds": None, "last_seen_at": now, "valid_until": until,
               "data_sealed": ""}  # fmt: skip
        try:
            async with self._writer.begin() as conn:
                await conn.execute(sessions.insert().values(row))
        except IntegrityError:
            return False
        return True

    async def release(self, name: str) -> None:
        async with self._writer.begin() as conn:
            await conn.execute(delete(sessions).where(sessions.c.id_sha256 == _lease_key(name)))

    # -- helpers -------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return whole_seconds(self._clock())

    def _seal(self, session: Session) -> str:
        return seal_data(
            self._sealer,
            session.data,
            id_sha256=session.id_sha256,
            purpose=session.purpose,
            subject=session.subject,
            auth_time=session.auth_time,
        )

    async def _write_live(
        self, session: Session, now: datetime, values: dict[str, Any], *conditions: ColumnElement[bool]
    ) -> bool:
        """One UPDATE of the session's row, only while it is live: nothing resurrects a session."""
        statement = (
            update(sessions)
            .where(
                sessions.c.id_sha256 == session.id_sha256,
                sessions.c.purpose == session.purpose,
                sessions.c.valid_until > now,
                *conditions,
            )
            .values(values)
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return result.rowcount == 1

    def _from_row(self, session_id: str, row: Row[Any]) -> Session:
        id_sha256: str = row.id_sha256
        data = open_data(
            self._sealer,
            row.data_sealed,
            id_sha256=id_sha256,
            purpose=row.purpose,
            subject=row.subject,
            auth_time=row.auth_time,
        )
        return Session(
            id=session_id,
            purpose=row.purpose,
            subject=row.subject,
            auth_time=row.auth_time,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_seen_at=row.last_seen_at,
            idle_timeout=_idle(row.idle_timeout_seconds),
            data=data,
        )


#: The purpose of lease rows; their key (``lease:`` + a digest) is no session id's digest: no get() finds one.
_LEASE = "lease"


def _lease_key(name: str) -> str:
    return "lease:" + hashlib.sha256(name.encode("utf-8")).hexdigest()


def _row(session: Session, sealed: str) -> dict[str, Any]:
    idle = session.idle_timeout
    return {
        "id_sha256": session.id_sha256,
        "purpose": session.purpose,
        "subject": session.subject,
        "auth_time": session.auth_time,
        "created_at": session.created_at,
        "expires_at": session.expires_at,
        "idle_timeout_seconds": None if idle is None else int(idle.total_seconds()),
        "last_seen_at": session.last_seen_at,
        "valid_until": session.valid_until,
        "data_sealed": sealed,
    }


def _valid_until(now: datetime, idle: timedelta | None) -> ColumnElement[datetime]:
    """min(expires_at, now + idle) in SQL: the stored absolute deadline always caps the idle one."""
    if idle is None:
        return sessions.c.expires_at
    candidate = literal(now + idle, UTCDateTime())
    return case((sessions.c.expires_at < candidate, sessions.c.expires_at), else_=candidate)


def _idle(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


if TYPE_CHECKING:
    _implements_the_protocol: type[SessionStore] = SqlSessionStore
