"""`CertStatusStore`: client certificates seen by tls_client_auth and their revocation, shared by every
worker and node (the ``cert_status`` table, on the store's engine), and the expiry warnings given
(``cert_expiry_warnings``: one atomic insert picks the worker that logs each).

Why it is in the store: a worker that learns a certificate is revoked must make the tokens bound to it
inactive on every worker and node (they poll :meth:`CertStatusStore.revoked_since`), a restarted
worker must keep watching the certificates whose tokens may still be live (it re-reads the chains
seen lately), and ``certbound clients expiring`` lists the certificates clients actually present.

Each call is one statement. :meth:`CertStatusStore.record` upserts: ``first_seen`` and the chain stay,
``last_seen`` only moves forward, the client is the latest one, and a revocation, once recorded, is
never replaced (the first learned wins, and no later write can clear it). None of this is on the
request path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from certbound.store.engine import writer
from certbound.store.schema import cert_expiry_warnings, cert_status

__all__ = ["CertStatusStore", "CertificateRecord", "RevokedCertificate"]


@dataclass(frozen=True)
class CertificateRecord:
    """One certificate as recorded: who presented it, its chain (PEM, leaf first), when, and the
    revocation if one was learned (`revoked_at`, `revocation_reason`, `revocation_source`,
    `learned_at` all set, or all None)."""

    x5t_s256: str
    client_id: str | None
    subject: str
    issuer: str
    serial: str
    not_after: datetime
    chain_pem: str
    first_seen: datetime
    last_seen: datetime
    revoked_at: datetime | None = None
    revocation_reason: str | None = None
    revocation_source: str | None = None
    learned_at: datetime | None = None


@dataclass(frozen=True)
class RevokedCertificate:
    """A revocation as workers poll it: which leaf, and when certbound learned it."""

    x5t_s256: str
    learned_at: datetime


_COLUMNS = tuple(c.name for c in cert_status.columns)


class CertStatusStore:
    """The ``cert_status`` table on `engine` (a migrated `SqlStore.engine`)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert

    async def record(self, records: Sequence[CertificateRecord]) -> None:
        """Upsert `records` (see the module docstring); one statement."""
        if not records:
            return
        rows = [{name: getattr(r, name) for name in _COLUMNS} for r in records]
        statement = self._insert(cert_status).values(rows)
        new, old = statement.excluded, cert_status.c
        unrevoked = old.revoked_at.is_(None)

        def once(column: str) -> Any:
            return case((unrevoked, new[column]), else_=old[column])

        statement = statement.on_conflict_do_update(
            index_elements=[old.x5t_s256],
            set_={
                "client_id": func.coalesce(new.client_id, old.client_id),
                "last_seen": case((new.last_seen > old.last_seen, new.last_seen), else_=old.last_seen),
                "revoked_at": once("revoked_at"),
                "revocation_reason": once("revocation_reason"),
                "revocation_source": once("revocation_source"),
                "learned_at": once("learned_at"),
            },
        )
        async with self._writer.begin() as conn:
            await conn.execute(statement)

    async def revoked_since(self, since: datetime | None) -> list[RevokedCertificate]:
        """Revocations learned after `since` (all of them for None), oldest first."""
        query = select(cert_status.c.x5t_s256, cert_status.c.learned_at).where(
            cert_status.c.learned_at.is_not(None)
        )
        if since is not None:
            query = query.where(cert_status.c.learned_at > since)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(cert_status.c.learned_at))).all()
        return [RevokedCertificate(row.x5t_s256, row.learned_at) for row in rows]

    async def seen_since(self, since: datetime) -> list[CertificateRecord]:
        """The certificates presented at or after `since`, revoked or not."""
        query = select(cert_status).where(cert_status.c.last_seen >= since).order_by(cert_status.c.last_seen)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [CertificateRecord(**row._asdict()) for row in rows]

    async def get(self, x5t_s256: str) -> CertificateRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(cert_status).where(cert_status.c.x5t_s256 == x5t_s256))).first()
        return None if row is None else CertificateRecord(**row._asdict())

    async def claim_warning(self, x5t_s256: str, days: int, at: datetime) -> bool:
        """True for the one caller (of every worker and node) that records this warning first."""
        statement = (
            self._insert(cert_expiry_warnings)
            .values(x5t_s256=x5t_s256, days=days, warned_at=at)
            .on_conflict_do_nothing(index_elements=["x5t_s256", "days"])
        )
        async with self._writer.begin() as conn:
            result = await conn.execute(statement)
        return bool(result.rowcount == 1)

    async def purge(self, before: datetime) -> int:
        """Forget the certificates that expired and were last presented before `before`, and the
        warnings given before it; how many rows went."""
        certificates = delete(cert_status).where(
            and_(cert_status.c.not_after < before, cert_status.c.last_seen < before)
        )
        warnings = delete(cert_expiry_warnings).where(cert_expiry_warnings.c.warned_at < before)
        async with self._writer.begin() as conn:
            gone = (await conn.execute(certificates)).rowcount or 0
            gone += (await conn.execute(warnings)).rowcount or 0
        return int(gone)
