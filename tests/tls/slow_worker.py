"""A worker whose app takes a long time to open, for test_serving_signals.py (run as a module).

It prints ``opening`` when it starts to open the app and ``closed`` when what it opened is released,
and never gets as far as serving unless nobody stops it (then it fails its start-up after 30 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator, Sequence

from starlette.types import ASGIApp

from certbound.tls.server_context import ServerContextFactory
from certbound.tls.serving import Listener, Worker, run_worker


@contextlib.asynccontextmanager
async def slow_app(listeners: Sequence[Listener]) -> AsyncIterator[ASGIApp]:
    print("opening", flush=True)
    try:
        await asyncio.sleep(30)  # a database that takes its time, say
        raise RuntimeError("nobody stopped the worker")
        yield  # type: ignore[unreachable]
    finally:
        print("closed", flush=True)


def main() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    factory = ServerContextFactory(cert_file="unused.pem", request_client_cert=False, mode="native")
    sys.exit(run_worker(Worker((Listener(sock, factory),), slow_app, "info", "json")))


if __name__ == "__main__":
    main()
