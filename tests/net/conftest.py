"""Fixtures: a document server over HTTPS (certificates from certbound.pki) and over plain HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.net.docserver import DocServer, ServerPki, serve_documents, write_server_pki


@pytest.fixture(scope="session")
def server_pki(tmp_path_factory: pytest.TempPathFactory) -> ServerPki:
    return write_server_pki(tmp_path_factory.mktemp("docserver"))


@pytest.fixture
def https_server(server_pki: ServerPki) -> Iterator[DocServer]:
    with serve_documents(server_pki) as server:
        yield server


@pytest.fixture
def http_server() -> Iterator[DocServer]:
    with serve_documents(None) as server:
        yield server
