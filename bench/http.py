"""Minimal HTTP/1.1 on asyncio streams: prebuilt request bytes and a cheap response reader.

The generator must cost far less than the servers it loads, so requests are bytes built once and
responses are read with two awaits (head, then a Content-Length body). Chunked bodies are read too.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from urllib.parse import urlencode

__all__ = ["Response", "basic_auth", "form_post", "parse_closed_response", "read_response"]


@dataclass(frozen=True, slots=True)
class Response:
    """Status code and body of one response; `close` when the server ends the connection."""

    status: int
    body: bytes
    close: bool


def basic_auth(client_id: str, secret: str) -> str:
    """RFC 6749 section 2.3.1: both parts form-urlencoded, then Basic."""
    pair = urlencode({"a": client_id})[2:] + ":" + urlencode({"a": secret})[2:]
    return "Basic " + base64.b64encode(pair.encode()).decode()


def form_post(
    path: str,
    host: str,
    params: dict[str, str],
    *,
    authorization: str | None = None,
    close: bool = False,
) -> bytes:
    """The bytes of one ``application/x-www-form-urlencoded`` POST."""
    body = urlencode(params).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}",
        "Content-Type: application/x-www-form-urlencoded",
        "Accept: application/json",
        f"Content-Length: {len(body)}",
    ]
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one response; raises `ValueError` on a malformed head, EOF errors from asyncio."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, _, header_block = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {status_line[:80]!r}")
    status = int(parts[1])
    length = -1
    chunked = close = False
    for line in header_block.lower().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = b"close" in value
    if chunked:
        body = await _read_chunked(reader)
    elif length >= 0:
        body = await reader.readexactly(length) if length else b""
    else:
        body, close = await reader.read(), True
    return Response(status, body, close)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers are expected
            return bytes(out)
        out += await reader.readexactly(size + 2)
        del out[-2:]


def parse_closed_response(data: bytes) -> Response:
    """A whole response read until the server closed the connection (``Connection: close``)."""
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"incomplete response ({len(data)} bytes)")
    status_line, _, header_block = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError(f"bad status line {status_line[:80]!r}")
    for line in header_block.lower().split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name == b"content-length" and len(body) != int(value):
            raise ValueError(f"body of {len(body)} bytes, Content-Length {int(value)}")
    return Response(int(parts[1]), body, True)
