"""Certificates for the proxy tests, and an app behind the forwarded-certificate middleware that echoes
what it sees, served by certbound's own TLS listener (uvicorn + our protocol) in a thread."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.pem import cert_to_pem
from certbound.tls.client_certificate import client_certificate_from_scope
from certbound.tls.server_context import ServerContextFactory
from tests.tls_server import Cred, expired_client_cert, serve, write_cred, write_server_files


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


@pytest.fixture(scope="session")
def proxy_pki(tmp_path_factory: pytest.TempPathFactory) -> ProxyPKI:
    d = tmp_path_factory.mktemp("proxy-pki")
    root = create_ca("CN=Proxy Test Root,O=certbound tests")
    intermediate = create_ca("CN=Proxy Test Intermediate,O=certbound tests", issuer=root, path_length=0)
    (d / "client-ca.pem").write_bytes(cert_to_pem(root[0]))
    (d / "intermediates.pem").write_bytes(cert_to_pem(intermediate[0]))
    server = write_server_files(d, "CN=Proxy Test Server CA,O=certbound tests")
    return ProxyPKI(
        directory=d,
        client_ca=d / "client-ca.pem",
        intermediates=d / "intermediates.pem",
        intermediate=intermediate[0],
        server_ca=server.ca,
        server_cert=server.cert,
        server_key=server.key,
        trusted=write_cred(d, "trusted", *issue_client_cert(*root, "CN=trusted,O=certbound tests")),
        expired=write_cred(d, "expired", *expired_client_cert(root)),
        self_signed=write_cred(d, "self-signed", *self_signed_client_cert("CN=self-signed client")),
        chained=write_cred(
            d, "chained", *issue_client_cert(*intermediate, "CN=chained"), chain=(intermediate[0],)
        ),
        leaf_only=write_cred(d, "leaf-only", *issue_client_cert(*intermediate, "CN=leaf only")),
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


def serve_tls(app: Any, pki: ProxyPKI) -> AbstractContextManager[int]:
    """Run `app` on certbound's TLS listener (native mode) in a thread, on an ephemeral port."""
    factory = ServerContextFactory(
        cert_file=str(pki.server_cert),
        key_file=str(pki.server_key),
        client_ca_file=str(pki.client_ca),
        mode="native",
    )
    return serve(factory, app)
