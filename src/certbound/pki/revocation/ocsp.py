"""OCSP (RFC 6960, with the RFC 5019 lightweight profile): the request, its GET URL, and the answer.

Requests identify the certificate by a SHA-1 ``CertID`` (what RFC 5019 responders expect) and go by
GET (RFC 6960 Appendix A.1: the base64 of the DER request, URL-encoded, after the responder URL), so
caches between us and the responder may answer. A nonce is optional: certbound sends none, and an
answer that carries one is still believed (RFC 8954 leaves nonces to the client; freshness comes from
``thisUpdate``/``nextUpdate`` here). A caller that sends a nonce gets an answer with another nonce
refused.

An answer is believed only when it is a successful ``BasicOCSPResponse`` whose single response is for
this certificate (hash algorithm, issuer name and key hashes, serial number), signed either by the
issuer itself or by a delegated responder: a certificate carried in the answer, issued directly by
the issuer, with the ``id-kp-OCSPSigning`` extended key usage, valid now, and the one the answer's
responder ID names. ``thisUpdate`` must not be in the future and ``nextUpdate``, when given, not
passed (each with `skew` of leeway). Anything else is ``unknown``, as is the responder's own
``unknown``.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from urllib.parse import quote

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from certbound.pki.chain import issued_by
from certbound.pki.keys import spki_der
from certbound.pki.revocation.signatures import signature_valid
from certbound.pki.revocation.status import CertStatus, reason_name

__all__ = [
    "OCSP_REQUEST_MEDIA_TYPE",
    "OCSP_RESPONSE_MEDIA_TYPE",
    "cert_id_hashes",
    "ocsp_get_url",
    "ocsp_request",
    "ocsp_status",
]

OCSP_REQUEST_MEDIA_TYPE = "application/ocsp-request"
OCSP_RESPONSE_MEDIA_TYPE = "application/ocsp-response"


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None) -> bytes:
    """The DER OCSP request for `cert` (SHA-1 CertID), with a nonce extension when one is given."""
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1())  # noqa: S303
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(Encoding.DER)


def ocsp_get_url(responder_url: str, request_der: bytes) -> str:
    """The RFC 6960 Appendix A.1 GET URL: the responder URL, ``/``, then url-encoded base64 of the request."""
    encoded = quote(base64.b64encode(request_der).decode("ascii"), safe="")
    return f"{responder_url.rstrip('/')}/{encoded}"


def _der_value(data: bytes, offset: int) -> tuple[int, int]:
    """(start, end) of the value of the DER element at `offset` (definite lengths only)."""
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return start, start + length


def _subject_public_key(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bits (SubjectPublicKeyInfo: SEQUENCE { algorithm, BIT STRING })."""
    spki = spki_der(cert.public_key())
    start, _ = _der_value(spki, 0)  # inside the SEQUENCE
    _, algorithm_end = _der_value(spki, start)  # skip the AlgorithmIdentifier
    bits_start, bits_end = _der_value(spki, algorithm_end)
    return spki[bits_start + 1 : bits_end]  # without the unused-bits byte


