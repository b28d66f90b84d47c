"""Which addresses a fetch from a URL someone else gave us may connect to (the SSRF guard).

A client's ``jwks_uri``, a CRL distribution point or an OCSP responder named in a certificate: the URL
comes from outside, so the server must not become a way to reach what only it can reach. The host is
resolved here and every address checked: loopback, private, link-local, unspecified, shared, reserved
and multicast addresses are refused unless the operator allows them (``allow_private``) or the
issuer's own host is on such an address (a development or lab set-up, where everything is). The
caller then connects to an address that was checked (:class:`certbound.net.http.GuardedFetcher`), so
the name cannot resolve differently between the check and the connection (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Final
from urllib.parse import urlsplit

from certbound.net.errors import FetchError
from certbound.pki.san import IPAddress

__all__ = [
    "MAX_ADDRESSES",
    "AddressPolicy",
    "Resolver",
    "ip_literal",
    "is_public_address",
    "system_resolver",
]

#: Resolves (host, port) to address strings, in preference order.
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_ADDRESSES: Final = 3  # addresses tried per fetch, in resolver order


#: NAT64 (RFC 6052 well-known prefix): the last 32 bits are an IPv4 address a translator reaches.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: RFC 8215's local-use translation prefix, and the deprecated IPv4-compatible addresses (``::a.b.c.d``).
_NEVER_PUBLIC = (ipaddress.IPv6Network("64:ff9b:1::/48"), ipaddress.IPv6Network("::/96"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to: IPv4-mapped, 6to4 or NAT64 (Teredo is not global)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    """True for a globally routable unicast address. An IPv6 address that leads to an IPv4 one
    (IPv4-mapped, 6to4, NAT64) is judged by that IPv4 address too, so ``64:ff9b::7f00:1`` or
    ``2002:7f00:1::1`` cannot reach a loopback or private host through a translator."""
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in network for network in _NEVER_PUBLIC):
            return False
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return embedded.is_global and not embedded.is_multicast
    return ip.is_global and not ip.is_multicast


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's resolver (``getaddrinfo``), addresses deduplicated in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in out:
            out.append(address)
    return out


def ip_literal(host: str) -> IPAddress | None:
    """The address when `host` is an IP literal, else None."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses(resolved: list[str]) -> list[IPAddress]:
    return [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolved]  # without an IPv6 zone


class AddressPolicy:
    """Resolves a host and refuses non-public addresses (see the module docstring).

    `issuer_url`: the URL this server is reached at; when its host is loopback or private, so may the
    hosts it fetches from be. `timeout` bounds resolving the issuer's host (done once).
    """

    def __init__(
        self,
        *,
        issuer_url: str | None = None,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        timeout: float = 3.0,
    ) -> None:
        self._issuer_host = (urlsplit(issuer_url).hostname or "") if issuer_url else ""
        self._allow_private = allow_private
        self._issuer_private: bool | None = None
        self._resolve = resolver or system_resolver
        self._timeout = timeout

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for `host` (at most :data:`MAX_ADDRESSES`); FetchError when it
        cannot be resolved or any of its addresses is refused."""
        literal = ip_literal(host)
        if literal is not None:
            found = [literal]
        else:
            try:
                found = _addresses(await self._resolve(host, port))
            except (OSError, ValueError) as exc:
                raise FetchError(f"cannot resolve {host}: {exc}") from None
            if not found:
                raise FetchError(f"{host} has no address")
        private = [ip for ip in found if not is_public_address(ip)]
        if private and not self._allow_private and not await self.issuer_is_private():
            raise FetchError(
                f"refused: {host} resolves to the non-public address {private[0]} "
                "(allowed only when the issuer is on such an address, or with outbound_allow_private)"
            )
        return found[:MAX_ADDRESSES]

    async def issuer_is_private(self) -> bool:
        """Whether the issuer's own host is loopback/private (then so may fetched hosts be); decided
        once. A host that cannot be resolved counts as public: the stricter answer."""
        if self._issuer_private is None:
            host = self._issuer_host
            literal = ip_literal(host)
            if literal is not None:
                private = not is_public_address(literal)
            elif host == "localhost" or host.endswith(".localhost"):
                private = True
            elif not host:
                private = False
            else:
                try:
                    async with asyncio.timeout(self._timeout):
                        resolved = _addresses(await self._resolve(host, 443))
                    private = bool(resolved) and not any(is_public_address(ip) for ip in resolved)
                except (OSError, ValueError, TimeoutError):
                    private = False  # unknown: the stricter answer
            self._issuer_private = private
        return self._issuer_private
