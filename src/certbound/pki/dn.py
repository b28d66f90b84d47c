"""Distinguished names: parse RFC 4514 strings and compare DNs by meaning (RFC 4517 distinguishedNameMatch).

``tls_client_auth`` clients register ``tls_client_auth_subject_dn`` as a string; the certificate carries
an ASN.1 ``Name``. Comparing the two as strings is wrong both ways (``CN=a,O=b`` vs ``cn=A, o=B``), so we
compare canonical forms:

* attribute types by OID (``CN`` == ``commonName`` == ``2.5.4.3``);
* string values with RFC 4518 preparation, as caseIgnoreMatch does: characters mapped to nothing are
  dropped, every space character becomes U+0020, NFKC + case folding, leading/trailing spaces removed
  and inner runs of spaces folded to one. The ASN.1 string type (PrintableString, UTF8String, ...) does
  not matter. Binary (``bytes``) values compare exactly;
* **RDN order is significant.** A DN is an ordered sequence of RDNs; ``CN=a,O=b`` and ``O=b,CN=a`` are
  different DNs. RFC 4514 strings list the RDNs most-specific first (the reverse of the ASN.1 order):
  ``CN=client,O=Org,C=DE`` is the certificate subject ``C=DE / O=Org / CN=client``;
* attribute order inside a multi-valued RDN (``CN=a+UID=1``) is not significant;
* an extra (or missing) RDN means no match.

Parsing is lenient where it cannot change the meaning: attribute type names are case-insensitive,
spaces around ``,`` ``+`` and ``=`` are dropped (``CN=a, O=b`` is accepted), and more type names are
known than cryptography's defaults (``emailAddress``/``E``, ``SERIALNUMBER``, ``GN``, ``SN``, ...).
Dotted OIDs are accepted as types. Hex (``#...``) values are refused: RFC 4514 defines them as BER
encodings, which we do not decode.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Literal, TypeAlias

from cryptography import x509
from cryptography.x509.oid import NameOID, ObjectIdentifier

__all__ = [
    "CanonicalDN",
    "canonical_dn",
    "cert_name_text",
    "dn_matches",
    "dn_to_rfc4514",
    "parse_dn",
]

CanonicalAVA: TypeAlias = tuple[str, str | bytes]
CanonicalRDN: TypeAlias = tuple[CanonicalAVA, ...]
CanonicalDN: TypeAlias = tuple[CanonicalRDN, ...]

# Every name we accept for an attribute type (compared case-insensitively).
_TYPE_NAMES: dict[str, ObjectIdentifier] = {
    "cn": NameOID.COMMON_NAME,
    "commonname": NameOID.COMMON_NAME,
    "c": NameOID.COUNTRY_NAME,
    "countryname": NameOID.COUNTRY_NAME,
    "l": NameOID.LOCALITY_NAME,
    "localityname": NameOID.LOCALITY_NAME,
    "st": NameOID.STATE_OR_PROVINCE_NAME,
    "s": NameOID.STATE_OR_PROVINCE_NAME,
    "stateorprovincename": NameOID.STATE_OR_PROVINCE_NAME,
    "o": NameOID.ORGANIZATION_NAME,
    "organizationname": NameOID.ORGANIZATION_NAME,
    "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "organizationalunitname": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "street": NameOID.STREET_ADDRESS,
    "streetaddress": NameOID.STREET_ADDRESS,
    "dc": NameOID.DOMAIN_COMPONENT,
    "domaincomponent": NameOID.DOMAIN_COMPONENT,
    "uid": NameOID.USER_ID,
    "userid": NameOID.USER_ID,
    "emailaddress": NameOID.EMAIL_ADDRESS,
    "email": NameOID.EMAIL_ADDRESS,
    "e": NameOID.EMAIL_ADDRESS,
    "serialnumber": NameOID.SERIAL_NUMBER,
    "sn": NameOID.SURNAME,
    "surname": NameOID.SURNAME,
    "gn": NameOID.GIVEN_NAME,
    "givenname": NameOID.GIVEN_NAME,
    "t": NameOID.TITLE,
    "title": NameOID.TITLE,
    "initials": NameOID.INITIALS,
    "generationqualifier": NameOID.GENERATION_QUALIFIER,
    "dnqualifier": NameOID.DN_QUALIFIER,
    "pseudonym": NameOID.PSEUDONYM,
    "postalcode": NameOID.POSTAL_CODE,
    "businesscategory": NameOID.BUSINESS_CATEGORY,
    "organizationidentifier": NameOID.ORGANIZATION_IDENTIFIER,
    "jurisdictionc": NameOID.JURISDICTION_COUNTRY_NAME,
    "jurisdictioncountryname": NameOID.JURISDICTION_COUNTRY_NAME,
    "jurisdictionst": NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME,
    "jurisdictionstateorprovincename": NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME,
    "jurisdictionl": NameOID.JURISDICTION_LOCALITY_NAME,
    "jurisdictionlocalityname": NameOID.JURISDICTION_LOCALITY_NAME,
    "unstructuredname": NameOID.UNSTRUCTURED_NAME,
}

# How we write the types cryptography has no short name for (RFC 4514 output).
_OUTPUT_NAMES: dict[ObjectIdentifier, str] = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.INITIALS: "initials",
    NameOID.GENERATION_QUALIFIER: "generationQualifier",
    NameOID.DN_QUALIFIER: "dnQualifier",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
    NameOID.UNSTRUCTURED_NAME: "unstructuredName",
}


class _CaseInsensitiveTypes(Mapping[str, ObjectIdentifier]):
    """The attribute-type table handed to cryptography's parser, looked up case-insensitively."""

    def __getitem__(self, key: str) -> ObjectIdentifier:
        return _TYPE_NAMES[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(_TYPE_NAMES)

    def __len__(self) -> int:
        return len(_TYPE_NAMES)


_TYPES = _CaseInsensitiveTypes()
_OID_RE = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))+")
_DESCR_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_UNESCAPED_SPACE = " \t\r\n"
# RFC 4518 section 2.2: characters "mapped to nothing" (soft hyphen, joiners, variation selectors, ...).
_MAPPED_TO_NOTHING = re.compile(
    "[\u00ad\u034f\u1806\u180b-\u180e\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff\ufffc]"
)


