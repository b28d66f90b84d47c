"""Certificates for the TLS tests, a uvicorn server in a thread, and an ASGI app that echoes the TLS view."""

from __future__ import annotations

import json
import ssl
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509

from certbound.pki.issue import PrivateKey, create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.pem import cert_to_pem
from certbound.tls import client_certificate
from certbound.tls.client_certificate import SCOPE_KEY, client_certificate_from_scope
from certbound.tls.server_context import ServerContextFactory
from tests import tls_server
from tests.tls_server import Cred, expired_client_cert, write_cred, write_server_files


@dataclass(frozen=True)
class TestPKI:
    __test__ = False  # not a test class

    directory: Path
    ca_file: Path
    server_ca_file: Path
    server_cert: Path
    server_key: Path
    trusted: Cred
    self_signed: Cred
    self_signed_other: Cred
    expired: Cred
    untrusted: Cred
    with_intermediate: Cred

    def write_cred(
        self, name: str, cert: x509.Certificate, key: PrivateKey, chain: tuple[x509.Certificate, ...] = ()
    ) -> Cred:
        return write_cred(self.directory, name, cert, key, chain)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    d = tmp_path_factory.mktemp("tls-pki")
    root = create_ca("CN=Trusted Root,O=certbound tests")
    intermediate = create_ca("CN=Trusted Intermediate,O=certbound tests", issuer=root, path_length=0)
    stranger = create_ca("CN=Untrusted CA,O=elsewhere")
    ca_file = d / "client-ca.pem"
    ca_file.write_bytes(cert_to_pem(root[0]))
    server = write_server_files(d, "CN=Server CA,O=certbound tests")
    leaf_under_intermediate = issue_client_cert(*intermediate, "CN=chained,O=certbound tests")
    return TestPKI(
        directory=d,
        ca_file=ca_file,
        server_ca_file=server.ca,
        server_cert=server.cert,
        server_key=server.key,
        trusted=write_cred(d, "trusted", *issue_client_cert(*root, "CN=trusted,O=certbound tests")),
        self_signed=write_cred(d, "self-signed", *self_signed_client_cert("CN=self-signed client")),
        self_signed_other=write_cred(d, "self-signed-2", *self_signed_client_cert("CN=another self-signed")),
        expired=write_cred(d, "expired", *expired_client_cert(root)),
        untrusted=write_cred(d, "untrusted", *issue_client_cert(*stranger, "CN=stranger")),
        with_intermediate=write_cred(d, "chained", *leaf_under_intermediate, chain=(intermediate[0],)),
    )


async def echo_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """Answer with what the app sees of the connection's TLS state, as JSON."""
    assert scope["type"] == "http"
    tls = scope.get("extensions", {}).get("tls")
    cert = client_certificate_from_scope(scope)
    body: dict[str, Any] = {"has_tls": tls is not None}
    if tls is not None:
        body.update(
            client_cert_chain=list(tls["client_cert_chain"]),
            client_cert_name=tls["client_cert_name"],
            client_cert_error=tls["client_cert_error"],
            tls_version=tls["tls_version"],
            cipher_suite=tls["cipher_suite"],
            server_cert=tls["server_cert"],
            object_id=id(tls[SCOPE_KEY]) if tls[SCOPE_KEY] is not None else None,
        )
    if cert is not None:
        body.update(
            subject=cert.leaf.subject.rfc4514_string(),
            x5t=cert.x5t_s256,
            source=cert.source,
            tls_verified=cert.tls_verified,
            tls_error=cert.tls_error,
            chain_subjects=[c.subject.rfc4514_string() for c in cert.chain],
        )
    payload = json.dumps(body).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": payload})


def serve(
    factory: ServerContextFactory, app: Any = echo_app, loop: str = "uvloop", **timeouts: Any
) -> AbstractContextManager[int]:
    """`tls_server.serve` with the TLS echo app by default."""
    return tls_server.serve(factory, app, loop, **timeouts)


def client_context(pki: TestPKI, cred: Cred | None, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client context that verifies the server (end-to-end) and presents ``cred``."""
    ctx = ssl.create_default_context(cafile=str(pki.server_ca_file))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if cred is not None:
        ctx.load_cert_chain(cred.certfile, cred.keyfile)
    return ctx


def get_json(port: int, ctx: ssl.SSLContext, client: httpx.Client | None = None) -> dict[str, Any]:
    url = f"https://127.0.0.1:{port}/"
    if client is not None:
        response = client.get(url)
    else:
        with httpx.Client(verify=ctx, timeout=5) as fresh:
            response = fresh.get(url)
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


@pytest.fixture(scope="module")
def native_factory(pki: TestPKI) -> ServerContextFactory:
    return ServerContextFactory(
        cert_file=str(pki.server_cert),
        key_file=str(pki.server_key),
        client_ca_file=str(pki.ca_file),
        mode="native",
    )


@pytest.fixture(scope="module")
def native_port(native_factory: ServerContextFactory) -> Iterator[int]:
    with serve(native_factory) as port:
        yield port


@pytest.fixture
def names_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Spy: the subjects `ClientCertificate.subject_name` had cryptography write, from a fresh memory."""
    monkeypatch.setattr(client_certificate, "_subject_names", OrderedDict())
    read: list[str] = []
    original = client_certificate._write_subject

    def spy(leaf: x509.Certificate) -> str:
        read.append(original(leaf))
        return read[-1]

    monkeypatch.setattr(client_certificate, "_write_subject", spy)
    return read
