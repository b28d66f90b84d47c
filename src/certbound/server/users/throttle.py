"""Failed logins, rate-limited per username and per address: a lock-out that doubles with each failure.

After `login_max_failures` failures of one username (`login_max_address_failures` from one address)
within an hour, the name (address) is locked for `login_lockout` seconds; every further failure
doubles the lock, up to an hour. Only failures count: a success clears the username's count (the
address's count goes on, so one good account does not unlock guessing at others). A locked name or
address is refused before the password is checked, so the lock also stops the hashing cost. Each
attempt is counted against its username before its password is checked (and forgiven on success), so
a burst of parallel guesses cannot all slip past the check (`LoginThrottle.begin`). Names that do not
exist are counted like real ones: the lock says nothing about who has an account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from certbound.store.users import FailureCount

__all__ = ["MAX_LOCKOUT", "LoginThrottle", "ThrottleLimits"]

#: The longest lock, and how long failures are remembered after the last one.
MAX_LOCKOUT = timedelta(hours=1)


class FailureStore(Protocol):
    async def record_failure(self, key: str, *, window: timedelta) -> int: ...

    async def failures(self, keys: list[str]) -> dict[str, FailureCount]: ...

    async def clear_failures(self, key: str) -> None: ...


@dataclass(frozen=True)
class ThrottleLimits:
    user_failures: int
    address_failures: int
    lockout: timedelta


def _lock_seconds(failures: int, threshold: int, lockout: timedelta) -> timedelta:
    if failures < threshold:
        return timedelta(0)
    doublings = min(failures - threshold, 20)
    return min(lockout * (1 << doublings), MAX_LOCKOUT)


class LoginThrottle:
    """Counts failed logins and says whether a username or an address is locked, and until when."""

    def __init__(
        self,
        store: FailureStore,
        limits: ThrottleLimits,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._limits = limits
        self._clock = clock

    def _keys(self, username: str, address: str | None) -> dict[str, int]:
        keys = {f"user:{username}": self._limits.user_failures}
        if address:
            keys[f"address:{address}"] = self._limits.address_failures
        return keys

    def _longest(
        self, keys: dict[str, int], counts: dict[str, FailureCount], now: datetime
    ) -> timedelta | None:
        """How much longer the most locked of `keys` stays locked; None when none is."""
        longest: timedelta | None = None
        for key, count in counts.items():
            until = count.last_failure_at + _lock_seconds(count.failures, keys[key], self._limits.lockout)
            if until > now and (longest is None or until - now > longest):
                longest = until - now
        return longest

    async def begin(self, username: str, address: str | None) -> timedelta | None:
        """Check the locks and claim this attempt's place in the username's count, before the password
        is checked: None when it may be checked, else how long to wait.

        The attempt is counted as a failure up front (`succeeded` clears it), so attempts sent at once
        cannot all pass the check before the first failure is counted: one whose claim finds another
        attempt for the name got in since the check is refused like a locked one. Parallel guessing
        therefore checks no more passwords than the limit allows."""
        keys = self._keys(username, address)
        now = self._clock()
        counts = await self._store.failures(list(keys))
        locked = self._longest(keys, counts, now)
        if locked is not None:
            return locked
        user_key = f"user:{username}"
        seen = counts.get(user_key)
        before = seen.failures if seen is not None and seen.last_failure_at >= now - MAX_LOCKOUT else 0
        claimed = await self._store.record_failure(user_key, window=MAX_LOCKOUT)
        if claimed != before + 1:  # others got in between: one attempt at a time per name
            lock = _lock_seconds(claimed, self._limits.user_failures, self._limits.lockout)
            return max(lock, timedelta(seconds=1))
        return None

    async def failed(self, username: str, address: str | None) -> None:
        """Count a failed attempt against the address (`begin` counted it against the name)."""
        if address:
            await self._store.record_failure(f"address:{address}", window=MAX_LOCKOUT)

    async def succeeded(self, username: str) -> None:
        await self._store.clear_failures(f"user:{username}")
