"""Running the gateway: its listener bound once in the parent, served by `certbound.tls.serving`.

The process runner is the server's (one worker in this process, or N spawned workers sharing the
socket); what is the gateway's: one TLS listener that asks for an optional client certificate and
lets every certificate through the handshake (``ServerContextFactory`` in the self-check's mode, as
``serve``), and the app each worker opens over its own services.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from socket import socket
from typing import Final, Literal

from starlette.types import ASGIApp

from certbound.gateway.app import create_app
from certbound.gateway.config import GatewaySettings
from certbound.gateway.services import open_services
from certbound.gateway.session_storage import migrate_session_store
from certbound.observability.logs import configure_logging
from certbound.tls.listener import tls_mode
from certbound.tls.server_context import ServerContextFactory
from certbound.tls.serving import Listener, Worker, bind, run

__all__ = ["GatewayListeners", "bind_listeners", "effective_tls_mode", "open_app", "serve"]


@dataclass
class GatewayListeners:
    """The gateway's bound sockets: its TLS listener and the optional metrics listener."""

    main: socket
    metrics: socket | None = None


#: The listener's head limits at the gateway (431 past them, the connection closed).
GATEWAY_MAX_HEADER_BYTES: Final = 64 * 1024
GATEWAY_MAX_HEADER_COUNT: Final = 200

def bind_listeners(settings: GatewaySettings) -> GatewayListeners:
    """Bind in the parent, so a port in use fails start-up naming its key (BindError)."""
    listener = settings.listener
    main = bind(listener.host, listener.port, "listener.port")
    metrics = None
    if settings.metrics_port is not None:
        metrics = bind(settings.metrics_host, settings.metrics_port, "metrics_port")
    return GatewayListeners(main, metrics)


def effective_tls_mode(settings: GatewaySettings) -> Literal["native", "degraded"]:
    """The configured TLS mode, or the self-check's verdict for ``auto``."""
    mode = settings.listener.tls_mode
    return tls_mode() if mode == "auto" else mode


@contextlib.asynccontextmanager
async def open_app(settings: GatewaySettings, listeners: Sequence[Listener]) -> AsyncIterator[ASGIApp]:
    """What each worker serves. The IdPs are discovered (and their JWKS fetched) in the background
    right away, so the first request does not wait for it; one that is down is only logged."""
    async with open_services(settings) as services:
        bearer = {settings.idp_of(r) for r in settings.routes if "bearer" in r.auth_methods}
        warm_ups = [
            asyncio.create_task(idp.warm_up(jwks=name in bearer)) for name, idp in services.idps.items()
        ]
        try:
            yield create_app(services.routes, services.forwarded, settings.auth_request)
        finally:
            for task in warm_ups:
                task.cancel()


def serve(settings: GatewaySettings, listeners: GatewayListeners) -> int:
    """Run in the foreground until SIGTERM/SIGINT; the process exit status."""
    listener = settings.listener
    factory = ServerContextFactory(
        cert_file=str(listener.tls_cert),
        key_file=str(listener.tls_key),
        client_ca_file=str(listener.client_ca) if listener.client_ca else None,
        request_client_cert=True,
        mode=effective_tls_mode(settings),  # decided once here: workers do not repeat the self-check
    )
    worker = Worker(
        listeners=(Listener(listeners.main, factory),),
        open_app=functools.partial(open_app, settings),
        log_level=settings.log_level,
        log_format=settings.log_format,
        sample_metrics=listeners.metrics is not None,
        # what the gateway accepts it forwards to an upstream that may have a lower limit than
        # `serve`'s (nginx's default is about 32 KiB): tokens, certificate chains and cookies fit
        max_header_bytes=GATEWAY_MAX_HEADER_BYTES,
        max_header_count=GATEWAY_MAX_HEADER_COUNT,
    )
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(migrate_session_store(settings))  # once, before the workers open the store
    # the gateway keeps no data: several workers' counters go under the temporary directory
    metrics_dir = Path(tempfile.gettempdir()) / "certbound-gateway"
    return run(worker, settings.workers, metrics=listeners.metrics, metrics_dir=metrics_dir)
