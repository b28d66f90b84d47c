"""A small document server for outbound-fetch tests: HTTPS (or plain HTTP) on 127.0.0.1, certificates
from `certbound.pki`, a routing table the test changes at will, and a record of what arrived.

Shared by tests/net and tests/jose (a JWKS is one such document).
"""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from certbound.pki.issue import create_ca, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem

#: Names the test server's certificate holds (they resolve to 127.0.0.1 through a test resolver).
SERVER_NAMES = ("127.0.0.1", "localhost", "idp.test", "jwks.test")


@dataclass(frozen=True)
class ServerPki:
    ca_file: Path
    cert_file: Path
    key_file: Path


def write_server_pki(directory: Path) -> ServerPki:
    """A CA of its own and a server certificate for :data:`SERVER_NAMES`, as PEM files."""
    ca_cert, ca_key = create_ca("CN=Document server test CA")
    cert, key = issue_server_cert(ca_cert, ca_key, hosts=SERVER_NAMES)
    files = ServerPki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(cert_to_pem(ca_cert))
    files.cert_file.write_bytes(cert_to_pem(cert))
    files.key_file.write_bytes(key_to_pem(key))
    return files


@dataclass
class Route:
    """One answer: status, body, extra headers; `length=False` streams it without Content-Length."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True


@dataclass
class DocServer:
    """What the server answers (`routes` by path; unknown paths get 404) and what it saw."""

    port: int
    scheme: str
    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths, in order
    hosts: list[str] = field(default_factory=list)  # Host headers, in order
    accepts: list[str] = field(default_factory=list)
    delay: float = 0.0

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def count(self, path: str) -> int:
        return self.requests.count(path)


@contextmanager
def serve_documents(pki: ServerPki | None) -> Iterator[DocServer]:
    """Serve over HTTPS with `pki` (plain HTTP when None) on an ephemeral port of 127.0.0.1."""
    state = DocServer(port=0, scheme="https" if pki is not None else "http")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            state.requests.append(self.path)
            state.hosts.append(self.headers.get("Host", ""))
            state.accepts.append(self.headers.get("Accept", ""))
            if state.delay:
                time.sleep(state.delay)
            route = state.routes.get(self.path, Route(b"not found", 404))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.length:
                self.send_header("Content-Length", str(len(route.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(route.body)
            else:
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                for start in range(0, len(route.body), 16 * 1024):
                    chunk = route.body[start : start + 16 * 1024]
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # clients that hang up early (size cap, timeout, bad certificate) are expected here

    server = Server(("127.0.0.1", 0), Handler)
    if pki is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki.cert_file, pki.key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def resolver_for(table: dict[str, list[str]]) -> Any:
    """A resolver answering from `table` (OSError for other names), as `certbound.net` takes one."""

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    return resolve
