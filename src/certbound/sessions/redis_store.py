"""`RedisSessionStore`: the `SessionStore` in Redis, for gateways whose routes say
``session_storage = "redis"`` (several gateway hosts sharing sessions without a shared database).

A session is one hash, ``<prefix>s:<SHA-256 of its id>`` (the id itself is never stored), holding its
purpose, subject, times (epoch seconds) and the data sealed exactly as the SQL store seals it
(`sealed_data`: bound to the id's digest, purpose, subject and ``auth_time``). Every change is one
Lua script, so it is atomic as the SQL store's statements are: an update or a touch of a session that
is gone, expired or of another purpose does nothing; a rotation deletes the old id and writes the new
one together; of two concurrent rotations one wins. Redis drops a session itself when it is no
longer usable (the key's TTL follows ``valid_until``, computed with the store's clock); reads check
``valid_until`` too. ``<prefix>u:<subject>`` sets list each subject's sessions for `delete_by_subject`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, cast

from redis.asyncio import Redis

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

__all__ = ["RedisSessionStore"]

DEFAULT_PREFIX: Final = "certbound:session:"

# KEYS[1] the session; ARGV: purpose, now, idle seconds ('' none), sealed data ('' keep),
# check identity ('1'), subject, auth_time. Returns 1 written, 0 gone, -1 another identity.
_WRITE: Final = """
local f = redis.call('HMGET', KEYS[1], 'purpose', 'valid_until', 'expires_at', 'subject', 'auth_time')
if not f[1] or f[1] ~= ARGV[1] or tonumber(f[2]) <= tonumber(ARGV[2]) then return 0 end
if ARGV[5] == '1' and (f[4] ~= ARGV[6] or f[5] ~= ARGV[7]) then return -1 end
local now = tonumber(ARGV[2])
local vu = tonumber(f[3])
if ARGV[3] ~= '' and now + tonumber(ARGV[3]) < vu then vu = now + tonumber(ARGV[3]) end
redis.call('HSET', KEYS[1], 'last_seen_at', now, 'valid_until', vu)
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'data_sealed', ARGV[4]) end
redis.call('EXPIRE', KEYS[1], math.max(1, vu - now))
return 1
"""

# KEYS[1] old, KEYS[2] new, KEYS[3] the subject's set; ARGV: purpose, now, expires_at ('' keep),
# idle ('' keep, '-' none), sealed, subject ('' none), auth_time ('' none), new id digest.
# Returns {expires_at, idle or ''} or nil when the old session is gone.
_ROTATE: Final = """
local f = redis.call('HMGET', KEYS[1], 'purpose', 'valid_until', 'expires_at', 'idle')
if not f[1] or f[1] ~= ARGV[1] or tonumber(f[2]) <= tonumber(ARGV[2]) then return nil end
redis.call('DEL', KEYS[1])
local now = tonumber(ARGV[2])
local exp = tonumber(f[3])
local idle = f[4]
if ARGV[3] ~= '' then exp = tonumber(ARGV[3]); idle = ARGV[4] end
if idle == '-' then idle = '' end
local vu = exp
if idle ~= '' and now + tonumber(idle) < vu then vu = now + tonumber(idle) end
redis.call('HSET', KEYS[2], 'purpose', ARGV[1], 'subject', ARGV[6], 'auth_time', ARGV[7],
  'created_at', now, 'expires_at', exp, 'idle', idle, 'last_seen_at', now, 'valid_until', vu,
  'data_sealed', ARGV[5])
