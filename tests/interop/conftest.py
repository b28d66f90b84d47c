"""Fixtures for the interoperability tests: one PKI and one oidc-provider per session (well under 2 min)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.material import Material, make_material
from tests.interop.peers import OidcProvider, start_oidc_provider


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    return make_material(tmp_path_factory.mktemp("interop-pki"))


@pytest.fixture(scope="session")
def oidc_provider(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """oidc-provider: a plain listener (the issuer) and an mTLS one, published as mtls_endpoint_aliases."""
    provider = start_oidc_provider(material, tmp_path_factory.mktemp("oidc-provider"), server=material.server)
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def wrong_ca_provider(material: Material, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """oidc-provider whose server certificate comes from a CA the client does not trust."""
    provider = start_oidc_provider(
        material, tmp_path_factory.mktemp("oidc-provider-wrong-ca"), server=material.other_server
    )
    yield provider
    provider.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
