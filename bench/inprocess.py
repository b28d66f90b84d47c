"""In-process CPU per request of the hot endpoints: the ASGI app alone, without TLS and HTTP parsing.

``python -m bench.inprocess`` builds the real app on a temporary SQLite store with the bench PKI and
clients (`bench.material`), as ``certbound serve`` does (`open_services`, then `create_app`), and
calls it directly with the client
certificate where the TLS listener puts it. It prints µs of process CPU per request for each case
(the lower quartile of batches, so that a busy machine disturbs it less), and with ``--profile
CASE`` a cProfile (``--sort``) or pyinstrument (``--pyinstrument``) profile of that case.

It answers "what does our code cost per request" between two changes in seconds; the side-by-side
numbers against the peer are `bench.run`'s. docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import itertools
import json
import os
import pstats
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvloop
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette

from bench.cpu import cpu_per_call
from bench.material import OPAQUE_CLIENT, RESOURCE, SCOPE, Material, make_material, private_key_jwt_assertions
from certbound.config import Settings
from certbound.observability.logs import configure_logging
from certbound.server.app import create_app
from certbound.server.bootstrap import initialize
from certbound.server.services import open_services
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate

__all__ = ["CASES", "main"]

CASES = ("healthz", "token-tls", "token-self-signed", "token-basic", "token-private-key-jwt", "introspect",
         "introspect-opaque")  # fmt: skip
BATCH = 250
Call = Callable[[], Awaitable[dict[str, Any]]]


def _certificate(material: Material, *, self_signed: bool) -> ClientCertificate:
    """As the listener builds it: the leaf and what the client sent along (the CA, for tls-dn)."""
    if self_signed:
        leaf = x509.load_pem_x509_certificate(material.self_signed_cert.read_bytes())
        return ClientCertificate.from_der(
            leaf.public_bytes(Encoding.DER), source="tls", tls_verified=False, tls_error="self-signed"
        )
    leaf = x509.load_pem_x509_certificate(material.tls_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(material.ca.read_bytes())
    return ClientCertificate.from_der(
        leaf.public_bytes(Encoding.DER),
        [ca.public_bytes(Encoding.DER)],
        source="tls",
        tls_verified=True,
        tls_error=None,
    )


def _caller(
    app: Any, method: str, path: str, body: bytes | Iterator[bytes], cert: ClientCertificate,
    headers: list[tuple[bytes, bytes]],
) -> Call:  # fmt: skip
    """One request through the ASGI app; returns the start message with the body added. `body` is
    the same for every request, or an iterator of a fresh one for each (a one-time assertion)."""
    bodies = itertools.repeat(body) if isinstance(body, bytes) else body

    async def call() -> dict[str, Any]:
        body = next(bodies)
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8443),
            "headers": [(b"host", b"127.0.0.1:8443"), (b"content-type", b"application/x-www-form-urlencoded"),
                        (b"content-length", str(len(body)).encode()), *headers],
            "extensions": {"tls": {SCOPE_KEY: cert}}, "state": {},
        }  # fmt: skip
        messages = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return {**sent[0], "body": b"".join(m.get("body", b"") for m in sent[1:])}

    return call


async def _measure(call: Call, requests: int) -> float:
    """µs of process CPU per request (`bench.cpu.cpu_per_call`, batches of `BATCH`)."""
    return await cpu_per_call(call, requests, batch=BATCH, warmup=100)


async def run(args: argparse.Namespace) -> None:
    directory = Path(tempfile.mkdtemp(prefix="certbound-inprocess-"))
    material = make_material(directory / "pki")
    clients = directory / "clients.toml"
    clients.write_text(material.certbound_clients_toml())
    settings = Settings(
        issuer="https://127.0.0.1:8443", data_dir=directory / "data", tls_cert=material.server_cert,
        tls_key=material.server_key, client_ca=material.ca, clients_file=clients,
        fast_paths=not args.no_fast_paths,
    )  # fmt: skip
    settings.data_dir.mkdir()
    configure_logging(args.log_level, "json", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the run
    await initialize(settings)
    async with open_services(settings) as services:
        await _run_cases(create_app(services), material, args)


async def _run_cases(app: Starlette, material: Material, args: argparse.Namespace) -> None:
    tls, self_signed = _certificate(material, self_signed=False), _certificate(material, self_signed=True)
    basic = b"Basic " + base64.b64encode(f"basic:{material.basic_secret}".encode())
    form = f"grant_type=client_credentials&scope={SCOPE}&resource={RESOURCE}".replace(":", "%3A")
    form = form.replace("/", "%2F")
    async with app.router.lifespan_context(app):  # as uvicorn runs it (nothing to start without TLS)
        mint = _caller(app, "POST", "/token", f"{form}&client_id=tls-dn".encode(), tls, [])
        token = json.loads((await mint())["body"])["access_token"]
        mint_opaque = _caller(app, "POST", "/token", f"{form}&client_id={OPAQUE_CLIENT}".encode(), tls, [])
        opaque = json.loads((await mint_opaque())["body"])["access_token"]
        calls: dict[str, Call] = {
            "healthz": _caller(app, "GET", "/healthz", b"", tls, []),
            "token-tls": mint,
            "token-self-signed": _caller(
                app, "POST", "/token", f"{form}&client_id=self-signed".encode(), self_signed, []
            ),
            "token-basic": _caller(app, "POST", "/token", form.encode(), tls, [(b"authorization", basic)]),
            "token-private-key-jwt": _caller(
                app, "POST", "/token", _assertion_forms(material, form, args.requests * 3 + 1000), tls, []
            ),
            "introspect": _caller(
                app, "POST", "/introspect", f"token={token}&client_id=tls-dn".encode(), tls, []
            ),
            "introspect-opaque": _caller(
                app, "POST", "/introspect", f"token={opaque}&client_id=tls-dn".encode(), tls, []
            ),
        }
        for name in args.cases.split(","):
            call = calls[name]
            answer = await call()
            if answer["status"] != 200:
                raise SystemExit(f"{name}: {answer['status']} {answer['body'][:200]!r}")
            if name == args.profile:
                await _profile(call, args)
            print(f"{name:18} {await _measure(call, args.requests):7.1f} µs/request")


def _assertion_forms(material: Material, form: str, count: int) -> Iterator[bytes]:
    """Token requests of ``pk-jwt``, each with its own client assertion (a ``jti`` is accepted once)."""
    assertions = private_key_jwt_assertions(material.jwt_key, "https://127.0.0.1:8443/token", count)
    return iter(
        f"{form}&client_id=pk-jwt&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type"
        f"%3Ajwt-bearer&client_assertion={assertion}".encode()
        for assertion in assertions
    )


async def _profile(call: Call, args: argparse.Namespace) -> None:
    if args.pyinstrument:
        import pyinstrument

        profiler = pyinstrument.Profiler(interval=0.0002)
        profiler.start()
        for _ in range(args.requests):
            await call()
        profiler.stop()
        print(profiler.output_text(color=False, show_all=False))
        return
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.requests):
        await call()
    profile.disable()
    pstats.Stats(profile).sort_stats(args.sort).print_stats(40)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.inprocess", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    parser.add_argument("--requests", type=int, default=5000, help="requests per case (default 5000)")
    parser.add_argument("--no-fast-paths", action="store_true", help="run with fast_paths = false")
    parser.add_argument("--log-level", default="info", help="info (the default: events written) or warning")
    parser.add_argument("--profile", choices=CASES, help="profile this case (cProfile unless --pyinstrument)")
    parser.add_argument("--pyinstrument", action="store_true", help="profile with pyinstrument")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (default tottime)")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
