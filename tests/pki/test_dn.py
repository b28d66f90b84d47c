"""RFC 4514 parsing and distinguished-name comparison by meaning."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from certbound.pki.dn import canonical_dn, dn_matches, dn_to_rfc4514, parse_dn
from certbound.pki.issue import self_signed_client_cert


def test_parse_orders_rdns_most_specific_last_in_asn1() -> None:
    name = parse_dn("CN=client,O=Org,C=DE")
    assert [rdn.rfc4514_string() for rdn in name.rdns] == ["C=DE", "O=Org", "CN=client"]


@pytest.mark.parametrize(
    "other",
    [
        "CN=client,O=Org,C=DE",
        "cn=CLIENT,o=org,c=de",
        "CN=  client ,O=Org,C=DE",
        "CN=client, O=Org, C=DE",
        "2.5.4.3=client,2.5.4.10=Org,2.5.4.6=DE",
        "commonName=client,organizationName=Org,countryName=DE",
        "CN=client,O=Org,C=de",
    ],
)
def test_same_dn_written_differently_matches(other: str) -> None:
    assert dn_matches("CN=client,O=Org,C=DE", other)


def test_inner_runs_of_spaces_fold_to_one() -> None:
    assert dn_matches("CN=my   client,O=Org", "CN=my client,O=Org")
    assert not dn_matches("CN=myclient,O=Org", "CN=my client,O=Org")


def test_unicode_case_and_compatibility_forms() -> None:
    assert dn_matches("CN=STRASSE", "CN=straße")
    assert dn_matches("CN=ｃｌｉｅｎｔ", "CN=client")  # fullwidth letters, NFKC
    assert dn_matches("CN=Ünïcode", "CN=ünïcode")


def test_rdn_order_is_significant() -> None:
    assert not dn_matches("CN=client,O=Org", "O=Org,CN=client")


def test_multi_valued_rdn_order_is_not_significant() -> None:
    assert dn_matches("CN=client+UID=42,O=Org", "UID=42+CN=client,O=Org")
    assert not dn_matches("CN=client+UID=42,O=Org", "CN=client,UID=42,O=Org")


def test_extra_or_missing_rdn_never_matches() -> None:
    assert not dn_matches("CN=client,O=Org", "CN=client,O=Org,C=DE")
    assert not dn_matches("CN=client,O=Org,C=DE", "CN=client,O=Org")
    assert not dn_matches("CN=client,O=Org", "CN=client,OU=Unit,O=Org")


def test_different_values_or_types_do_not_match() -> None:
    assert not dn_matches("CN=client,O=Org", "CN=client2,O=Org")
    assert not dn_matches("CN=client,O=Org", "CN=client,OU=Org")


def test_escaped_characters() -> None:
    name = parse_dn(r"CN=Doe\, John,O=A\+B")
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Doe, John"
    assert name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "A+B"
    assert dn_matches(r"CN=Doe\, John,O=A\+B", r"cn=doe\, john,o=a\+b")
    assert not dn_matches(r"CN=Doe\, John", "CN=Doe,CN=John")
    assert parse_dn(r"CN=\#hash").rdns[0].rfc4514_string() == r"CN=\#hash"
    assert parse_dn(r"CN=caf\C3\A9").get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "café"


def test_escaped_trailing_space_is_kept_when_parsing() -> None:
    name = parse_dn(r"CN=a\ ,O=b")
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "a "


def test_extra_attribute_type_keywords() -> None:
    name = parse_dn("emailAddress=a@example.com,E=b@example.com,SERIALNUMBER=123,GN=Ann,SN=Lee,CN=x")
    assert [a.oid for a in name] == [
        NameOID.COMMON_NAME,
        NameOID.SURNAME,
        NameOID.GIVEN_NAME,
        NameOID.SERIAL_NUMBER,
        NameOID.EMAIL_ADDRESS,
        NameOID.EMAIL_ADDRESS,
    ]
    assert dn_matches("1.2.840.113549.1.9.1=a@example.com", "emailaddress=A@EXAMPLE.COM")


def test_dotted_oid_type() -> None:
    name = parse_dn("1.3.6.1.4.1.99999.1=custom,CN=x")
    assert name.rdns[-1].rfc4514_string() == "1.3.6.1.4.1.99999.1=custom"


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("CN", "not of the form"),
        ("=x", "missing attribute type"),
        ("foo=bar", "unknown attribute type"),
        ("C N=x", "not an attribute type"),
        ("CN=a,,O=b", "not of the form"),
        ("CN=", "empty value"),
        ("CN=a;O=b", "RFC 4514"),
        ('CN="quoted"', "invalid distinguished name"),
        ("CN=a\\", "RFC 4514"),
        ("CN=#0C0141", "hex-encoded"),
        ("C=DEU", "invalid distinguished name"),
    ],
)
def test_bad_syntax_is_a_clear_value_error(bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_dn(bad)


def test_dn_matches_raises_for_a_bad_string() -> None:
    with pytest.raises(ValueError, match="invalid distinguished name"):
        dn_matches("CN=x", "CN=x;")


def test_certificate_subject_matches_registered_string() -> None:
    cert, _ = self_signed_client_cert("CN=demo-client,O=certbound demo")
    assert dn_matches(cert.subject, "cn=Demo-Client, o=Certbound Demo")
    assert not dn_matches(cert.subject, "O=certbound demo,CN=demo-client")


def test_canonical_form_is_a_dict_key() -> None:
    registry = {canonical_dn("CN=client,O=Org"): "client-1"}
    assert registry.get(canonical_dn("cn=CLIENT , o=org")) == "client-1"
    assert registry.get(canonical_dn("O=Org,CN=client")) is None


def test_canonical_form_of_a_name_object() -> None:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "  A  b ")])
    assert canonical_dn(name) == ((("2.5.4.3", "a b"),),)


def test_bytes_values_compare_exactly() -> None:
    uid = x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x00\x01", x509.name._ASN1Type.BitString)
    a = x509.Name([x509.RelativeDistinguishedName([uid])])
    assert canonical_dn(a) == ((("2.5.4.45", b"\x00\x01"),),)


def test_dn_to_rfc4514_round_trips() -> None:
    text = r"CN=Doe\, John+UID=7,emailAddress=x@example.com,O=Org"
    out = dn_to_rfc4514(text)
    assert out == r"CN=Doe\, John+UID=7,emailAddress=x@example.com,O=Org"
    assert dn_matches(parse_dn(out), text)


# A DN built from simple words, with per-attribute case and spacing variations.
_word = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.", min_size=1, max_size=12
)
_types = st.sampled_from(
    [("CN", "commonName", "2.5.4.3"), ("O", "organizationName", "2.5.4.10"), ("OU", "ou", "2.5.4.11")]
)


@st.composite
def _dn_and_variant(draw: st.DrawFn) -> tuple[str, str]:
    parts = draw(st.lists(st.tuples(_types, st.lists(_word, min_size=1, max_size=3)), min_size=1, max_size=4))
    plain: list[str] = []
    variant: list[str] = []
    for aliases, words in parts:
        plain.append(f"{aliases[0]}={' '.join(words)}")
        alias = draw(st.sampled_from(aliases))
        alias = draw(st.sampled_from([alias, alias.lower(), alias.upper()]))
        gaps = [" " * draw(st.integers(1, 3)) for _ in words[1:]]
        value = words[0] + "".join(g + w for g, w in zip(gaps, words[1:], strict=True))
        value = draw(st.sampled_from([value, value.upper(), value.lower(), value.swapcase()]))
        pad_left = " " * draw(st.integers(0, 2))
        pad_right = " " * draw(st.integers(0, 2))
        variant.append(f"{pad_left}{alias}={value}{pad_right}")
    return ",".join(plain), ",".join(variant)


@given(_dn_and_variant())
def test_case_and_spacing_variants_compare_equal(pair: tuple[str, str]) -> None:
    plain, variant = pair
    assert dn_matches(plain, variant)
    assert canonical_dn(plain) == canonical_dn(variant)
    assert hash(canonical_dn(plain)) == hash(canonical_dn(variant))


@given(_dn_and_variant())
def test_reversing_the_rdn_sequence_matches_only_a_palindrome(pair: tuple[str, str]) -> None:
    plain, _ = pair
    reversed_dn = ",".join(reversed(plain.split(",")))
    canon = canonical_dn(plain)
    assert dn_matches(plain, reversed_dn) == (canon == tuple(reversed(canon)))
