"""The client's exceptions: one type per kind of failure, each with a message a person can act on.

Callers (the CLI, the gateway) branch on the type, never on message text. Server-side code raises
`certbound.errors.OAuthError`; this hierarchy is the outbound mirror of it and shares nothing with it,
so a server error received here can never be re-raised by the server as its own by accident.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "ClientConfigError",
    "ClientError",
    "ClientTimeout",
    "DiscoveryError",
    "NetworkError",
    "OAuthServerError",
    "TLSError",
    "UnexpectedResponse",
]

TLSSide = Literal["client", "server", "unknown"]


class ClientError(Exception):
    """Base of every failure the outbound client reports."""


class ClientConfigError(ClientError, ValueError):
    """The client's own configuration cannot work (missing secret, unreadable key, contradictory options)."""


class DiscoveryError(ClientError):
    """The authorization server's metadata could not be obtained or is unusable."""

    def __init__(self, message: str, *, issuer: str, tried: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.issuer = issuer
        self.tried = tried


class TLSError(ClientError):
    """The TLS handshake (or the first read after it, under TLS 1.3) failed.

    `side` says who rejected: ``client`` when we refused the server's certificate, ``server`` when the
    server sent an alert (typically: it refused our client certificate). `reason` is OpenSSL's reason
    code (``CERTIFICATE_VERIFY_FAILED``, ``SSLV3_ALERT_CERTIFICATE_UNKNOWN``, ...).
    """

    def __init__(self, message: str, *, url: str, side: TLSSide, reason: str, detail: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.side = side
        self.reason = reason
        self.detail = detail


class NetworkError(ClientError):
    """The server could not be reached or dropped the connection (not a TLS verdict, not a timeout)."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ClientTimeout(ClientError):
    """The server did not answer in time; `phase` is ``connect``, ``read``, ``write`` or ``pool``."""

    def __init__(self, message: str, *, url: str, phase: str) -> None:
        super().__init__(message)
        self.url = url
        self.phase = phase


class OAuthServerError(ClientError):
    """The server answered with an RFC 6749 section 5.2 error (``invalid_client``, ...)."""

    def __init__(
        self, error: str, description: str = "", *, status: int, url: str, uri: str | None = None
    ) -> None:
        text = f"{error}: {description}" if description else error
        super().__init__(f"{text} (HTTP {status})")
        self.error = error
        self.description = description
        self.status = status
        self.url = url
        self.uri = uri


class UnexpectedResponse(ClientError):
    """The server answered something that is neither a success nor an OAuth error (HTML, a 404, ...)."""

    def __init__(self, message: str, *, status: int, url: str) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
