"""Where a certificate says its revocation status is published (RFC 5280 sections 4.2.1.13, 4.2.2.1).

The OCSP responders of its Authority Information Access extension and the CRL distribution points'
full names. Only ``http`` and ``https`` URLs are kept: LDAP distribution points are not fetched (an
operator of such a PKI configures the CRL itself, ``client_ca_crls``). A malformed extension counts
as absent: the certificate then has no pointer, which the caller treats like a PKI without them.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID

__all__ = ["RevocationPointers", "revocation_pointers"]

_SCHEMES = ("http://", "https://")
_MAX_URLS = 4  # per kind: a certificate naming more is not giving us more information


@dataclass(frozen=True, slots=True)
class RevocationPointers:
    """The OCSP responder URLs and CRL URLs a certificate names, in its order."""

    ocsp: tuple[str, ...] = ()
    crl: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.ocsp or self.crl)


def _urls(names: object) -> list[str]:
    out: list[str] = []
    for name in names if isinstance(names, list | tuple) else ():
        if isinstance(name, x509.UniformResourceIdentifier):
            url = name.value
            if url.lower().startswith(_SCHEMES) and url not in out:
                out.append(url)
    return out


def revocation_pointers(cert: x509.Certificate) -> RevocationPointers:
    """The certificate's OCSP and CRL URLs (http/https only, at most a few of each)."""
    ocsp: list[str] = []
    crl: list[str] = []
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        aia = None
    if aia is not None:
        for access in aia:
            if access.access_method == AuthorityInformationAccessOID.OCSP:
                ocsp += [u for u in _urls([access.access_location]) if u not in ocsp]
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        points = None
    if points is not None:
        for point in points:
            crl += [u for u in _urls(point.full_name or []) if u not in crl]
    return RevocationPointers(tuple(ocsp[:_MAX_URLS]), tuple(crl[:_MAX_URLS]))
