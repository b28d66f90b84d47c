"""A response's head and body leave the server as one TLS record (one send), over a real handshake.

The client runs TLS over memory BIOs on a plain socket, so the test sees the raw records: after a
first request (which also carries any post-handshake messages), the next response must arrive as
exactly one application-data record, for TLS 1.2 and 1.3.
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

import pytest

from certbound.tls.server_context import ServerContextFactory

from .conftest import TestPKI, client_context, serve

APPLICATION_DATA = 23
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


async def two_part_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Head and body in two ASGI messages, as every Starlette response sends them."""
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RecordClient:
    """TLS client over memory BIOs: reads the socket record by record."""

    def __init__(self, port: int, ctx: ssl.SSLContext) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                self.incoming.write(self._record()[1])
        self._flush()

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _record(self) -> tuple[int, bytes]:
        header = self._exactly(5)
        kind, _, length = struct.unpack("!BHH", header)
        return kind, header + self._exactly(length)

    def exchange(self) -> int:
        """Send one request; the number of application-data records its full response took."""
        self.tls.write(REQUEST)
        self._flush()
        records, response = 0, b""
        while not (b"\r\n\r\n" in response and response.endswith(b"}")):
            kind, record = self._record()
            records += kind == APPLICATION_DATA
            self.incoming.write(record)
            try:
                response += self.tls.read(65536)
            except ssl.SSLWantReadError:
                continue
        assert response.startswith(b"HTTP/1.1 200")
        return records

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3], ids=["tls1.2", "tls1.3"]
)
def test_head_and_body_are_one_record(
    pki: TestPKI, native_factory: ServerContextFactory, version: ssl.TLSVersion
) -> None:
    with serve(native_factory, two_part_app) as port:
        client = RecordClient(port, client_context(pki, pki.trusted, version))
        try:
            client.exchange()  # the first response may share the wire with post-handshake messages
            assert [client.exchange() for _ in range(3)] == [1, 1, 1]
        finally:
            client.close()


def test_connection_close_sends_the_whole_response_first(
    pki: TestPKI, native_factory: ServerContextFactory
) -> None:
    """Closing flushes what is pending: a ``Connection: close`` request still gets every byte, then EOF."""
    with (
        serve(native_factory, two_part_app) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_context(pki, pki.trusted).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b'\r\n\r\n{"ok":true}')


async def test_a_large_write_is_handed_over_at_once() -> None:
    """Past FLUSH_AT pending bytes the wrapper writes through, so the transport's flow control sees a
    streamed body (here a real socket transport whose peer does not read)."""
    import asyncio

    from certbound.tls.write_coalescing import CoalescingTransport

    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    try:
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
        wrapper = CoalescingTransport(transport, loop)
        wrapper.write(b"x" * 100)
        assert transport.get_write_buffer_size() == 0  # small writes wait for the end of the step
        chunk = b"y" * (CoalescingTransport.FLUSH_AT // 4)
        for _ in range(40):  # 640 KiB in one step, more than the socket takes
            wrapper.write(chunk)
        assert wrapper.get_write_buffer_size() >= transport.get_write_buffer_size() > 0
        assert wrapper.get_write_buffer_size() - transport.get_write_buffer_size() <= (
            CoalescingTransport.FLUSH_AT
        )
        wrapper.abort()
    finally:
        theirs.close()
