"""Revocation checking for ``tls_client_auth``: the checker built from the settings, and what its verdict
means for an authentication (issue 16).

Every certificate of the validated chain below the trust anchor is checked
(:mod:`certbound.certstatus`), after the chain and the subject: a request that would fail anyway asks
no responder. A revoked certificate is ``cert.revoked``; a status that cannot be had is
``cert.revocation_unknown``, or under ``client_cert_revocation_soft_fail`` an acceptance with a warning
(at most one a minute per certificate, so a responder outage does not flood the log). The failure's
event carries the source, the time and the reason of a revocation as fields of their own, which
``certbound explain`` shows.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from cryptography import x509

from certbound.certstatus import (
    GOOD_CHAIN,
    ChainRevocation,
    RevocationChecker,
    RevocationPolicy,
    SoftFailWarnings,
    build_checker,
)
from certbound.pki.pem import load_certs_file
from certbound.server.clientauth.failure import AuthFailure

if TYPE_CHECKING:
    from certbound.config import Settings

__all__ = ["RevocationGate", "revocation_checker", "revocation_fields"]

_log = structlog.get_logger("certbound.auth")


def revocation_checker(
    settings: Settings, anchors: Sequence[x509.Certificate], *, clock: Callable[[], float] = time.time
) -> RevocationChecker | None:
    """The checker the settings ask for (None when ``client_cert_revocation = "off"`` or no client CA
    is trusted, so that nothing can pass a chain to it)."""
    if settings.client_cert_revocation == "off" or not anchors:
        return None
    policy = RevocationPolicy(
        mode=settings.client_cert_revocation,
        soft_fail=settings.client_cert_revocation_soft_fail,
        max_age=float(settings.client_cert_revocation_max_age),
        crls=tuple(settings.client_ca_crls),
    )
    known = list(anchors)
    if settings.forwarded_cert_intermediates is not None:  # checked at start-up (tls.forwarded)
        with contextlib.suppress(OSError, ValueError):
            known += load_certs_file(Path(settings.forwarded_cert_intermediates))
    return build_checker(
        policy,
        issuer_url=settings.issuer_url,
        allow_private=settings.outbound_allow_private,
        ca_bundle=settings.outbound_ca_bundle,
        known_cas=known,
        clock=clock,
    )


def revocation_fields(verdict: ChainRevocation) -> dict[str, str]:
    """The event fields of a verdict: which certificate, the source(s), and for a revocation its time
    and reason."""
    return verdict.fields()


class RevocationGate:
    """What ``tls_client_auth`` asks: is this validated chain still good? Raises :class:`AuthFailure`."""

    def __init__(
        self, checker: RevocationChecker, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.checker = checker
        self._soft_fail = checker.policy.soft_fail
        self._warnings = SoftFailWarnings(_log, monotonic=monotonic)
        #: Whether another worker or node found a leaf (its x5t#S256) revoked (the server's
        #: ``CertificateWatch.is_revoked``): this worker's own answer may still be good for a while.
        self.known_revoked: Callable[[str], bool] | None = None

    async def check(self, path: tuple[x509.Certificate, ...], keys: tuple[str, ...], client_id: str) -> None:
        checker = self.checker
        verdict = checker.cached(keys, checker.now()) or await checker.check(path, keys)
        if verdict.state == "revoked":
            raise AuthFailure("cert.revoked", verdict.detail, revocation_fields(verdict))
        known_revoked = self.known_revoked
        if known_revoked is not None and keys and known_revoked(keys[0]):
            raise AuthFailure(
                "cert.revoked",
                "another worker or node of this server found the certificate revoked (the cert_status "
                "table names the source and time); this worker's own answer has not caught up yet",
            )
        if verdict is GOOD_CHAIN:
            return
        if not self._soft_fail:
            raise AuthFailure("cert.revocation_unknown", verdict.detail, revocation_fields(verdict))
        self._warnings.warn(keys[0] if keys else "", verdict, client_id=client_id)
