"""The gateway's HTTP/1.1 client for upstreams: the request head, the answer's parser, the pool.

Written here rather than taken from httpx because forwarding through httpx/httpcore was most of a
gateway request's CPU (docs/performance.md, "The gateway against Apache httpd"); this client does
the one exchange the gateway needs over an `asyncio.Protocol`, with httptools (uvicorn's parser,
llhttp) reading the answers. What it does, and only that:

* the request: ``METHOD target HTTP/1.1``, ``Host`` (the upstream's netloc), the gateway's headers as
  given, a body with its ``Content-Length`` or chunked; a name or value that would break the head
  (CR, LF, NUL) is refused before anything is sent (:class:`BadRequestHead`);
* the answer: interim 1xx skipped, no body for ``HEAD`` (whose connection is not kept), 204 and
  304, ``Content-Length``, chunked or read to the close; the head and a trailer bounded
  (:data:`MAX_HEAD_BYTES`, :data:`MAX_HEADERS`);
* a pool per upstream (:class:`Pool`): an idle connection is reused only if its last answer was read
  to its end, both sides keep it, nothing came after the answer and it is within its idle limit; the
  total per upstream is capped, a request waiting for a free one up to the connect timeout.

Not done: HTTP/2, proxies, redirects, cookies, ``Expect: 100-continue``, upgrades (a 101 is an error).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from typing import Final, cast

import httptools

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "Answer",
    "BadRequestHead",
    "Connection",
    "Pool",
    "PoolTimeout",
    "request_head",
]

Header = tuple[bytes, bytes]

#: The answer's head (status line, interim answers and headers) may not be larger than this...
MAX_HEAD_BYTES: Final = 64 * 1024
#: ...nor hold more header fields: an upstream cannot make the gateway hold an unbounded head.
MAX_HEADERS: Final = 100
#: An idle connection is not reused after this long: below the usual upstream keep-alive timeouts
#: (nginx 75 s, Node 5 s is the exception: it sends ``Keep-Alive: timeout=5``, which is honoured).
IDLE_S: Final = 30.0
#: Idle connections kept per upstream, and connections open per upstream at most.
MAX_IDLE: Final = 200
MAX_CONNECTIONS: Final = 1000
#: Received bytes held for a connection before it stops reading from the socket (back pressure).
_HIGH_WATER: Final = 256 * 1024
_BAD_VALUE: Final = re.compile(rb"[\r\n\0]")
_BAD_NAME: Final = re.compile(rb"[\r\n\0:\s]")
_BAD_TARGET: Final = re.compile(rb"[\x00-\x20\x7f]")
#: Fields only the client writes: a header list naming one (a route's ``upstream_access_token_header``
#: may name any field) would send two ``Host`` or a body framed two ways.
_OWN_FIELDS: Final = frozenset({b"host", b"transfer-encoding"})
_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_KEEP_ALIVE_TIMEOUT: Final = re.compile(rb"timeout\s*=\s*(\d+)", re.IGNORECASE)


class BadRequestHead(ValueError):
    """The request cannot be written as given (a header that would inject another, a bad target)."""


class PoolTimeout(TimeoutError):
    """Every connection to the upstream stayed busy for the whole connect timeout."""


def request_head(
    method: str, target: bytes, host: bytes, headers: list[Header], has_body: bool
) -> tuple[bytes, bool]:
    """The request's head, and whether its body goes chunked (a body without ``Content-Length``)."""
    if not _TOKEN.fullmatch(method):
        raise BadRequestHead(f"method {method!r}")
    if not target.startswith(b"/") or _BAD_TARGET.search(target):
        raise BadRequestHead(f"target {target[:80]!r}")
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host, b"\r\n"]
    length = False
    for name, value in headers:
        if not name or _BAD_NAME.search(name) or _BAD_VALUE.search(value):
            raise BadRequestHead(f"header {name[:80]!r}: a name or value with CR, LF or NUL")
        lower = name.lower()
        if lower in _OWN_FIELDS:  # a second Host, or framing the body's own would contradict
            raise BadRequestHead(f"header {name[:80]!r}: set by the client itself")
        if lower == b"content-length":
            length = True
        parts += (name, b": ", value, b"\r\n")
    chunked = has_body and not length
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    parts.append(b"\r\n")
    return b"".join(parts), chunked


