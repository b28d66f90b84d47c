"""Chain verdicts cached per presented chain: path validation once, not once per request.

Shared by the server's ``tls_client_auth`` and the gateway's proof of possession (a certificate that
must also chain to the listener's ``client_ca``).

Validating a client chain costs far more than the rest of ``tls_client_auth`` (DESIGN.md, issue 6),
and the same chain comes back on every request of a keep-alive connection and every new connection of
the same client. A verdict depends only on the certificates, the trust anchors (fixed for the life of
a :class:`VerdictCache`) and the time, so it is cached under the leaf's ``x5t#S256`` plus every
certificate sent with it (compared byte for byte), together with what the subject comparison needs
(the canonical subject DN and the SANs, parsed once) and what the revocation check needs (the
validated path and the thumbprints of its certificates below the anchor).

Time is re-checked at every use: a positive verdict is reused only while the time lies inside every
validity window on the validated path (the latest ``notBefore`` to the earliest ``notAfter``) and for
at most ``success_ttl``; a negative one for ``failure_ttl`` (short, so a certificate that becomes valid,
or a fixed configuration, is not refused for long). The cache is bounded (least recently used out).

Entries are found by the leaf's thumbprint (a string, whose hash Python keeps) and then the chain
sent with it is compared by its digest (SHA-256 over the length-prefixed DER of each certificate
after the leaf, computed once per connection). One chain is kept per leaf; a leaf presented with
another chain replaces it. Only the digest is kept, never the certificates: anyone can present
chains that fail, up to ~100 KB each (10,000 of them kept whole held gigabytes), and comparing the
certificates themselves on every request took ~2% of one on the wire (cryptography compares their
names field by field).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from certbound.pki.chain import ChainVerifier
from certbound.pki.dn import CanonicalDN, canonical_dn
from certbound.pki.revocation import path_keys
from certbound.pki.san import SubjectAltNames
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["CertFacts", "VerdictCache"]

_NO_SANS = SubjectAltNames()


@dataclass(frozen=True, slots=True)
class CertFacts:
    """A chain's verdict and the leaf's parsed subject and SANs, as cached."""

    ok: bool
    reason: str  # "ok" or a cert.* code
    detail: str
    subject: CanonicalDN | None = None
    sans: SubjectAltNames = _NO_SANS
    valid_from: datetime | None = None  # latest notBefore on the validated path (ok only)
    valid_until: datetime | None = None  # earliest notAfter on the validated path (ok only)
    checked_at: datetime | None = None
    fresh_until: datetime | None = None
    path: tuple[x509.Certificate, ...] = ()  # the validated path, leaf first, anchor last (ok only)
    revocation_keys: tuple[str, ...] = ()  # pki.revocation.path_keys(path), computed once (ok only)

    def usable_at(self, now: datetime) -> bool:
        if self.checked_at is None or self.fresh_until is None:
            return False
        if not self.checked_at <= now < self.fresh_until:  # also refuses a clock that went back
            return False
        if not self.ok:
            return True
        if self.valid_from is None or self.valid_until is None:
            return False
        return self.valid_from <= now <= self.valid_until


_NO_ANCHORS = CertFacts(False, "cert.untrusted", "no client CA is configured (client_ca)")


class VerdictCache:
    """Validates presented chains with `verifier` (None: nothing is trusted) and caches the results."""

    def __init__(
        self,
        verifier: ChainVerifier | None,
        *,
        max_entries: int = 10_000,
        success_ttl: float = 3600.0,
        failure_ttl: float = 10.0,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._verifier = verifier
        self._max = max_entries
        self._success_ttl = timedelta(seconds=success_ttl)
        self._failure_ttl = timedelta(seconds=failure_ttl)
        # by the leaf's thumbprint: the digest of the rest of the chain, and the verdict
        self._entries: OrderedDict[str, tuple[bytes, CertFacts]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def facts(self, cert: ClientCertificate, now: datetime) -> CertFacts:
        """The verdict for `cert`'s chain at `now`, from the cache when still valid."""
        if self._verifier is None:
            return _NO_ANCHORS
        key = cert.x5t_s256
        entry = self._entries.get(key)
        if entry is not None:
            kept, found = entry
            if kept == cert.chain_digest and found.usable_at(now):  # the digest: once per connection
                self._entries.move_to_end(key)
                self.hits += 1
                return found
        self.misses += 1
        facts = self._compute(self._verifier, cert, now)
        self._entries[key] = (cert.chain_digest, facts)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return facts

    def _compute(self, verifier: ChainVerifier, cert: ClientCertificate, now: datetime) -> CertFacts:
        verdict = verifier.verify(cert.leaf, cert.chain, at=now)
        if not verdict.ok:
            return CertFacts(
                False, verdict.reason, verdict.detail, checked_at=now, fresh_until=now + self._failure_ttl
            )
        try:
            subject = canonical_dn(cert.leaf.subject)
            sans = SubjectAltNames.from_cert(cert.leaf)
        except ValueError as exc:
            return CertFacts(
                False,
                "cert.invalid",
                f"cannot read the certificate's subject or SANs: {exc}",
                checked_at=now,
                fresh_until=now + self._failure_ttl,
            )
        path = verdict.chain or (cert.leaf,)
        return CertFacts(
            True,
            "ok",
            verdict.detail,
            subject=subject,
            sans=sans,
            valid_from=max(c.not_valid_before_utc for c in path),
            valid_until=min(c.not_valid_after_utc for c in path),
            checked_at=now,
            fresh_until=now + self._success_ttl,
            path=path,
            revocation_keys=path_keys(path),
        )
