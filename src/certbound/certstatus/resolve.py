"""One certificate's revocation status, from the sources the policy allows, in order.

1. OCSP (``ocsp,crl`` and ``ocsp``): the responders of the certificate's AIA, the first that answers
   ``good`` or ``revoked`` decides.
2. CRLs (``ocsp,crl`` and ``crl``): the operator's CRLs of the certificate's issuer (same issuer name;
   the signature is then checked like any CRL's, so another CA's CRL of that name gives ``unknown``),
   then the certificate's distribution points.

A certificate for which no source applies (no pointer of an allowed kind, no configured CRL of its
issuer) is ``good`` with the source ``none``: its CA publishes no status to check. While a configured
CRL has never loaded, certbound cannot tell which issuer it is for, so such certificates are
``unknown`` instead (failing closed). When every source applied failed, the status is ``unknown``,
naming each failure.

With the answer comes how long it may be used (`fresh_until`: its ``nextUpdate`` with the leeway it
was verified with, at most the policy's ``max_age`` after it was fetched) and when to ask again
(`refresh_at`, three quarters of the way there; soon after a failure).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from cryptography import x509

from certbound.certstatus.crls import MIN_REFRESH, CrlCache, CrlCopy
from certbound.certstatus.downloads import Downloads
from certbound.certstatus.policy import RevocationPolicy
from certbound.net.errors import FetchError
from certbound.pki.revocation.crl import crl_status
from certbound.pki.revocation.ocsp import ocsp_get_url, ocsp_request, ocsp_status
from certbound.pki.revocation.pointers import revocation_pointers
from certbound.pki.revocation.status import CertStatus

__all__ = ["NO_SOURCE", "Resolved", "StatusResolver"]

#: The source of a status no CRL or responder gave: the certificate names none and none is configured.
NO_SOURCE: Final = "none"
_SKEW: Final = timedelta(seconds=30)
_MAX_PER_KIND: Final = 2  # responders or distribution points tried per certificate


@dataclass(frozen=True, slots=True)
class Resolved:
    """A status, the time until which it may be used, and when to ask again (epoch seconds)."""

    status: CertStatus
    fresh_until: float
    refresh_at: float


class StatusResolver:
    """Asks the sources about one certificate at a time (see the module docstring)."""

    def __init__(
        self,
        policy: RevocationPolicy,
        downloads: Downloads,
        crls: CrlCache,
        *,
        known_cas: Sequence[x509.Certificate] = (),
        retry_interval: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._policy = policy
        self._downloads = downloads
        self._crls = crls
        self._known = tuple(known_cas)
        self._retry = retry_interval
        self._clock = clock

    def _timed(self, status: CertStatus, loaded_at: float) -> Resolved:
        end = fresh_until = loaded_at + self._policy.max_age
        if status.next_update is not None:
            end = min(end, status.next_update.timestamp())
            # usable as long as it verifies: with the leeway of the check
            fresh_until = min(fresh_until, end + _SKEW.total_seconds())
        life = max(end - loaded_at, 0.0)
        return Resolved(status, fresh_until, loaded_at + max(MIN_REFRESH, 0.75 * life))

    async def resolve(
        self, cert: x509.Certificate, issuer: x509.Certificate, path: Sequence[x509.Certificate] = ()
    ) -> Resolved:
        """The status of `cert`, issued by `issuer`; `path` holds the other certificates of its chain
        (candidate CRL signers besides the configured CAs)."""
        now = self._clock()
        at = datetime.fromtimestamp(now, UTC)
        pointers = revocation_pointers(cert)
        failures: list[CertStatus] = []
        if self._policy.use_ocsp:
            for url in pointers.ocsp[:_MAX_PER_KIND]:
                found = await self._ocsp(url, cert, issuer, at)
                if found.status != "unknown":
                    return self._timed(found, now)
                failures.append(found)
        if self._policy.use_crl:
            candidates = (*path, *self._known)
            configured, unloaded = await self._configured(issuer)
            sources: list[tuple[str, bool]] = [(c.location, True) for c in configured]
            sources += [(url, False) for url in pointers.crl[:_MAX_PER_KIND]]
            for location, is_configured in sources:
                copy = await self._crls.get(location, configured=is_configured)
                found = self._from_crl(copy, cert, issuer, candidates, at, now)
                if found.status != "unknown":
                    return self._timed(found, copy.loaded_at)  # its nextUpdate is the CRL's
                failures.append(found)
            if not sources and not failures and unloaded:
                names = ", ".join(unloaded)
                failures.append(
                    CertStatus(
                        "unknown", f"crl {names}", f"configured CRL not loaded yet (client_ca_crls): {names}"
                    )
                )
        if not failures:
            return self._timed(
                CertStatus("good", NO_SOURCE, "the certificate names no OCSP responder or CRL"), now
            )
        detail = "; ".join(f"{f.source}: {f.detail}" for f in failures)
        source = ", ".join(f.source for f in failures)
        return Resolved(CertStatus("unknown", source, detail), now, now + self._retry)

    async def _ocsp(
        self, url: str, cert: x509.Certificate, issuer: x509.Certificate, at: datetime
    ) -> CertStatus:
        source = f"ocsp {url}"
        try:
            body = await self._downloads.ocsp(ocsp_get_url(url, ocsp_request(cert, issuer)))
        except FetchError as exc:
            return CertStatus("unknown", source, f"responder unreachable: {exc}")
        return ocsp_status(body, cert, issuer, source=source, at=at, skew=_SKEW)

    def _from_crl(
        self,
        copy: CrlCopy,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        candidates: Sequence[x509.Certificate],
        at: datetime,
        now: float,
    ) -> CertStatus:
        if copy.crl is None:
            return CertStatus("unknown", copy.source, f"CRL unavailable: {copy.error}")
        if now - copy.loaded_at > self._policy.max_age:
            return CertStatus(
                "unknown",
                copy.source,
                f"the last CRL loaded is older than max_age; reloading failed: {copy.error}",
            )
        return crl_status(
            copy.crl,
            cert,
            issuer,
            source=copy.source,
            at=at,
            skew=_SKEW,
            candidates=candidates,
            memo=copy.memo,
        )

    async def _configured(self, issuer: x509.Certificate) -> tuple[list[CrlCopy], list[str]]:
        """The operator's CRLs for `issuer` (by issuer name), and the locations never loaded."""
        matching: list[CrlCopy] = []
        unloaded: list[str] = []
        for location in self._policy.crls:
            copy = await self._crls.get(location, configured=True)
            if copy.crl is None:
                unloaded.append(location)
            elif copy.crl.issuer == issuer.subject:
                matching.append(copy)
        return matching, unloaded
