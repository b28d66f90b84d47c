"""The Prometheus listener: plain HTTP ``GET /metrics`` on its own address, off by default.

Why a separate listener: metrics say how many clients fail and why, which is nobody's business on
the public port, and a scraper should not need a client certificate. It is off unless
``metrics_port`` is set and then binds ``metrics_host`` (default 127.0.0.1); expose it further
only on a network you trust, since it has no TLS and no authentication.

Several workers: each worker is its own process with its own counters, so with ``workers > 1`` the
parent runs prometheus_client's multiprocess mode. Before spawning, it creates a private directory
``<data_dir>/metrics/<parent pid>`` (left-overs of parents no longer running are removed) and sets
``PROMETHEUS_MULTIPROC_DIR`` to it; the workers inherit the variable, so their counters write to
memory-mapped files there, and the parent's listener adds them up on every scrape. A restarted
worker's files stay, so counters never go backwards. With one worker, the process serves its own
registry and no files are written.
"""

from __future__ import annotations

import contextlib
import http.server
import logging
import os
import shutil
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "MULTIPROC_ENV",
    "MetricsServer",
    "cleanup_multiprocess",
    "prepare_multiprocess",
    "render",
    "start_metrics_listener",
]

MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"
METRICS_PATH: Final = "/metrics"

log = logging.getLogger("certbound.metrics")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare_multiprocess(data_dir: Path) -> Path:
    """Create this parent's metrics directory and point ``PROMETHEUS_MULTIPROC_DIR`` at it.

    Call in the parent before the workers are spawned (they read the variable when they first import
    prometheus_client). Directories of parents that are gone are removed.
    """
    base = data_dir / "metrics"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in base.iterdir():
        if old.is_dir() and old.name.isdigit() and not _alive(int(old.name)):
            shutil.rmtree(old, ignore_errors=True)
    mine = base / str(os.getpid())
    shutil.rmtree(mine, ignore_errors=True)
    mine.mkdir(mode=0o700)
    os.environ[MULTIPROC_ENV] = str(mine)
    return mine


def cleanup_multiprocess(directory: Path) -> None:
    """Remove the directory made by :func:`prepare_multiprocess` (at the parent's exit)."""
    if os.environ.get(MULTIPROC_ENV) == str(directory):
        del os.environ[MULTIPROC_ENV]
    shutil.rmtree(directory, ignore_errors=True)


def _registry() -> CollectorRegistry:
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return registry


def render(accept: str | None = None) -> tuple[bytes, str]:
    """The exposition (Prometheus text, or OpenMetrics when `accept` asks for it) and its type."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(_registry()), content_type


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "certbound-metrics"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.partition("?")[0] != METRICS_PATH:
            self._answer(404, b"not found: metrics are at /metrics\n", "text/plain; charset=utf-8")
            return
        try:
            body, content_type = render(self.headers.get("Accept"))
        except Exception:
            log.exception("metrics exposition failed")
            self._answer(500, b"metrics exposition failed\n", "text/plain; charset=utf-8")
            return
        self._answer(200, body, content_type)

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not logged: one every few seconds would drown the request events."""


class MetricsServer:
    """``GET /metrics`` in a daemon thread, on a socket bound beforehand (so a taken port fails the
    start with the other listeners, naming ``metrics_port``)."""

    def __init__(self, sock: socket.socket) -> None:
        address = sock.getsockname()[:2]
        self._httpd = http.server.ThreadingHTTPServer(address, _Handler, bind_and_activate=False)
        self._httpd.socket.close()
        self._httpd.socket = sock
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.socket.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="certbound-metrics", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        with contextlib.suppress(OSError):
            self._httpd.server_close()


def start_metrics_listener(sock: socket.socket, *, data_dir: Path, workers: int) -> Callable[[], None]:
    """Serve ``/metrics`` on `sock` (multiprocess mode for several workers); returns the stopper."""
    directory = prepare_multiprocess(data_dir) if workers > 1 else None
    server = MetricsServer(sock)
    server.start()
    host, port = server.address
    log.info("metrics listener on http://%s:%s%s", host, port, METRICS_PATH)

    def stop() -> None:
        server.stop()
        if directory is not None:
            cleanup_multiprocess(directory)

    return stop
