"""Checking a login: throttle first, then the password, every outcome one reason-coded log event.

The person at the page learns only "wrong username or password" (or that they must wait): whether the
name exists, or is disabled, goes to the log alone. An unknown name costs a password check against a
decoy hash, and is throttled like a real one.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog

from certbound.server.users.passwords import verify_password
from certbound.server.users.throttle import LoginThrottle
from certbound.store.records import User

__all__ = ["USERNAME", "LoginRefused", "Logins", "UserReader"]

#: What a username may be: what ``certbound users add`` accepts.
USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")

log = structlog.get_logger("certbound.login")


class UserReader(Protocol):
    async def get_by_username(self, username: str) -> User | None: ...


@dataclass(eq=False)
class LoginRefused(Exception):
    """A login that did not succeed: `reason` for the log, `retry_after` when locked out."""

    reason: str
    retry_after: timedelta | None = None

    @property
    def retry_after_seconds(self) -> int:
        return 0 if self.retry_after is None else max(1, math.ceil(self.retry_after.total_seconds()))


class Logins:
    """Checks a username and password against the store, throttled (`LoginThrottle`)."""

    def __init__(self, users: UserReader, throttle: LoginThrottle) -> None:
        self._users = users
        self._throttle = throttle

    async def login(self, username: str, password: str, address: str | None) -> User:
        """The user, if the password is theirs and they may log in; `LoginRefused` otherwise."""
        name = username if USERNAME.fullmatch(username) else "-"
        locked = await self._throttle.begin(name, address)
        if locked is not None:
            log.warning("login", outcome="refused", reason="login.locked", username=name, address=address,
                        retry_after=math.ceil(locked.total_seconds()))  # fmt: skip
            raise LoginRefused("login.locked", locked)
        user = await self._users.get_by_username(name) if name != "-" else None
        matches = await verify_password(user.password_hash if user is not None else None, password)
        if user is None or not matches or not user.enabled:
            reason = (
                "login.unknown_user"
                if user is None
                else "login.bad_password"
                if not matches
                else "login.disabled"
            )
            await self._throttle.failed(name, address)
            log.info("login", outcome="refused", reason=reason, username=name, address=address)
            raise LoginRefused(reason)
        await self._throttle.succeeded(name)
        log.info("login", outcome="success", reason="ok", username=name, sub=user.sub, address=address)
        return user
