"""The one subject value a ``tls_client_auth`` client registered, compiled for cheap comparison.

RFC 8705 section 2.1.2: exactly one of ``tls_client_auth_subject_dn`` / ``_san_dns`` / ``_san_uri`` /
``_san_ip`` / ``_san_email``. The comparison rules are ``certbound.pki``'s (DN by meaning, DNS
case-insensitive and never wildcard, URI exact, IP binary, email from rfc822Name SANs only); the
registered side is parsed once here, the certificate side once per certificate
(:mod:`certbound.tls.chain_verdicts`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from certbound.pki.dn import CanonicalDN, canonical_dn
from certbound.pki.san import IPAddress, SubjectAltNames, dns_matches, email_matches, uri_matches

__all__ = ["SubjectKind", "SubjectRule", "compile_subject_rule"]

SubjectKind = Literal["dn", "dns", "uri", "ip", "email"]

_FIELDS: dict[str, SubjectKind] = {
    "tls_client_auth_subject_dn": "dn",
    "tls_client_auth_san_dns": "dns",
    "tls_client_auth_san_uri": "uri",
    "tls_client_auth_san_ip": "ip",
    "tls_client_auth_san_email": "email",
}


@dataclass(frozen=True, slots=True)
class SubjectRule:
    """The registered subject value and how to compare a certificate with it."""

    kind: SubjectKind
    value: str
    dn: CanonicalDN | None = None
    ip: IPAddress | None = None

    def matches(self, subject: CanonicalDN | None, sans: SubjectAltNames) -> bool:
        """True when the certificate (its canonical subject DN and its SANs) carries the value."""
        if self.kind == "dn":
            return subject is not None and subject == self.dn
        if self.kind == "dns":
            return any(dns_matches(self.value, presented) for presented in sans.dns)
        if self.kind == "uri":
            return any(uri_matches(self.value, presented) for presented in sans.uris)
        if self.kind == "ip":
            expected = self.ip
            return expected is not None and any(
                presented.version == expected.version and presented.packed == expected.packed
                for presented in sans.ips
            )
        return any(email_matches(self.value, presented) for presented in sans.emails)


def compile_subject_rule(given: Sequence[tuple[str, object]]) -> SubjectRule:
    """The rule for the subject fields a client set (`ClientModel.tls_client_auth_subject`: name and
    value as stored); ValueError unless exactly one well-formed subject field is set."""
    if len(given) != 1:
        raise ValueError(f"tls_client_auth needs exactly one subject field, found {len(given)}")
    field, value = given[0]
    kind = _FIELDS[field]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is not a non-empty string")
    if kind == "dn":
        return SubjectRule(kind, value, dn=canonical_dn(value))  # ValueError when it does not parse
    if kind == "ip":
        return SubjectRule(kind, value, ip=ipaddress.ip_address(value.strip()))
    if kind == "dns" and "*" in value:
        raise ValueError("a wildcard DNS name is never matched")
    return SubjectRule(kind, value)