def _split_unescaped(s: str, seps: str) -> list[tuple[str, str]]:
    """Split ``s`` at unescaped separator characters; yields (piece, separator-that-ended-it)."""
    out: list[tuple[str, str]] = []
    start = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":
            i += 2  # the escaped character (or first hex digit) is never a separator
            continue
        if ch in seps:
            out.append((s[start:i], ch))
            start = i + 1
        i += 1
    out.append((s[start:], ""))
    return out


def _strip_value(value: str) -> str:
    """Remove unescaped surrounding whitespace, keeping an escaped trailing space (``a\\ ``)."""
    value = value.lstrip(_UNESCAPED_SPACE)
    end = len(value)
    while end > 0 and value[end - 1] in _UNESCAPED_SPACE:
        # count the backslashes before this space: odd means it is escaped and must stay
        j = end - 1
        backslashes = 0
        while j > 0 and value[j - 1] == "\\":
            backslashes += 1
            j -= 1
        if backslashes % 2 == 1:
            break
        end -= 1
    return value[:end]


def _tidy(s: str) -> str:
    """Rewrite ``s`` as strict RFC 4514 (no stray spaces), checking each attribute type and value."""
    rdns: list[str] = []
    for rdn, _sep in _split_unescaped(s, ","):
        avas: list[str] = []
        for ava, _plus in _split_unescaped(rdn, "+"):
            attr_type, eq, value = ava.partition("=")
            attr_type = attr_type.strip()
            if not eq:
                raise ValueError(f"{ava.strip()!r} is not of the form TYPE=value")
            if not attr_type:
                raise ValueError(f"missing attribute type before '={value.strip()}'")
            if _OID_RE.fullmatch(attr_type) is None:
                if _DESCR_RE.fullmatch(attr_type) is None:
                    raise ValueError(f"{attr_type!r} is not an attribute type name or dotted OID")
                if attr_type.lower() not in _TYPE_NAMES:
                    raise ValueError(f"unknown attribute type {attr_type!r} (use its dotted OID)")
            value = _strip_value(value)
            if not value:
                raise ValueError(f"empty value for {attr_type}")
            if value.startswith("#"):
                raise ValueError(
                    f"hex-encoded value for {attr_type} is not supported; write it as a string "
                    "(escape a leading '#' as '\\#')"
                )
            avas.append(f"{attr_type}={value}")
        rdns.append("+".join(avas))
    return ",".join(rdns)


