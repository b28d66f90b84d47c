"""Subject alternative names of a certificate and the RFC 8705 section 2.1.2 comparisons.

``tls_client_auth`` clients may be identified by exactly one registered SAN value
(``tls_client_auth_san_dns``, ``_san_uri``, ``_san_ip``, ``_san_email``). The comparisons here are
deliberately strict and fail closed:

* DNS: ASCII case-insensitive, one trailing dot ignored, **never** wildcard matching in either
  direction (a presented ``*.example.com`` is the literal string ``*.example.com``, and a registered
  value containing ``*`` matches nothing). Non-ASCII names are compared exactly: register the A-label
  (``xn--...``) form the certificate carries.
* URI: exact string comparison (RFC 8705 gives no normalisation).
* IP: binary comparison of the parsed addresses (``::1`` == ``0:0:0:0:0:0:0:1``). An IPv4 address and
  its IPv4-mapped IPv6 form (``::ffff:192.0.2.1``) are different values: a certificate states one
  byte string and we do not widen it.
* email (rfc822Name only, never the subject's emailAddress attribute): local part exact, domain
  ASCII case-insensitive.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from cryptography import x509

__all__ = [
    "IPAddress",
    "SubjectAltNames",
    "dns_matches",
    "email_matches",
    "ip_matches",
    "uri_matches",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SubjectAltNames:
    """The SAN values of a certificate by kind, in certificate order."""

    dns: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    ips: tuple[IPAddress, ...] = ()
    emails: tuple[str, ...] = ()

    @classmethod
    def from_cert(cls, cert: x509.Certificate) -> SubjectAltNames:
        """Read the SAN extension (empty when absent). Raises ``ValueError`` if it cannot be decoded."""
        try:
            ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return cls()
        ips = tuple(
            ip
            for ip in ext.get_values_for_type(x509.IPAddress)
            if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
        )
        return cls(
            dns=tuple(ext.get_values_for_type(x509.DNSName)),
            uris=tuple(ext.get_values_for_type(x509.UniformResourceIdentifier)),
            ips=ips,
            emails=tuple(ext.get_values_for_type(x509.RFC822Name)),
        )

    def __bool__(self) -> bool:
        return bool(self.dns or self.uris or self.ips or self.emails)

    def has_dns(self, registered: str) -> bool:
        """True when any DNS SAN matches the registered ``tls_client_auth_san_dns`` value."""
        return any(dns_matches(registered, presented) for presented in self.dns)

    def has_uri(self, registered: str) -> bool:
        """True when any URI SAN equals the registered ``tls_client_auth_san_uri`` value."""
        return any(uri_matches(registered, presented) for presented in self.uris)

    def has_ip(self, registered: str) -> bool:
        """True when any IP SAN equals the registered ``tls_client_auth_san_ip`` value."""
        return any(ip_matches(registered, presented) for presented in self.ips)

    def has_email(self, registered: str) -> bool:
        """True when any rfc822Name SAN matches the registered ``tls_client_auth_san_email`` value."""
        return any(email_matches(registered, presented) for presented in self.emails)


def _dns_key(name: str) -> str | None:
    """The comparison form of a DNS name, or None when it can never match."""
    if not name or "*" in name:
        return None
    if name.endswith("."):
        name = name[:-1]
    if not name or name.startswith(".") or name.endswith("."):
        return None
    return name.lower() if name.isascii() else name


def dns_matches(registered: str, presented: str) -> bool:
    """DNS name equality: ASCII case-insensitive, one trailing dot ignored, never wildcards."""
    a, b = _dns_key(registered), _dns_key(presented)
    return a is not None and a == b


def uri_matches(registered: str, presented: str) -> bool:
    """URI equality: exact string comparison, empty never matches."""
    return bool(registered) and registered == presented


def ip_matches(registered: str, presented: IPAddress) -> bool:
    """IP equality after parsing: same address family and same bytes (see module docstring)."""
    try:
        expected = ipaddress.ip_address(registered.strip())
    except ValueError:
        return False
    return expected.version == presented.version and expected.packed == presented.packed


def _split_email(value: str) -> tuple[str, str] | None:
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        return None
    return local, domain.lower() if domain.isascii() else domain


def email_matches(registered: str, presented: str) -> bool:
    """rfc822Name equality: the local part exactly, the domain case-insensitively."""
    a, b = _split_email(registered), _split_email(presented)
    return a is not None and a == b
