"""Certificates for the proxy tests, and an app behind the forwarded-certificate middleware that echoes
what it sees, served by certbound's own TLS listener (uvicorn + our protocol) in a thread."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography import x509

from certbound.pki.issue import (
    PrivateKey,
    create_ca,
    issue_client_cert,
    issue_server_cert,
    self_signed_client_cert,
)
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.tls.client_certificate import client_certificate_from_scope
from certbound.tls.listener import protocol_class
from certbound.tls.server_context import ServerContextFactory


@dataclass(frozen=True)
class Cred:
    cert: x509.Certificate
    certfile: Path  # the leaf, then what the client sends with it
    keyfile: Path


@dataclass(frozen=True)
class ProxyPKI:
    directory: Path
    client_ca: Path  # the root that issues client certificates
    intermediates: Path  # the intermediate CA, as a PEM bundle
    intermediate: x509.Certificate
    server_ca: Path
    server_cert: Path  # for localhost / 127.0.0.1: used by nginx and by the backend
    server_key: Path
    trusted: Cred
    expired: Cred
    self_signed: Cred
    chained: Cred  # issued by the intermediate; the client sends the intermediate too
    leaf_only: Cred  # issued by the intermediate; the client sends the leaf only


def _write(
    d: Path, name: str, cert: x509.Certificate, key: PrivateKey, chain: tuple[x509.Certificate, ...] = ()
) -> Cred:
    certfile, keyfile = d / f"{name}.pem", d / f"{name}.key"
    certfile.write_bytes(b"".join(cert_to_pem(c) for c in (cert, *chain)))
    keyfile.write_bytes(key_to_pem(key))
    return Cred(cert, certfile, keyfile)


@pytest.fixture(scope="session")
def proxy_pki(tmp_path_factory: pytest.TempPathFactory) -> ProxyPKI:
    d = tmp_path_factory.mktemp("proxy-pki")
    root = create_ca("CN=Proxy Test Root,O=certbound tests")
    intermediate = create_ca("CN=Proxy Test Intermediate,O=certbound tests", issuer=root, path_length=0)
    server_ca = create_ca("CN=Proxy Test Server CA,O=certbound tests")
    (d / "client-ca.pem").write_bytes(cert_to_pem(root[0]))
    (d / "intermediates.pem").write_bytes(cert_to_pem(intermediate[0]))
    (d / "server-ca.pem").write_bytes(cert_to_pem(server_ca[0]))
    server_cert, server_key = issue_server_cert(*server_ca)
    (d / "server.pem").write_bytes(cert_to_pem(server_cert))
    (d / "server.key").write_bytes(key_to_pem(server_key))
    now = datetime.now(UTC)
    expired = issue_client_cert(
        *root,
        "CN=expired,O=certbound tests",
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    return ProxyPKI(
        directory=d,
        client_ca=d / "client-ca.pem",
        intermediates=d / "intermediates.pem",
        intermediate=intermediate[0],
        server_ca=d / "server-ca.pem",
        server_cert=d / "server.pem",
        server_key=d / "server.key",
        trusted=_write(d, "trusted", *issue_client_cert(*root, "CN=trusted,O=certbound tests")),
        expired=_write(d, "expired", *expired),
        self_signed=_write(d, "self-signed", *self_signed_client_cert("CN=self-signed client")),
        chained=_write(
            d, "chained", *issue_client_cert(*intermediate, "CN=chained"), chain=(intermediate[0],)
        ),
        leaf_only=_write(d, "leaf-only", *issue_client_cert(*intermediate, "CN=leaf only")),
    )


async def echo_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answer with the certificate the application sees and the headers that reached it."""
    assert scope["type"] == "http"
    cert = client_certificate_from_scope(scope)
    body: dict[str, Any] = {
        "peer": scope["client"][0],
        "headers": sorted({name.decode() for name, _ in scope["headers"]}),
        "certificate": None,
    }
    if cert is not None:
        body["certificate"] = {
            "x5t": cert.x5t_s256,
            "subject": cert.leaf.subject.rfc4514_string(),
            "source": cert.source,
            "tls_verified": cert.tls_verified,
            "tls_error": cert.tls_error,
            "chain": [c.subject.rfc4514_string() for c in cert.chain],
        }
    while (await receive()).get("more_body"):
        pass
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": json.dumps(body).encode()})


@contextmanager
def serve_tls(app: Any, pki: ProxyPKI) -> Iterator[int]:
    """Run `app` on certbound's TLS listener (native mode) in a thread, on an ephemeral port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    factory = ServerContextFactory(
        cert_file=str(pki.server_cert),
        key_file=str(pki.server_key),
        client_ca_file=str(pki.client_ca),
        mode="native",
    )
    config = uvicorn.Config(
        app,
        http=protocol_class(),
        loop="uvloop",
        ssl_context_factory=factory,
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
