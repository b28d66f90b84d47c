"""Client certificates that are about to expire: the listing, the gauge, the warnings (issue 16).

Which certificates a client has: those registered for it (``self_signed_tls_client_auth`` ``jwks``
certificates, with their registered validity, an overlap's end included) and those it presented to
``tls_client_auth`` within `seen_within` (the ``cert_status`` table; revoked ones left out). Certificates
published only at a ``jwks_uri`` are the client's to watch: they are not stored here.

* :func:`client_certificates` lists them, ``certbound clients expiring`` prints those expiring soon.
* The gauge ``certbound_client_certificate_expiry_seconds{client_id}`` is the time until the client's
  longest-lived certificate expires (negative once it has): how long the client can keep
  authenticating without a new one. A client that has rotated reads long, not the old certificate's.
* A warning ``client_certificate_expiring`` is logged when that certificate comes within 30, 7 and 1
  days of its end: once per threshold, for every worker and node together (the table decides).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

import structlog
from cryptography import x509
from prometheus_client import Gauge

from certbound.pki.dn import cert_name_text
from certbound.store.cert_status import CertStatusStore
from certbound.store.interface import Store
from certbound.tasks import stop_task

__all__ = [
    "EXPIRY_SECONDS",
    "THRESHOLD_DAYS",
    "ClientCertificateInfo",
    "ExpiryMonitor",
    "client_certificates",
    "expiring_within",
    "longest_lived",
]

#: Days before the end at which the client's certificate is warned about.
THRESHOLD_DAYS: Final = (30, 7, 1)

EXPIRY_SECONDS = Gauge(
    "certbound_client_certificate_expiry_seconds",
    "Seconds until the client's longest-lived certificate (registered, or presented to tls_client_auth "
    "lately) expires; negative once it has.",
    ["client_id"],
    multiprocess_mode="livemax",
)

log = logging.getLogger("certbound.clientcerts")
_events = structlog.get_logger("certbound.clientcerts")

Source = Literal["registered", "seen"]


@dataclass(frozen=True)
class ClientCertificateInfo:
    """One certificate a client has, and where certbound knows it from."""

    client_id: str
    x5t_s256: str
    subject: str
    issuer: str
    not_after: datetime
    source: Source
    last_seen: datetime | None = None

    def seconds_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds()


async def client_certificates(
    store: Store, table: CertStatusStore, *, now: datetime, seen_within: timedelta = timedelta(days=7)
) -> list[ClientCertificateInfo]:
    """Every client's certificates (see the module docstring), soonest end first."""
    found: dict[tuple[str, str], ClientCertificateInfo] = {}
    for client in await store.list_clients():
        for credential in client.credentials:
            if credential.kind != "certificate" or not credential.thumbprint:
                continue
            try:
                cert = x509.load_pem_x509_certificate(credential.value.encode("ascii"))
            except ValueError as exc:
                log.warning("client %s: unreadable certificate credential: %s", client.client_id, exc)
                continue
            end = min(cert.not_valid_after_utc, credential.not_after or cert.not_valid_after_utc)
            info = ClientCertificateInfo(
                client.client_id,
                credential.thumbprint,
                cert_name_text(cert, "subject"),
                cert_name_text(cert, "issuer"),
                end,
                "registered",
            )
            found[(client.client_id, credential.thumbprint)] = info
    for record in await table.seen_since(now - seen_within):
        if record.client_id is None or record.revoked_at is not None:
            continue
        key = (record.client_id, record.x5t_s256)
        if key not in found:
            found[key] = ClientCertificateInfo(
                record.client_id,
                record.x5t_s256,
                record.subject,
                record.issuer,
                record.not_after,
                "seen",
                record.last_seen,
            )
    return sorted(found.values(), key=lambda c: (c.not_after, c.client_id, c.x5t_s256))


def expiring_within(
    certificates: Iterable[ClientCertificateInfo], within: timedelta, now: datetime
) -> list[ClientCertificateInfo]:
    """Those that end within `within` of `now` (already expired ones included), soonest first."""
    limit = now + within
    return sorted((c for c in certificates if c.not_after <= limit), key=lambda c: c.not_after)


def longest_lived(certificates: Iterable[ClientCertificateInfo]) -> dict[str, ClientCertificateInfo]:
    """Each client's certificate with the latest end."""
    best: dict[str, ClientCertificateInfo] = {}
    for cert in certificates:
        current = best.get(cert.client_id)
        if current is None or cert.not_after > current.not_after:
            best[cert.client_id] = cert
    return best


def _threshold(seconds_left: float) -> int | None:
    """The smallest threshold (days) already reached, None before the first or once expired."""
    if seconds_left <= 0:
        return None
    reached = [days for days in THRESHOLD_DAYS if seconds_left <= days * 86400]
    return min(reached) if reached else None


class ExpiryMonitor:
    """Keeps the gauge current and gives the warnings, every `interval` seconds (one per worker)."""

    def __init__(
        self,
        store: Store,
        table: CertStatusStore,
        *,
        interval: float = 600.0,
        seen_within: timedelta = timedelta(days=7),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._table = table
        self._interval = interval
        self._seen_within = seen_within
        self._clock = clock
        self._clients: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="certbound-certificate-expiry")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await stop_task(task)

    async def run_once(self) -> Sequence[ClientCertificateInfo]:
        """Read the certificates, set the gauge, give the warnings due; returns the ones warned about."""
        now = self._clock()
        certificates = await client_certificates(
            self._store, self._table, now=now, seen_within=self._seen_within
        )
        best = longest_lived(certificates)
        for client_id, cert in best.items():
            EXPIRY_SECONDS.labels(client_id=client_id).set(cert.seconds_left(now))
        for gone in self._clients - set(best):
            with contextlib.suppress(KeyError):
                EXPIRY_SECONDS.remove(gone)
        self._clients = set(best)
        warned = []
        for cert in best.values():
            days = _threshold(cert.seconds_left(now))
            if days is not None and await self._table.claim_warning(cert.x5t_s256, days, now):
                warned.append(cert)
                _events.warning(
                    "client_certificate_expiring",
                    client_id=cert.client_id,
                    days_left=round(cert.seconds_left(now) / 86400, 1),
                    threshold_days=days,
                    not_after=cert.not_after.isoformat(),
                    cert_x5t_s256=cert.x5t_s256,
                    cert_subject=cert.subject,
                    source=cert.source,
                )
        return warned

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # a transient database error must not stop the monitor
                log.warning("certificate expiry check failed: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self._interval)
