"""Signing CRLs and OCSP answers: for the development CA (``certbound pki crl``) and the tests' responder.

Built with cryptography's ``CertificateRevocationListBuilder`` and ``OCSPResponseBuilder``, so what the
tests serve is what a real CA's CRL and a real responder's answer look like on the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certbound.pki.keys import PrivateKey, signature_hash
from certbound.pki.revocation.ocsp import cert_id_hashes

__all__ = ["Revoked", "build_crl", "ocsp_answer"]


@dataclass(frozen=True, slots=True)
class Revoked:
    """One revoked certificate of a CA: its serial number, when, and why (None: no reason given)."""

    serial: int
    revoked_at: datetime
    reason: x509.ReasonFlags | None = None


def build_crl(
    issuer: x509.Certificate,
    key: PrivateKey,
    revoked: Iterable[Revoked],
    *,
    this_update: datetime,
    next_update: datetime,
    number: int = 1,
) -> x509.CertificateRevocationList:
    """A complete CRL of `issuer` signed with `key` (the issuer's own, or a CRL-signing key of the same
    name), listing `revoked`, with a CRL number and the issuer's key identifier."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    for entry in revoked:
        item = x509.RevokedCertificateBuilder().serial_number(entry.serial).revocation_date(entry.revoked_at)
        if entry.reason is not None:
            item = item.add_extension(x509.CRLReason(entry.reason), critical=False)
        builder = builder.add_revoked_certificate(item.build())
    return builder.sign(key, signature_hash(key))


def ocsp_answer(
    request_der: bytes,
    issuer: x509.Certificate,
    revoked: Mapping[int, Revoked],
    *,
    signer: tuple[x509.Certificate, PrivateKey],
    this_update: datetime,
    next_update: datetime | None,
    known: Iterable[int] | None = None,
) -> bytes:
    """The DER answer to an OCSP request about a certificate of `issuer`, signed by `signer` (the issuer
    itself, or a delegated responder whose certificate is then included).

    Serial numbers in `revoked` are revoked, those not in `known` (when given) unknown, the rest good.
    A request for another issuer gets ``unauthorized``, a malformed one ``malformedRequest``; a
    request's nonce is echoed.
    """
    try:
        request = ocsp.load_der_ocsp_request(request_der)
    except ValueError:
        return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
    algorithm = request.hash_algorithm
    if (request.issuer_name_hash, request.issuer_key_hash) != cert_id_hashes(issuer, algorithm):
        return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
    serial = request.serial_number
    entry = revoked.get(serial)
    if entry is not None:
        status, revoked_at, reason = ocsp.OCSPCertStatus.REVOKED, entry.revoked_at, entry.reason
    elif known is not None and serial not in set(known):
        status, revoked_at, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
    else:
        status, revoked_at, reason = ocsp.OCSPCertStatus.GOOD, None, None
    signer_cert, signer_key = signer
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response_by_hash(
            request.issuer_name_hash,
            request.issuer_key_hash,
            serial,
            algorithm,
            status,
            this_update,
            next_update,
            revoked_at,
            reason,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, signer_cert)
    )
    if signer_cert.subject != issuer.subject or signer_cert.public_key() != issuer.public_key():
        builder = builder.certificates([signer_cert])
    try:
        nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
    except x509.ExtensionNotFound:
        pass
    else:
        builder = builder.add_extension(nonce, critical=False)
    response = builder.sign(signer_key, signature_hash(signer_key) or hashes.SHA256())
    return response.public_bytes(Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(Encoding.DER)
