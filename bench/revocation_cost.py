"""What revocation checking costs a request once the cache is warm, in-process.

``python -m bench.revocation_cost`` builds the real app three times over a temporary SQLite store
(`open_services`, `create_app`, as ``certbound serve`` does), with a client CA whose client certificate
names an OCSP responder and a CRL, served by a small responder on 127.0.0.1 (answers from
:func:`certbound.pki.revocation.ocsp_answer`, valid an hour): ``client_cert_revocation = "off"``, then
``"ocsp,crl"`` (the default), then ``"crl"``. Each run warms the cache with one token request, then
measures µs of process CPU per ``tls_client_auth`` token request and per introspection of a bound token
(lower quartile of batches, `bench.cpu`), and counts the responder's requests during the measured
part: zero, the request path asking nobody. It also times `RevocationChecker.cached` alone.
docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import base64
import http.server
import json
import os
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import tomli_w
import uvloop
from cryptography.hazmat.primitives.serialization import Encoding

from bench.inprocess import _caller, _measure
from certbound.config import Settings
from certbound.observability.logs import configure_logging
from certbound.pki.issue import create_ca, issue_client_cert, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.revocation import build_crl, ocsp_answer
from certbound.server.app import create_app
from certbound.server.bootstrap import initialize
from certbound.server.services import open_services
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["main"]

SUBJECT = "CN=bench-revocation,O=certbound bench"


class Responder:
    """OCSP (GET) and a CRL for one CA on 127.0.0.1, counting requests."""

    def __init__(self, ca: Any, key: Any) -> None:
        self.requests = 0
        responder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                responder.requests += 1
                now = datetime.now(UTC)
                if self.path.startswith("/ocsp/"):
                    request = base64.b64decode(unquote(self.path.removeprefix("/ocsp/")))
                    body = ocsp_answer(request, ca, {}, signer=(ca, key), this_update=now,
                                       next_update=now + timedelta(hours=1))  # fmt: skip
                else:
                    crl = build_crl(ca, key, [], this_update=now, next_update=now + timedelta(hours=1))
                    body = crl.public_bytes(Encoding.DER)
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


async def _one(directory: Path, mode: str, files: dict[str, Path], cert: ClientCertificate,
               responder: Responder, requests: int) -> tuple[float, float, int]:  # fmt: skip
    """(token µs, introspection µs, responder requests while measuring) for one mode."""
    data = Path(tempfile.mkdtemp(prefix=mode.replace(",", "-") + "-", dir=directory))
    settings = Settings(
        issuer="https://127.0.0.1:8443", data_dir=data, tls_cert=files["server_cert"],
        tls_key=files["server_key"], client_ca=files["ca"], clients_file=files["clients"],
        client_cert_revocation=mode,
    )  # fmt: skip
    await initialize(settings)
    async with open_services(settings) as services:
        app = create_app(services)
        async with app.router.lifespan_context(app):
            form = b"grant_type=client_credentials&client_id=tls-dn"
            mint = _caller(app, "POST", "/token", form, cert, [])
            answer = await mint()  # the first request: the certificate is checked (waits for the network)
            if answer["status"] != 200:
                raise SystemExit(f"{mode}: {answer['status']} {answer['body'][:200]!r}")
            token = json.loads(answer["body"])["access_token"]
            introspect = _caller(
                app, "POST", "/introspect", f"token={token}&client_id=tls-dn".encode(), cert, []
            )
            before = responder.requests
            token_cpu = await _measure(mint, requests)
            introspect_cpu = await _measure(introspect, requests)
            asked = responder.requests - before
    return token_cpu, introspect_cpu, asked


def _cached_alone(cert: ClientCertificate, ca: Any, responder: Responder) -> None:
    """`RevocationChecker.cached` for a warm leaf issued by the anchor (one look-up), timed alone."""
    import asyncio

    from certbound.certstatus import RevocationPolicy, build_checker, path_keys

    async def warm() -> Any:
        checker = build_checker(RevocationPolicy(), issuer_url="https://127.0.0.1:8443")
        path = (cert.leaf, ca)
        await checker.check(path, path_keys(path))
        return checker, path_keys(path)

    checker, keys = asyncio.run(warm())
    now = time.time()
    rounds = 200_000
    started = time.perf_counter()
    for _ in range(rounds):
        checker.cached(keys, now)
    print(f"RevocationChecker.cached alone: {(time.perf_counter() - started) / rounds * 1e9:.0f} ns per call")


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.revocation_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per case (default 3000)")
    parser.add_argument("--log-level", default="info", help="info (the default: events written) or warning")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is shown")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="certbound-revocation-cost-"))
    ca, ca_key = create_ca("CN=certbound bench revocation CA,O=certbound bench")
    responder = Responder(ca, ca_key)
    leaf, _ = issue_client_cert(ca, ca_key, SUBJECT, ocsp_urls=[responder.base + "/ocsp"],
                                crl_urls=[responder.base + "/ca.crl"])  # fmt: skip
    server, server_key = issue_server_cert(ca, ca_key)
    files = {"ca": directory / "ca.crt", "server_cert": directory / "server.crt",
             "server_key": directory / "server.key", "clients": directory / "clients.toml"}  # fmt: skip
    files["ca"].write_bytes(cert_to_pem(ca))
    files["server_cert"].write_bytes(cert_to_pem(server))
    files["server_key"].write_bytes(key_to_pem(server_key))
    client = {"client_id": "tls-dn", "token_endpoint_auth_method": "tls_client_auth",
              "tls_client_auth_subject_dn": SUBJECT, "grant_types": ["client_credentials"],
              "tls_client_certificate_bound_access_tokens": True}  # fmt: skip
    files["clients"].write_text(tomli_w.dumps({"client": [client]}))
    cert = ClientCertificate.from_der(
        leaf.public_bytes(Encoding.DER), [ca.public_bytes(Encoding.DER)], source="tls", tls_verified=True,
        tls_error=None,
    )  # fmt: skip
    configure_logging(args.log_level, "json", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the run
    modes = ("off", "ocsp,crl", "crl")
    best: dict[str, tuple[float, float, int]] = {}
    try:
        for _ in range(args.rounds):
            for mode in modes:
                token, introspection, asked = uvloop.run(
                    _one(directory, mode, files, cert, responder, args.requests)
                )
                old = best.get(mode, (token, introspection, 0))
                best[mode] = (min(old[0], token), min(old[1], introspection), max(old[2], asked))
        for mode in modes:
            token, introspection, asked = best[mode]
            print(f"{mode:9} token {token:6.1f} µs  introspection {introspection:6.1f} µs  "
                  f"responder requests while measuring: {asked}")  # fmt: skip
        _cached_alone(cert, ca, responder)
    finally:
        responder.stop()


if __name__ == "__main__":
    main()
