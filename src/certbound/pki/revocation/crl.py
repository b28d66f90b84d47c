"""Certificate revocation lists (RFC 5280 sections 5 and 6.3): load, verify, and read one status.

A CRL is believed for a certificate only when all of this holds, else the answer is ``unknown``:

* **Signed by the issuer** (same name, the issuer's key, the issuer allowed to sign CRLs when it has a
  key usage extension), **or by an authorized CRL issuer**: a certificate issued directly by the
  certificate's issuer, with the ``cRLSign`` key usage, valid now, that is the issuer itself under
  another key (same name) or is named in the certificate's distribution point as its ``cRLIssuer``.
  The candidates for the latter are the certificates the caller knows (the presented chain, the
  trust anchors): a CRL carries none.
* **In scope**: a complete CRL (a delta CRL is refused), no critical extension we do not understand,
  an issuing distribution point that covers this kind of certificate (user or CA certificates) and,
  when it names a distribution point, one this certificate names (partitioned CRLs: a certificate
  naming none counts as naming its issuer); a CRL limited to some
  revocation reasons can show a revocation but never that a certificate is good.
* **Current**: ``thisUpdate`` not in the future and ``nextUpdate`` (when given) not passed, each with
  `skew` of leeway.

Then the certificate is revoked when an entry has its serial number (and, in an indirect CRL, its
issuer's name), else good. A ``removeFromCRL`` entry (delta CRLs only) does not revoke.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm

from certbound.pki.chain import issued_by
from certbound.pki.keys import spki_der
from certbound.pki.revocation.status import CertStatus, reason_name

__all__ = ["CrlMemo", "crl_signer", "crl_status", "load_crl"]


def load_crl(data: bytes) -> x509.CertificateRevocationList:
    """A CRL from PEM or DER bytes (ValueError when it is neither)."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_crl(data)
        return x509.load_der_x509_crl(data)
    except ValueError:
        raise ValueError("not a PEM or DER certificate revocation list") from None


def _may_sign_crls(cert: x509.Certificate, *, required: bool) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return not required
    return usage.crl_sign


def _distribution_points(cert: x509.Certificate) -> x509.CRLDistributionPoints | None:
    try:
        return cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return None


def _named_crl_issuers(cert: x509.Certificate) -> list[x509.Name]:
    points = _distribution_points(cert)
    names: list[x509.Name] = []
    for point in points or ():
        for general in point.crl_issuer or ():
            if isinstance(general, x509.DirectoryName):
                names.append(general.value)
    return names