class Answer:
    """One answer being parsed: httptools' callbacks collect its head, then its body chunk by chunk.

    `head_done` once the final (non-1xx) head is in; `done` once the message is complete (at the head
    for ``HEAD``, 204 and 304); `extra` when bytes followed it (the connection then cannot be reused).
    """

    __slots__ = (
        "_fed", "_framing", "_head_bytes", "_interim", "_parser", "chunks", "done", "extra", "head_done",
        "head_only", "headers", "keep_alive", "received", "status", "too_large", "upgrade",
    )  # fmt: skip

    def __init__(self, head_only: bool) -> None:
        self.head_only = head_only  # a HEAD request: the answer ends with its head
        self.headers: list[Header] = []
        self.chunks: list[bytes] = []
        self.status = 0
        self.received = 0  # bytes of the answer so far (0: the upstream sent nothing yet)
        self.keep_alive = False
        self.head_done = self.done = self.extra = self.too_large = self.upgrade = False
        self._interim = False
        self._head_bytes = self._fed = 0  # the head's fields; bytes fed before the head was complete
        self._framing = 0  # bytes fed since the last body bytes (chunk lines, trailer fields)
        self._parser: httptools.HttpResponseParser | None = httptools.HttpResponseParser(self)

    def feed(self, data: bytes) -> None:
        """Parse `data`; raises httptools.HttpParserError on a malformed answer or a head too large."""
        self.received += len(data)
        if not self.head_done:
            self._fed += len(data)
        else:
            self._framing += len(data)  # back to 0 as soon as this data holds body bytes
        if self._parser is None:
            raise httptools.HttpParserError("the answer was released")
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise httptools.HttpParserError("the upstream switched protocols (101)") from None
        except httptools.HttpParserError:
            if not self.done:
                raise
            self.extra = True  # bytes after a complete answer
        if self.upgrade:
            raise httptools.HttpParserError("the upstream switched protocols (101)")
        if self.too_large or (not self.head_done and self._fed > MAX_HEAD_BYTES + 1024):
            raise httptools.HttpParserError(
                f"the answer's head is over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} fields"
            )
        if self._framing > MAX_HEAD_BYTES + 1024:  # httptools holds a trailer field whole
            raise httptools.HttpParserError(f"the answer's trailer is over {MAX_HEAD_BYTES} bytes")

    def release(self) -> None:
        """Done with this answer: the parser holds the answer's callbacks and the answer holds the
        parser, a reference cycle per exchange that only the garbage collector would free (~5% of the
        gateway's CPU went to collections); nothing is fed after this."""
        self._parser = None

    def take(self) -> list[bytes]:
        chunks, self.chunks = self.chunks, []
        return chunks

    @property
    def read_to_close(self) -> bool:
        """The body ends when the upstream closes: no length and not chunked (RFC 9112 section 6.3)."""
        if self.done or self.head_only:
            return False
        chunked = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                return False
            if lower == b"transfer-encoding":
                chunked = value.rsplit(b",", 1)[-1].strip().lower() == b"chunked"
        return not chunked

    def keep_alive_timeout(self) -> float | None:
        """``Keep-Alive: timeout=N`` of the answer, when sent."""
        for name, value in self.headers:
            if name.lower() == b"keep-alive":
                found = _KEEP_ALIVE_TIMEOUT.search(value)
                if found:
                    return float(found.group(1))
        return None

    # httptools' callbacks

    def on_message_begin(self) -> None:
        if self.done:
            self.extra = True

    def on_status(self, reason: bytes) -> None:
        if not self.done:
            self._head_bytes += len(reason)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head_done:  # a chunked body's trailer fields: not passed on
            return
        self._head_bytes += len(name) + len(value)  # the head of one feed, however large, counted
        if len(self.headers) >= MAX_HEADERS or self._head_bytes > MAX_HEAD_BYTES:
            self.too_large = True
            return
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.done:  # the head of a message after the answer: never this answer's status or fields
            return
        assert self._parser is not None  # called by the parser itself
        status = self._parser.get_status_code()
        if status < 100:
            raise httptools.HttpParserError(f"status {status}")
        if status == 101:
            self.upgrade = True
        elif 100 <= status < 200:  # interim (100 Continue, 103 Early Hints): the final one follows
            self._interim = True
            self.headers = []
            return
        self.status = status
        # llhttp resets it after the message. Never after HEAD: an upstream answering it like GET may
        # send the body after the head, late enough to be read as the next request's answer.
        self.keep_alive = bool(self._parser.should_keep_alive()) and not self.head_only
        self.head_done = True
        if self.head_only:
            self.done = True

    def on_body(self, body: bytes) -> None:
        if self.done:  # a body to HEAD: not forwarded, and the connection is not kept
            self.extra = True
        else:
            self._framing = 0
            self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
        else:
            self.done = True