def parse_dn(s: str) -> x509.Name:
    """Parse an RFC 4514 string (most-specific RDN first) into an ``x509.Name``.

    Raises ``ValueError`` with a message that says what is wrong. The empty string is refused: an
    empty DN identifies nobody.
    """
    if not isinstance(s, str):
        raise TypeError(f"a distinguished name string is required, not {type(s).__name__}")
    if not s.strip():
        raise ValueError("invalid distinguished name: it is empty")
    try:
        tidy = _tidy(s)
        return x509.Name.from_rfc4514_string(tidy, _TYPES)
    except ValueError as exc:
        why = str(exc) or 'bad RFC 4514 syntax (special characters , + " \\ < > ; must be escaped)'
        raise ValueError(f"invalid distinguished name {s!r}: {why}") from None


def _fold_value(value: str) -> str:
    """RFC 4518 string preparation for caseIgnoreMatch, with insignificant space handling."""
    value = _MAPPED_TO_NOTHING.sub("", value)
    value = unicodedata.normalize("NFKC", value)
    value = unicodedata.normalize("NFKC", value.casefold())
    return " ".join(value.split())


def _as_name(name: x509.Name | str) -> x509.Name:
    if isinstance(name, x509.Name):
        return name
    return parse_dn(name)


def canonical_dn(name: x509.Name | str) -> CanonicalDN:
    """A hashable canonical form: equal exactly when the DNs match (usable as a dict key).

    The outer tuple follows the ASN.1 RDN order (least specific first, as in ``x509.Name``); each RDN
    is a sorted tuple of ``(dotted OID, folded value)`` pairs.
    """
    out: list[CanonicalRDN] = []
    for rdn in _as_name(name).rdns:
        avas: list[CanonicalAVA] = []
        for attr in rdn:
            value = attr.value
            avas.append((attr.oid.dotted_string, value if isinstance(value, bytes) else _fold_value(value)))
        avas.sort(key=lambda ava: (ava[0], isinstance(ava[1], bytes), ava[1]))
        out.append(tuple(avas))
    return tuple(out)


def dn_matches(a: x509.Name | str, b: x509.Name | str) -> bool:
    """True when the two DNs are the same name (RFC 4517 distinguishedNameMatch, see module doc).

    A string that does not parse raises ``ValueError``; callers comparing registered metadata should
    have validated it at registration.
    """
    return canonical_dn(a) == canonical_dn(b)


def dn_to_rfc4514(name: x509.Name | str) -> str:
    """The RFC 4514 string (most-specific RDN first) of a name, with readable names for common types."""
    return _as_name(name).rfc4514_string(_OUTPUT_NAMES)


def cert_name_text(cert: x509.Certificate, part: Literal["subject", "issuer"]) -> str:
    """`dn_to_rfc4514` of `cert`'s subject or issuer, for logs, records and messages; ``(undecodable)``
    when cryptography cannot decode the name (a Latin-1 TeletexString, as OpenSSL writes one): it
    loads such a certificate and raises only when the name is read, so the read happens in here."""
    try:
        return dn_to_rfc4514(cert.subject if part == "subject" else cert.issuer)
    except ValueError:
        return "(undecodable)"
