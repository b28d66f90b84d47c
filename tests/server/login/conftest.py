"""A server with login clients and the user alice, driven in-process (tests/server/endpoints/harness.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.server.endpoints.harness import ISSUER, STANDARD_CLIENTS, Harness, Pki, build_harness, make_pki
from tests.server.login.flow import LOGIN_CLIENTS, Browser, add_user


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
async def harness(tmp_path: Path, pki: Pki) -> AsyncIterator[Harness]:
    h = await build_harness(
        f"sqlite:///{tmp_path / 'certbound.db'}", pki=pki, clients={**STANDARD_CLIENTS, **LOGIN_CLIENTS}
    )
    await add_user(h)
    yield h
    await h.close()


@pytest.fixture
async def browser(harness: Harness) -> AsyncIterator[Browser]:
    transport = harness.http._transport  # the same app, the same test-certificate middleware
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        yield Browser(harness, http)
