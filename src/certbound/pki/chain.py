"""Client-certificate chain validation (RFC 5280 path validation through cryptography's verifier).

The TLS layer may or may not have checked the chain; ``tls_client_auth`` re-validates it here against
the configured trust anchors, with the client-auth policy (EKU clientAuth when an EKU is present).
The end-entity extension policy is WebPKI's, relaxed in two places that matter for client
certificates: the SubjectAltName and AuthorityKeyIdentifier extensions may be absent (many client
certificates are identified by subject DN alone, and older CAs omit AKI).

Only configured anchors are trusted: a certificate the client sends along (even a self-signed one with
CA:TRUE) is an untrusted intermediate at most, so it can never root a chain. ``verify`` never raises
on bad input; it returns a :class:`ChainVerdict` whose ``reason`` is a stable log code:

Keys and signatures on the chain must be RSA (2048 bits or more) or ECDSA P-256/P-384/P-521: the
WebPKI profile of cryptography's verifier refuses Ed25519 and Ed448 (``cert.invalid``).

``ok``, ``cert.untrusted`` (no path to an anchor), ``cert.expired`` / ``cert.not_yet_valid`` (a
certificate on the path is outside its validity period at the verification time), ``cert.invalid``
(a path exists but breaks the policy: EKU, basic constraints, path length, key usage, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from certbound.pki.dn import cert_name_text

__all__ = ["MAX_INTERMEDIATES", "ChainVerdict", "ChainVerifier", "issued_by"]

# What cryptography's WebPKI profile accepts on a chain (Ed25519 / Ed448 are refused).
_ALGORITHMS = "allowed: RSA of 2048 bits or more, ECDSA P-256/P-384/P-521"

# More untrusted certificates than this in one presented chain is refused outright.
MAX_INTERMEDIATES = 16
# The longest subject a verdict's detail quotes whole.
_MAX_NAME = 256


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """The outcome of validating one presented chain."""

    ok: bool
    reason: str
    detail: str = ""
    chain: tuple[x509.Certificate, ...] = field(default=(), repr=False)


def _client_ee_policy() -> ExtensionPolicy:
    return (
        ExtensionPolicy.webpki_defaults_ee()
        .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
        .may_be_present(x509.AuthorityKeyIdentifier, Criticality.NON_CRITICAL, None)
    )


def _utc(at: datetime | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _name(cert: x509.Certificate) -> str:
    """The subject for a verdict's detail, clipped: details are cached (`VerdictCache`), and a client
    chooses its certificate's subject (~100 KB fit in a handshake)."""
    text = cert_name_text(cert, "subject") or "(empty subject)"
    return text if len(text) <= _MAX_NAME else text[:_MAX_NAME] + "…"


def _time_reason(cert: x509.Certificate, at: datetime) -> tuple[str, str] | None:
    if at < cert.not_valid_before_utc:
        return (
            "cert.not_yet_valid",
            f"{_name(cert)} is not valid before {cert.not_valid_before_utc.isoformat()}",
        )
    if at > cert.not_valid_after_utc:
        return "cert.expired", f"{_name(cert)} expired at {cert.not_valid_after_utc.isoformat()}"
    return None


def _tidy_error(error: str) -> str:
    """The verifier's message without its prefix and internal (Rust debug) details."""
    text = error.removeprefix("validation failed: ").removeprefix("candidates exhausted: ")
    if "Forbidden public key algorithm" in text or "Forbidden signature algorithm" in text:
        return f"key or signature algorithm not allowed ({_ALGORITHMS})"
    return text.split(" (encountered processing", 1)[0]


