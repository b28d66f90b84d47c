"""certbound's TLS listener for tests that need a real server, and the certificate files around it.

Shared by the TLS and proxy suites: uvicorn with certbound's protocol in a thread on an ephemeral
port of 127.0.0.1, a server certificate from a CA of its own, and client credentials as PEM files.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.issue import (
    PrivateKey,
    create_ca,
    issue_client_cert,
    issue_server_cert,
    self_signed_client_cert,
)
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.tls.listener import protocol_class
from certbound.tls.server_context import ServerContextFactory


@dataclass(frozen=True)
class Cred:
    """A client certificate, the PEM file the client sends (leaf first, then any chain) and its key."""

    cert: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    certfile: Path
    keyfile: Path

    @property
    def pem(self) -> str:
        return cert_to_pem(self.cert).decode("ascii")


def write_cred(
    directory: Path,
    name: str,
    cert: x509.Certificate,
    key: PrivateKey,
    chain: tuple[x509.Certificate, ...] = (),
) -> Cred:
    certfile, keyfile = directory / f"{name}.pem", directory / f"{name}.key"
    certfile.write_bytes(b"".join(cert_to_pem(c) for c in (cert, *chain)))
    keyfile.write_bytes(key_to_pem(key))
    return Cred(cert, chain, certfile, keyfile)


class ServerFiles(NamedTuple):
    ca: Path
    cert: Path
    key: Path


def write_server_files(directory: Path, ca_subject: str) -> ServerFiles:
    """server-ca.pem, server.pem and server.key (localhost, 127.0.0.1, ::1) in `directory`.

    The server's CA is its own: a client that trusted the client CA would otherwise (OpenSSL
    auto-chain) send that root along with its leaf.
    """
    files = ServerFiles(directory / "server-ca.pem", directory / "server.pem", directory / "server.key")
    server_ca = create_ca(ca_subject)
    server_cert, server_key = issue_server_cert(*server_ca)
    files.ca.write_bytes(cert_to_pem(server_ca[0]))
    files.cert.write_bytes(cert_to_pem(server_cert))
    files.key.write_bytes(key_to_pem(server_key))
    return files


def expired_client_cert(issuer: tuple[x509.Certificate, PrivateKey]) -> tuple[x509.Certificate, PrivateKey]:
    """A client certificate of `issuer` that expired yesterday."""
    now = datetime.now(UTC)
    return issue_client_cert(
        *issuer,
        "CN=expired,O=certbound tests",
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )


_UNDECODABLE = b"ZZZZundecodableZZZZ"
# The name as a UTF8String (DER tag 0x0c), and as the TeletexString beginning with byte 0xff that
# OpenSSL writes for a Latin-1 name (tag 0x14): same length, so nothing around it moves
_AS_UTF8 = b"\x0c" + bytes([len(_UNDECODABLE)]) + _UNDECODABLE
_AS_LATIN1 = b"\x14" + bytes([len(_UNDECODABLE)]) + b"\xff" + _UNDECODABLE[1:]


def _latin1(der: bytes) -> bytes:
    """`der` (a certificate or its TBS part) with every `_UNDECODABLE` name made Latin-1."""
    assert _AS_UTF8 in der
    return der.replace(_AS_UTF8, _AS_LATIN1)


def _undecodable(cert: x509.Certificate) -> x509.Certificate:
    """`cert` with its `_UNDECODABLE` name made Latin-1: OpenSSL loads it, so a client can present
    it; cryptography parses it and raises only when the name is read. The signature no longer
    matches: nothing checks it where these are used (a handshake proves the key, not the issuer's
    signature)."""
    return x509.load_der_x509_certificate(_latin1(cert.public_bytes(Encoding.DER)))


def undecodable_subject() -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed certificate (and its key) whose subject, and so issuer, does not decode."""
    cert, key = self_signed_client_cert("CN=" + _UNDECODABLE.decode())
    return _undecodable(cert), key


def undecodable_issuer() -> tuple[x509.Certificate, PrivateKey]:
    """A certificate (and its key) whose subject decodes and whose issuer does not."""
    cert, key = issue_client_cert(*create_ca("CN=" + _UNDECODABLE.decode()), "CN=fine")
    return _undecodable(cert), key


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _signed_again(cert: x509.Certificate, key: PrivateKey) -> x509.Certificate:
    """`cert` with its `_UNDECODABLE` names made Latin-1 (subject, issuer or both), signed again by
    `key` as `cert` was: a certificate OpenSSL and cryptography both accept, whose signature verifies."""
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    algorithm = cert.signature_hash_algorithm
    assert algorithm is not None
    der, tbs = cert.public_bytes(Encoding.DER), cert.tbs_certificate_bytes
    after_tbs = der[der.index(tbs) + len(tbs) :]
    signature_algorithm = after_tbs[: 2 + after_tbs[1]]  # a SEQUENCE under 128 bytes (ECDSA), unchanged
    tbs = _latin1(tbs)
    signature = key.sign(tbs, ec.ECDSA(algorithm))
    body = tbs + signature_algorithm + b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    return x509.load_der_x509_certificate(b"\x30" + _der_length(len(body)) + body)


def latin1_issued(
    *, not_after: datetime | None = None, intermediate: bool = False
) -> tuple[x509.Certificate, x509.Certificate, PrivateKey, tuple[x509.Certificate, ...]]:
    """A CA named in a Latin-1 TeletexString (as OpenSSL writes one), a client certificate it issued
    (``CN=fine``, ending at `not_after`), that certificate's key, and the chain to send with it, all
    correctly signed: the chain verifies, and reading the Latin-1 name raises in cryptography. With
    `intermediate`, the Latin-1 CA is an intermediate under a root named plainly (the first value)."""
    name = "CN=" + _UNDECODABLE.decode()
    if intermediate:
        root = create_ca("CN=Plain Root")
        inter_cert, inter_key = create_ca(name, issuer=root, path_length=0)
        issuer, anchor, chain = (inter_cert, inter_key), root[0], (_signed_again(inter_cert, root[1]),)
    else:
        issuer = create_ca(name)
        anchor, chain = _signed_again(*issuer), ()
    now = datetime.now(UTC)
    leaf, key = issue_client_cert(
        *issuer,
        "CN=fine",
        not_before=now - timedelta(days=2),
        not_after=not_after or now + timedelta(days=30),
    )
    return anchor, _signed_again(leaf, issuer[1]), key, chain


def latin1_self_signed() -> x509.Certificate:
    """A self-signed certificate named in a Latin-1 TeletexString, correctly signed."""
    cert, key = self_signed_client_cert("CN=" + _UNDECODABLE.decode())
    return _signed_again(cert, key)


@contextmanager
def serve(
    factory: ServerContextFactory,
    app: Any,
    loop: str = "uvloop",
    *,
    header_timeout: float | None = None,
    timeout_keep_alive: int = 5,
) -> Iterator[int]:
    """Run `app` on uvicorn (httptools + certbound's protocol) in a thread; yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        http=protocol_class() if header_timeout is None else protocol_class(header_timeout=header_timeout),
        loop=loop,
        timeout_keep_alive=timeout_keep_alive,
        ssl_context_factory=factory,
        lifespan="off",
        log_level="warning",
        log_config=None,  # leave the test session's logging alone
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
