"""The session record and its identifier: what every `SessionStore` keeps, whatever the backend.

A session id is 256 random bits (base64url, 43 characters). It lives only in the holder's sealed
cookie and in memory: stores keep its SHA-256, so a read of the database yields nothing that can be
presented as a cookie. 256 bits leave nothing to guess, so a plain digest (no salt, no slow hash) is
the right look-up key, and a look-up by digest leaks nothing useful through timing.

Times are whole seconds of UTC (an ID token's ``auth_time`` is whole seconds, and so is a cookie's
``Max-Age``): what a store hands back is exactly what went in, on every backend.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = [
    "Clock",
    "Session",
    "SessionLimits",
    "check_purpose",
    "check_subject",
    "copy_data",
    "dump_data",
    "hash_session_id",
    "is_session_id",
    "load_data",
    "new_session_id",
    "start_session",
    "utcnow",
    "whole_seconds",
]

Clock = Callable[[], datetime]

SESSION_ID_BYTES = 32
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")
_PURPOSE = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII, no spaces: a name, not a sentence


def utcnow() -> datetime:
    """The current time as an aware UTC datetime, to the second (the default clock of stores and cookies)."""
    return whole_seconds(datetime.now(UTC))


def whole_seconds(moment: datetime) -> datetime:
    """`moment` in UTC without its microseconds; refuses naive datetimes (their zone is a guess)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: sessions accept only timezone-aware values")
    return moment.astimezone(UTC).replace(microsecond=0)


def new_session_id() -> str:
    """A fresh session id: 256 bits from the OS's CSPRNG, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(SESSION_ID_BYTES)


def is_session_id(value: object) -> bool:
    """Whether `value` has the shape of a session id (says nothing about whether one exists)."""
    return isinstance(value, str) and _SESSION_ID.fullmatch(value) is not None


def hash_session_id(session_id: str) -> str:
    """The look-up key stores keep instead of the id: SHA-256 of the id, hex."""
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def check_purpose(purpose: str) -> str:
    """A purpose names what a session is for (``as-login``, ``gateway:orders``); 1-200 printable ASCII
    characters without spaces, so that it reads the same in a database column, an aad and a log."""
    if not isinstance(purpose, str) or _PURPOSE.fullmatch(purpose) is None:
        raise ValueError(f"session purpose {purpose!r} must be 1-200 printable ASCII characters, no spaces")
    return purpose


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """How long a session may live: `absolute` from its creation whatever happens, and at most `idle`
    after its last recorded activity (`SessionStore.touch` / `update`); ``idle=None`` means no idle limit.
    """

    absolute: timedelta
    idle: timedelta | None = None

    def __post_init__(self) -> None:
        for name, value in (("absolute", self.absolute), ("idle", self.idle)):
            if value is not None and value < timedelta(seconds=1):
                raise ValueError(f"session limit {name!r} must be at least one second, not {value}")
            if value is not None and value % timedelta(seconds=1):
                raise ValueError(f"session limit {name!r} must be whole seconds, not {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """One server-side session as a store returns it.

    ``subject`` is None until someone logs in (a session may first carry a pending login: state,
    nonce, PKCE verifier); ``auth_time`` is when they authenticated (OIDC ``auth_time``). ``data`` is
    the application's JSON object (the gateway keeps tokens in it): sealed at rest, never logged, so
    ``repr`` leaves it and the id out. `SessionStore.update` writes ``data``; `SessionStore.rotate`
    also takes ``subject`` and ``auth_time`` (a new id with every login); the other fields are the
    store's own.
    """

    id: str = field(repr=False)
    purpose: str
    subject: str | None
    auth_time: datetime | None
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    idle_timeout: timedelta | None
    data: Mapping[str, Any] = field(repr=False)

    @property
    def id_sha256(self) -> str:
        """What the store keeps instead of the id; its first characters are a fair handle for logs."""
        return hash_session_id(self.id)

    @property
    def valid_until(self) -> datetime:
        """The moment this session stops being usable unless activity is recorded first."""
        if self.idle_timeout is None:
            return self.expires_at
        return min(self.expires_at, self.last_seen_at + self.idle_timeout)

    def is_valid(self, now: datetime) -> bool:
        """Whether the session is still usable at `now` (absolute and idle limits both)."""
        return now < self.valid_until


def dump_data(data: Mapping[str, Any]) -> bytes:
    """`data` as compact JSON bytes; a ValueError (before anything is written) when it is not JSON."""
    if not isinstance(data, Mapping):
        raise ValueError(f"session data must be a JSON object (a mapping), not {type(data).__name__}")
    plain = dict(data)
    try:
        text = json.dumps(plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"session data must be JSON-serializable: {error}") from None
    if json.loads(text) != plain:  # non-string keys, tuples: JSON would hand back something else
        raise ValueError(
            "session data must be plain JSON (string keys, lists not tuples): it would not read back the same"
        )
    return text.encode("utf-8")


def load_data(raw: bytes) -> dict[str, Any]:
    """The inverse of `dump_data`."""
    value = json.loads(raw.decode("utf-8"))
    if not isinstance(value, dict):
        raise ValueError("session data is not a JSON object")
    return value


def check_subject(subject: str | None) -> str | None:
    """A session's subject: a non-empty string, or None before login."""
    if subject is not None and (not isinstance(subject, str) or not subject):
        raise ValueError("a session's subject is a non-empty string, or None before login")
    return subject


def copy_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: refuses what JSON cannot hold, and detaches from the caller's objects."""
    return load_data(dump_data(data))


def start_session(
    now: datetime,
    *,
    purpose: str,
    limits: SessionLimits,
    subject: str | None,
    auth_time: datetime | None,
    data: Mapping[str, Any] | None,
) -> Session:
    """A new session as every `SessionStore.create` makes it: a fresh id, checked inputs, `now` for
    its times (the stores differ only in where they write it)."""
    return Session(
        id=new_session_id(),
        purpose=check_purpose(purpose),
        subject=check_subject(subject),
        auth_time=None if auth_time is None else whole_seconds(auth_time),
        created_at=now,
        expires_at=now + limits.absolute,
        last_seen_at=now,
        idle_timeout=limits.idle,
        data=copy_data(data or {}),
    )
