"""CRLs kept in memory: one copy per distribution point URL or configured location, shared by every
certificate that points at it, reloaded before it goes stale.

A copy is reloaded once three quarters of its useful life have passed (its ``nextUpdate``, bounded by
the policy's `max_age`), at least :data:`MIN_REFRESH` seconds after the last load; a file also as soon
as it changes (its size or modification time). A failed reload keeps the last good copy, which the
CRL's own ``nextUpdate`` and `max_age` still bound, and is retried after `retry_interval`. One load
is in flight per location however many checks wait for it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography import x509

from certbound.certstatus.downloads import Downloads
from certbound.certstatus.singleflight import SingleFlight
from certbound.net.errors import FetchError
from certbound.pki.revocation.crl import CrlMemo, load_crl

__all__ = ["MIN_REFRESH", "CrlCache", "CrlCopy", "is_url"]

#: The least time between two loads of one CRL that succeeded (seconds).
MIN_REFRESH: Final = 1.0


def is_url(location: str) -> bool:
    return location.lower().startswith(("http://", "https://"))


@dataclass(slots=True)
class CrlCopy:
    """The last good CRL of one location (None until one loaded) and how the last attempt went."""

    location: str
    crl: x509.CertificateRevocationList | None = None
    loaded_at: float = 0.0
    attempted_at: float = 0.0
    error: str | None = None
    stamp: tuple[int, int] | None = None  # a file's (mtime_ns, size) when it was read
    memo: CrlMemo = field(default_factory=CrlMemo)  # the CRL's verified signers (for every certificate)

    @property
    def source(self) -> str:
        return f"crl {self.location}"

    def fresh_until(self, max_age: float) -> float:
        """When this copy stops being usable: its nextUpdate, or `max_age` after it was loaded."""
        if self.crl is None:
            return self.attempted_at
        next_update = self.crl.next_update_utc
        limit = self.loaded_at + max_age
        return min(limit, next_update.timestamp()) if next_update is not None else limit

    def refresh_at(self, max_age: float) -> float:
        life = max(self.fresh_until(max_age) - self.loaded_at, 0.0)
        return self.loaded_at + max(MIN_REFRESH, 0.75 * life)


def _file_stamp(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class CrlCache:
    """CRLs by location (see the module docstring); `clock` gives epoch seconds."""

    def __init__(
        self,
        downloads: Downloads,
        *,
        max_age: float,
        retry_interval: float = 10.0,
        max_copies: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._downloads = downloads
        self._max_age = max_age
        self._retry = retry_interval
        self._max = max_copies
        self._clock = clock
        self._copies: OrderedDict[str, CrlCopy] = OrderedDict()
        self._inflight: SingleFlight[str, CrlCopy] = SingleFlight()

    async def cancel(self) -> None:
        """Stop the loads in flight (at shutdown)."""
        await self._inflight.cancel()

    def changed_files(self) -> list[str]:
        """The files whose content changed since their copy was read (one ``stat`` each)."""
        return [
            c.location
            for c in self._copies.values()
            if not is_url(c.location) and c.crl is not None and _file_stamp(c.location) != c.stamp
        ]

    async def get(self, location: str, *, configured: bool = False) -> CrlCopy:
        """The copy for `location`, reloaded first when due. Never raises for a failed load: the copy
        then says why in `error` (and keeps the last good CRL, if any)."""
        copy = self._copies.get(location)
        if copy is not None and not self._due(copy, self._clock()):
            self._copies.move_to_end(location)
            return copy
        loaded = await self._inflight.run(location, lambda: self._load(copy or CrlCopy(location), configured))
        self._copies[location] = loaded
        self._copies.move_to_end(location)
        while len(self._copies) > self._max:
            self._copies.popitem(last=False)
        return loaded

    def _due(self, copy: CrlCopy, now: float) -> bool:
        if copy.error is not None and now - copy.attempted_at < self._retry:
            return False
        if copy.crl is None:
            return True
        if not is_url(copy.location) and _file_stamp(copy.location) != copy.stamp:
            return True
        return now >= copy.refresh_at(self._max_age)

    async def _load(self, previous: CrlCopy, configured: bool) -> CrlCopy:
        location = previous.location
        now = self._clock()
        stamp = None
        try:
            if is_url(location):
                data = await self._downloads.crl(location, configured=configured)
            else:
                stamp = _file_stamp(location)
                data = await asyncio.to_thread(Path(location).read_bytes)
            crl = load_crl(data)
        except (FetchError, OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            return CrlCopy(
                location, previous.crl, previous.loaded_at, now, reason, previous.stamp, previous.memo
            )
        return CrlCopy(location, crl, now, now, None, stamp)
