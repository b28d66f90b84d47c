"""The headers between caller and upstream: what is read, what is dropped, what the gateway sets.

One pass over the request's headers (ASGI gives them lowercased) finds the ``Authorization`` values
and the ``X-Forwarded-*`` ones and keeps the rest, minus:

* hop-by-hop headers (RFC 9110 section 7.6.1: ``Connection`` and the names it lists, ``Keep-Alive``,
  ``TE``, ``Transfer-Encoding``, ``Upgrade``, ...), and ``Content-Length`` beside a
  ``Transfer-Encoding`` (a request smuggling shape);
* every identity header a route sets (the ``upstream_headers`` names of every route, since routes may
  share an upstream, and ``X-Client-Cert-Thumbprint``) in any spelling: ``X-Client-Id``,
  ``x-client-id`` and ``X_Client_Id`` are one name here (underscores folded to dashes), so a caller
  can never inject an identity;
* ``Forwarded`` and ``X-Forwarded-*`` from a peer that is not a trusted proxy;
* the underscore spelling of every header the gateway reads, sets or removes (``X_Forwarded_For``,
  ``X_SSL_Client_Cert``, ``Transfer_Encoding``, ...), which WSGI, CGI and PHP upstreams would read as
  the dashed one.

The gateway then sets ``X-Forwarded-For`` (the trusted proxy's chain plus the peer, or the peer),
``X-Forwarded-Proto`` and ``X-Forwarded-Host``, and the identity headers of the admitted token.
Response headers lose their hop-by-hop headers too. Names are decided once per route
(:class:`IdentityHeaders`), never per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from certbound.gateway.config import THUMBPRINT_HEADER
from certbound.gateway.tokens import TokenInfo
from certbound.tls.headers import ALL_HEADERS

__all__ = [
    "HOP_BY_HOP",
    "IdentityHeaders",
    "Incoming",
    "read_incoming",
    "response_headers",
]

Header = tuple[bytes, bytes]

HOP_BY_HOP: Final = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
        b"te", b"trailer", b"transfer-encoding", b"upgrade", b"expect",
    }
)  # fmt: skip
_FORWARDED: Final = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
     b"x-forwarded-prefix", b"x-real-ip"}
)  # fmt: skip
#: Names whose underscore spelling is dropped as well (WSGI, CGI and PHP read ``X_Forwarded_For`` as
#: ``X-Forwarded-For``): every header the gateway reads, sets or removes. Certificate-forwarding
#: headers are removed by :mod:`certbound.tls.forwarded` in their dashed spelling only.
_OWNED: Final = HOP_BY_HOP | _FORWARDED | ALL_HEADERS | {b"authorization", b"host", b"content-length"}
#: Dropped from the upstream's answer: hop-by-hop, ``date`` and ``server`` (the listener's own).
_RESPONSE_DROP: Final = HOP_BY_HOP | {b"date", b"server"}


def fold(name: bytes) -> bytes:
    """A header name as the identity-header check compares it: lowercase, underscores as dashes."""
    return name.lower().replace(b"_", b"-")


@dataclass(frozen=True, slots=True)
class IdentityHeaders:
    """A route's identity headers: (header name, claim) pairs, and every name it strips."""

    pairs: tuple[tuple[bytes, str], ...]
    stripped: frozenset[bytes]
    thumbprint: bytes = THUMBPRINT_HEADER.lower().encode("ascii")

    @classmethod
    def of(cls, upstream_headers: Mapping[str, str], also_stripped: Iterable[str] = ()) -> IdentityHeaders:
        """A route's table; `also_stripped`: the identity header names of the other routes."""
        pairs = tuple((name.lower().encode("ascii"), claim) for name, claim in upstream_headers.items())
        names = [*upstream_headers, *also_stripped, THUMBPRINT_HEADER]
        return cls(pairs, frozenset(fold(name.encode("ascii")) for name in names))

    def values(self, info: TokenInfo, bound: bool) -> list[Header]:
        """The headers that carry the token's identity (a claim the token lacks sends none); the
        certificate's thumbprint when the binding was verified."""
        out = [(name, value) for name, claim in self.pairs if (value := info.header(claim)) is not None]
        if bound and info.thumbprint is not None:
            out.append((self.thumbprint, info.thumbprint.encode("ascii")))
        return out


@dataclass(slots=True)
class Incoming:
    """What the gateway reads of a request's headers, and what it passes on."""

    authorization: list[bytes] = field(default_factory=list)
    host: bytes | None = None
    forwarded_for: bytes | None = None
    forwarded_proto: bytes | None = None
    forwarded_host: bytes | None = None
    has_body: bool = False
    kept: list[Header] = field(default_factory=list)


def read_incoming(headers: Iterable[Header], stripped: frozenset[bytes], *, trusted_peer: bool) -> Incoming:
    """One pass over the request headers (see the module docstring)."""
    found = Incoming()
    kept = found.kept
    connection: list[bytes] = []
    chunked = False
    for name, value in headers:
        if name == b"authorization":
            found.authorization.append(value)
        elif name in HOP_BY_HOP:
            if name == b"connection":
                connection.append(value)
            elif name == b"transfer-encoding":
                chunked = found.has_body = True
        elif name == b"host":  # the upstream's own goes up; the caller's as X-Forwarded-Host
            found.host = value
        elif name in _FORWARDED:
            if trusted_peer:
                if name == b"x-forwarded-for":
                    found.forwarded_for = (
                        value if found.forwarded_for is None else found.forwarded_for + b", " + value
                    )
                elif name == b"x-forwarded-proto":
                    found.forwarded_proto = value
                elif name == b"x-forwarded-host":
                    found.forwarded_host = value
                else:
                    kept.append((name, value))
        elif name in stripped or (b"_" in name and (fold(name) in stripped or fold(name) in _OWNED)):
            continue
        else:
            if name == b"content-length":
                found.has_body = True
            kept.append((name, value))
    if connection or chunked:
        listed = {t.strip().lower() for v in connection for t in v.split(b",")} - {b""}
        if chunked:
            listed.add(b"content-length")  # Transfer-Encoding wins (RFC 9112 section 6.3)
        found.kept = [(n, v) for n, v in kept if n not in listed]
    return found


def forwarding_headers(incoming: Incoming, peer: str | None) -> list[Header]:
    """``X-Forwarded-For/-Proto/-Host`` for the upstream (the trusted proxy's own values extended)."""
    address = (peer or "unknown").encode("ascii", "replace")
    chain = incoming.forwarded_for + b", " + address if incoming.forwarded_for else address
    out = [(b"x-forwarded-for", chain), (b"x-forwarded-proto", incoming.forwarded_proto or b"https")]
    host = incoming.forwarded_host or incoming.host
    if host is not None:
        out.append((b"x-forwarded-host", host))
    return out


def response_headers(raw: Iterable[Header]) -> list[Header]:
    """The upstream's response headers without hop-by-hop ones (and those ``Connection`` lists)."""
    out: list[Header] = []
    listed: set[bytes] = set()
    for name, value in raw:
        lower = name.lower()
        if lower == b"connection":
            listed.update(t.strip().lower() for t in value.split(b","))
        elif lower not in _RESPONSE_DROP:
            out.append((lower, value))
    return [(n, v) for n, v in out if n not in listed] if listed else out
