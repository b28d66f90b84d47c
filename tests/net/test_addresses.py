"""The SSRF guard's address policy: which addresses count as public, and when private ones are allowed."""

from __future__ import annotations

import ipaddress

import pytest

from certbound.net.addresses import MAX_ADDRESSES, AddressPolicy, is_public_address
from certbound.net.errors import FetchError
from tests.net.docserver import resolver_for

PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1"]
NOT_PUBLIC = [
    "127.0.0.1",  # loopback
    "10.1.2.3",  # private
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local (cloud metadata)
    "0.0.0.0",  # noqa: S104 - unspecified
    "100.64.0.1",  # shared (CGNAT)
    "240.0.0.1",  # reserved
    "224.0.0.1",  # multicast
    "::1",
    "fe80::1",
    "fc00::1",  # unique local
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",
    "ff02::1",
    "64:ff9b::7f00:1",  # NAT64 (RFC 6052) of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the cloud metadata address
    "64:ff9b:1::a00:1",  # RFC 8215 local-use translation prefix
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",  # IPv4-compatible, even of a public address
]


@pytest.mark.parametrize("address", PUBLIC)
def test_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", NOT_PUBLIC)
def test_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


def policy(**kwargs: object) -> AddressPolicy:
    options: dict[str, object] = {
        "issuer_url": "https://as.example.com",
        "resolver": resolver_for({"as.example.com": ["93.184.216.34"]}),
    }
    options.update(kwargs)
    return AddressPolicy(**options)  # type: ignore[arg-type]


async def test_public_names_and_literals_pass() -> None:
    resolver = resolver_for({"as.example.com": ["93.184.216.34"], "jwks.example.com": ["8.8.8.8"]})
    p = policy(resolver=resolver)
    assert await p.addresses("jwks.example.com", 443) == [ipaddress.ip_address("8.8.8.8")]
    assert await p.addresses("93.184.216.34", 443) == [ipaddress.ip_address("93.184.216.34")]


async def test_one_private_address_refuses_the_name() -> None:
    resolver = resolver_for({"as.example.com": ["93.184.216.34"], "evil.test": ["8.8.8.8", "10.0.0.7"]})
    with pytest.raises(
        FetchError, match=r"refused: evil\.test resolves to the non-public address 10\.0\.0\.7"
    ):
        await policy(resolver=resolver).addresses("evil.test", 443)


async def test_private_literal_refused_unless_allowed() -> None:
    with pytest.raises(FetchError, match="outbound_allow_private"):
        await policy().addresses("127.0.0.1", 443)
    assert await policy(allow_private=True).addresses("127.0.0.1", 443) == [ipaddress.ip_address("127.0.0.1")]


@pytest.mark.parametrize(
    "issuer", ["https://127.0.0.1:8443", "https://localhost:8443", "https://as.localhost", "https://[::1]/"]
)
async def test_private_issuer_allows_private_targets(issuer: str) -> None:
    assert await policy(issuer_url=issuer).addresses("10.0.0.7", 443)


async def test_issuer_resolving_to_private_addresses_only() -> None:
    resolver = resolver_for({"as.lab": ["10.0.0.1", "192.168.0.1"], "api.lab": ["10.0.0.2"]})
    assert await policy(issuer_url="https://as.lab", resolver=resolver).addresses("api.lab", 443)
    mixed = resolver_for({"as.lab": ["10.0.0.1", "8.8.8.8"], "api.lab": ["10.0.0.2"]})
    with pytest.raises(FetchError, match="non-public"):
        await policy(issuer_url="https://as.lab", resolver=mixed).addresses("api.lab", 443)


async def test_unresolvable_issuer_counts_as_public() -> None:
    p = policy(issuer_url="https://nowhere.test", resolver=resolver_for({}))
    assert not await p.issuer_is_private()
    with pytest.raises(FetchError, match="non-public"):
        await p.addresses("127.0.0.1", 443)


async def test_no_issuer_is_public() -> None:
    p = AddressPolicy(resolver=resolver_for({}))
    assert not await p.issuer_is_private()


async def test_resolution_failures() -> None:
    with pytest.raises(FetchError, match=r"cannot resolve nowhere\.test"):
        await policy().addresses("nowhere.test", 443)
    empty = resolver_for({"as.example.com": ["93.184.216.34"], "empty.test": []})
    with pytest.raises(FetchError, match=r"empty\.test has no address"):
        await policy(resolver=empty).addresses("empty.test", 443)


async def test_at_most_three_addresses_and_zones_dropped() -> None:
    many = [f"8.8.8.{i}" for i in range(1, 8)]
    resolver = resolver_for(
        {"as.example.com": ["93.184.216.34"], "many.test": many, "v6.test": ["fe80::1%eth0"]}
    )
    assert len(await policy(resolver=resolver).addresses("many.test", 443)) == MAX_ADDRESSES
    found = await policy(resolver=resolver, allow_private=True).addresses("v6.test", 443)
    assert found == [ipaddress.ip_address("fe80::1")]
