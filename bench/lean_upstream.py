"""An experiment: the gateway's upstream forwarding over asyncio streams and httptools, not httpx.

Measured in the gateway benchmark (docs/performance.md, "The gateway against Apache httpd"), httpx
and httpcore cost most of a gateway request's CPU: every request goes through their client, pool and
anyio layers, and httpcore asks every pooled connection whether it expired (a ``poll`` each) on every
request. `LeanUpstream` has the `certbound.gateway.upstream.Upstream.forward` interface and does the
same HTTP/1.1 exchange with one pooled connection per request in flight: the request head written
once, the body streamed (``Content-Length`` as sent, else chunked), the answer parsed by httptools and
streamed back, the connection kept only when the answer was read to its end and both sides keep it.
``python -m bench.gateway_run --gateway-patch lean-upstream`` runs the gateway with it
(`bench.experiments`). It is a measurement of a candidate design, not the product: plain ``http://``
upstreams only, no ``upstream_ca_bundle``, and not reviewed as the product's code is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import httptools
from starlette.types import Receive, Send

from certbound.gateway.answers import upstream_failure
from certbound.gateway.headers import response_headers
from certbound.gateway.upstream import ClientGone

__all__ = ["LeanUpstream"]

KEEPALIVE_S: Final = 30.0
MAX_IDLE: Final = 200
Header = tuple[bytes, bytes]


class _Answer:
    """httptools' callbacks: the status line and headers, then body chunks as they are parsed."""

    def __init__(self) -> None:
        self.parser: Any = None
        self.keep_alive = False  # read when the head is complete: llhttp resets it after the message
        self.headers: list[Header] = []
        self.head_done = False
        self.done = False
        self.chunks: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True
        self.keep_alive = bool(self.parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.done = True


class LeanUpstream:
    """One route's upstream (see the module docstring)."""

    def __init__(self, url: str, _client: Any = None, *, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError("the lean upstream experiment speaks plain http:// only")
        self._host, self._port = parts.hostname, parts.port or 80
        self._host_header = parts.netloc.encode("ascii")
        self._base = parts.path.rstrip("/").encode("ascii")
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        now = time.monotonic()
        while self._idle:
            reader, writer, since = self._idle.pop()
            if reader.at_eof() or writer.is_closing() or now - since > KEEPALIVE_S:
                writer.close()
                continue
            return reader, writer
        try:
            async with asyncio.timeout(self._connect_timeout):
                return await asyncio.open_connection(self._host, self._port)
        except TimeoutError:
            raise upstream_failure("upstream.timeout", 504, "the upstream did not answer in time",
                                   "connect") from None  # fmt: skip
        except OSError as exc:
            raise upstream_failure("upstream.unavailable", 502, "the upstream cannot be reached",
                                   f"{type(exc).__name__}: {exc}") from None  # fmt: skip

    def _head(
        self, method: str, target: bytes, headers: Sequence[Header], has_body: bool
    ) -> tuple[bytes, bool]:
        lines = [
            method.encode("ascii") + b" " + self._base + target + b" HTTP/1.1",
            b"host: " + self._host_header,
        ]
        length = False
        for name, value in headers:
            if name == b"content-length":
                length = True
            lines.append(name + b": " + value)
        chunked = has_body and not length
        if chunked:
            lines.append(b"transfer-encoding: chunked")
        return b"\r\n".join(lines) + b"\r\n\r\n", chunked

    async def _send_body(self, writer: asyncio.StreamWriter, receive: Receive, chunked: bool) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
                await writer.drain()
            if not message.get("more_body", False):
                break
        if chunked:
            writer.write(b"0\r\n\r\n")

    async def _exchange(
        self, method: str, head: bytes, has_body: bool, chunked: bool, receive: Receive
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, _Answer, Any]:
        """Send the request and read the answer's head; a reused connection the upstream closed
        while idle is replaced once for a request without a body (nothing was sent that counts)."""
        for attempt in (1, 2):
            reused = bool(self._idle)
            reader, writer = await self._connection()
            answer = _Answer()
            parser = answer.parser = httptools.HttpResponseParser(answer)
            try:
                writer.write(head)
                if has_body:
                    await self._send_body(writer, receive, chunked)
                async with asyncio.timeout(self._read_timeout):
                    while not answer.head_done:
                        data = await reader.read(65536)
                        if not data:
                            raise ConnectionResetError("the upstream closed the connection")
                        parser.feed_data(data)
                return reader, writer, answer, parser
            except ConnectionResetError:
                writer.close()
                if attempt == 1 and reused and not has_body and not answer.headers:
                    continue
                raise
            except BaseException:
                writer.close()
                raise
        raise AssertionError("unreachable")

    async def forward(
        self, method: str, target: bytes, headers: list[Header], has_body: bool, receive: Receive, send: Send,
        answer_headers: Sequence[Header] = (),
    ) -> tuple[int, str | None]:  # fmt: skip
        head, chunked = self._head(method, target, headers, has_body)
        try:
            reader, writer, answer, parser = await self._exchange(method, head, has_body, chunked, receive)
        except TimeoutError:
            raise upstream_failure("upstream.timeout", 504, "the upstream did not answer in time",
                                   "read") from None  # fmt: skip
        except (OSError, httptools.HttpParserError) as exc:
            raise upstream_failure("upstream.unavailable", 502, "the upstream cannot be reached",
                                   f"{type(exc).__name__}: {exc}") from None  # fmt: skip
        status = parser.get_status_code()
        names = {name.lower() for name, _ in answer.headers}
        framed = b"content-length" in names or b"transfer-encoding" in names or status in (204, 304)
        extra = {name for name, _ in answer_headers}
        out = [h for h in response_headers(answer.headers) if h[0] not in extra] + list(answer_headers)
        await send({"type": "http.response.start", "status": status, "headers": out})
        keep = framed
        try:
            if method == "HEAD":
                answer.done, answer.chunks = True, []
            while True:
                chunks, answer.chunks = answer.chunks, []
                for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if answer.done:
                    break
                async with asyncio.timeout(self._read_timeout):
                    data = await reader.read(65536)
                if not data:
                    if framed:  # a body announced and not all sent
                        raise ConnectionResetError("the upstream's answer broke off")
                    break  # a body read to the close: complete, the connection spent
                parser.feed_data(data)
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            writer.close()
            return status, f"{type(exc).__name__}: {exc}"
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if keep and answer.keep_alive and not reader.at_eof() and len(self._idle) < MAX_IDLE:
            self._idle.append((reader, writer, time.monotonic()))
        else:
            writer.close()
        return status, None
