"""Raw HTTP/1.1 over real TLS, for requests httpx will not send (huge heads, thousands of headers) and
for watching what happens to the connection afterwards."""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class RawConnection:
    """One TLS connection; `send` writes bytes (tolerating the server closing mid-way), `response`
    reads one response (Content-Length framing), `closed_by_peer` tells whether it was closed."""

    def __init__(self, url: str, ca_file: Path, timeout: float = 10) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        ctx = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection((self.host, parts.port or 443), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname=self.host)
        self._buffer = b""

    def send(self, data: bytes) -> bool:
        """True when everything was written; False when the server closed the connection first."""
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return False
        return True

    def _read(self) -> bytes:
        try:
            return self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, OSError):
            return b""

    def response(self) -> RawResponse | None:
        while b"\r\n\r\n" not in self._buffer:
            chunk = self._read()
            if not chunk:
                return None
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
        length = int(next((v for k, v in headers if k.lower() == "content-length"), "0"))
        while len(rest) < length:
            chunk = self._read()
            if not chunk:
                break
            rest += chunk
        self._buffer = rest[length:]
        return RawResponse(status, headers, rest[:length])

    def closed_by_peer(self) -> bool:
        """True when the server has closed the connection (reads end)."""
        self.sock.settimeout(5)
        return self._read() == b"" and not self._buffer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(
    method: str, path: str, host: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def closed_within(conn: RawConnection, seconds: float, trickle: bytes = b"") -> bool:
    """True when the server closes the connection before `seconds` pass while the client sends
    `trickle` every half second (a slowloris head) or nothing at all; what the server sent before
    closing is kept in ``conn._buffer``."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if trickle and not conn.send(trickle):
            return True
        conn.sock.settimeout(min(0.5, left))
        try:
            data = conn.sock.recv(65536)
        except TimeoutError:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return True
        if not data:
            return True
        conn._buffer += data
    return False
