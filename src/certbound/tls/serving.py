"""Serving an ASGI app on TLS listeners, in one process or in N workers: what every application shares.

The parent binds the sockets once (a bad port fails early, with the setting's name) and makes the
picklable TLS context factories; every worker (spawned, not forked) builds its own contexts from
them, opens its app with `Worker.open_app`, runs one uvicorn server per listener on one event loop,
and stops them together on SIGTERM/SIGINT. With more than one worker the parent supervises: a
worker that dies, however young, is replaced; one that keeps dying young is replaced after a growing
pause (`certbound.tls.restarts`), with one clear line per death, and never takes the others down.

The application decides only what it serves: `open_app` is a picklable callable (a module-level
function, or a `functools.partial` of one) that each worker enters to get its ASGI app, with the
listeners so that it can see their TLS contexts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Literal

import uvicorn
import uvloop
from starlette.types import ASGIApp

from certbound.observability.logs import configure_logging, flush_logs
from certbound.observability.metrics import run_sampler
from certbound.observability.metrics_server import start_metrics_listener
from certbound.tls.listener import protocol_class
from certbound.tls.protocol import (
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
)
from certbound.tls.restarts import RestartPolicy
from certbound.tls.server_context import ServerContextFactory

__all__ = [
    "STARTUP_FAILURE",
    "BindError",
    "Listener",
    "OpenApp",
    "RestartPolicy",
    "Worker",
    "bind",
    "run",
    "run_worker",
    "run_workers",
    "serve_worker",
]

log = logging.getLogger("certbound")

#: uvicorn's exit status when the application cannot start.
STARTUP_FAILURE = 3


class BindError(Exception):
    """A listening socket could not be bound; the message names the setting."""


def bind(host: str, port: int, setting: str) -> socket.socket:
    """A listening socket every worker can inherit; BindError names `setting` when it fails."""
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


@dataclass(frozen=True)
class Listener:
    """A bound socket and the factory of its TLS context."""

    sock: socket.socket
    tls: ServerContextFactory


OpenApp = Callable[[Sequence[Listener]], AbstractAsyncContextManager[ASGIApp]]


@dataclass(frozen=True)
class Worker:
    """What each worker runs, made once in the parent and handed to every worker (picklable).

    The first listener runs the app's lifespan; the others share the app.
    """

    listeners: tuple[Listener, ...]
    open_app: OpenApp
    log_level: Literal["debug", "info", "warning", "error"]
    log_format: Literal["json", "console"]
    fast_paths: bool = True
    sample_metrics: bool = False
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES
    max_header_count: int = DEFAULT_MAX_HEADER_COUNT
    header_timeout: float = DEFAULT_HEADER_TIMEOUT_S


class _LinkedServer(uvicorn.Server):
    """A uvicorn server whose exit also stops its siblings (the other listeners of the same worker).

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


def run_worker(worker: Worker) -> int:
    """Serve until told to stop, in this process; the exit status."""
    configure_logging(worker.log_level, worker.log_format, fast_paths=worker.fast_paths)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(serve_worker(worker))
    finally:
        flush_logs()  # the last lines, before the process exits (atexit would too, on a clean exit)


async def serve_worker(worker: Worker) -> int:
    """Open the app, serve it on every listener until told to stop, then close it.

    A worker that cannot open its app (the database went away since the parent checked it) says so
    and returns `STARTUP_FAILURE` before it accepts any connection. One told to stop (SIGTERM,
    SIGINT) while it opens the app closes what it opened and returns 0 without serving, as it stops
    once serving.
    """
    async with contextlib.AsyncExitStack() as stack:
        try:
            app = await _open_app(worker, stack)
        except Exception as exc:  # the type and first line only: a driver's message is enough to act on
            first = str(exc).strip().partition("\n")[0]
            log.error("worker start-up failed: %s: %s", type(exc).__name__, first[:200])
            return STARTUP_FAILURE
        if app is None:
            return 0
        servers = _servers(app, worker)
        sampler = asyncio.create_task(run_sampler()) if worker.sample_metrics else None
        try:
            await asyncio.gather(*(server.serve(sockets=[sock]) for server, sock in servers))
        finally:
            if sampler is not None:
                sampler.cancel()
    return 0


