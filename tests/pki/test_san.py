"""SAN extraction and the strict RFC 8705 SAN comparisons."""

from __future__ import annotations

import ipaddress

import pytest

from certbound.pki.issue import issue_client_cert
from certbound.pki.san import SubjectAltNames, dns_matches, email_matches, ip_matches, uri_matches

from .conftest import CertAndKey


def test_from_cert_reads_every_kind(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(
        *root_ca,
        "CN=c",
        dns=["A.example.com"],
        uris=["spiffe://example.com/c"],
        ips=["192.0.2.1", "2001:db8::1"],
        emails=["Alice@Example.com"],
    )
    sans = SubjectAltNames.from_cert(cert)
    assert sans.dns == ("A.example.com",)
    assert sans.uris == ("spiffe://example.com/c",)
    assert sans.ips == (ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1"))
    assert sans.emails == ("Alice@Example.com",)
    assert sans
    assert sans.has_dns("a.example.com")
    assert sans.has_uri("spiffe://example.com/c")
    assert sans.has_ip("2001:0db8:0:0:0:0:0:1")
    assert sans.has_email("Alice@example.COM")
    assert not sans.has_email("alice@example.com")


def test_no_san_extension_gives_empty(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(*root_ca, "CN=dn-only")
    sans = SubjectAltNames.from_cert(cert)
    assert sans == SubjectAltNames()
    assert not sans
    assert not sans.has_dns("dn-only")


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("client.example.com", "client.example.com", True),
        ("Client.Example.COM", "client.example.com", True),
        ("client.example.com.", "client.example.com", True),
        ("client.example.com", "CLIENT.EXAMPLE.COM.", True),
        ("client.example.com", "client.example.org", False),
        ("example.com", "client.example.com", False),
        ("a.example.com", "*.example.com", False),  # a presented wildcard is never expanded
        ("*.example.com", "a.example.com", False),  # a registered wildcard matches nothing
        ("*.example.com", "*.example.com", False),
        ("", "", False),
        (".", ".", False),
        ("client.example.com..", "client.example.com.", False),
    ],
)
def test_dns_matches(registered: str, presented: str, expected: bool) -> None:
    assert dns_matches(registered, presented) is expected


def test_non_ascii_dns_is_compared_exactly() -> None:
    assert dns_matches("bücher.example", "bücher.example")
    assert not dns_matches("BÜCHER.example", "bücher.example")
    assert not dns_matches("bücher.example", "xn--bcher-kva.example")


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("https://client.example.com/a", "https://client.example.com/a", True),
        ("https://client.example.com/a", "https://CLIENT.example.com/a", False),
        ("https://client.example.com/a", "https://client.example.com/a/", False),
        ("", "", False),
    ],
)
def test_uri_matches_exactly(registered: str, presented: str, expected: bool) -> None:
    assert uri_matches(registered, presented) is expected


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("::1", "0:0:0:0:0:0:0:1", True),
        ("0:0:0:0:0:0:0:1", "::1", True),
        ("2001:DB8::1", "2001:db8:0::1", True),
        ("192.0.2.1", "192.0.2.1", True),
        (" 192.0.2.1 ", "192.0.2.1", True),
        ("192.0.2.1", "192.0.2.2", False),
        ("192.0.2.1", "::ffff:192.0.2.1", False),  # IPv4 vs IPv4-mapped IPv6: different values
        ("::ffff:192.0.2.1", "192.0.2.1", False),
        ("127.0.0.1", "::1", False),
        ("not-an-ip", "192.0.2.1", False),
        ("192.0.2.0/24", "192.0.2.1", False),
        ("", "::1", False),
    ],
)
def test_ip_matches(registered: str, presented: str, expected: bool) -> None:
    assert ip_matches(registered, ipaddress.ip_address(presented)) is expected


@pytest.mark.parametrize(
    ("registered", "presented", "expected"),
    [
        ("alice@example.com", "alice@example.com", True),
        ("alice@Example.COM", "alice@example.com", True),
        ("Alice@example.com", "alice@example.com", False),  # local part is exact
        ("alice@example.com", "alice@sub.example.com", False),
        ("example.com", "example.com", False),  # a domain is not a mailbox
        ("@example.com", "@example.com", False),
        ("alice@", "alice@", False),
        ('"a@b"@example.com', '"a@b"@EXAMPLE.com', True),
    ],
)
def test_email_matches(registered: str, presented: str, expected: bool) -> None:
    assert email_matches(registered, presented) is expected


def test_email_is_not_a_dns_name(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(*root_ca, "CN=c", dns=["alice.example.com"], emails=["alice@example.com"])
    sans = SubjectAltNames.from_cert(cert)
    assert not sans.has_dns("alice@example.com")
    assert not sans.has_email("alice.example.com")
    assert not sans.has_uri("alice@example.com")
