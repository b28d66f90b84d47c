"""What a CRL or an OCSP answer says about one certificate, as a value.

``good`` and ``revoked`` are answers; ``unknown`` is the absence of one (no source reachable, an
answer that did not verify, a CRL or response past its ``nextUpdate``, a responder that does not know
the certificate), with `detail` saying why. `source` names where the answer came from
(``ocsp http://...``, ``crl http://...``, ``crl /etc/pki/ca.crl``) for the log and ``certbound explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cryptography import x509

from certbound.pki.thumbprint import x5t_s256

__all__ = ["CertStatus", "Status", "reason_name"]

Status = Literal["good", "revoked", "unknown"]


def reason_name(reason: x509.ReasonFlags | None) -> str | None:
    """The RFC 5280 CRLReason name (``keyCompromise``, ...), None when no reason was given."""
    return None if reason is None else reason.value


@dataclass(frozen=True, slots=True)
class CertStatus:
    """One certificate's revocation status from one source.

    `this_update` / `next_update`: the validity of the CRL or OCSP answer it came from (None when not
    stated, or for ``unknown``). `revoked_at` and `reason` are set for ``revoked`` only.
    """

    status: Status
    source: str
    detail: str = ""
    this_update: datetime | None = None
    next_update: datetime | None = None
    revoked_at: datetime | None = None
    reason: str | None = None

    def describe(self) -> str:
        """One line for the log: what, since when, from where."""
        if self.status == "revoked":
            when = self.revoked_at.isoformat() if self.revoked_at is not None else "an unknown time"
            why = f", reason {self.reason}" if self.reason else ""
            return f"revoked at {when}{why} (source: {self.source})"
        if self.status == "good":
            return f"not revoked (source: {self.source})"
        return f"status unknown: {self.detail} (source: {self.source})"


def path_keys(path: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """The keys `certstatus.RevocationChecker.cached` takes: the ``x5t#S256`` of every certificate
    of a validated path (leaf first, trust anchor last) except the anchor. Compute once per chain."""
    return tuple(x5t_s256(cert) for cert in path[:-1])
