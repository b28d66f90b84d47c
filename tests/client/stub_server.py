"""A scriptable HTTPS authorization server for the client's own tests (real TLS on 127.0.0.1).

It records each request (path, headers, form, the client certificate's thumbprint, the connection it
came on) so that tests can check what went over the wire; interop tests use real servers instead.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from certbound.pki.thumbprint import x5t_s256
from tests.client.material import CertFiles


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, list[str]]
    client_cert: str | None
    connection: int


Reply = tuple[int, dict[str, Any] | str]


@dataclass
class StubServer:
    url: str
    seen: list[Seen] = field(default_factory=list)
    routes: dict[str, Callable[[Seen], Reply]] = field(default_factory=dict)

    def metadata(self, **extra: Any) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "token_endpoint": self.url + "/token",
            "introspection_endpoint": self.url + "/introspect",
            "revocation_endpoint": self.url + "/revoke",
            **extra,
        }

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]


_counter = itertools.count(1)


def default_token(seen: Seen) -> Reply:
    return 200, {"access_token": f"token-{next(_counter)}", "token_type": "Bearer", "expires_in": 600}


def _handler(stub: StubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def handle(self) -> None:
            """Refuse a bad client certificate the way a careful server does: the alert, then wait for
            the client to close, so that its unread request does not turn our close into a reset that
            could overtake the alert (which would make the test's outcome a race)."""
            try:
                self.request.do_handshake()
            except ssl.SSLError:
                self.request.settimeout(2)
                with contextlib.suppress(OSError):
                    while socket.socket.recv(self.request, 65536):
                        pass
                return
            super().handle()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            seen = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                parse_qs(body, keep_blank_values=True),
                x5t_s256(der) if der else None,
                id(self.connection),
            )
            stub.seen.append(seen)
            route = stub.routes.get(f"{self.command} {self.path}")
            status, reply = route(seen) if route else (404, {"error": "not_found"})
            data = (reply if isinstance(reply, str) else json.dumps(reply)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Handshakes the tests make fail on purpose are not errors worth printing."""


@contextmanager
def stub_server(
    server_cert: CertFiles, *, client_ca: Path | None = None, require_cert: bool = False
) -> Iterator[StubServer]:
    """Serve on a free port; asks for a client certificate when `client_ca` is given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(server_cert.cert_file, server_cert.key_file)
    if client_ca is not None:
        ctx.load_verify_locations(cafile=str(client_ca))
        ctx.verify_mode = ssl.CERT_REQUIRED if require_cert else ssl.CERT_OPTIONAL
    httpd = _QuietServer(("127.0.0.1", 0), _handler(StubServer("")))
    stub = StubServer(f"https://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(stub)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    httpd.daemon_threads = True
    stub.routes["GET /.well-known/oauth-authorization-server"] = lambda s: (200, stub.metadata())
    stub.routes["POST /token"] = default_token
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        httpd.shutdown()
        httpd.server_close()
        time.sleep(0.01)
