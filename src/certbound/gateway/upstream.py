"""Forwarding to the upstream: pooled connections, bodies streamed both ways, failures as 502/504.

Every route's upstream is reached through a :class:`~certbound.gateway.upstream_http.Pool` (one per
upstream origin and trust, shared by the routes that name it) of HTTP/1.1 connections, plain or TLS
verified against the route's ``upstream_ca_bundle`` or the system store (`certbound.net.tls`), with
the route's timeouts: connect (also the wait for a free connection), write and read (each between
two chunks of a body; the answer's head as a whole). The request body goes up as ASGI delivers it
and the answer comes down as the upstream sends it: neither is held whole in memory. A failure
before the upstream answered is the caller's 502 (``upstream.unavailable``) or 504
(``upstream.timeout``); one after the answer began can only cut the connection (the status was
sent), which the event records.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import httptools
from starlette.types import Receive, Send

from certbound.gateway.answers import GatewayError, upstream_failure
from certbound.gateway.headers import response_headers
from certbound.gateway.upstream_http import (
    Answer,
    BadRequestHead,
    Connection,
    Pool,
    PoolTimeout,
    request_head,
)
from certbound.net.tls import build_ssl_context, load_trust
from certbound.tls.whole_response import respond

__all__ = ["ClientGone", "Upstream", "UpstreamPools"]

Header = tuple[bytes, bytes]

#: Methods whose request may be sent twice (RFC 9110 section 9.2.2). Only these, without a body, are
#: retried when a reused connection fails before any byte of the answer: the upstream may have closed
#: it idle just as the request went out (nothing was processed), but it may also have processed the
#: request and died before answering, and a POST (or any request with a body) must not be done twice.
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class ClientGone(Exception):
    """The caller went away while its body was being forwarded."""


class UpstreamPools:
    """The connection pools, one per upstream origin and trust (routes share them); closed together."""

    def __init__(self) -> None:
        self._contexts: dict[Path | None, ssl.SSLContext] = {}
        self._pools: dict[tuple[str, str, int, Path | None], Pool] = {}

    def pool(self, url: str, ca_bundle: Path | None) -> Pool:
        """The pool for `url`'s origin; TLSConfigError when the CA bundle cannot be used."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        https = parts.scheme == "https"
        port = parts.port or (443 if https else 80)
        key = (parts.scheme, host, port, ca_bundle)
        found = self._pools.get(key)
        if found is None:
            context = None
            if https:
                context = self._contexts.get(ca_bundle)
                if context is None:
                    context = build_ssl_context(load_trust(ca_bundle), None)
                    context.set_alpn_protocols(["http/1.1"])
                    self._contexts[ca_bundle] = context
            found = self._pools[key] = Pool(host, port, context)
        return found

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


def _with(headers: list[Header], extra: Sequence[Header]) -> list[Header]:
    """The upstream's answer headers with the gateway's own (`extra`) in place of same-named ones."""
    if not extra:
        return headers
    names = {name for name, _ in extra}
    return [h for h in headers if h[0] not in names] + list(extra)


def _unavailable(detail: str) -> GatewayError:
    return upstream_failure("upstream.unavailable", 502, "the upstream cannot be reached", detail)


def _timeout(detail: str) -> GatewayError:
    return upstream_failure("upstream.timeout", 504, "the upstream did not answer in time", detail)


