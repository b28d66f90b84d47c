"""A real OCSP responder and CRL server on 127.0.0.1 for the revocation tests, and CAs that use it.

The responder answers RFC 6960 GET (``/ocsp/<ca>/<url-encoded base64 request>``) and POST
(``/ocsp/<ca>``) requests with answers built by cryptography's OCSP builders
(:func:`certbound.pki.revocation.ocsp_answer`), signed by the CA or a delegated responder; the CRL
server answers ``/crl/<ca>.crl`` with a CRL signed at each request (:func:`build_crl`). Every request
is counted, so tests can show the request path makes none once the cache is warm. Behaviour a test can
set: `down` (503 to everything), `delay` (a slow responder), a per-CA answer validity, an answer
to serve instead (a forged one).
"""

from __future__ import annotations

import base64
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.issue import PrivateKey, create_ca, issue_client_cert
from certbound.pki.revocation import Revoked, build_crl, ocsp_answer

CertAndKey = tuple[x509.Certificate, PrivateKey]


@dataclass
class Authority:
    """A CA whose revocation status the server publishes."""

    name: str
    cert: x509.Certificate
    key: PrivateKey
    revoked: dict[int, Revoked] = field(default_factory=dict)
    signer: CertAndKey | None = None  # a delegated OCSP responder; None: the CA signs
    validity: timedelta = timedelta(minutes=10)  # nextUpdate - now of every answer and CRL
    ocsp_instead: bytes | None = None  # served instead of a real answer (a forged one)
    crl_instead: bytes | None = None  # served instead of the real CRL (another CA's)

    def revoke(self, cert: x509.Certificate, reason: x509.ReasonFlags | None = None) -> datetime:
        when = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        self.revoked[cert.serial_number] = Revoked(cert.serial_number, when, reason)
        return when

    def ocsp(self, request_der: bytes) -> bytes:
        if self.ocsp_instead is not None:
            return self.ocsp_instead
        now = datetime.now(UTC).replace(microsecond=0)
        return ocsp_answer(
            request_der,
            self.cert,
            dict(self.revoked),
            signer=self.signer or (self.cert, self.key),
            this_update=now - timedelta(seconds=5),
            next_update=now + self.validity,
        )

    def crl(self) -> bytes:
        if self.crl_instead is not None:
            return self.crl_instead
        now = datetime.now(UTC).replace(microsecond=0)
        revoked = list(self.revoked.values())
        window = {"this_update": now - timedelta(seconds=5), "next_update": now + self.validity}
        return build_crl(self.cert, self.key, revoked, **window).public_bytes(Encoding.DER)


class RevocationServer:
    """OCSP and CRLs over plain HTTP on 127.0.0.1 (see the module docstring)."""

    def __init__(self) -> None:
        self.authorities: dict[str, Authority] = {}
        self.requests: list[str] = []
        self.down = False
        self.delay = 0.0  # seconds every answer waits (a slow responder)
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, body: bytes | None, media_type: str) -> None:
                if server.delay:
                    time.sleep(server.delay)
                if body is None or server.down:
                    self.send_response(503 if server.down else 404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                server._count(self.path)
                parts = self.path.split("/")
                if len(parts) >= 4 and parts[1] == "ocsp":
                    authority = server.authorities.get(parts[2])
                    request = base64.b64decode(unquote("/".join(parts[3:])))
                    self._answer(authority.ocsp(request) if authority else None, "application/ocsp-response")
                elif len(parts) == 3 and parts[1] == "crl" and parts[2].endswith(".crl"):
                    authority = server.authorities.get(parts[2].removesuffix(".crl"))
                    self._answer(authority.crl() if authority else None, "application/pkix-crl")
                else:
                    self._answer(None, "text/plain")

            def do_POST(self) -> None:
                server._count(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                authority = server.authorities.get(self.path.split("/")[-1])
                self._answer(authority.ocsp(body) if authority else None, "application/ocsp-response")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests.append(path)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ocsp_url(self, name: str) -> str:
        return f"{self.base}/ocsp/{name}"

    def crl_url(self, name: str) -> str:
        return f"{self.base}/crl/{name}.crl"

    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def add(self, authority: Authority) -> Authority:
        self.authorities[authority.name] = authority
        return authority

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@contextmanager
def revocation_server() -> Iterator[RevocationServer]:
    server = RevocationServer()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class RevocationPki:
    """A root (trusted as client CA) and an intermediate, both publishing status on `server`.

    The intermediate's certificate points at the root's CRL and OCSP responder; leaves made by
    :meth:`leaf` point at the intermediate's (or the root's) by OCSP, CRL or both. More intermediates:
    :meth:`add_intermediate`.
    """

    server: RevocationServer
    root: Authority
    intermediate: Authority

    @classmethod
    def create(cls, server: RevocationServer, prefix: str = "") -> RevocationPki:
        root_cert, root_key = create_ca(f"CN={prefix}Revocation Root,O=certbound tests")
        root = server.add(Authority(f"{prefix}root", root_cert, root_key))
        made = cls(server, root, root)
        made.intermediate = made.add_intermediate(f"{prefix}inter", "Revocation Intermediate")
        return made

    def add_intermediate(
        self, name: str, common_name: str | None = None, *, via: str = "ocsp,crl"
    ) -> Authority:
        """An intermediate CA of the root, whose certificate points at the root's sources by `via`."""
        cert, key = create_ca(
            f"CN={common_name or name},O=certbound tests",
            issuer=(self.root.cert, self.root.key),
            path_length=0,
            crl_urls=[self.server.crl_url(self.root.name)] if "crl" in via else [],
            ocsp_urls=[self.server.ocsp_url(self.root.name)] if "ocsp" in via else [],
        )
        return self.server.add(Authority(name, cert, key))

    def leaf(
        self, subject: str, *, via: str = "ocsp,crl", issuer: Authority | None = None, **kwargs: Any
    ) -> CertAndKey:
        """A client certificate of `issuer` (default the intermediate) whose pointers are `via`."""
        ca = issuer or self.intermediate
        return issue_client_cert(
            ca.cert,
            ca.key,
            subject,
            crl_urls=[self.server.crl_url(ca.name)] if "crl" in via else [],
            ocsp_urls=[self.server.ocsp_url(ca.name)] if "ocsp" in via else [],
            **kwargs,
        )

    def chain(self, leaf: x509.Certificate, issuer: Authority | None = None) -> tuple[x509.Certificate, ...]:
        """The validated path of `leaf`: leaf, (its intermediate,) root."""
        ca = issuer or self.intermediate
        return (leaf, self.root.cert) if ca is self.root else (leaf, ca.cert, self.root.cert)
