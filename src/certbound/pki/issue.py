"""Issue certificates: a CA (root or intermediate), server certificates and client certificates.

Used by ``certbound pki`` for development PKIs and by the tests, which need expired, not-yet-valid,
SAN-less, self-signed and CA:TRUE certificates on demand. Everything is built with cryptography's
``CertificateBuilder``; profiles follow RFC 5280 (critical BasicConstraints and KeyUsage, AKI/SKI).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from certbound.pki.dn import parse_dn
from certbound.pki.keys import KeyKind, PrivateKey, new_private_key, signature_hash

__all__ = [
    "KeyKind",
    "PrivateKey",
    "create_ca",
    "issue_client_cert",
    "issue_ocsp_responder_cert",
    "issue_server_cert",
    "new_private_key",
    "self_signed_client_cert",
]

_CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH
_SERVER_AUTH = ExtendedKeyUsageOID.SERVER_AUTH
_OCSP_SIGNING = ExtendedKeyUsageOID.OCSP_SIGNING

# Certificates start a little in the past so a peer whose clock is behind still accepts them.
_BACKDATE = timedelta(minutes=5)


def _utc(when: datetime) -> datetime:
    """A timezone-aware UTC datetime (a naive one is taken as UTC), whole seconds."""
    aware = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return aware.replace(microsecond=0)


def _validity(
    days: int, not_before: datetime | None, not_after: datetime | None
) -> tuple[datetime, datetime]:
    start = _utc(not_before) if not_before is not None else _utc(datetime.now(UTC) - _BACKDATE)
    end = _utc(not_after) if not_after is not None else start + timedelta(days=days)
    if end <= start:
        raise ValueError(f"not_after ({end.isoformat()}) must be later than not_before ({start.isoformat()})")
    return start, end


def _name(subject_dn: str | x509.Name) -> x509.Name:
    return subject_dn if isinstance(subject_dn, x509.Name) else parse_dn(subject_dn)


def _aki(issuer_cert: x509.Certificate | None, issuer_key: PrivateKey) -> x509.AuthorityKeyIdentifier:
    """AKI pointing at the issuer's SKI when it has one, else derived from the issuer's public key."""
    if issuer_cert is not None:
        try:
            ski = issuer_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            pass
        else:
            return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    return x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())


def _san(
    dns: Sequence[str] = (), uris: Sequence[str] = (), ips: Sequence[str] = (), emails: Sequence[str] = ()
) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    for ip in ips:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            raise ValueError(f"{ip!r} is not an IP address") from None
    names += [x509.RFC822Name(e) for e in emails]
    return names


def _revocation_pointers(crl_urls: Sequence[str], ocsp_urls: Sequence[str]) -> list[x509.ExtensionType]:
    """RFC 5280 4.2.1.13 CRL distribution points and 4.2.2.1 the OCSP responders (AIA), as given."""
    out: list[x509.ExtensionType] = []
    if crl_urls:
        uris = [x509.UniformResourceIdentifier(url) for url in crl_urls]
        out.append(x509.CRLDistributionPoints([x509.DistributionPoint([u], None, None, None) for u in uris]))
    if ocsp_urls:
        ocsp = AuthorityInformationAccessOID.OCSP
        uris = [x509.UniformResourceIdentifier(url) for url in ocsp_urls]
        out.append(x509.AuthorityInformationAccess([x509.AccessDescription(ocsp, u) for u in uris]))
    return out


def _key_usage(key: PrivateKey, *, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a leaf signs, and an RSA leaf may also encipher keys."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not ca and isinstance(key, rsa.RSAPrivateKey),
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _certificate(
    subject: x509.Name,
    issuer: tuple[x509.Certificate, PrivateKey] | None,
    key: PrivateKey | None,
    validity: tuple[datetime, datetime],
    *,
    ca: bool = False,
    path_length: int | None = None,
    eku: x509.ObjectIdentifier | None = None,
    san: Sequence[x509.GeneralName] = (),
    extra: Sequence[x509.ExtensionType] = (),
) -> tuple[x509.Certificate, PrivateKey]:
    """The one builder: a CA (no ``eku``) or a leaf, signed by ``issuer`` or, without one, self-signed."""
    if eku is not None and not san and not subject.rdns:
        raise ValueError("a certificate needs a subject DN or at least one subject alternative name")
    key = key if key is not None else new_private_key()
    issuer_cert, issuer_key = issuer if issuer is not None else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(_key_usage(key, ca=ca), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = builder.add_extension(ski, critical=False)
    builder = builder.add_extension(_aki(issuer_cert, issuer_key), critical=False)
    if san:
        # RFC 5280 4.2.1.6: the SAN extension is critical when the subject is empty.
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=not subject.rdns)
    for extension in extra:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key)), key


def create_ca(
    subject_dn: str | x509.Name = "CN=certbound development CA",
    *,
    key: PrivateKey | None = None,
    days: int = 3650,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
    path_length: int | None = None,
    crl_urls: Sequence[str] = (),
    ocsp_urls: Sequence[str] = (),
) -> tuple[x509.Certificate, PrivateKey]:
    """Create a self-signed root CA, or an intermediate CA signed by ``issuer`` (cert, key).

    `crl_urls` / `ocsp_urls` (an intermediate's) say where its issuer publishes its revocation status.
    """
    validity = _validity(days, not_before, not_after)
    extra = _revocation_pointers(crl_urls, ocsp_urls)
    name = _name(subject_dn)
    return _certificate(name, issuer, key, validity, ca=True, path_length=path_length, extra=extra)


def issue_server_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    hosts: Sequence[str] = ("localhost", "127.0.0.1", "::1"),
    subject_dn: str | x509.Name = "CN=localhost",
    key: PrivateKey | None = None,
    days: int = 825,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[x509.Certificate, PrivateKey]:
    """Issue a TLS server certificate (EKU serverAuth); hosts that parse as IPs become IP SANs."""
    dns: list[str] = []
    ips: list[str] = []
    for host in hosts:
        try:
            ipaddress.ip_address(host)
        except ValueError:
            dns.append(host)
        else:
            ips.append(host)
    validity = _validity(days, not_before, not_after)
    san = _san(dns=dns, ips=ips)
    return _certificate(_name(subject_dn), (ca_cert, ca_key), key, validity, eku=_SERVER_AUTH, san=san)


def issue_client_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    subject_dn: str | x509.Name,
    *,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    key: PrivateKey | None = None,
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    crl_urls: Sequence[str] = (),
    ocsp_urls: Sequence[str] = (),
) -> tuple[x509.Certificate, PrivateKey]:
    """Issue a client certificate (EKU clientAuth); no SAN extension at all when no SAN is given.

    `crl_urls` become its CRL distribution points, `ocsp_urls` the OCSP responders of its AIA.
    """
    validity = _validity(days, not_before, not_after)
    san = _san(dns, uris, ips, emails)
    extra = _revocation_pointers(crl_urls, ocsp_urls)
    return _certificate(
        _name(subject_dn), (ca_cert, ca_key), key, validity, eku=_CLIENT_AUTH, san=san, extra=extra
    )


def issue_ocsp_responder_cert(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    subject_dn: str | x509.Name = "CN=OCSP responder",
    *,
    key: PrivateKey | None = None,
    days: int = 30,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    eku: x509.ObjectIdentifier = _OCSP_SIGNING,
) -> tuple[x509.Certificate, PrivateKey]:
    """A delegated OCSP responder certificate (RFC 6960 4.2.2.2): EKU id-kp-OCSPSigning and
    id-pkix-ocsp-nocheck. `eku` exists so that tests can make one without the OCSPSigning usage."""
    validity = _validity(days, not_before, not_after)
    return _certificate(
        _name(subject_dn),
        (ca_cert, ca_key),
        key,
        validity,
        eku=eku,
        extra=[x509.OCSPNoCheck()],
    )


def self_signed_client_cert(
    subject_dn: str | x509.Name,
    *,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ips: Sequence[str] = (),
    emails: Sequence[str] = (),
    key: PrivateKey | None = None,
    days: int = 365,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    ca: bool = False,
) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed client certificate (``self_signed_tls_client_auth``).

    ``ca=True`` sets BasicConstraints CA:TRUE and keyCertSign, to prove that such a registered
    certificate still cannot issue certificates for other clients.
    """
    validity = _validity(days, not_before, not_after)
    san = _san(dns, uris, ips, emails)
    return _certificate(_name(subject_dn), None, key, validity, ca=ca, eku=_CLIENT_AUTH, san=san)
