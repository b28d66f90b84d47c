"""Password hashes: argon2id (argon2-cffi), with the parameters OWASP recommends as its first choice.

OWASP's Password Storage Cheat Sheet: argon2id, 19 MiB of memory, 2 iterations, 1 degree of
parallelism. A stored hash carries its parameters (a PHC string), so raising them later only needs
`needs_rehash` at the next login. Hashing is deliberately slow, so it runs in a worker thread, off the
event loop. An unknown user is checked against a hash made once at start from a random password, so
that a login for a name that does not exist costs what a wrong password costs.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "check_password_policy",
    "hash_password",
    "verify_password",
]

MIN_PASSWORD_LENGTH = 8
#: Longer passwords are refused (a form field cannot make the server hash megabytes).
MAX_PASSWORD_LENGTH = 1024

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def check_password_policy(password: str) -> None:
    """ValueError saying what is wrong with a new password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValueError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """The argon2id PHC string of `password` (blocking: call it from a thread on a server)."""
    return _HASHER.hash(password)


@functools.lru_cache(maxsize=1)
def _decoy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(32))


def _verify(password_hash: str | None, password: str) -> bool:
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH]  # still hashed, so it costs what any attempt costs
        password_hash = None
    try:
        matches = _HASHER.verify(password_hash or _decoy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matches and password_hash is not None


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether `password` matches `password_hash`; None (an unknown user) is checked against a decoy
    hash and is never a match, so both cost the same. Runs in a thread."""
    return await asyncio.to_thread(_verify, password_hash, password)
