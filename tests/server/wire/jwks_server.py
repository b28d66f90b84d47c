"""An HTTPS server on 127.0.0.1 run by the test itself: it publishes clients' JWK Sets (jwks_uri), and the
test changes what it publishes (rotation) or makes it fail."""

from __future__ import annotations

import http.server
import json
import ssl
import threading
from pathlib import Path
from typing import Any


class JwksServer:
    """Serves `documents[path]` as JSON; `fail[path]` = status makes that path answer an error."""

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self.documents: dict[str, dict[str, Any]] = {}
        self.fail: dict[str, int] = {}
        self.fetches: dict[str, int] = {}
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with outer._lock:
                    outer.fetches[self.path] = outer.fetches.get(self.path, 0) + 1
                    status = outer.fail.get(self.path)
                    doc = outer.documents.get(self.path)
                if status is None and doc is None:
                    status = 404
                body = json.dumps(doc if status is None else {"error": "unavailable"}).encode()
                self.send_response(status or 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert_file), str(key_file))
        self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def publish(self, path: str, keys: list[dict[str, Any]]) -> None:
        with self._lock:
            self.documents[path] = {"keys": keys}
            self.fail.pop(path, None)

    def break_(self, path: str, status: int = 503) -> None:
        with self._lock:
            self.fail[path] = status

    def count(self, path: str) -> int:
        with self._lock:
            return self.fetches.get(path, 0)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
