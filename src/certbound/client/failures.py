"""Turn httpx transport exceptions into the client's typed errors, saying which side refused what.

OpenSSL's reason code is found on the `ssl.SSLError` at the bottom of httpx's exception chain. Under
TLS 1.3 the client's handshake finishes before the server has checked the client certificate, so a
server's refusal arrives as an alert on the first read (a ``ReadError``, not a ``ConnectError``): the
alert's reason, not the phase, is what tells us the server rejected our certificate.
"""

from __future__ import annotations

import ssl

import httpx

from certbound.client.errors import ClientError, ClientTimeout, NetworkError, TLSError

__all__ = ["CERTIFICATE_ALERTS", "map_transport_error"]

# Alerts a server sends when it does not accept the client's certificate (or its absence).
CERTIFICATE_ALERTS = frozenset(
    {
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    }
)

_PHASES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}


def _ssl_cause(exc: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _reason(err: ssl.SSLError) -> str:
    """OpenSSL's reason code; older OpenSSL messages only carry it as text ("tlsv1 alert unknown ca")."""
    if err.reason:
        return str(err.reason).upper()
    text = str(err).lower()
    for code in CERTIFICATE_ALERTS:
        if code.lower().replace("_", " ") in text:
            return code
    return type(err).__name__.upper()


def _tls_error(err: ssl.SSLError, url: str, presented_cert: bool) -> TLSError:
    reason = _reason(err)
    if isinstance(err, ssl.SSLCertVerificationError):
        detail = err.verify_message or str(err)
        return TLSError(
            f"the server's certificate did not verify: {detail}",
            url=url,
            side="client",
            reason=reason,
            detail=detail,
        )
    if reason in CERTIFICATE_ALERTS:
        what = (
            "the client certificate" if presented_cert else "the connection: no client certificate was sent"
        )
        return TLSError(f"the server rejected {what} ({reason})", url=url, side="server", reason=reason)
    if "ALERT" in reason:
        return TLSError(
            f"the server aborted the TLS handshake ({reason})", url=url, side="server", reason=reason
        )
    if reason == "WRONG_VERSION_NUMBER":
        return TLSError(
            "the server does not speak TLS on this port (is it http://?)",
            url=url,
            side="unknown",
            reason=reason,
        )
    return TLSError(f"TLS failure: {reason}", url=url, side="unknown", reason=reason, detail=str(err))


def map_transport_error(
    exc: httpx.TransportError | OSError, url: str, *, presented_cert: bool
) -> ClientError:
    """The typed error for a failed exchange with `url` (TLS verdict, timeout, or network failure)."""
    if isinstance(exc, httpx.TimeoutException):
        phase = _PHASES.get(type(exc), "read")
        return ClientTimeout(f"no answer from the server in time ({phase} timeout)", url=url, phase=phase)
    err = _ssl_cause(exc)
    if err is not None and not isinstance(err, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return _tls_error(err, url, presented_cert)
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        detail = str(exc) or type(exc).__name__
        return NetworkError(f"cannot connect: {detail}", url=url)
    hint = " (it may have refused the client certificate)" if presented_cert and err is not None else ""
    detail = str(exc) or type(exc).__name__
    return NetworkError(f"the server closed the connection: {detail}{hint}", url=url)
