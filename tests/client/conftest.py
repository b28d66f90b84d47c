"""Fixtures for the client's own tests: certificates and a stub HTTPS authorization server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from certbound.client import ClientConfig
from tests.client.material import Material, make_material
from tests.client.stub_server import StubServer, stub_server


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("client-pki"))


@pytest.fixture
def server(material: Material) -> Iterator[StubServer]:
    """Asks for (but does not require) a client certificate from the interop CA."""
    with stub_server(material.server, client_ca=material.ca_file) as stub:
        yield stub


def config_for(stub: StubServer, material: Material, **overrides: Any) -> ClientConfig:
    options: dict[str, Any] = {
        "issuer": stub.url,
        "client_id": "client-1",
        "auth_method": "tls_client_auth",
        "identities": [material.tls_client.identity()],
        "ca_file": material.ca_file,
    }
    options.update(overrides)
    return ClientConfig(**options)