redis.call('EXPIRE', KEYS[2], math.max(1, vu - now))
if ARGV[6] ~= '' then redis.call('SADD', KEYS[3], ARGV[8]) end
return {tostring(exp), idle}
"""


def _epoch(moment: datetime) -> int:
    return int(whole_seconds(moment).timestamp())


def _moment(value: bytes | str) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8")


#: A hash's fields as redis-py's `hset(mapping=...)` types them (a dict's key type must match exactly).
_HashFields = dict[str | bytes | bytearray | memoryview | int | float, str | int]


class RedisSessionStore:
    """The `SessionStore` on a Redis connection pool (see the module docstring)."""

    def __init__(
        self, redis: Redis, sealer: Sealer, *, clock: Clock = utcnow, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self._redis = redis
        self._sealer = sealer
        self._clock = clock
        self._prefix = prefix
        self._write = redis.register_script(_WRITE)
        self._rotate = redis.register_script(_ROTATE)

    @classmethod
    def from_url(cls, url: str, sealer: Sealer, *, clock: Clock = utcnow) -> RedisSessionStore:
        return cls(Redis.from_url(url), sealer, clock=clock)

    async def aclose(self) -> None:
        await self._redis.aclose()

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
        key = self._key(session.id_sha256)
        fields = self._fields(session, self._seal(session))
        ttl = max(1, int((session.valid_until - now).total_seconds()))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=fields)
            pipe.expire(key, ttl)
            if session.subject is not None:
                pipe.sadd(self._subject_key(session.subject), session.id_sha256)
            await pipe.execute()
        return session

    async def get(self, session_id: str, *, purpose: str) -> Session | None:
        if not is_session_id(session_id):
            return None
        purpose = check_purpose(purpose)
        digest = hash_session_id(session_id)
        row: dict[bytes, bytes] = await cast(
            "Awaitable[dict[bytes, bytes]]", self._redis.hgetall(self._key(digest))
        )
        if not row or _text(row.get(b"purpose")) != purpose:
            return None
        if int(row[b"valid_until"]) <= _epoch(self._now()):
            return None
        subject = _text(row.get(b"subject")) or None
        auth_time = _moment(row[b"auth_time"]) if row.get(b"auth_time") else None
        data = open_data(self._sealer, _text(row[b"data_sealed"]), id_sha256=digest, purpose=purpose,
                         subject=subject, auth_time=auth_time)  # fmt: skip
        idle = _text(row.get(b"idle"))
        return Session(
            id=session_id,
            purpose=purpose,
            subject=subject,
            auth_time=auth_time,
            created_at=_moment(row[b"created_at"]),
            expires_at=_moment(row[b"expires_at"]),
            last_seen_at=_moment(row[b"last_seen_at"]),
            idle_timeout=timedelta(seconds=int(idle)) if idle else None,
            data=data,
        )

    async def touch(self, session: Session) -> Session | None:
        now = self._now()
        if await self._run_write(session, now, "") != 1:
            return None
        return dataclasses.replace(session, last_seen_at=now)

    async def update(self, session: Session) -> Session | None:
        now = self._now()
        written = dataclasses.replace(session, last_seen_at=now, data=copy_data(session.data))
        result = await self._run_write(written, now, self._seal(written), check_identity=True)
        if result == -1:
            raise ValueError(
                "update() writes a session's data only: a new subject or auth_time is a login, "
                "which takes a new id (rotate())"
            )
        return written if result == 1 else None

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
        expires = "" if limits is None else str(_epoch(now + limits.absolute))
        idle = (
            "" if limits is None else ("-" if limits.idle is None else str(int(limits.idle.total_seconds())))
        )
        keys = [
            self._key(session.id_sha256),
            self._key(fresh.id_sha256),
            self._subject_key(fresh.subject or ""),
        ]
        kept = await self._rotate(
            keys=keys,
            args=[session.purpose, _epoch(now), expires, idle, self._seal(fresh), fresh.subject or "",
                  "" if fresh.auth_time is None else _epoch(fresh.auth_time), fresh.id_sha256],
        )  # fmt: skip
        if kept is None:
            return None
        expires_at, kept_idle = _moment(kept[0]), _text(kept[1]) if kept[1] else ""
        return dataclasses.replace(
            fresh,
            expires_at=expires_at,
            idle_timeout=timedelta(seconds=int(kept_idle)) if kept_idle else None,
        )

    async def delete(self, session_id: str) -> bool:
        if not is_session_id(session_id):
            return False
        return bool(await self._redis.delete(self._key(hash_session_id(session_id))))

    async def delete_by_subject(self, subject: str, *, purpose: str | None = None) -> int:
        subject_key = self._subject_key(check_subject(subject) or "")
        members = await cast("Awaitable[set[bytes]]", self._redis.smembers(subject_key))
        ended = 0
        for member in members:
            key = self._key(_text(member))
            if purpose is not None:
                found = await cast("Awaitable[bytes | None]", self._redis.hget(key, "purpose"))
                if _text(found) != check_purpose(purpose):
                    continue
            ended += int(await self._redis.delete(key))
            await self._redis.srem(subject_key, member)
        return ended

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Redis drops sessions itself when their TTL runs out: nothing is left to purge."""
        return 0

    async def lease(self, name: str, seconds: int) -> bool:
        """``SET NX EX``: one taker wins; Redis drops the key when it runs out."""
        return bool(await self._redis.set(self._lease_key(name), b"1", nx=True, ex=max(1, seconds)))

    async def release(self, name: str) -> None:
        await self._redis.delete(self._lease_key(name))

    # -- helpers -------------------------------------------------------------------------------

    def _lease_key(self, name: str) -> str:
        return f"{self._prefix}l:{hashlib.sha256(name.encode('utf-8')).hexdigest()}"

    def _now(self) -> datetime:
        return whole_seconds(self._clock())

    def _key(self, id_sha256: str) -> str:
        return f"{self._prefix}s:{id_sha256}"

    def _subject_key(self, subject: str) -> str:
        return f"{self._prefix}u:{subject}"

    def _seal(self, session: Session) -> str:
        return seal_data(self._sealer, session.data, id_sha256=session.id_sha256, purpose=session.purpose,
                         subject=session.subject, auth_time=session.auth_time)  # fmt: skip

    @staticmethod
    def _fields(session: Session, sealed: str) -> _HashFields:
        idle = session.idle_timeout
        return {
            "purpose": session.purpose,
            "subject": session.subject or "",
            "auth_time": "" if session.auth_time is None else _epoch(session.auth_time),
            "created_at": _epoch(session.created_at),
            "expires_at": _epoch(session.expires_at),
            "idle": "" if idle is None else int(idle.total_seconds()),
            "last_seen_at": _epoch(session.last_seen_at),
            "valid_until": _epoch(session.valid_until),
            "data_sealed": sealed,
        }

    async def _run_write(
        self, session: Session, now: datetime, sealed: str, *, check_identity: bool = False
    ) -> int:
        idle = session.idle_timeout
        result = await self._write(
            keys=[self._key(session.id_sha256)],
            args=[session.purpose, _epoch(now), "" if idle is None else int(idle.total_seconds()), sealed,
                  "1" if check_identity else "0", session.subject or "",
                  "" if session.auth_time is None else _epoch(session.auth_time)],
        )  # fmt: skip
        return int(result)


if TYPE_CHECKING:
    _implements_the_protocol: type[SessionStore] = RedisSessionStore
