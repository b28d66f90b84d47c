"""Processes shared by the gateway tests (once per session: starting them is most of the cost):
the PKI, the echo upstream, both identity providers, and one `certbound gateway` in front of them
with a route for every behaviour under test (`gateway_config`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.client.material import Material, make_material
from tests.gateway.echo import Echo, echo_server
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.idps import Idp, start_certbound_idp, start_oidc_idp
from tests.server.process.serverproc import free_port


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The upstream client's in-process tests on both loops (the gateway runs on uvloop, whose
    transports are not asyncio's classes); the other async tests on asyncio's, as by default."""
    if item.path.name == "test_upstream_http.py":
        return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


IDENTITY = {
    "X-Client-Id": "client_id",
    "X-Subject": "sub",
    "X-Scope": "scope",
    "X-Audience": "aud",
    "X-Confirmation": "cnf",
}


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("gateway-pki"))


@pytest.fixture(scope="session")
def echo() -> Iterator[Echo]:
    with echo_server() as server:
        yield server


@pytest.fixture(scope="session")
def idps(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Idp]]:
    started: dict[str, Idp] = {}
    try:
        started["certbound"] = start_certbound_idp(material, tmp_path_factory.mktemp("certbound-idp"))
        started["oidc"] = start_oidc_idp(material, tmp_path_factory.mktemp("oidc-idp"))
        yield started
    finally:
        for idp in started.values():
            idp.stop()


def idp_settings(idp: Idp, material: Material, **overrides: Any) -> dict[str, Any]:
    """The gateway's [idps.NAME] for `idp`: tls_client_auth with the gateway's own certificate."""
    return {
        "issuer": idp.issuer,
        "client_id": "gateway",
        "client_auth": "tls_client_auth",
        "tls_client_auth_cert": str(material.gateway.cert_file),
        "tls_client_auth_key": str(material.gateway.key_file),
        "ca_bundle": str(idp.ca_file),
        **overrides,
    }


def matrix_routes(idp: str, upstream: str) -> list[dict[str, Any]]:
    """The routes every IdP gets, under /<idp>/..."""

    def route(name: str, **settings: Any) -> dict[str, Any]:
        return {
            "name": f"{idp}-{name}",
            "paths": [f"/{idp}/{name}"],
            "upstream": upstream,
            "idp": idp,
            "proof_of_possession_mtls": "strict",
            "upstream_headers": IDENTITY,
            **settings,
        }

    return [
        route("strict"),
        route("optional", proof_of_possession_mtls="optional"),
        route("off", proof_of_possession_mtls="off"),
        route("bearer", auth_methods=["bearer"]),
        route("introspect", auth_methods=["introspection"], cache_introspection=False),
        route("cached", auth_methods=["introspection"]),
        route("ttl", auth_methods=["introspection"], cache_ttl_max=1),
        route("scoped", scopes_required=["api:write admin", "api:admin"]),
        route("audience", audience_required=["https://other.example/"]),
        route("expiry", leeway=0, proof_of_possession_mtls="off"),
    ]


def gateway_config(material: Material, echo: Echo, idps: dict[str, Idp]) -> dict[str, Any]:
    routes = [r for name in idps for r in matrix_routes(name, echo.url)]
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    routes += [
        {"name": "hidden", "paths": ["/hidden"], "upstream": echo.url, "idp": "certbound",
         "hide_credentials": True, "upstream_headers": IDENTITY},
        {"name": "stripped", "paths": ["/stripped/api"], "upstream": echo.url + "/base", "idp": "certbound",
         "strip_path": True},
        {"name": "down", "paths": ["/down"], "upstream": dead, "idp": "certbound"},
        {"name": "slow", "paths": ["/slow"], "upstream": echo.url, "idp": "certbound",
         "upstream_read_timeout": 0.5},
        {"name": "wrong-ca", "paths": ["/wrong-ca"], "upstream": echo.url, "idp": "wrong-ca"},
        {"name": "wrong-ca-bearer", "paths": ["/wrong-ca-bearer"], "upstream": echo.url, "idp": "wrong-ca",
         "auth_methods": ["bearer"]},
        {"name": "refused", "paths": ["/refused"], "upstream": echo.url, "idp": "refused",
         "auth_methods": ["introspection"]},
    ]  # fmt: skip
    return {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "idps": {
            **{name: idp_settings(idp, material) for name, idp in idps.items()},
            # certbound's issuer, but trusting another CA for its server certificate
            "wrong-ca": idp_settings(idps["certbound"], material, ca_bundle=str(material.other_ca_file)),
            # certbound, with a client certificate it does not know for the gateway
            "refused": idp_settings(
                idps["certbound"],
                material,
                tls_client_auth_cert=str(material.unregistered.cert_file),
                tls_client_auth_key=str(material.unregistered.key_file),
            ),
        },
        "routes": routes,
    }


@pytest.fixture(scope="session")
def gateway(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    running = start_gateway(
        gateway_config(material, echo, idps), tmp_path_factory.mktemp("gateway"), ca_file=material.ca_file
    )
    yield running
    running.stop()


@pytest.fixture(params=["certbound", "oidc"])
def idp(request: pytest.FixtureRequest, idps: dict[str, Idp]) -> Idp:
    """The matrix: each test runs against both identity providers."""
    found: Idp = idps[request.param]
    return found


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