async def _open_app(worker: Worker, stack: contextlib.AsyncExitStack) -> ASGIApp | None:
    """`worker.open_app` entered on `stack`; None when SIGTERM or SIGINT came meanwhile.

    Until uvicorn's own handlers take over (when its servers start), a stop signal would otherwise
    kill the process half-open (SIGTERM) or interrupt it with a traceback (SIGINT). Here it cancels
    the opening, which closes what was already opened, or, when the app is open by the time the
    signal is handled, it is closed again without serving.
    """
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    stopped = opened = False

    def stop() -> None:
        nonlocal stopped
        stopped = True
        if not opened and task is not None:
            task.cancel()

    def on_signal(sig: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop)

    with _handling_signals(on_signal):
        try:
            app = await stack.enter_async_context(worker.open_app(worker.listeners))
        except asyncio.CancelledError:
            if not stopped or task is None:
                raise
            task.uncancel()
            return None
        opened = True
        await asyncio.sleep(0)  # a signal handled just now has scheduled `stop`: let it run
    return None if stopped else app


@contextlib.contextmanager
def _handling_signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGTERM and SIGINT go to `handler` (main thread only, as with uvicorn's), then back."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    original = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in original.items():
            signal.signal(sig, previous)


def _servers(app: ASGIApp, worker: Worker) -> list[tuple[_LinkedServer, socket.socket]]:
    """A uvicorn server per listener, stopping together; the first one runs the app's lifespan."""
    common = {
        "http": protocol_class(worker.max_header_bytes, worker.max_header_count, worker.header_timeout),
        "log_level": worker.log_level,
        "access_log": False,  # the request log (certbound.observability.requestlog) replaces it
        "log_config": None,  # logging is configure_logging's: JSON, redacted
        "server_header": False,
        "proxy_headers": False,
        "timeout_keep_alive": 30,
    }
    servers = [
        (
            _LinkedServer(
                uvicorn.Config(
                    app,
                    lifespan="on" if index == 0 else "off",
                    ssl_context_factory=listener.tls,
                    **common,  # type: ignore[arg-type]
                )
            ),
            listener.sock,
        )
        for index, listener in enumerate(worker.listeners)
    ]
    for server, _ in servers:
        server.siblings = tuple(s for s, _ in servers if s is not server)
    return servers


def run(worker: Worker, count: int, *, metrics: socket.socket | None = None, metrics_dir: Path) -> int:
    """Serve with `count` workers (in this process when 1) and, on the `metrics` socket if given, the
    Prometheus listener (several workers' counters summed under `metrics_dir`); the exit status."""
    stop_metrics = None
    if metrics is not None:
        stop_metrics = start_metrics_listener(metrics, data_dir=metrics_dir, workers=count)
    try:
        return run_worker(worker) if count == 1 else run_workers(worker, count)
    finally:
        if stop_metrics is not None:
            stop_metrics()


def _worker_entry(worker: Worker) -> None:
    sys.exit(run_worker(worker))


def run_workers(worker: Worker, count: int, *, policy: RestartPolicy | None = None) -> int:
    """Spawn `count` processes sharing the sockets; stop them all on SIGTERM/SIGINT (status 0).

    A worker that exits is replaced, also when it dies young (within `RestartPolicy.young_s` of its
    start) or several times in a row: then after `policy`'s back-off, so that a worker that cannot
    start (a database still down) is retried without spinning, while the other workers keep serving.
    """
    ctx = multiprocessing.get_context("spawn")
    policy = policy or RestartPolicy()
    stopping = False

    def stop(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> tuple[BaseProcess, float]:
        proc = ctx.Process(target=_worker_entry, args=(worker,), daemon=False)
        proc.start()
        return proc, time.monotonic()

    procs: list[tuple[BaseProcess, float] | None] = [spawn() for _ in range(count)]
    slots = [policy.slot() for _ in range(count)]
    due = [0.0] * count  # when an empty slot gets its new worker
    while not stopping:
        time.sleep(0.1)
        now = time.monotonic()
        for i, entry in enumerate(procs):
            if entry is None:
                if now >= due[i] and not stopping:
                    procs[i] = spawn()
                continue
            proc, started = entry
            if proc.is_alive():
                slots[i].alive(now - started)
                continue
            proc.join()
            delay, line = slots[i].died(now - started, proc.pid, proc.exitcode)
            log.log(logging.ERROR if delay > 0 else logging.WARNING, "%s", line)
            procs[i], due[i] = None, now + delay
    running = [entry[0] for entry in procs if entry is not None]
    for proc in running:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + 15
    for proc in running:
        proc.join(max(0.1, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join()
    return 0
