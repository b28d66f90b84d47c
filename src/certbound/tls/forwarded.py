"""Client certificates forwarded by trusted proxies, put where the native TLS listener puts its own.

:class:`ForwardedCertificateMiddleware` runs before the application. For a request whose peer address
is in ``trusted_proxies`` it reads the configured header format (:mod:`certbound.tls.headers`) and
*replaces* the certificate in ``scope["extensions"]["tls"]`` with the forwarded one, or with None when
the proxy forwarded none (the proxy's own TLS client certificate, if it has one, is never taken for
the client's). From any other address the headers are ignored and logged. Either way every
certificate-forwarding header of every format is removed from the scope: nothing downstream can
read them, so a header from an untrusted address can never become a certificate (fail closed).

A trusted proxy's header that cannot be used (malformed, repeated, too large, a verdict without
the certificate) gives "no certificate" and a logged reason code, never a 500. The application
then treats the request like one without a certificate, and re-validates a forwarded certificate
exactly as one from its own handshake.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import structlog
from cryptography import x509
from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

from certbound.pki.pem import load_certs_file
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate, PemChain
from certbound.tls.headers import ALL_HEADERS, FORMATS, ForwardedCertError, HeaderFormat

if TYPE_CHECKING:
    from certbound.config import ForwardingSettings

__all__ = [
    "FORWARDED_TOTAL",
    "REASON_UNTRUSTED_PEER",
    "ForwardedCertConfig",
    "ForwardedCertificateMiddleware",
    "client_address",
    "load_intermediates",
]

REASON_UNTRUSTED_PEER: Final = "proxy.untrusted_peer"

FORWARDED_TOTAL = Counter(
    "certbound_forwarded_certificates_total",
    "Requests carrying forwarded client-certificate headers, by header format and outcome "
    "(accepted, absent, rejected: unusable header from a trusted proxy, ignored: untrusted peer).",
    ["header", "outcome"],
)

_log = structlog.get_logger("certbound.proxy")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def load_intermediates(path: Path) -> tuple[x509.Certificate, ...]:
    """The CA certificates of a PEM bundle; ValueError (naming the setting) for anything else."""
    try:
        certs = load_certs_file(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"forwarded_cert_intermediates: {exc}") from None
    for cert in certs:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            subject = cert.subject.rfc4514_string()
            raise ValueError(f"forwarded_cert_intermediates: {subject!r} in {path} is not a CA certificate")
    return tuple(certs)


@dataclass(frozen=True)
class ForwardedCertConfig:
    """Which peers are trusted proxies, which header format they use, what intermediates to add."""

    trusted_proxies: tuple[Network, ...] = ()
    header_format: HeaderFormat | None = None
    intermediates: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: ForwardingSettings) -> ForwardedCertConfig:
        """From the checked settings, `serve`'s or the gateway listener's (ValueError when the
        intermediates bundle cannot be used)."""
        fmt = FORMATS[settings.forwarded_cert_header] if settings.forwarded_cert_header else None
        extra = settings.forwarded_cert_intermediates
        return cls(
            trusted_proxies=tuple(ipaddress.ip_network(cidr) for cidr in settings.trusted_proxies),
            header_format=fmt,
            intermediates=load_intermediates(extra) if extra is not None else (),
        )

    def trusts(self, host: str | None) -> bool:
        """Whether `host` (the TCP peer address) is a trusted proxy."""
        if not self.trusted_proxies or not host:
            return False
        return _trusted(self.trusted_proxies, host)


@functools.lru_cache(maxsize=4096)
def _trusted(networks: tuple[Network, ...], host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False  # a unix socket path or anything else that is not an IP address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: tuple[Network, ...]
) -> str | None:
    """The address of the client behind the proxies: `peer` (the TCP peer) unless it is a trusted
    proxy, else the rightmost ``X-Forwarded-For`` entry that is not a trusted proxy (each proxy appends
    the address it saw, so entries to the left of that one were written by the client and prove
    nothing). From any other peer the header is ignored: a client must not choose its address (the
    login throttle counts failures by it). An unusable entry ends the walk at the peer."""
    if not peer or not trusted or not _trusted(trusted, peer):
        return peer
    entries = [e.strip() for value in forwarded_for for e in value.split(",")]
    found = peer
    for entry in reversed(entries):
        try:
            address = ipaddress.ip_address(entry)
        except ValueError:
            return peer
        found = str(address)
        if not _trusted(trusted, found):
            return found
    return found


@dataclass(frozen=True, slots=True)
class _Outcome:
    """A parsed header set: the tls-extension entries to set, or why there are none."""

    tls: Mapping[str, Any]
    error: ForwardedCertError | None = None


def _tls_entries(cert: ClientCertificate | None) -> dict[str, Any]:
    return {
        SCOPE_KEY: cert,
        "client_cert_chain": PemChain(cert.presented if cert is not None else ()),
        "client_cert_name": cert.subject_name if cert is not None else None,
        "client_cert_error": cert.tls_error if cert is not None else None,
    }


_NO_CERTIFICATE: Final = _tls_entries(None)
_ABSENT: Final = _Outcome(_NO_CERTIFICATE)


class ForwardedCertificateMiddleware:
    """ASGI middleware; see the module docstring. Parsed header values are cached (bounded LRU), so a
    client's certificate is parsed once, not on every request."""

    def __init__(self, app: ASGIApp, config: ForwardedCertConfig, *, cache_size: int = 1024) -> None:
        self.app = app
        self.config = config
        self._cache: OrderedDict[tuple[object, ...], _Outcome] = OrderedDict()
        self._cache_size = cache_size

    def around(self, app: ASGIApp) -> ForwardedCertificateMiddleware:
        """This middleware, in front of `app`: a factory for Starlette's ``Middleware``, so that code
        serving requests ahead of the stack reads through the same instance (and its cache)."""
        self.app = app
        return self

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            self.process(scope)
        await self.app(scope, receive, send)

    def process(self, scope: Scope) -> None:
        """Remove every certificate-forwarding header from `scope`; from a trusted proxy, put its
        forwarded certificate (or none) where the TLS listener puts its own."""
        headers: Iterable[tuple[bytes, bytes]] = scope.get("headers") or ()
        found: dict[bytes, list[bytes]] = {}
        for name, value in headers:
            if name in ALL_HEADERS:
                found.setdefault(name, []).append(value)
        if found:
            scope["headers"] = [(n, v) for n, v in headers if n not in ALL_HEADERS]
        client = scope.get("client")
        peer = client[0] if client else None
        fmt = self.config.header_format
        if fmt is not None and self.config.trusts(peer):
            outcome = self._read(fmt, found)
            if outcome.error is not None:
                FORWARDED_TOTAL.labels(fmt.name, "rejected").inc()
                _log.warning(
                    "forwarded_cert_rejected",
                    peer=peer,
                    header=fmt.name,
                    reason=outcome.error.reason,
                    detail=outcome.error.detail,
                )
            elif any(name in found for name in fmt.headers):
                FORWARDED_TOTAL.labels(fmt.name, "accepted" if outcome.tls[SCOPE_KEY] else "absent").inc()
            extensions = scope.get("extensions") or {}
            scope["extensions"] = {**extensions, "tls": {**(extensions.get("tls") or {}), **outcome.tls}}
        elif found:
            FORWARDED_TOTAL.labels(fmt.name if fmt else "none", "ignored").inc()
            _log.warning(
                "forwarded_cert_ignored",
                peer=peer,
                headers=sorted(name.decode("latin-1") for name in found),
                reason=REASON_UNTRUSTED_PEER,
            )

    def _read(self, fmt: HeaderFormat, found: Mapping[bytes, list[bytes]]) -> _Outcome:
        if not any(name in found for name in fmt.headers):
            return _ABSENT
        key = (fmt.name, *(tuple(found.get(name, ())) for name in fmt.headers))
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        outcome = self._parse(fmt, found)
        self._cache[key] = outcome
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return outcome

    def _parse(self, fmt: HeaderFormat, found: Mapping[bytes, list[bytes]]) -> _Outcome:
        try:
            cert = fmt.read(found)
        except ForwardedCertError as exc:
            return _Outcome(_NO_CERTIFICATE, exc)
        except Exception as exc:  # a reader bug must not become a 500 or a certificate
            error = ForwardedCertError("proxy.malformed_header", f"unreadable ({type(exc).__name__})")
            return _Outcome(_NO_CERTIFICATE, error)
        if cert is None:
            return _ABSENT
        extra = tuple(c for c in self.config.intermediates if c not in cert.presented)
        if extra:
            cert = dataclasses.replace(cert, chain=cert.chain + extra)
        try:
            return _Outcome(_tls_entries(cert))
        except ValueError:  # a subject cryptography cannot decode (`ClientCertificate.subject_name`)
            error = ForwardedCertError("proxy.malformed_header", "the certificate's subject does not decode")
            return _Outcome(_NO_CERTIFICATE, error)