class CrlMemo:
    """What checking many certificates against one CRL would otherwise redo for each: whether a key
    signed it (a large CRL's signature costs tens of milliseconds of CPU) and, for an indirect CRL,
    its entries by issuer and serial number. One per CRL object (a reloaded CRL gets a new one)."""

    def __init__(self) -> None:
        self.verifications = 0  # signatures actually checked
        self._signed: dict[bytes, bool] = {}
        self._indirect: dict[tuple[bytes, int], x509.RevokedCertificate] | None = None

    def signed_by(self, crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
        key = spki_der(cert.public_key())
        found = self._signed.get(key)
        if found is None:
            self.verifications += 1
            found = self._signed[key] = _signed_by(crl, cert)
        return found

    def indirect_entry(
        self, crl: x509.CertificateRevocationList, cert: x509.Certificate
    ) -> x509.RevokedCertificate | None:
        if self._indirect is None:
            self._indirect = _indirect_index(crl)
        return self._indirect.get((cert.issuer.public_bytes(), cert.serial_number))


def crl_signer(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    candidates: Sequence[x509.Certificate] = (),
    *,
    at: datetime,
    memo: CrlMemo | None = None,
) -> x509.Certificate | None:
    """The certificate whose key signed `crl` and that may speak for `issuer` about `cert`, or None."""
    signed_by = memo.signed_by if memo is not None else _signed_by
    if crl.issuer == issuer.subject and _may_sign_crls(issuer, required=False) and signed_by(crl, issuer):
        return issuer
    issuer_key = spki_der(issuer.public_key())
    delegated = _named_crl_issuers(cert)
    for candidate in candidates:
        if candidate.subject != crl.issuer or spki_der(candidate.public_key()) == issuer_key:
            continue
        if candidate.subject != issuer.subject and candidate.subject not in delegated:
            continue
        if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
            continue
        if not _may_sign_crls(candidate, required=True) or not issued_by(candidate, issuer):
            continue
        if signed_by(crl, candidate):
            return candidate
    return None


def _signed_by(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    """Whether `cert`'s key signed `crl`; False for an algorithm cryptography cannot verify."""
    try:
        return crl.is_signature_valid(cert.public_key())  # type: ignore[arg-type]
    except (UnsupportedAlgorithm, ValueError, TypeError):
        return False


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _unrecognized_critical(extensions: x509.Extensions) -> bool:
    return any(e.critical and isinstance(e.value, x509.UnrecognizedExtension) for e in extensions)


def _scope_problem(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, idp: x509.IssuingDistributionPoint | None
) -> str | None:
    if _unrecognized_critical(crl.extensions):
        return "the CRL has a critical extension certbound does not understand"
    try:
        crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    except x509.ExtensionNotFound:
        pass
    else:
        return "a delta CRL is not a complete list"
    if idp is None:
        return None
    if idp.only_contains_attribute_certs:
        return "the CRL covers attribute certificates only"
    if idp.only_contains_ca_certs and not _is_ca(cert):
        return "the CRL covers CA certificates only"
    if idp.only_contains_user_certs and _is_ca(cert):
        return "the CRL covers end-entity certificates only"
    if idp.full_name:
        # RFC 5280 6.3.3 (b)(2)(i): one of the IDP's names must be one of the certificate's distribution
        # point names, or, for a point without one, of its cRLIssuer names; a certificate with no
        # distribution point is taken to name its issuer (a CRL the operator configured for it)
        points = _distribution_points(cert)
        named = {g for p in points or () for g in p.full_name or ()}
        if not named:
            named = {g for p in points or () for g in p.crl_issuer or ()} or {x509.DirectoryName(cert.issuer)}
        if not named.intersection(idp.full_name):
            return "the CRL is for another distribution point (a partitioned CRL)"
    return None


def _entry(
    crl: x509.CertificateRevocationList, cert: x509.Certificate, indirect: bool, memo: CrlMemo | None
) -> x509.RevokedCertificate | None:
    if not indirect:
        return crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    if memo is not None:
        return memo.indirect_entry(crl, cert)
    return _indirect_index(crl).get((cert.issuer.public_bytes(), cert.serial_number))


def _indirect_index(crl: x509.CertificateRevocationList) -> dict[tuple[bytes, int], x509.RevokedCertificate]:
    """An indirect CRL's entries by (issuer name DER, serial number); the first entry of each wins."""
    index: dict[tuple[bytes, int], x509.RevokedCertificate] = {}
    current = crl.issuer  # RFC 5280 5.3.3: an entry's issuer carries over to the entries after it
    for entry in crl:
        try:
            names = entry.extensions.get_extension_for_class(x509.CertificateIssuer).value
        except x509.ExtensionNotFound:
            pass
        else:
            directory = names.get_values_for_type(x509.DirectoryName)
            current = directory[0] if directory else current
        index.setdefault((current.public_bytes(), entry.serial_number), entry)
    return index


def _entry_reason(entry: x509.RevokedCertificate) -> x509.ReasonFlags | None:
    try:
        return entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return None


def crl_status(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    source: str,
    at: datetime,
    skew: timedelta = timedelta(seconds=30),
    candidates: Sequence[x509.Certificate] = (),
    memo: CrlMemo | None = None,
) -> CertStatus:
    """What `crl` says about `cert` (issued by `issuer`) at `at`; ``unknown`` when it cannot be believed
    (or read: a CRL comes over plain HTTP, from anybody on the path, and is parsed lazily). `memo`
    (this CRL's) spares the work already done for other certificates."""
    try:
        return _crl_status(
            crl, cert, issuer, source=source, at=at, skew=skew, candidates=candidates, memo=memo
        )
    except (ValueError, UnsupportedAlgorithm) as exc:
        return CertStatus("unknown", source, f"the CRL cannot be read: {exc}")


def _crl_status(
    crl: x509.CertificateRevocationList,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    source: str,
    at: datetime,
    skew: timedelta,
    candidates: Sequence[x509.Certificate],
    memo: CrlMemo | None,
) -> CertStatus:
    this_update, next_update = crl.last_update_utc, crl.next_update_utc

    def unknown(detail: str) -> CertStatus:
        return CertStatus("unknown", source, detail, this_update, next_update)

    try:
        idp: x509.IssuingDistributionPoint | None = crl.extensions.get_extension_for_class(
            x509.IssuingDistributionPoint
        ).value
    except x509.ExtensionNotFound:
        idp = None
    problem = _scope_problem(crl, cert, idp)
    if problem is not None:
        return unknown(problem)
    indirect = idp is not None and idp.indirect_crl
    if crl.issuer != cert.issuer and not indirect:
        return unknown("the CRL is not issued for this certificate's issuer")
    if crl_signer(crl, cert, issuer, candidates, at=at, memo=memo) is None:
        return unknown("the CRL is not signed by the issuer or by an authorized CRL issuer")
    if this_update > at + skew:
        return unknown(f"the CRL is not valid before {this_update.isoformat()} (thisUpdate)")
    if next_update is not None and at - skew > next_update:  # not next_update + skew: 9999-12-31 overflows
        return unknown(f"the CRL expired at {next_update.isoformat()} (nextUpdate)")
    try:
        entry = _entry(crl, cert, indirect, memo)
    except ValueError as exc:  # a malformed entry extension
        return unknown(f"the CRL has a malformed entry: {exc}")
    if entry is not None:
        if _unrecognized_critical(entry.extensions):
            return unknown("the CRL entry has a critical extension certbound does not understand")
        reason = _entry_reason(entry)
        if reason != x509.ReasonFlags.remove_from_crl:
            return CertStatus(
                "revoked",
                source,
                this_update=this_update,
                next_update=next_update,
                revoked_at=entry.revocation_date_utc,
                reason=reason_name(reason),
            )
    if idp is not None and idp.only_some_reasons:
        return unknown("the CRL lists only some revocation reasons")
    return CertStatus("good", source, this_update=this_update, next_update=next_update)
