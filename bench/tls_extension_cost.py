"""In-process CPU of what the native listener does with a connection's client certificate, once per
connection: `certbound.tls.protocol.tls_extension` (the chain read from OpenSSL, its verdict, the
leaf parsed, the ASGI ``tls`` extension with the subject's RFC 4514 name).

``python -m bench.tls_extension_cost`` completes one mutual-TLS handshake in memory (``MemoryBIO``,
the server context as `certbound serve` builds it, a client certificate from a CA it trusts), then
times `tls_extension` on that connection twice: for a certificate seen before (its subject name
remembered, as on every connection of a client after its first) and with the memory emptied before
each call (a client's first connection, the cost before the names were remembered). The handshake
itself is not counted (docs/performance.md, "A new mutual-TLS connection"). Exits non-zero when the
extension does not carry the certificate and its name.
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import tempfile
from pathlib import Path

from bench.cpu import cpu_per_sync_call
from certbound.pki.issue import create_ca, issue_client_cert, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.tls import client_certificate
from certbound.tls.client_certificate import SCOPE_KEY
from certbound.tls.protocol import tls_extension
from certbound.tls.server_context import ServerContextFactory

__all__ = ["main", "measure"]

SUBJECT = "CN=bench client,OU=payments,O=Example Bank AG,L=Frankfurt am Main,C=DE"


def _handshake(directory: Path) -> ssl.SSLObject:
    """The server side of a completed mutual-TLS handshake, in memory."""
    ca = create_ca("CN=bench client CA,O=certbound bench")
    server_cert, server_key = issue_server_cert(*ca)
    client_cert, client_key = issue_client_cert(*ca, SUBJECT)
    files = {
        "ca.pem": cert_to_pem(ca[0]),
        "server.pem": cert_to_pem(server_cert),
        "server.key": key_to_pem(server_key),
        "client.pem": cert_to_pem(client_cert),
        "client.key": key_to_pem(client_key),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    factory = ServerContextFactory(
        cert_file=str(directory / "server.pem"),
        key_file=str(directory / "server.key"),
        client_ca_file=str(directory / "ca.pem"),
        mode="native",
    )
    client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client_ctx.load_verify_locations(cafile=str(directory / "ca.pem"))
    client_ctx.load_cert_chain(str(directory / "client.pem"), str(directory / "client.key"))
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server = factory().wrap_bio(server_in, server_out, server_side=True)
    client = client_ctx.wrap_bio(to_client, to_server, server_hostname="localhost")
    for _ in range(10):
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):  # waits for the other side's flight
                side.do_handshake()
        server_in.write(to_server.read())
        to_client.write(server_out.read())
    server.do_handshake()  # raises if it never completed
    return server


def measure(calls: int) -> tuple[float, float]:
    """µs of CPU per `tls_extension`: (a certificate seen before, a certificate's first connection)."""
    with tempfile.TemporaryDirectory() as directory:
        server = _handshake(Path(directory))
    extension = tls_extension(server)
    if extension[SCOPE_KEY] is None or extension["client_cert_name"] != SUBJECT:
        raise SystemExit(f"the extension misses the certificate or its name: {extension!r}")

    def first() -> object:
        client_certificate._subject_names.clear()
        return tls_extension(server)

    warmup = min(calls, 2000)
    seen = cpu_per_sync_call(lambda: tls_extension(server), calls, batch=500, warmup=warmup)
    return seen, cpu_per_sync_call(first, calls, batch=500, warmup=warmup)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=20000, help="calls per measurement")
    args = p.parse_args()
    seen, first = measure(args.calls)
    print(f"tls_extension, certificate seen before   {seen:6.1f} µs CPU per connection")
    print(f"tls_extension, certificate's first time  {first:6.1f} µs CPU per connection")


if __name__ == "__main__":
    main()