def cert_id_hashes(issuer: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """The CertID's issuerNameHash and issuerKeyHash of `issuer` (RFC 6960 section 4.1.1)."""
    name = hashes.Hash(algorithm)
    name.update(issuer.subject.public_bytes())
    key = hashes.Hash(algorithm)
    key.update(_subject_public_key(issuer))
    return name.finalize(), key.finalize()


def _cert_id_matches(
    single: ocsp.OCSPSingleResponse, cert: x509.Certificate, issuer: x509.Certificate
) -> bool:
    if single.serial_number != cert.serial_number or cert.issuer != issuer.subject:
        return False
    try:
        expected = cert_id_hashes(issuer, single.hash_algorithm)
    except (ValueError, TypeError):  # a hash algorithm a CertID cannot use
        return False
    return (single.issuer_name_hash, single.issuer_key_hash) == expected


def _key_hash(cert: x509.Certificate) -> bytes:
    """RFC 6960's KeyHash of a responder: SHA-1 of its subjectPublicKey bits."""
    digest = hashes.Hash(hashes.SHA1())  # noqa: S303
    digest.update(_subject_public_key(cert))
    return digest.finalize()


def _names_responder(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if response.responder_name is not None:
        return response.responder_name == cert.subject
    key_hash = response.responder_key_hash
    return key_hash is not None and key_hash == _key_hash(cert)


def _may_respond_for(candidate: x509.Certificate, issuer: x509.Certificate, at: datetime) -> bool:
    """A delegated responder: issued directly by `issuer`, OCSPSigning EKU, valid at `at`."""
    try:
        eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        return False
    if not candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc:
        return False
    return issued_by(candidate, issuer)


def _signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: datetime) -> x509.Certificate | None:
    try:
        algorithm = response.signature_hash_algorithm
    except (UnsupportedAlgorithm, ValueError):  # an algorithm cryptography does not know: not verified
        return None
    issuer_key = spki_der(issuer.public_key())
    candidates = [issuer, *response.certificates]
    for candidate in candidates:
        if not _names_responder(response, candidate):
            continue
        is_issuer = candidate is issuer or (
            candidate.subject == issuer.subject and spki_der(candidate.public_key()) == issuer_key
        )
        if not is_issuer and not _may_respond_for(candidate, issuer, at):
            continue
        if signature_valid(
            candidate.public_key(),
            response.signature,
            response.tbs_response_bytes,
            algorithm,
            response.signature_algorithm_oid,
        ):
            return candidate
    return None


def _nonce(response: ocsp.OCSPResponse) -> bytes | None:
    try:
        return response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except (x509.ExtensionNotFound, ValueError):
        return None


def ocsp_status(
    response_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    source: str,
    at: datetime,
    skew: timedelta = timedelta(seconds=30),
    nonce: bytes | None = None,
) -> CertStatus:
    """What the DER OCSP answer says about `cert` (issued by `issuer`) at `at` (``unknown`` when it
    cannot be read: an answer comes over plain HTTP, from anybody on the path, and is parsed lazily)."""
    try:
        return _ocsp_status(response_der, cert, issuer, source=source, at=at, skew=skew, nonce=nonce)
    except (ValueError, UnsupportedAlgorithm) as exc:
        return CertStatus("unknown", source, f"the answer cannot be read: {exc}")


def _ocsp_status(
    response_der: bytes,
    cert: x509.Certificate,
    issuer: x509.Certificate,
    *,
    source: str,
    at: datetime,
    skew: timedelta,
    nonce: bytes | None,
) -> CertStatus:
    def unknown(detail: str, single: ocsp.OCSPSingleResponse | None = None) -> CertStatus:
        if single is None:
            return CertStatus("unknown", source, detail)
        return CertStatus("unknown", source, detail, single.this_update_utc, single.next_update_utc)

    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError:
        return unknown("the answer is not a DER OCSP response")
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        return unknown(f"the responder answered {response.response_status.name.lower()}")
    try:
        single = next((s for s in response.responses if _cert_id_matches(s, cert, issuer)), None)
    except ValueError as exc:
        return unknown(f"malformed OCSP response: {exc}")
    if single is None:
        return unknown("the answer is not about this certificate")
    if _signer(response, issuer, at) is None:
        return unknown("the answer is not signed by the issuer or by a responder it authorized", single)
    if nonce is not None:
        echoed = _nonce(response)
        if echoed is not None and echoed != nonce:
            return unknown("the answer's nonce is not the one sent", single)
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > at + skew:
        return unknown(f"the answer is not valid before {this_update.isoformat()} (thisUpdate)", single)
    if next_update is not None and at - skew > next_update:  # not next_update + skew: 9999-12-31 overflows
        return unknown(f"the answer expired at {next_update.isoformat()} (nextUpdate)", single)
    status = single.certificate_status
    if status == ocsp.OCSPCertStatus.GOOD:
        return CertStatus("good", source, this_update=this_update, next_update=next_update)
    if status == ocsp.OCSPCertStatus.REVOKED:
        return CertStatus(
            "revoked",
            source,
            this_update=this_update,
            next_update=next_update,
            revoked_at=single.revocation_time_utc,
            reason=reason_name(single.revocation_reason),
        )
    return unknown("the responder does not know this certificate", single)
