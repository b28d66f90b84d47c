"""Running the server: listening sockets bound once in the parent, shared by N worker processes.

With `workers == 1` the server runs in the started process itself. With more, the started process
stays the parent: it binds the sockets, spawns the workers (each builds its own TLS context from a
picklable factory), and stops them all on SIGTERM/SIGINT. How is `certbound.tls.serving`'s, shared
with the gateway; what is the server's: which listeners, and the app each worker opens.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.types import ASGIApp

from certbound.config import Settings
from certbound.observability.logs import configure_logging
from certbound.server.app import create_app
from certbound.server.services import open_services
from certbound.tls.listener import tls_mode
from certbound.tls.server_context import ServerContextFactory
from certbound.tls.serving import STARTUP_FAILURE, BindError, Listener, Worker, bind, run

__all__ = [
    "STARTUP_FAILURE",
    "BindError",
    "Listeners",
    "TlsFactories",
    "bind_listeners",
    "effective_tls_mode",
    "open_app",
    "serve",
    "tls_factories",
    "worker_for",
]


@dataclass
class Listeners:
    """The bound sockets: the main listener, the optional mTLS listener and metrics listener."""

    main: socket.socket
    mtls: socket.socket | None = None
    metrics: socket.socket | None = None  # served by the parent only


def bind_listeners(settings: Settings) -> Listeners:
    """Bind both sockets in the parent so that every worker shares them (and a bad port fails early)."""
    main = bind(settings.host, settings.port, "port")
    mtls = bind(settings.host, settings.mtls_port, "mtls_port") if settings.mtls_port else None
    metrics = None
    if settings.metrics_port is not None:
        metrics = bind(settings.metrics_host, settings.metrics_port, "metrics_port")
    return Listeners(main, mtls, metrics)


def effective_tls_mode(settings: Settings) -> Literal["native", "degraded"]:
    """The configured TLS mode, or the self-check's verdict for `auto`."""
    return tls_mode() if settings.tls_mode == "auto" else settings.tls_mode


def _ssl_factory(settings: Settings, *, request_client_cert: bool) -> ServerContextFactory:
    if settings.tls_cert is None or settings.tls_key is None:
        raise ValueError("tls_cert and tls_key are required")
    return ServerContextFactory(
        cert_file=str(settings.tls_cert),
        key_file=str(settings.tls_key),
        client_ca_file=str(settings.client_ca) if settings.client_ca else None,
        request_client_cert=request_client_cert,
        mode=effective_tls_mode(settings),  # decided once in the parent: workers do not repeat it
    )


@dataclass(frozen=True)
class TlsFactories:
    """The picklable TLS context factories of the two listeners, made once in the parent."""

    main: ServerContextFactory
    mtls: ServerContextFactory | None


def tls_factories(settings: Settings, listeners: Listeners) -> TlsFactories:
    """The main listener asks for a client certificate only when it is also the mTLS listener."""
    return TlsFactories(
        main=_ssl_factory(settings, request_client_cert=listeners.mtls is None),
        mtls=_ssl_factory(settings, request_client_cert=True) if listeners.mtls is not None else None,
    )


@contextlib.asynccontextmanager
async def open_app(settings: Settings, listeners: Sequence[Listener]) -> AsyncIterator[ASGIApp]:
    """What each worker serves: its services opened, the app built over them. The degraded-mode
    listeners' trust stores are kept equal to the registered self-signed certificates."""
    holders = [
        listener.tls.trust_holder()
        for listener in listeners
        if listener.tls.request_client_cert and listener.tls.resolved_mode() == "degraded"
    ]
    async with open_services(settings) as services:
        yield create_app(services, holders)


def worker_for(settings: Settings, listeners: Listeners, tls: TlsFactories) -> Worker:
    """The picklable description of a worker: the main listener first (it runs the lifespan)."""
    served = [Listener(listeners.main, tls.main)]
    if listeners.mtls is not None and tls.mtls is not None:
        served.append(Listener(listeners.mtls, tls.mtls))
    return Worker(
        listeners=tuple(served),
        open_app=functools.partial(open_app, settings),
        log_level=settings.log_level,
        log_format=settings.log_format,
        fast_paths=settings.fast_paths,
        sample_metrics=settings.metrics_port is not None,
        max_header_bytes=settings.max_header_bytes,
        max_header_count=settings.max_header_count,
        header_timeout=settings.header_timeout,
    )


def serve(settings: Settings, listeners: Listeners) -> int:
    """Run in the foreground; returns the process exit status."""
    configure_logging(settings.log_level, settings.log_format, fast_paths=settings.fast_paths)
    worker = worker_for(settings, listeners, tls_factories(settings, listeners))
    return run(worker, settings.workers, metrics=listeners.metrics, metrics_dir=settings.data_dir)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `certbound serve`")