class Connection(asyncio.Protocol):
    """One connection to the upstream: received data queued for one reader, writes with drain.

    Between exchanges (`busy` false) any byte received spoils it: an answer to nothing (a ``408``
    before closing, garbage) must never be read as the next request's answer.
    """

    _loop: asyncio.AbstractEventLoop  # from connection_made on

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.busy = True
        self.spoiled = False
        self.closed = False
        self.reuse_until = 0.0
        self._eof = False  # the upstream ended its side cleanly (FIN; TLS: close_notify on uvloop)
        self._cut = False  # the connection was lost without that end (a reset, a TLS truncation)
        self._data: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._write_paused = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not asyncio.Transport subclasses
        # kept: asyncio.get_running_loop() (and asyncio.timeout(), which asks three times) is a getpid()
        # system call on CPython 3.11, a visible share of a forwarded request's CPU
        self._loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        if not self.busy:
            self.spoiled = True
            return
        self._data.append(data)
        self._buffered += len(data)
        if self._buffered > _HIGH_WATER and not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cut = not self._eof  # a body read to the close must not look complete when it was cut
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # used by the exchange

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("the upstream closed the connection")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its limit (the upstream is reading)."""
        while self._write_paused and not self.closed:
            self._drain = asyncio.get_running_loop().create_future()
            await self._drain
        if self.closed:
            raise ConnectionResetError("the upstream closed the connection")

    def deadline(self, seconds: float) -> float:
        """The loop time `seconds` from now, for :meth:`read`."""
        return self._loop.time() + seconds

    async def read(self, deadline: float | None = None) -> bytes:
        """The next data received; b"" once the upstream closed its side, ConnectionResetError when
        the connection was lost otherwise, TimeoutError when nothing came by `deadline` (loop time,
        :meth:`deadline`; data already received is returned whatever the time)."""
        while not self._data:
            if self._eof:
                return b""
            if self._cut:
                raise ConnectionResetError("the upstream's connection was cut (reset, or TLS truncated)")
            waiter = self._waiter = self._loop.create_future()
            timer = None if deadline is None else self._loop.call_at(deadline, _expire, waiter)
            try:
                await waiter
            finally:
                if timer is not None:
                    timer.cancel()
        data = self._data.popleft()
        self._buffered -= len(data)
        if self._reading_paused and self._buffered <= _HIGH_WATER // 4 and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    def reusable(self, now: float) -> bool:
        """Idle, open, nothing received since its last answer, within its idle limit."""
        return not (self.closed or self._eof or self.spoiled or self._data) and now < self.reuse_until

    def close(self) -> None:
        """Close without waiting for anything (an unfinished exchange must not linger)."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Pool:
    """The connections to one upstream (scheme, host, port, trust): idle ones reused, all capped.

    Each open connection holds one of `max_connections` places. A request takes an idle connection
    that is still good, else a free place to connect, else waits (up to its connect timeout) for a
    connection another request releases: handed over as it is when it can be reused, else as its
    place for a new one.
    """

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        max_connections: int = MAX_CONNECTIONS,
        max_idle: int = MAX_IDLE,
        idle_s: float = IDLE_S,
    ) -> None:
        self.host, self.port, self._ssl = host, port, ssl_context
        self._max, self._max_idle, self._idle_s = max_connections, max_idle, idle_s
        self._idle: list[Connection] = []
        self._open = 0  # connections open or being opened (places taken)
        self._waiters: deque[asyncio.Future[Connection | None]] = deque()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return len(self._idle)

    async def acquire(self, connect_timeout: float, *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection for one exchange, and whether it was used before. `fresh`: a new one even if
        idle ones wait. Raises PoolTimeout, TimeoutError (connecting) or OSError (ssl.SSLError too)."""
        if self._closed:
            raise ConnectionRefusedError("the gateway is shutting down")
        now = time.monotonic()
        while self._idle and not fresh:
            connection = self._idle.pop()
            if connection.reusable(now):
                connection.busy = True
                return connection, True
            self._drop(connection)
        if self._open < self._max:
            self._open += 1
        else:
            handed = await self._wait(connect_timeout)
            if handed is not None:
                if handed.reusable(time.monotonic()) and not fresh:
                    handed.busy = True
                    return handed, True
                handed.close()  # its place is ours: connect anew
        try:
            return await self._connect(connect_timeout), False
        except BaseException:
            self._pass_on(None)
            raise

    async def _wait(self, timeout: float) -> Connection | None:
        waiter: asyncio.Future[Connection | None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._pass_on(waiter.result())  # handed over just as this request gave up
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolTimeout("no free connection to the upstream in time") from None
            raise

    async def _connect(self, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(timeout):
            _, connection = await loop.create_connection(
                Connection,
                self.host,
                self.port,
                ssl=self._ssl,
                server_hostname=self.host if self._ssl is not None else None,
            )
        return connection

    def release(self, connection: Connection, reusable: bool, keep_alive_s: float | None = None) -> None:
        """Give a connection back after its exchange: kept for reuse, or closed."""
        connection.busy = False
        if reusable and not self._closed:
            limit = self._idle_s if keep_alive_s is None else min(self._idle_s, keep_alive_s - 1.0)
            connection.reuse_until = time.monotonic() + limit
            if limit > 0 and connection.reusable(time.monotonic()):
                self._pass_on(connection)
                return
        self._drop(connection)

    def _drop(self, connection: Connection) -> None:
        connection.close()
        self._pass_on(None)

    def _pass_on(self, item: Connection | None) -> None:
        """A released connection (or, None, the place of a closed one) to the first waiting request."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if item is None:
            self._open -= 1
        elif len(self._idle) < self._max_idle:
            self._idle.append(item)
        else:
            item.close()
            self._open -= 1

    def close(self) -> None:
        """Close every idle connection now, and each busy one when its exchange ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
            self._open -= 1
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionRefusedError("the gateway is shutting down"))
