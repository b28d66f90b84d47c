"""Running the server: listening sockets bound once in the parent, shared by N worker processes.

With `workers == 1` the server runs in the started process itself. With more, the started process
stays the parent: it binds the sockets, spawns the workers (each builds its own TLS context from a
picklable factory), and stops them all on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Literal

import uvicorn
import uvloop
from starlette.types import ASGIApp

from certbound.config import Settings
from certbound.observability.logs import configure_logging, flush_logs
from certbound.observability.metrics import run_sampler
from certbound.observability.metrics_server import start_metrics_listener
from certbound.server.app import create_app
from certbound.server.services import open_services
from certbound.tls.listener import protocol_class, tls_mode
from certbound.tls.server_context import ServerContextFactory

log = logging.getLogger("certbound")
_STARTUP_GRACE_S = 10.0
STARTUP_FAILURE = 3  # uvicorn's exit status when the application cannot start


@dataclass
class Listeners:
    """The bound sockets: the main listener, the optional mTLS listener and metrics listener."""

    main: socket.socket
    mtls: socket.socket | None = None
    metrics: socket.socket | None = None  # served by the parent only


def bind_listeners(settings: Settings) -> Listeners:
    """Bind both sockets in the parent so that every worker shares them (and a bad port fails early)."""
    main = _bind(settings.host, settings.port, "port")
    mtls = _bind(settings.host, settings.mtls_port, "mtls_port") if settings.mtls_port else None
    metrics = None
    if settings.metrics_port is not None:
        metrics = _bind(settings.metrics_host, settings.metrics_port, "metrics_port")
    return Listeners(main, mtls, metrics)


class BindError(Exception):
    """A listening socket could not be bound; the message names the setting."""


def _bind(host: str, port: int, setting: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise BindError(f"{setting}: cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


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


class _LinkedServer(uvicorn.Server):
    """A uvicorn server whose exit also stops its siblings (the other listener of the same worker).

    After a graceful stop on SIGTERM/SIGINT the process exits 0: uvicorn's own handler would re-raise
    the signal once the server is down, which turns SIGINT into a KeyboardInterrupt traceback.
    """

    siblings: tuple[uvicorn.Server, ...] = ()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        for other in self.siblings:
            other.should_exit = True


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


def run_worker(settings: Settings, listeners: Listeners, tls: TlsFactories) -> int:
    """Serve the app on the main listener (and the mTLS listener) until told to stop; the exit status."""
    configure_logging(settings.log_level, settings.log_format, fast_paths=settings.fast_paths)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(_serve_worker(settings, listeners, tls))
    finally:
        flush_logs()  # the last lines, before the process exits (atexit would too, on a clean exit)


async def _serve_worker(settings: Settings, listeners: Listeners, tls: TlsFactories) -> int:
    """Open the services, build the app over them, serve until told to stop, then close them.

    A worker that cannot open its services (the database went away since the parent checked it)
    says so and returns uvicorn's start-up failure status before it accepts any connection.
    """
    holders = [
        f.trust_holder()
        for f in (tls.main, tls.mtls)
        if f is not None and f.request_client_cert and f.resolved_mode() == "degraded"
    ]
    async with contextlib.AsyncExitStack() as stack:
        try:
            services = await stack.enter_async_context(open_services(settings))
        except Exception as exc:  # the type and first line only: a driver's message is enough to act on
            first = str(exc).strip().partition("\n")[0]
            log.error("worker start-up failed: %s: %s", type(exc).__name__, first[:200])
            return STARTUP_FAILURE
        app = create_app(services, holders)
        servers = _servers(app, settings, listeners, tls)
        sampler = asyncio.create_task(run_sampler()) if settings.metrics_port is not None else None
        try:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            if sampler is not None:
                sampler.cancel()
    return 0


def _servers(
    app: ASGIApp, settings: Settings, listeners: Listeners, tls: TlsFactories
) -> list[tuple[_LinkedServer, socket.socket]]:
    """A uvicorn server per listener, stopping together; the main one runs the app's lifespan."""
    common = {
        "http": protocol_class(),
        "log_level": settings.log_level,
        "access_log": False,  # the request log (certbound.observability.requestlog) replaces it
        "log_config": None,  # logging is configure_logging's: JSON, redacted
        "server_header": False,
        "proxy_headers": False,
        "timeout_keep_alive": 30,
    }
    main = _LinkedServer(
        uvicorn.Config(
            app,
            lifespan="on",
            ssl_context_factory=tls.main,
            **common,  # type: ignore[arg-type]
        )
    )
    servers: list[tuple[_LinkedServer, socket.socket]] = [(main, listeners.main)]
    if listeners.mtls is not None and tls.mtls is not None:
        mtls = _LinkedServer(
            uvicorn.Config(
                app,
                lifespan="off",
                ssl_context_factory=tls.mtls,
                **common,  # type: ignore[arg-type]
            )
        )
        servers.append((mtls, listeners.mtls))
    for server, _ in servers:
        server.siblings = tuple(s for s, _ in servers if s is not server)
    return servers


def _worker_entry(settings: Settings, listeners: Listeners, tls: TlsFactories) -> None:
    sys.exit(run_worker(settings, listeners, tls))


def run_workers(settings: Settings, listeners: Listeners, tls: TlsFactories) -> int:
    """Spawn `settings.workers` processes sharing the sockets; stop them all on SIGTERM/SIGINT."""
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> tuple[BaseProcess, float]:
        shared = dataclasses.replace(listeners, metrics=None)
        proc = ctx.Process(target=_worker_entry, args=(settings, shared, tls), daemon=False)
        proc.start()
        return proc, time.monotonic()

    procs = [spawn() for _ in range(settings.workers)]
    status = 0
    while not stopping:
        time.sleep(0.2)
        for i, (proc, started) in enumerate(procs):
            if proc.is_alive():
                continue
            if time.monotonic() - started < _STARTUP_GRACE_S:
                log.error("worker %s exited during start-up (code %s); stopping", proc.pid, proc.exitcode)
                stopping, status = True, 1
                break
            log.warning("worker %s exited (code %s); starting a new one", proc.pid, proc.exitcode)
            procs[i] = spawn()
    for proc, _ in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + 15
    for proc, _ in procs:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
    return status


def serve(settings: Settings, listeners: Listeners) -> int:
    """Run in the foreground; returns the process exit status."""
    configure_logging(settings.log_level, settings.log_format, fast_paths=settings.fast_paths)
    tls = tls_factories(settings, listeners)
    stop_metrics = None
    if listeners.metrics is not None:
        stop_metrics = start_metrics_listener(
            listeners.metrics, data_dir=settings.data_dir, workers=settings.workers
        )
    try:
        if settings.workers == 1:
            return run_worker(settings, listeners, tls)
        return run_workers(settings, listeners, tls)
    finally:
        if stop_metrics is not None:
            stop_metrics()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `certbound serve`")
