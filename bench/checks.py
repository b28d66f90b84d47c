"""Before timing anything: both servers issue the same kind of token, so the comparison is fair.

Every token scenario's token must be an ES256 JWT whose ``cnf.x5t#S256`` is the thumbprint of the
certificate the request came with; introspection must say ``active`` with the same binding, for
the tokens of both introspection scenarios (certbound's JWT, and an opaque token on each side).
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from typing import Any

from bench.http import Response, basic_auth, form_post, read_response
from bench.loadgen import Target
from bench.material import OPAQUE_CLIENT, Material
from bench.scenarios import INTROSPECTION_PATH, cc_params, client_context, is_jwt

__all__ = ["check_equivalence"]


async def fetch(target: Target, context: ssl.SSLContext, request: bytes) -> Response:
    """One request on a connection of its own."""
    reader, writer = await asyncio.open_connection(
        target.host, target.port, ssl=context, server_hostname=target.host
    )
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()


def _segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def _check_jwt(kind: str, what: str, token: str, thumbprint: str) -> None:
    header, claims = _segment(token, 0), _segment(token, 1)
    problems = []
    if header.get("alg") != "ES256":
        problems.append(f"alg {header.get('alg')!r}")
    if claims.get("cnf", {}).get("x5t#S256") != thumbprint:
        problems.append(f"cnf {claims.get('cnf')!r}")
    if problems:
        raise RuntimeError(f"{kind}: {what}: the access token is not an ES256 JWT bound to the "
                           f"certificate: {', '.join(problems)}")  # fmt: skip


async def check_equivalence(kind: str, target: Target, material: Material) -> None:
    """Raise if `kind`'s tokens are not bound ES256 JWTs, or introspection does not say so."""
    host = f"{target.host}:{target.port}"
    tls = client_context(material)
    cases = [
        ("tls_client_auth", tls, form_post("/token", host, cc_params("tls-dn")), material.tls_thumbprint),
        ("self_signed_tls_client_auth", client_context(material, self_signed=True),
         form_post("/token", host, cc_params("self-signed")), material.self_signed_thumbprint),
        ("client_secret_basic", tls, form_post("/token", host, cc_params(None),
         authorization=basic_auth("basic", material.basic_secret)), material.tls_thumbprint),
    ]  # fmt: skip
    for what, context, request, thumbprint in cases:
        response = await fetch(target, context, request)
        if response.status != 200:
            raise RuntimeError(f"{kind}: {what}: {response.status} {response.body[:300]!r}")
        _check_jwt(kind, what, json.loads(response.body)["access_token"], thumbprint)
    # what tls-dn introspects: certbound's own JWT (`introspect`), an opaque token on both sides
    # (`introspect-opaque`; the peer's tokens without resource are opaque, so one case serves both)
    introspected = [("the peer's opaque token", cc_params("tls-dn", resource=False), False)]
    if kind != "peer":
        introspected = [("tls-dn's JWT", cc_params("tls-dn"), True),
                        ("an opaque token", cc_params(OPAQUE_CLIENT), False)]  # fmt: skip
    for what, params, jwt in introspected:
        minted = await fetch(target, tls, form_post("/token", host, params))
        if minted.status != 200:
            raise RuntimeError(f"{kind}: {what}: {minted.status} {minted.body[:300]!r}")
        token = json.loads(minted.body)["access_token"]
        if is_jwt(token) != jwt:
            raise RuntimeError(f"{kind}: {what} is {'not ' if jwt else ''}a JWT: {token[:60]!r}")
        ask = form_post(INTROSPECTION_PATH[kind], host, {"token": token, "client_id": "tls-dn"})
        info = json.loads((await fetch(target, tls, ask)).body)
        if info.get("active") is not True or info.get("cnf", {}).get("x5t#S256") != material.tls_thumbprint:
            raise RuntimeError(f"{kind}: introspecting {what} does not show an active bound token: {info!r}")
