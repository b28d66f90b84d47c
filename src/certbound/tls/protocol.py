"""uvicorn's httptools protocol, plus the ASGI ``tls`` extension filled once per connection.

asyncio and uvloop call ``connection_made`` on the app protocol only after the TLS handshake
completed, so the peer's certificates and OpenSSL's verdict are final there. They are read and parsed
once, then every request on the connection gets the same objects in
``scope["extensions"]["tls"]`` (ASGI TLS extension keys, plus ``certbound_client_certificate``).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from certbound.tls import openssl_verify
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate, PemChain
from certbound.tls.server_context import server_certificate_pem
from certbound.tls.write_coalescing import CoalescingTransport

__all__ = ["HttpToolsTLSProtocol", "TLSStats", "stats", "tls_extension"]

logger = logging.getLogger("certbound.tls")

SOURCE = "tls"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304, "TLSv1.1": 0x0302, "TLSv1": 0x0301}
_cipher_ids: dict[str, int] = {}


@dataclass
class TLSStats:
    """Process-wide counters for metrics (the event loop thread is the only writer)."""

    handshakes: int = 0
    client_certificates: int = 0  # certificates parsed: once per connection that presented one
    tls_unverified: int = 0  # presented but OpenSSL's verdict was an error (native mode)
    unusable: int = 0  # presented but could not be parsed or read


stats = TLSStats()


def _cipher_suite(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> int | None:
    cipher = ssl_object.cipher()
    if cipher is None:
        return None
    name = cipher[0]
    suite = _cipher_ids.get(name)
    if suite is None:
        for entry in ssl_object.context.get_ciphers():
            _cipher_ids[entry["name"]] = entry["id"] & 0xFFFF
        suite = _cipher_ids.get(name)
    return suite


def _verdict(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> tuple[bool | None, str | None]:
    """(tls_verified, tls_error) for a connection whose client presented a certificate."""
    code = openssl_verify.verify_result(ssl_object)
    if code is None:
        # ctypes unusable here, so no accept-all callback can exist either: a completed handshake
        # with a peer certificate means OpenSSL verified it. Otherwise the verdict is unknown.
        if openssl_verify.accept_all_installed(ssl_object.context):
            return None, "certbound: TLS verify result unavailable"
        return True, None
    if code == openssl_verify.X509_V_OK:
        return True, None
    return False, openssl_verify.verify_error_string(code)


def tls_extension(ssl_object: ssl.SSLObject | ssl.SSLSocket) -> dict[str, Any]:
    """The ASGI ``tls`` extension dict for a connection whose handshake completed."""
    stats.handshakes += 1
    cert: ClientCertificate | None = None
    error: str | None = None
    chain: PemChain = PemChain(())
    try:
        ders = openssl_verify.unverified_chain_der(ssl_object)
    except Exception as exc:  # never break the connection over this
        logger.exception("tls: reading the client certificate chain failed")
        ders, error = [], f"certbound: client certificate unreadable ({type(exc).__name__})"
        stats.unusable += 1
    if ders:
        verified, error = _verdict(ssl_object)
        try:
            cert = ClientCertificate.from_der(
                ders[0], ders[1:], source=SOURCE, tls_verified=verified, tls_error=error
            )
        except ValueError as exc:
            logger.warning("tls: client certificate does not parse: %s", exc)
            error = "certbound: client certificate does not parse"
            stats.unusable += 1
        else:
            stats.client_certificates += 1
            if verified is False:
                stats.tls_unverified += 1
            chain = PemChain(cert.presented)
    version = ssl_object.version()
    return {
        "server_cert": server_certificate_pem(ssl_object.context),
        "client_cert_chain": chain,
        "client_cert_name": cert.leaf.subject.rfc4514_string() if cert is not None else None,
        "client_cert_error": error,
        "tls_version": _TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": _cipher_suite(ssl_object),
        SCOPE_KEY: cert,
    }


class HttpToolsTLSProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that hands each request the connection's ASGI ``tls`` extension."""

    _tls: dict[str, Any] | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """After the TLS handshake (asyncio and uvloop call it then): describe the peer, once."""
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, coalescing))
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = tls_extension(ssl_object) if ssl_object is not None else None

    def on_message_begin(self) -> None:
        """A new request: its scope gets its own copy of the connection's ``tls`` dict (cheap)."""
        super().on_message_begin()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast("dict[object, object]", dict(self._tls))}