def _subject_is(cert: x509.Certificate, name: x509.Name | None) -> bool:
    """A cheap pre-filter: whether `cert`'s subject may be `name` (None: a name cryptography could
    not decode, which only another undecodable subject may be). `issued_by` decides, comparing the
    names' bytes and the signature."""
    try:
        subject = cert.subject
    except ValueError:
        return name is None
    return name is not None and subject == name


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether `issuer` signed `cert` (names and signature; never raises)."""
    try:
        cert.verify_directly_issued_by(issuer)
    except Exception:  # any failure means "not issued by"
        return False
    return True


class ChainVerifier:
    """Validates client certificate chains against a fixed set of trust anchors (CA certificates)."""

    def __init__(self, trust_anchors: Sequence[x509.Certificate], *, max_chain_depth: int = 8) -> None:
        self._anchors = tuple(trust_anchors)
        self._anchor_der = frozenset(a.public_bytes(Encoding.DER) for a in self._anchors)
        self._store = Store(list(self._anchors)) if self._anchors else None
        self._max_depth = max_chain_depth
        self._ee_policy = _client_ee_policy()
        self._ca_policy = ExtensionPolicy.webpki_defaults_ca()

    @property
    def trust_anchors(self) -> tuple[x509.Certificate, ...]:
        """The configured anchors."""
        return self._anchors

    def verify(
        self,
        leaf: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: datetime | None = None,
    ) -> ChainVerdict:
        """Validate ``leaf`` (with untrusted ``intermediates``) at ``at`` (default: now)."""
        try:
            return self._verify(leaf, intermediates, _utc(at))
        except Exception as exc:  # fail closed: never raise on hostile input
            return ChainVerdict(False, "cert.invalid", f"could not validate the certificate: {exc}")

    def _verify(
        self, leaf: x509.Certificate, intermediates: Sequence[x509.Certificate], at: datetime
    ) -> ChainVerdict:
        if not isinstance(leaf, x509.Certificate):
            return ChainVerdict(False, "cert.invalid", "no X.509 certificate was presented")
        extra = [c for c in intermediates if isinstance(c, x509.Certificate)]
        if len(extra) != len(intermediates):
            return ChainVerdict(
                False, "cert.invalid", "the presented chain holds something that is not a certificate"
            )
        if len(extra) > MAX_INTERMEDIATES:
            return ChainVerdict(
                False, "cert.invalid", f"more than {MAX_INTERMEDIATES} intermediate certificates"
            )
        if self._store is None:
            return ChainVerdict(False, "cert.untrusted", "no trust anchors are configured")
        verifier = (
            PolicyBuilder()
            .store(self._store)
            .time(at)
            .max_chain_depth(self._max_depth)
            .extension_policies(ca_policy=self._ca_policy, ee_policy=self._ee_policy)
            .build_client_verifier()
        )
        try:
            verified = verifier.verify(leaf, extra)
        except VerificationError as exc:
            return self._explain(leaf, extra, at, str(exc))
        return ChainVerdict(True, "ok", f"{_name(leaf)} chains to a trust anchor", tuple(verified.chain))

    def _explain(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate], at: datetime, error: str
    ) -> ChainVerdict:
        """Turn a verifier failure into a specific reason, using our own signature-checked path search."""
        path = self._find_path(leaf, intermediates)
        if path is None:
            return ChainVerdict(False, "cert.untrusted", f"{_name(leaf)} does not chain to a trust anchor")
        for cert in path:
            timing = _time_reason(cert, at)
            if timing is not None:
                return ChainVerdict(False, timing[0], timing[1])
        return ChainVerdict(False, "cert.invalid", _tidy_error(error))

    def _find_path(
        self, leaf: x509.Certificate, intermediates: list[x509.Certificate]
    ) -> list[x509.Certificate] | None:
        """A signature-valid path leaf -> ... -> anchor (ignoring policy and time), or None."""
        if leaf.public_bytes(Encoding.DER) in self._anchor_der:
            return [leaf]

        expanded: set[bytes] = set()  # each certificate is expanded once: bounded work on hostile input

        def walk(cert: x509.Certificate, path: list[x509.Certificate]) -> list[x509.Certificate] | None:
            der = cert.public_bytes(Encoding.DER)
            if der in expanded or len(path) > self._max_depth + 1:
                return None
            expanded.add(der)
            try:
                issuer: x509.Name | None = cert.issuer
            except ValueError:  # a name cryptography cannot decode: `_subject_is` and `issued_by` decide
                issuer = None
            for anchor in self._anchors:
                if _subject_is(anchor, issuer) and issued_by(cert, anchor):
                    return [*path, anchor]
            for candidate in intermediates:
                if _subject_is(candidate, issuer) and issued_by(cert, candidate):
                    found = walk(candidate, [*path, candidate])
                    if found is not None:
                        return found
            return None

        return walk(leaf, [leaf])
