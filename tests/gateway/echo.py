"""The upstream of the gateway tests: a real HTTP/1.1 server on 127.0.0.1 that echoes what reached it.

Every request is answered with JSON: the method, the target as received, every header as received
(name spelling and order kept), and the body's length and SHA-256 (a chunked body is decoded, so
streaming uploads can be checked). It also keeps every request it saw, so a test can assert that a
refused request never reached it. Special paths: ``.../download?bytes=N`` streams N bytes back in
chunks, ``.../slow?seconds=S`` waits before answering, ``.../cut`` closes the connection mid-answer.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Seen:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body_length: int
    body_sha256: str

    def header(self, name: str) -> list[str]:
        return [v for n, v in self.headers if n.lower() == name.lower()]


@dataclass
class Echo:
    port: int
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reached(self, marker: str) -> list[Seen]:
        """The requests whose target contains `marker`."""
        return [s for s in list(self.seen) if marker in s.target]


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(body)
            body += handler.rfile.read(size)
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _handler(echo: Echo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            body = _read_body(self)
            seen = Seen(
                self.command,
                self.path,
                list(self.headers.items()),
                len(body),
                hashlib.sha256(body).hexdigest(),
            )
            echo.seen.append(seen)
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path.endswith("/download"):
                self._download(int(query.get("bytes", "0")))
                return
            if parts.path.endswith("/slow"):
                time.sleep(float(query.get("seconds", "1")))
            if parts.path.endswith("/cut"):
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"partial")
                self.wfile.flush()
                self.close_connection = True
                return
            reply = json.dumps(
                {
                    "method": seen.method,
                    "target": seen.target,
                    "headers": seen.headers,
                    "body_length": seen.body_length,
                    "body_sha256": seen.body_sha256,
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.send_header("Connection", "X-Upstream-Hop")
            self.send_header("X-Upstream-Hop", "must not pass")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Upstream", "echo")
            if parts.path.endswith("/set-cookie"):  # meant for this caller alone
                self.send_header("Set-Cookie", f"upstream-session={parts.path.split('/')[-2]}; Path=/")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply)

        def _download(self, size: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            block = bytes(range(256)) * 256  # 64 KiB
            left = size
            while left > 0:
                piece = block[: min(left, len(block))]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                left -= len(piece)
            self.wfile.write(b"0\r\n\r\n")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

    return Handler


def download_digest(size: int) -> str:
    """The SHA-256 of what ``/download?bytes=size`` sends."""
    block = bytes(range(256)) * 256
    digest = hashlib.sha256()
    left = size
    while left > 0:
        digest.update(block[: min(left, len(block))])
        left -= len(block)
    return digest.hexdigest()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A caller that hung up (the gateway's read timeout) is no error worth printing."""


@contextmanager
def echo_server() -> Iterator[Echo]:
    httpd = _QuietServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    echo = Echo(int(httpd.server_address[1]))
    httpd.RequestHandlerClass = _handler(echo)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield echo
    finally:
        httpd.shutdown()
        httpd.server_close()
