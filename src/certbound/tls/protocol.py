"""uvicorn's httptools protocol, plus the ASGI ``tls`` extension filled once per connection.

asyncio and uvloop call ``connection_made`` on the app protocol only after the TLS handshake
completed, so the peer's certificates and OpenSSL's verdict are final there. They are read and parsed
once, then every request on the connection gets the same objects in
``scope["extensions"]["tls"]`` (ASGI TLS extension keys, plus ``certbound_client_certificate``).

Request heads are bounded: httptools (llhttp) buffers a header of any size and any number of them.
A request whose request line and headers exceed `max_header_bytes`, or that has more than
`max_header_count` headers, is answered 431 with ``Connection: close`` and the connection closed,
as soon as the limit is passed (a 300 KB value is refused after the first 64 KiB or so arrive, not
buffered whole). The limits are class attributes set by `limited` (the ``max_header_*`` settings).

A head must also arrive in time: from the handshake (or a request's first byte) to the blank line
that ends the headers, at most `header_timeout` seconds, else 408 with ``Connection: close`` (a
connection that sent nothing is just closed). Without it a client trickling one header a second, or
sending nothing at all, holds a connection and its file descriptor for ever (uvicorn's keep-alive
timeout only runs between requests). When a refusal comes while an earlier request on the same
connection is still being answered (pipelining), it waits for that answer: HTTP/1.1 answers in order,
and a client must not read the 431 as the answer to a request that may have changed the store.

The head's deadline and uvicorn's keep-alive wait (from an answer to the next request's first byte;
bytes that begin no request do not end it) share one timer per connection (`_wake_by`), so that a
keep-alive request moves two fields instead of arming and cancelling two timers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass
from typing import Any, ClassVar, Final, cast

import httptools
import orjson
import structlog
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from certbound.tls import openssl_verify
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate, PemChain
from certbound.tls.server_context import server_certificate_pem
from certbound.tls.write_coalescing import CoalescingTransport

__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_HEADER_COUNT",
    "HttpToolsTLSProtocol",
    "TLSStats",
    "limited",
    "stats",
    "tls_extension",
]

logger = logging.getLogger("certbound.tls")
_events = structlog.get_logger("certbound.tls")

#: Request line and headers, in bytes: room for a 64 KiB forwarded certificate chain and the rest.
DEFAULT_MAX_HEADER_BYTES: Final = 96 * 1024
#: Headers per request (Apache's LimitRequestFields default).
DEFAULT_MAX_HEADER_COUNT: Final = 100
#: Seconds from the handshake, or from a request's first byte, to the end of its headers.
DEFAULT_HEADER_TIMEOUT_S: Final = 20.0
REASON_HEAD_TIMEOUT: Final = "request.head_timeout"
REASON_HEADERS_TOO_LARGE: Final = "request.headers_too_large"
#: The shortest wait the connection's timer is armed for. uvloop rounds a delay to whole milliseconds
#: and runs one under half a millisecond with ``call_soon``: a ``Handle``, without ``when()``, and
#: when the timer fired just before a deadline, a busy loop re-arming it until the clock turns.
_MIN_TIMER_DELAY: Final = 0.001
_431_BODY: Final = orjson.dumps(
    {"error": "invalid_request", "error_description": "the request header fields are too large"}
)
_431: Final = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(_431_BODY)).encode("ascii") + b"\r\n",
        b"cache-control: no-store\r\n",
        b"connection: close\r\n\r\n",
        _431_BODY,
    ]
)


_408_BODY: Final = orjson.dumps(
    {"error": "invalid_request", "error_description": "the request header fields did not arrive in time"}
)
_408: Final = b"".join(
    [
        b"HTTP/1.1 408 Request Timeout\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(_408_BODY)).encode("ascii") + b"\r\n",
        b"cache-control: no-store\r\n",
        b"connection: close\r\n\r\n",
        _408_BODY,
    ]
)


_400_BODY: Final = orjson.dumps({"error": "invalid_request", "error_description": "malformed HTTP request"})
_400: Final = b"".join(
    [
        b"HTTP/1.1 400 Bad Request\r\n",
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(_400_BODY)).encode("ascii") + b"\r\n",
        b"cache-control: no-store\r\n",
        b"connection: close\r\n\r\n",
        _400_BODY,
    ]
)


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request head past the limits."""


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
    name: str | None = None
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
            name = cert.subject_name  # a subject that does not decode: no certificate, as above
        except ValueError as exc:
            logger.warning("tls: client certificate does not parse: %s", exc)
            cert, error = None, "certbound: client certificate does not parse"
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
        "client_cert_name": name,
        "client_cert_error": error,
        "tls_version": _TLS_VERSIONS.get(version) if version else None,
        "cipher_suite": _cipher_suite(ssl_object),
        SCOPE_KEY: cert,
    }


class HttpToolsTLSProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that hands each request the connection's ASGI ``tls`` extension, and
    refuses request heads past the limits (431)."""

    max_header_bytes: ClassVar[int] = DEFAULT_MAX_HEADER_BYTES
    max_header_count: ClassVar[int] = DEFAULT_MAX_HEADER_COUNT
    header_timeout: ClassVar[float] = DEFAULT_HEADER_TIMEOUT_S

    _tls: dict[str, Any] | None = None
    _in_head = False  # between a request's first byte and the end of its headers
    _began = False  # a request began in the chunk being parsed
    _head_received = 0  # bytes received while in the head (an upper bound of its size)
    _head_parsed = 0  # bytes of the URL and headers the parser handed over
    _head_count = 0
    _refused = False
    _pending: bytes | None = None  # a refusal waiting for the answer to an earlier request
    # The connection's deadlines, in loop time, and its one timer (see `_wake_by`): the head's (from
    # the handshake or a request's first byte) and the keep-alive wait's (from an answer sent)
    _head_deadline: float | None = None
    _idle_deadline: float | None = None
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """After the TLS handshake (asyncio and uvloop call it then): describe the peer, once."""
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, coalescing))
        ssl_object = transport.get_extra_info("ssl_object")
        self._tls = tls_extension(ssl_object) if ssl_object is not None else None
        self._start_head_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_deadline = self._idle_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        """A new request: its scope gets its own copy of the connection's ``tls`` dict (cheap)."""
        super().on_message_begin()
        self._in_head = self._began = True
        self._head_received = self._head_parsed = self._head_count = 0
        self._start_head_deadline()
        if self._tls is not None:
            self.scope["extensions"] = {"tls": cast("dict[object, object]", dict(self._tls))}

    def data_received(self, data: bytes) -> None:
        """uvicorn's, with the head limits. After each chunk is parsed: a head still incomplete counts
        the whole chunk (or all of it, when the request began in it: an upper bound), so the parser
        never buffers more than the limit and one read; a head that completed in the chunk was
        measured by the callbacks, and the body bytes after it never count."""
        if self._refused:
            return
        was_in_head = self._in_head
        self._began = False
        idle = self._idle_deadline
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self._refused:
                self._refuse_head()
                return
            msg = "Invalid HTTP request received."
            self.logger.warning(msg)
            self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if idle is not None and not (was_in_head or self._began) and not self.transport.is_closing():
            # bytes that neither begin nor continue a head (empty lines, the rest of a body answered
            # early): the wait for the next request goes on from the answer, or a byte now and then
            # (no head deadline runs) would hold the connection for ever
            self._idle_deadline = idle
            self._wake_by(idle)
        if self._in_head:
            if self._began:
                self._head_received = len(data)
            elif was_in_head:
                self._head_received += len(data)
            if self._head_received > self.max_header_bytes:
                self._refuse_head()

    def on_url(self, url: bytes) -> None:
        self._head_parsed += len(url)
        self._check_head()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """uvicorn's (0.55), inline (a call fewer per header), after the head limits' count."""
        self._head_count += 1
        self._head_parsed += len(name) + len(value) + 4
        self._check_head()
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace, which RFC 9110 5.5 excludes
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_deadline = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        """uvicorn's (0.55), with its keep-alive wait on the connection's one timer rather than a timer
        armed per answer; then a refusal that waited for the answers before it goes out (after the
        last pipelined one: answers go in request order), and the connection closes."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:  # the next pipelined request starts; a refusal waits for its answer too
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._pending is None:  # the keep-alive wait: closed when no byte comes in time
            self._idle_deadline = deadline = self.loop.time() + self.timeout_keep_alive
            self._wake_by(deadline)
        else:  # every request before the refused one answered: the refusal, in its turn
            self.transport.write(self._pending)
            self.transport.close()

    def _unset_keepalive_if_required(self) -> None:
        """A byte arrived (or the connection ends): no more keep-alive wait."""
        self._idle_deadline = None
        super()._unset_keepalive_if_required()  # nothing: uvicorn's own timer is never armed

    def _answering(self) -> bool:
        """An earlier request on this connection is still being answered."""
        return self.cycle is not None and not self.cycle.response_complete

    def _send_and_close(self, answer: bytes) -> None:
        self._refused = True
        self._head_deadline = None
        if self._answering():
            self._pending = answer  # after that answer (on_response_complete); nothing more is read
            return
        self.transport.write(answer)
        self.transport.close()

    def _start_head_deadline(self) -> None:
        """The head's deadline, unless one runs: the first request's head counts from the handshake."""
        if self._head_deadline is None and not self._refused:
            self._head_deadline = deadline = self.loop.time() + self.header_timeout
            self._wake_by(deadline)

    def _wake_by(self, deadline: float) -> None:
        """Make sure the connection's timer fires by `deadline`.

        One timer per connection instead of one armed and cancelled per request for the head and one
        per answer for the keep-alive wait (four timer operations per request, ~2% of a keep-alive
        request's CPU): a deadline only moves a field, and the timer, when it fires, acts on the
        deadlines that have passed and sleeps until the next one. It is re-armed only for a deadline
        earlier than the one it was armed for (deadlines only move later otherwise).

        Never armed for less than `_MIN_TIMER_DELAY` (a deadline is then acted on up to that late):
        uvloop fires a timer up to half a millisecond early, and a deadline closer than that would
        get a ``call_soon`` handle rather than a timer.
        """
        timer = self._timer
        if timer is not None:
            if timer.when() <= deadline:
                return
            timer.cancel()
        delay = deadline - self.loop.time()
        self._timer = self.loop.call_later(max(delay, _MIN_TIMER_DELAY), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._idle_deadline is not None and now >= self._idle_deadline:
            self._idle_deadline = None
            self.timeout_keep_alive_handler()  # uvicorn's: close the idle connection
            return
        if self._head_deadline is not None and now >= self._head_deadline:
            self._head_deadline = None
            self._head_timed_out()
            return
        pending = [d for d in (self._head_deadline, self._idle_deadline) if d is not None]
        if pending:
            self._wake_by(min(pending))

    def _head_timed_out(self) -> None:
        """No complete head in `header_timeout` seconds: 408 (or, for a connection that never began a
        request, just the close), once any answer in progress has gone out."""
        if self.transport.is_closing() or self._refused:
            return
        _events.warning(
            "request_head_timeout",
            reason=REASON_HEAD_TIMEOUT,
            client=f"{self.client[0]}:{self.client[1]}" if self.client else None,
            header_timeout=self.header_timeout,
            began=self._in_head,
        )
        if self._in_head:
            self._send_and_close(_408)
        elif self._answering():
            self._refused = True
            self._pending = b""
        else:
            self._refused = True
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """A request the parser refuses (a control character in a header, a bad request line): the
        RFC 6749 JSON error every other refusal gets, rather than uvicorn's plain text."""
        self.transport.write(_400)
        self.transport.close()

    def _check_head(self) -> None:
        if self._head_count > self.max_header_count or self._head_parsed > self.max_header_bytes:
            self._refused = True
            raise _HeadersTooLarge

    def _refuse_head(self) -> None:
        """Answer 431 with Connection: close and close; nothing more is read from this connection."""
        if self.transport.is_closing() or self._pending is not None:
            return
        self._refused = True
        _events.warning(
            "request_headers_too_large",
            reason=REASON_HEADERS_TOO_LARGE,
            client=f"{self.client[0]}:{self.client[1]}" if self.client else None,
            header_bytes=max(self._head_received, self._head_parsed),
            header_count=self._head_count,
            max_header_bytes=self.max_header_bytes,
            max_header_count=self.max_header_count,
        )
        self._send_and_close(_431)


def limited(
    max_header_bytes: int, max_header_count: int, header_timeout: float = DEFAULT_HEADER_TIMEOUT_S
) -> type[HttpToolsTLSProtocol]:
    """The protocol class with these head limits (made in each worker: classes do not pickle)."""
    limits = (max_header_bytes, max_header_count, header_timeout)
    if limits == (DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT, DEFAULT_HEADER_TIMEOUT_S):
        return HttpToolsTLSProtocol
    return type(
        "LimitedHttpToolsTLSProtocol",
        (HttpToolsTLSProtocol,),
        {
            "max_header_bytes": max_header_bytes,
            "max_header_count": max_header_count,
            "header_timeout": header_timeout,
        },
    )
