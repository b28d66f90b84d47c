"""A worker opens its services before it serves: one that cannot says why and stops at once."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

from certbound.config import Settings
from certbound.server.run import STARTUP_FAILURE, Listeners, TlsFactories, worker_for
from certbound.tls.server_context import ServerContextFactory
from certbound.tls.serving import serve_worker
from tests.observability.conftest import logging_to


async def test_a_worker_that_cannot_open_its_store_fails_before_serving(tmp_path: Path) -> None:
    settings = Settings(
        issuer="https://as.example",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'missing' / 'certbound.db'}",  # its directory does not exist
    )
    factory = ServerContextFactory(cert_file="unused.pem", request_client_cert=False, mode="native")
    stream = io.StringIO()
    with socket.socket() as sock, logging_to(stream):
        status = await serve_worker(
            worker_for(settings, Listeners(sock), TlsFactories(main=factory, mtls=None))
        )
        assert sock.fileno() != -1  # never served on
    assert status == STARTUP_FAILURE
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    (failure,) = [e for e in events if e.get("logger") == "certbound"]
    assert failure["level"] == "error"
    assert failure["event"].startswith("worker start-up failed: OperationalError: ")
    assert str(tmp_path) not in failure["event"]  # the driver's message, not the URL
