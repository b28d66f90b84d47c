"""In-process CPU of the gateway's own work per request, and of Starlette's dispatch if it were used.

``python -m bench.gateway_cost`` builds a gateway from settings (a JWT route and an introspection
route, as `bench.gateway_run`'s, one IdP that is never called: the token's verdict is already in the
IdP's caches, as on every request after a token's first)
and sends it ASGI requests directly, the upstream replaced by one that answers at once, so the figure
is the gateway alone: route look-up, the header pass, the bearer token read, the cached verdict (a
SHA-256 and a dictionary), the proof-of-possession compare, scopes, identity headers, the event and
the counter. Beside it, a plain ASGI app answering 200 and the same app behind a Starlette
application with one catch-all route: what the framework's request machinery would add to every
request (docs/gateway.md, "Why a plain ASGI app"). Prints µs of process CPU per request (the lower
quartile of batches, ``bench.cpu``). Exits non-zero when the gateway does not answer 200.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import uvloop
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from bench.cpu import cpu_per_call
from certbound.gateway.app import GatewayApp
from certbound.gateway.config import parse_gateway_settings
from certbound.gateway.routes import RouteTable
from certbound.gateway.services import build_services
from certbound.gateway.tokens import TokenInfo
from certbound.observability.logs import configure_logging
from certbound.pki.issue import create_ca, issue_client_cert, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"  # noqa: S105 - never verified


class _AtOnce:
    """An upstream that answers 200 without I/O."""

    async def forward(self, method: str, target: bytes, headers: Any, has_body: bool, receive: Receive,
                      send: Send, answer_headers: Any = ()) -> tuple[int, None]:  # fmt: skip
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return 200, None


async def _plain(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _files(directory: Path) -> tuple[Path, Path, ClientCertificate]:
    ca = create_ca("CN=bench CA")
    server, key = issue_server_cert(*ca)
    (directory / "server.pem").write_bytes(cert_to_pem(server))
    (directory / "server.key").write_bytes(key_to_pem(key))
    client, _ = issue_client_cert(*ca, "CN=bench client")
    certificate = ClientCertificate.from_certificates(
        [client], source="tls", tls_verified=True, tls_error=None
    )
    return directory / "server.pem", directory / "server.key", certificate


def _gateway(directory: Path) -> tuple[GatewayApp, ClientCertificate]:
    cert_file, key_file, certificate = _files(directory)
    common = {
        "upstream": "http://127.0.0.1:9",
        "proof_of_possession_mtls": "strict",
        "scopes_required": ["read"],
        "upstream_headers": {"X-Client-Id": "client_id", "X-Subject": "sub", "X-Scope": "scope"},
    }
    settings = parse_gateway_settings(
        {
            "listener": {"tls_cert": str(cert_file), "tls_key": str(key_file)},
            "idp": {"issuer": "https://idp.invalid", "client_id": "gateway", "client_auth": "none"},
            "routes": [
                {"name": "api", "paths": ["/api"], **common},
                {
                    "name": "introspected",
                    "paths": ["/introspected"],
                    "auth_methods": ["introspection"],
                    "cache_introspection": True,
                    "cache_ttl_max": 300,
                    **common,
                },
            ],
        }
    )
    services = build_services(settings)
    now = time.time()
    claims = {"iss": "https://idp.invalid", "sub": "alice", "client_id": "rp", "scope": "read write",
              "exp": int(now) + 3600, "cnf": {"x5t#S256": certificate.x5t_s256}}  # fmt: skip
    idp = services.idps["default"]
    digest = hashlib.sha256(TOKEN.encode()).digest()
    idp.verified.put(digest, TokenInfo(claims, "jwt", now), now + 3600)
    # as the IdP answers an introspection of an opaque bound token (RFC 7662 and RFC 8705 members)
    answer = {"active": True, **claims, "token_type": "Bearer", "iat": int(now), "aud": ["https://api"]}
    idp.introspected.put(digest, TokenInfo(answer, "introspection", now), now + 300)
    routes = RouteTable([dataclasses.replace(r, upstream=_AtOnce()) for r in services.routes.routes])  # type: ignore[arg-type]
    return GatewayApp(routes, services.forwarded, None), certificate


def _scope(path: str, certificate: ClientCertificate | None) -> Scope:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"gw.example"),
            (b"user-agent", b"bench"),
            (b"accept", b"*/*"),
            (b"authorization", f"Bearer {TOKEN}".encode()),
            (b"x-client-id", b"forged"),
        ],
        "extensions": {"tls": {SCOPE_KEY: certificate}},
    }


async def _measure(calls: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as directory:
        gateway, certificate = _gateway(Path(directory))
    starlette = Starlette(routes=[Mount("/", app=_plain)])
    scopes = {
        "jwt": _scope("/api/items/1", certificate),
        "introspection": _scope("/introspected/items/1", certificate),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    def request(app: Any, scope: Scope) -> Any:
        return lambda: app(dict(scope), receive, send)

    statuses: list[int] = []

    async def record(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for scope in scopes.values():
        await gateway(dict(scope), receive, record)
    if statuses != [200] * len(scopes):  # the figure would be of a refusal, not of the path measured
        raise SystemExit(f"the gateway did not let the requests through: {statuses}")

    out = {}
    for name, app, scope in (
        ("gateway, JWT (admission + event)", gateway, scopes["jwt"]),
        ("gateway, introspection (the same)", gateway, scopes["introspection"]),
        ("plain ASGI 200", _plain, scopes["jwt"]),
        ("Starlette, one Mount, 200", starlette, scopes["jwt"]),
    ):
        out[name] = await cpu_per_call(request(app, scope), calls, batch=200, warmup=500)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    configure_logging("info", "json", stream=io.StringIO())  # the event is rendered, not written out
    results = uvloop.run(_measure(args.calls))
    for name, micros in results.items():
        print(f"{name:34} {micros:8.1f} µs CPU per request")


if __name__ == "__main__":
    main()
