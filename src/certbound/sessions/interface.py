"""What the login pages and the gateway need from session storage; SQL now, Redis later.

Every method is one atomic step: a reader never sees half of an update, and of two concurrent
updates of one session the last one wins whole. Expired sessions are never returned, and nothing
brings a deleted or expired session back (an update or a touch after a logout in another tab does
nothing and says so).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from certbound.sessions.session import Session, SessionLimits

__all__ = ["SessionStore"]


class SessionStore(Protocol):
    """Server-side sessions, found by the id a sealed cookie carries."""

    async def create(
        self,
        *,
        purpose: str,
        limits: SessionLimits,
        subject: str | None = None,
        auth_time: datetime | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Session:
        """Start a session with a fresh id; ValueError (nothing written) when `data` is not JSON."""

    async def get(self, session_id: str, *, purpose: str) -> Session | None:
        """The live session with this id and purpose; None when unknown, of another purpose, or
        expired (absolute or idle). Raises `certbound.sealing.SealingError` when its data cannot be
        opened (another KEK, or the row was tampered with): fail closed, and loudly."""

    async def touch(self, session: Session) -> Session | None:
        """Record activity now: the idle deadline moves (never past `expires_at`). None when the
        session is gone or expired meanwhile."""

    async def update(self, session: Session) -> Session | None:
        """Write `session`'s data (whole, replacing what was there) and record activity. None when the
        session is gone or expired meanwhile: it is not recreated. ValueError when `session` carries
        another subject or auth_time than the stored one: who is logged in changes only by `rotate`."""

    async def rotate(self, session: Session, *, limits: SessionLimits | None = None) -> Session | None:
        """Replace the session's id (on login or step-up, against session fixation): in one transaction
        the old id stops working and a new one carries `session`'s subject, auth_time and data (so a
        login is ``rotate(replace(session, subject=..., auth_time=...))``). With `limits`
        the new session's lifetime starts again; without, it keeps the old deadlines. None when the
        old session is gone or expired (so of two concurrent rotations exactly one succeeds)."""

    async def delete(self, session_id: str) -> bool:
        """End a session (logout); False when there was none."""

    async def delete_by_subject(self, subject: str, *, purpose: str | None = None) -> int:
        """End every session of `subject` (of one purpose, or all); returns how many ended."""

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Delete the sessions no longer usable at `now` (default: the store's clock); returns how many."""

    async def lease(self, name: str, seconds: int) -> bool:
        """Take the lease `name` for `seconds`, for every worker and host sharing the store: True for
        exactly one taker until it `release`s it or it runs out (a taker that died frees it then)."""

    async def release(self, name: str) -> None:
        """Give the lease `name` back (nothing when it is not held)."""
