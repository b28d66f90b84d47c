"""Fixtures: one PKI per session, a harness (real store, keys, endpoints) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.server.endpoints.harness import Harness, Pki, build_harness, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def harness(tmp_path: Path, pki: Pki) -> AsyncIterator[Harness]:
    h = await build_harness(f"sqlite:///{tmp_path / 'certbound.db'}", pki=pki)
    yield h
    await h.close()