class Upstream:
    """One route's upstream: its pool, its base path, its timeouts."""

    __slots__ = ("_base", "_connect_timeout", "_host", "_pool", "_read_timeout")

    def __init__(self, url: str, pool: Pool, *, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(url)
        self._host = parts.netloc.encode("ascii")
        self._base = parts.path.rstrip("/").encode("utf-8")
        self._pool = pool
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout

    async def forward(
        self,
        method: str,
        target: bytes,
        headers: list[Header],
        has_body: bool,
        receive: Receive,
        send: Send,
        answer_headers: Sequence[Header] = (),
    ) -> tuple[int, str | None]:
        """Send the request (`target`: path and query, as received) and stream the answer back (in one
        write when it came whole with its head: :mod:`certbound.tls.whole_response`).

        Returns the upstream's status and, when the answer broke off midway, why. Raises GatewayError
        (502/504) when no answer began, ClientGone when the caller left first.
        """
        try:
            head, chunked = request_head(method, self._base + target, self._host, headers, has_body)
        except BadRequestHead as exc:  # never sent: a header that would smuggle another
            raise _unavailable(f"request not sent: {exc}") from None
        connection, answer = await self._exchange(method, head, has_body, chunked, receive)
        try:
            return await self._answer(connection, answer, send, answer_headers)
        finally:
            answer.release()

    async def _answer(
        self, connection: Connection, answer: Answer, send: Send, answer_headers: Sequence[Header]
    ) -> tuple[int, str | None]:
        """Relay the answer whose head is in; the connection is kept or closed after it."""
        status = answer.status
        headers = _with(response_headers(answer.headers), answer_headers)
        try:
            if answer.done:  # the body came with the head; the upstream's headers are never kept
                await respond(send, status, headers, b"".join(answer.take()), keep=False)
                broke = None
            else:
                await send({"type": "http.response.start", "status": status, "headers": headers})
                broke = await self._relay(connection, answer, send)
                if broke is None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
        except BaseException:  # the caller's side failed or the task was cancelled: never reused
            self._pool.release(connection, False)
            raise
        if broke is not None:
            self._pool.release(connection, False)
            return status, broke
        self._pool.release(connection, answer.keep_alive and not answer.extra, answer.keep_alive_timeout())
        return status, None

    async def _exchange(
        self, method: str, head: bytes, has_body: bool, chunked: bool, receive: Receive
    ) -> tuple[Connection, Answer]:
        """Send the request and read the answer's head; GatewayError (502/504) when that fails."""
        retry = method in _IDEMPOTENT and not has_body
        fresh = False
        while True:
            try:
                connection, reused = await self._pool.acquire(self._connect_timeout, fresh=fresh)
            except PoolTimeout:
                raise _timeout("no free connection to the upstream") from None
            except TimeoutError:
                raise _timeout("connect") from None
            except OSError as exc:
                raise _unavailable(f"{type(exc).__name__}: {exc}") from None
            answer = Answer(head_only=method == "HEAD")
            phase = "write"  # what timed out: the upstream not reading the body, or not answering
            try:
                connection.write(head)
                if has_body:
                    await self._send_body(connection, receive, chunked)
                phase = "read"
                await self._read_head(connection, answer)
                return connection, answer
            except BaseException as exc:
                self._pool.release(connection, False)
                answer.release()
                if isinstance(exc, TimeoutError):
                    raise _timeout(phase) from None
                if isinstance(exc, OSError):
                    if reused and retry and not answer.received:
                        fresh, retry = True, False  # a stale kept connection: once, on a new one
                        continue
                    raise _unavailable(f"{type(exc).__name__}: {exc}") from None
                if isinstance(exc, httptools.HttpParserError):
                    raise _unavailable(f"bad answer: {exc}") from None
                raise

    async def _send_body(self, connection: Connection, receive: Receive, chunked: bool) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                async with asyncio.timeout(self._read_timeout):
                    await connection.drain()
            if not message.get("more_body", False):
                break
        if chunked:
            connection.write(b"0\r\n\r\n")

    async def _read_head(self, connection: Connection, answer: Answer) -> None:
        """The answer's head, whole within the read timeout: a deadline per read alone would let an
        upstream drip its (64 KiB at most) head a byte at a time and hold the request for hours."""
        deadline = connection.deadline(self._read_timeout)
        while not answer.head_done:
            data = await connection.read(deadline)
            if not data:
                raise ConnectionResetError(
                    "the upstream closed the connection "
                    + ("mid-answer" if answer.received else "before answering")
                )
            answer.feed(data)

    async def _relay(self, connection: Connection, answer: Answer, send: Send) -> str | None:
        """Stream the body back chunk by chunk; why it broke off, or None when read to its end."""
        while True:
            for chunk in answer.take():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if answer.done:
                return None
            try:
                data = await connection.read(connection.deadline(self._read_timeout))
                if not data:
                    if answer.read_to_close:  # a body delimited by the close: complete
                        answer.keep_alive = False
                        return None
                    raise ConnectionResetError("the upstream's answer broke off")
                answer.feed(data)
            except (OSError, TimeoutError, httptools.HttpParserError) as exc:
                return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
