"""The scenarios: what each one sends, with which certificate, and what a right answer holds.

Both servers get byte-for-byte the same requests except where a value is per server (client
assertions name the server's token endpoint; introspected and revoked tokens are the server's own).
oidc-provider cannot introspect or revoke its own JWT access tokens ("structured tokens"), so for the
peer those two scenarios use opaque tokens, asked for without ``resource``; certbound gets JWTs.
``introspect-opaque`` is the like-for-like row: an opaque token on both sides. certbound's is minted
by `OPAQUE_CLIENT` (registered with ``access_token_format = "opaque"``, same certificate) and
introspected by ``tls-dn`` as a resource server of `RESOURCE`, so that the request is the same as
the peer's but for the token.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.http import Response, basic_auth, form_post
from bench.loadgen import Target, Workload, run_workload
from bench.material import OPAQUE_CLIENT, RESOURCE, SCOPE, Material, private_key_jwt_assertions

__all__ = ["INTROSPECTION", "SCENARIOS", "Scenario", "build_workload", "client_context", "is_jwt"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH = {"certbound": "/token", "peer": "/token"}
INTROSPECTION_PATH = {"certbound": "/introspect", "peer": "/token/introspection"}
REVOCATION_PATH = {"certbound": "/revoke", "peer": "/token/revocation"}


@dataclass(frozen=True)
class Scenario:
    """A row of the table; `pooled` scenarios consume one prepared value per request."""

    name: str
    label: str
    ratio_target: float | None
    pooled: bool = False
    new_connection: bool = False
    no_target: str = "none: durable writes"  # why there is no ratio target, when there is none


SCENARIOS = [
    Scenario("cc-tls", "client_credentials, tls_client_auth", 1.5),
    Scenario("cc-self-signed", "client_credentials, self_signed_tls_client_auth", 1.5),
    # issue 17 set 1.5x here too (1.1-1.2x in issue 6, when it had none): each jti committed durably
    Scenario("cc-private-key-jwt", "client_credentials, private_key_jwt (fresh assertion)", 1.5, pooled=True),
    Scenario("cc-basic", "client_credentials, client_secret_basic", 1.5),
    Scenario("introspect", "introspection (certbound: bound JWT; peer: opaque)", 1.5),
    Scenario("introspect-opaque", "introspection, opaque tokens on both sides", 1.5),
    Scenario("revoke", "revocation of fresh tokens (certbound: JWT; peer: opaque)", None, pooled=True),
    Scenario("new-connection", "new mTLS connection per request, tls_client_auth", 1.3, new_connection=True),
    Scenario(
        "new-connection-resume",
        "new mTLS connection per request, client offers TLS session resumption",
        None,
        new_connection=True,
        no_target="none: informational",
    ),
]
BY_NAME = {s.name: s for s in SCENARIOS}
#: The scenarios that introspect one prepared token (`Pools.introspected`) over and over.
INTROSPECTION = frozenset({"introspect", "introspect-opaque"})


def client_context(material: Material, *, self_signed: bool = False) -> ssl.SSLContext:
    """A client context that verifies the server and presents one of the two client certificates."""
    ctx = ssl.create_default_context(cafile=str(material.ca))
    if self_signed:
        ctx.load_cert_chain(str(material.self_signed_cert), str(material.self_signed_key))
    else:
        ctx.load_cert_chain(str(material.tls_cert), str(material.tls_key))
    return ctx


def _expects(field: str, value: object = None) -> Callable[[Response], str | None]:
    def check(response: Response) -> str | None:
        if response.status != 200:
            return response.body[:200].decode(errors="replace")
        try:
            data = json.loads(response.body)
        except ValueError:
            return "body is not JSON"
        if field not in data:
            return f"no {field} in {response.body[:200]!r}"
        if value is not None and data[field] != value:
            return f"{field} is {data[field]!r}, not {value!r}"
        return None

    return check


def _status_200(response: Response) -> str | None:
    return None if response.status == 200 else response.body[:200].decode(errors="replace")


def cc_params(client_id: str | None, *, resource: bool = True) -> dict[str, str]:
    params = {"grant_type": "client_credentials", "scope": SCOPE}
    if resource:
        params["resource"] = RESOURCE
    if client_id is not None:
        params["client_id"] = client_id
    return params


@dataclass
class Pools:
    """Values prepared before the timed window, one per request of the pooled scenarios."""

    assertions: list[str]
    revocable: list[str]
    introspected: str


async def mint_tokens(
    target: Target, material: Material, count: int, *, resource: bool, client_id: str = "tls-dn"
) -> list[str]:
    """`count` fresh access tokens of `client_id` (a tls_client_auth client), over 16 keep-alive
    connections."""
    tokens: list[str] = []
    request = form_post("/token", _host(target), cc_params(client_id, resource=resource))

    def keep(response: Response) -> str | None:
        if response.status != 200:
            return response.body[:200].decode(errors="replace")
        tokens.append(json.loads(response.body)["access_token"])
        return None

    workload = Workload("mint", client_context(material), itertools.repeat(request, count), keep)
    result = await run_workload(target, workload, duration=3600, warmup=0)
    if result.errors:
        raise RuntimeError(f"minting tokens failed: {result.first_error}")
    return tokens


async def prepare_pools(
    kind: str, target: Target, material: Material, *, assertions: int, revocable: int, opaque: bool = False
) -> Pools:
    """Assertions for pk-jwt and tokens to revoke and introspect (opaque for the peer). With `opaque`,
    certbound's token to introspect is an opaque one of `OPAQUE_CLIENT` (the peer's is opaque anyway)."""
    audience = f"https://{target.host}:{target.port}{TOKEN_PATH[kind]}"
    signed = await asyncio.to_thread(private_key_jwt_assertions, material.jwt_key, audience, assertions)
    jwt = kind == "certbound"
    tokens = await mint_tokens(target, material, revocable + 1, resource=jwt)
    if opaque and jwt:
        tokens[0] = (await mint_tokens(target, material, 1, resource=True, client_id=OPAQUE_CLIENT))[0]
    return Pools(signed, tokens[1:], tokens[0])


def is_jwt(token: str) -> bool:
    """A JWS compact serialisation has three dot-separated parts; our opaque tokens have no dot."""
    return token.count(".") == 2


def _introspection_check(material: Material) -> Callable[[Response], str | None]:
    """`introspect-opaque`'s check: a JSON answer (not an RFC 9701 JWT) of an active token bound to
    the tls-dn certificate; anything else is an error of the run."""
    thumbprint = material.tls_thumbprint

    def check(response: Response) -> str | None:
        if response.status != 200:
            return response.body[:200].decode(errors="replace")
        try:
            data = json.loads(response.body)
        except ValueError:
            return f"body is not JSON: {response.body[:80]!r}"
        if not isinstance(data, dict) or data.get("active") is not True:
            return f"not an active token: {response.body[:200]!r}"
        cnf = data.get("cnf")
        if not isinstance(cnf, dict) or cnf.get("x5t#S256") != thumbprint:
            return f"not bound to the client certificate: cnf {cnf!r}"
        return None

    return check


def _host(target: Target) -> str:
    return f"{target.host}:{target.port}"


def _iterate(requests: list[bytes]) -> Iterator[bytes]:
    return iter(requests)


def build_workload(
    scenario: Scenario, kind: str, target: Target, material: Material, pools: Pools, connections: int
) -> Workload:
    """The workload of `scenario` against a server of `kind` ("certbound" or "peer")."""
    host = _host(target)
    tls = client_context(material)
    token_ok = _expects("access_token")
    name = scenario.name
    if name in ("cc-tls", "new-connection", "new-connection-resume"):
        request = form_post(TOKEN_PATH[kind], host, cc_params("tls-dn"), close=scenario.new_connection)
        return Workload(
            name, tls, itertools.repeat(request), token_ok, scenario.new_connection, connections,
            resume=name == "new-connection-resume",
        )  # fmt: skip
    if name == "cc-self-signed":
        request = form_post(TOKEN_PATH[kind], host, cc_params("self-signed"))
        ctx = client_context(material, self_signed=True)
        return Workload(name, ctx, itertools.repeat(request), token_ok, connections=connections)
    if name == "cc-basic":
        auth = basic_auth("basic", material.basic_secret)
        request = form_post(TOKEN_PATH[kind], host, cc_params(None), authorization=auth)
        return Workload(name, tls, itertools.repeat(request), token_ok, connections=connections)
    if name == "cc-private-key-jwt":
        requests = [
            form_post(TOKEN_PATH[kind], host, cc_params("pk-jwt") | {
                "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion})
            for assertion in pools.assertions
        ]  # fmt: skip
        return Workload(name, tls, _iterate(requests), token_ok, connections=connections)
    if name in INTROSPECTION:
        params = {"token": pools.introspected, "client_id": "tls-dn"}
        request = form_post(INTROSPECTION_PATH[kind], host, params)
        check = _expects("active", True)
        if name == "introspect-opaque":
            if is_jwt(pools.introspected):
                raise ValueError(f"{kind}: introspect-opaque needs an opaque token, got a JWT")
            check = _introspection_check(material)
        return Workload(name, tls, itertools.repeat(request), check, connections=connections)
    if name == "revoke":
        path = REVOCATION_PATH[kind]
        requests = [form_post(path, host, {"token": t, "client_id": "tls-dn"}) for t in pools.revocable]
        return Workload(name, tls, _iterate(requests), _status_200, connections=connections)
    raise ValueError(f"unknown scenario {name!r}")
