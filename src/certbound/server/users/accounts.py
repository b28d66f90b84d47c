"""Adding users and setting passwords: what ``certbound users`` and ``serve --dev`` (alice) share."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Protocol

from certbound.server.users.passwords import hash_password
from certbound.store.records import User

__all__ = ["UserWriter", "create_user", "set_password"]


class UserWriter(Protocol):
    async def create(self, user: User) -> User: ...

    async def update(self, username: str, **values: Any) -> User | None: ...


async def create_user(users: UserWriter, username: str, password: str, claims: dict[str, Any]) -> User:
    """Add a user with a fresh random ``sub``; `certbound.store.users.UserExists` when the name is taken.
    The password is hashed in a thread (argon2id is slow on purpose)."""
    password_hash = await asyncio.to_thread(hash_password, password)
    return await users.create(User(secrets.token_urlsafe(16), username, password_hash, claims))


async def set_password(users: UserWriter, username: str, password: str) -> User | None:
    """Set `username`'s password; None when there is no such user."""
    password_hash = await asyncio.to_thread(hash_password, password)
    return await users.update(username, password_hash=password_hash)
