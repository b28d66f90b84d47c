"""``tls_client_auth`` (RFC 8705 section 2.1): a CA-issued certificate carrying the registered subject.

The application is authoritative (DESIGN.md): whatever the TLS layer or a proxy concluded (only
logged), the presented chain is validated here against the configured client CAs plus the
intermediates the client sent, for client authentication, at the current time. Only then is the one
registered subject value compared (:mod:`certbound.server.clientauth.subject`). A certificate with the right
subject from another CA, or a self-signed copy of a registered subject, therefore never authenticates,
and a client's registered self-signed certificate (even CA:TRUE) is never a trust anchor. Last, every
certificate of the validated chain below the anchor must not be revoked
(:mod:`certbound.server.clientauth.revocation`; from memory once the chain has been seen).

Verdicts are cached per chain (:mod:`certbound.tls.chain_verdicts`) with time re-checked at each use.
"""

from __future__ import annotations

from collections.abc import Callable

from certbound.server.clientauth.context import MethodContext
from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clientauth.revocation import RevocationGate
from certbound.tls.chain_verdicts import CertFacts, VerdictCache

__all__ = ["CertificateObserver", "TlsClientAuth"]

#: Told of every accepted chain (client_id, the chain's cached facts); must be cheap: it runs on every
#: successful request (the server's records only chains whose facts are new).
CertificateObserver = Callable[[str, CertFacts], None]


class TlsClientAuth:
    name = "tls_client_auth"

    def __init__(self, verdicts: VerdictCache, revocation: RevocationGate | None = None) -> None:
        self._verdicts = verdicts
        self._revocation = revocation
        self.observer: CertificateObserver | None = None

    async def verify(self, ctx: MethodContext) -> None:
        cert = ctx.presented.certificate
        if cert is None:
            raise AuthFailure("cert.missing")
        rule = ctx.client.subject
        if rule is None:
            raise AuthFailure("client.misconfigured", "no usable tls_client_auth subject is registered")
        facts = self._verdicts.facts(cert, ctx.now)
        if not facts.ok:
            raise AuthFailure(facts.reason, facts.detail)
        if not rule.matches(facts.subject, facts.sans):
            raise AuthFailure(
                "cert.subject_mismatch", f"the certificate does not carry the registered {rule.kind} value"
            )
        if self._revocation is not None:
            await self._revocation.check(facts.path, facts.revocation_keys, ctx.client.client_id)
        if self.observer is not None:
            self.observer(ctx.client.client_id, facts)
