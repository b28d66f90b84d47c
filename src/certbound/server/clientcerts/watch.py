"""Which client certificates are revoked, for every worker and node; which ones clients present.

:class:`CertificateWatch` is one worker's view (issue 16):

* **Revoked leaves**, in memory: :meth:`CertificateWatch.is_revoked` is a set look-up, what
  introspection (and userinfo, and the refresh grant) ask about a token's ``cnf.x5t#S256``. A leaf
  gets in when this worker's revocation checker learns it (a first check or a background refresh: the
  checker's listener), or when another worker or node did (the ``cert_status`` table, polled every
  `poll_interval` seconds; a revocation is written there at once).
* **Certificates seen** by ``tls_client_auth``: recorded with their client and validated chain, at
  most about once an hour per chain and worker (:meth:`CertificateWatch.note` is called on every
  success but records only when the chain's verdict was recomputed), written in batches. At start,
  the chains seen within `watch_for` are handed to the checker, so that a restarted worker keeps
  refreshing the certificates whose tokens may still be live.

Polling compares ``learned_at`` with a margin (`clock_skew`), since the rows come from other nodes'
clocks; a revocation seen twice is harmless. Rows of certificates expired and unseen for
`retention` are purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509

from certbound.certstatus import RevocationChecker
from certbound.pki.dn import cert_name_text
from certbound.pki.pem import certs_to_pem, load_certs_pem
from certbound.pki.revocation import CertStatus
from certbound.store.cert_status import CertificateRecord, CertStatusStore
from certbound.tasks import stop_task
from certbound.tls.chain_verdicts import CertFacts

__all__ = ["CertificateWatch"]

log = logging.getLogger("certbound.clientcerts")
_MAX_NOTED: Final = 20_000
_PURGE_EVERY: Final = 3600.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class CertificateWatch:
    """One worker's revoked leaves and seen certificates (see the module docstring)."""

    def __init__(
        self,
        table: CertStatusStore,
        checker: RevocationChecker | None,
        *,
        clock: Callable[[], datetime] = _utcnow,
        poll_interval: float = 2.0,
        flush_interval: float = 5.0,
        watch_for: timedelta = timedelta(days=1),
        clock_skew: timedelta = timedelta(minutes=5),
        retention: timedelta = timedelta(days=30),
    ) -> None:
        self._table = table
        self._checker = checker
        self._clock = clock
        self._poll_interval = poll_interval
        self._flush_interval = flush_interval
        self._watch_for = watch_for
        self._skew = clock_skew
        self._retention = retention
        self._revoked: set[str] = set()
        self._since: datetime | None = None
        self._noted: OrderedDict[str, CertFacts] = OrderedDict()
        self._pending: dict[str, CertificateRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        if checker is not None:
            checker.on_revoked(self._learned)

    # -- what the request path asks ---------------------------------------------------------------

    def is_revoked(self, x5t_s256: str) -> bool:
        """Whether the leaf with this ``x5t#S256`` is known to be revoked (no I/O)."""
        return x5t_s256 in self._revoked

    def note(self, client_id: str, facts: CertFacts) -> None:
        """``tls_client_auth`` accepted `facts`' chain for `client_id`: recorded when the verdict is new."""
        keys = facts.revocation_keys
        if not keys or self._noted.get(keys[0]) is facts:
            return
        self._noted[keys[0]] = facts
        self._noted.move_to_end(keys[0])
        while len(self._noted) > _MAX_NOTED:
            self._noted.popitem(last=False)
        now = self._clock()
        leaf = facts.path[0]
        self._pending[keys[0]] = CertificateRecord(
            x5t_s256=keys[0],
            client_id=client_id,
            subject=cert_name_text(leaf, "subject"),
            issuer=cert_name_text(leaf, "issuer"),
            serial=format(leaf.serial_number, "x"),
            not_after=leaf.not_valid_after_utc,
            chain_pem=certs_to_pem(facts.path).decode("ascii"),
            first_seen=now,
            last_seen=now,
        )

    # -- life cycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read what is already known (revocations; chains to keep watching), then poll and flush."""
        await self.poll()
        if self._checker is not None:
            for record in await self._table.seen_since(self._clock() - self._watch_for):
                if record.revoked_at is None:
                    try:
                        self._checker.track(load_certs_pem(record.chain_pem.encode("ascii")))
                    except ValueError as exc:
                        log.warning("cert_status row %s: unreadable chain: %s", record.x5t_s256, exc)
        self._task = asyncio.create_task(self._run(), name="certbound-certificate-watch")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)
        with contextlib.suppress(Exception):  # best effort: the rows are an optimisation, not the truth
            await self.flush()

    async def poll(self) -> int:
        """Read the revocations learned elsewhere since the last poll; how many were new here."""
        since = None if self._since is None else self._since - self._skew
        found = await self._table.revoked_since(since)
        new = 0
        for row in found:
            if row.x5t_s256 not in self._revoked:
                self._revoked.add(row.x5t_s256)
                new += 1
            if self._since is None or row.learned_at > self._since:
                self._since = row.learned_at
        if self._since is None:
            self._since = self._clock()
        return new

    async def flush(self) -> None:
        """Write what was noted and learned since the last flush."""
        pending, self._pending = self._pending, {}
        if not pending:
            return
        try:
            await self._table.record(list(pending.values()))
        except BaseException:
            for key, record in pending.items():  # written next time, unless newer news came meanwhile
                self._pending.setdefault(key, record)
            raise

    # -- internals --------------------------------------------------------------------------------

    def _learned(
        self, leaf_key: str, path: tuple[x509.Certificate, ...], revoked: x509.Certificate, status: CertStatus
    ) -> None:
        """The checker's listener: deny at once here, and tell the others through the table."""
        self._revoked.add(leaf_key)
        now = self._clock()
        noted = self._pending.get(leaf_key)
        leaf = path[0]
        reason = status.reason if revoked is leaf else f"CA revoked: {cert_name_text(revoked, 'subject')}"
        self._pending[leaf_key] = CertificateRecord(
            x5t_s256=leaf_key,
            client_id=noted.client_id if noted is not None else None,
            subject=cert_name_text(leaf, "subject"),
            issuer=cert_name_text(leaf, "issuer"),
            serial=format(leaf.serial_number, "x"),
            not_after=leaf.not_valid_after_utc,
            chain_pem=certs_to_pem(path).decode("ascii"),
            first_seen=noted.first_seen if noted is not None else now,
            last_seen=noted.last_seen if noted is not None else now,
            revoked_at=status.revoked_at or now,
            revocation_reason=reason,
            revocation_source=status.source,
            learned_at=now,
        )
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = next_flush = loop.time()
        next_purge = loop.time() + _PURGE_EVERY
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, min(next_poll, next_flush) - loop.time())):
                    await self._wake.wait()
            self._wake.clear()
            now = loop.time()
            try:
                if self._pending and (now >= next_flush or any(r.learned_at for r in self._pending.values())):
                    await self.flush()
                    next_flush = now + self._flush_interval
                if now >= next_poll:
                    await self.poll()
                    next_poll = now + self._poll_interval
                if now >= next_purge:
                    await self._table.purge(self._clock() - self._retention)
                    next_purge = now + _PURGE_EVERY
            except Exception as exc:  # a transient database error must not stop the watch
                log.warning("certificate watch: %s: %s", type(exc).__name__, exc)
                next_poll = next_flush = now + self._poll_interval
