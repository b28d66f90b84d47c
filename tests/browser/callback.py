"""The client's side of the redirect: a loopback HTTP listener that records what arrives (RFC 8252)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Callback:
    """Listens on 127.0.0.1; `received` holds the query of every request, in order."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                owner.received.append((parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()}))
                body = b"<!doctype html><title>callback</title><p>The application got the answer.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def last(self, path: str) -> dict[str, str]:
        found = [query for p, query in self.received if p == path]
        assert found, f"nothing arrived at {path}: {self.received}"
        return found[-1]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
