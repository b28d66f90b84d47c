"""Proof of possession (RFC 8705 section 3): the token's ``cnf.x5t#S256`` against the request's
certificate, by a route's ``proof_of_possession_mtls`` (Kong's meanings):

* ``off``: not checked (a bound token passes whatever certificate, if any, came with it);
* ``optional``: a token that carries a certificate binding must come with that certificate; an unbound
  token passes;
* ``strict``: every token must be bound (``cnf.unbound``) and come with its certificate.

The certificate is the one of the TLS handshake, or the trusted proxy's header
(:mod:`certbound.tls.forwarded`). With the listener's ``client_ca`` it must also chain to one of those
CAs (Kong's mtls-auth): validated once per chain (:class:`~certbound.tls.chain_verdicts.VerdictCache`),
refused with its ``cert.*`` reason, and not revoked (issue 16: every certificate of the validated chain
below the anchor, by :class:`~certbound.certstatus.RevocationChecker`, from memory once the chain has
been seen; ``cert.revoked``, ``cert.revocation_unknown`` unless ``client_cert_revocation_soft_fail``).
The comparison is jose's (:func:`~certbound.jose.binding.check_binding`, constant time).
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from certbound.certstatus import GOOD_CHAIN, RevocationChecker, SoftFailWarnings
from certbound.gateway.answers import invalid_token
from certbound.gateway.config import ProofMode
from certbound.gateway.tokens import TokenInfo
from certbound.gateway.validation import refusal
from certbound.jose.binding import check_binding
from certbound.jose.errors import JwtError
from certbound.tls.chain_verdicts import CertFacts, VerdictCache
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["CertificateRevocation", "ProofOfPossession"]

_CERT_DESCRIPTIONS = {
    "cert.expired": "the client certificate has expired",
    "cert.not_yet_valid": "the client certificate is not valid yet",
}
_log = structlog.get_logger("certbound.gateway")


class CertificateRevocation:
    """The listener's revocation rule for validated chains: one checker per worker, shared by routes."""

    def __init__(self, checker: RevocationChecker) -> None:
        self.checker = checker
        self._soft_fail = checker.policy.soft_fail
        self._warnings = SoftFailWarnings(_log)

    async def check(self, facts: CertFacts) -> None:
        """Raise GatewayError (401 ``invalid_token``) for a revoked chain, or one whose status cannot
        be had (unless soft fail: then a warning, at most once a minute per certificate)."""
        checker, keys = self.checker, facts.revocation_keys
        verdict = checker.cached(keys, checker.now()) or await checker.check(facts.path, keys)
        if verdict is GOOD_CHAIN:
            return
        if verdict.state == "revoked":
            raise invalid_token(
                "cert.revoked", "the client certificate is revoked", verdict.detail, verdict.fields()
            )
        if not self._soft_fail:
            raise invalid_token(
                "cert.revocation_unknown",
                "the revocation status of the client certificate cannot be had",
                verdict.detail,
                verdict.fields(),
            )
        self._warnings.warn(keys[0] if keys else "", verdict)


class ProofOfPossession:
    """One route's binding rule; `verdicts` validates chains against the listener's ``client_ca`` and
    `revocation` (with it) checks them."""

    __slots__ = ("_mode", "_revocation", "_verdicts")

    def __init__(
        self,
        mode: ProofMode,
        verdicts: VerdictCache | None,
        revocation: CertificateRevocation | None = None,
    ) -> None:
        self._mode = mode
        self._verdicts = verdicts
        self._revocation = revocation if verdicts is not None else None

    async def check(self, info: TokenInfo, cert: ClientCertificate | None) -> bool:
        """Whether the token's binding was verified with this request's certificate (then its
        thumbprint goes upstream); raises GatewayError (401 ``invalid_token``) when it fails."""
        mode = self._mode
        if mode == "off" or (mode == "optional" and info.thumbprint is None):
            return False
        try:
            check_binding(info.claims, cert.x5t_s256 if cert is not None else None, required=True)
        except JwtError as exc:
            raise refusal(exc) from None
        assert cert is not None  # check_binding refuses a bound token without a certificate
        if self._verdicts is not None:
            facts = self._verdicts.facts(cert, datetime.now(UTC))
            if not facts.ok:
                description = _CERT_DESCRIPTIONS.get(facts.reason, "the client certificate is not trusted")
                raise invalid_token(facts.reason, description, facts.detail)
            if self._revocation is not None:
                await self._revocation.check(facts)
        return True
