"""The login throttle's address: the TCP peer, or, only when the peer is one of `trusted_proxies`, the
client address the proxies appended to X-Forwarded-For (the rightmost one that is not a trusted proxy).
Anyone else's X-Forwarded-For is ignored: an attacker must not pick the address their failures count
against."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from certbound.store.schema import login_failures
from tests.server.endpoints.harness import ISSUER, STANDARD_CLIENTS, Harness, Pki, build_harness, settings
from tests.server.login.flow import LOGIN_CLIENTS, Browser, add_user


async def _harness(tmp_path: Path, pki: Pki, **overrides: object) -> Harness:
    h = await build_harness(
        f"sqlite:///{tmp_path / 'throttle.db'}",
        pki=pki,
        settings_=settings(login_max_address_failures=1000, login_max_failures=1000, **overrides),
        clients={**STANDARD_CLIENTS, **LOGIN_CLIENTS},
    )
    await add_user(h)
    return h


async def counted_addresses(h: Harness) -> dict[str, int]:
    async with h.store.engine.connect() as conn:
        rows = (await conn.execute(select(login_failures))).all()
    return {row.key.removeprefix("address:"): row.failures for row in rows if row.key.startswith("address:")}


async def fail_from(h: Harness, forwarded_for: str | None, peer: str = "127.0.0.1") -> None:
    transport = httpx.ASGITransport(app=h.http._transport.app, client=(peer, 40000))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
        browser = Browser(h, http)
        page = await browser.follow(await browser.authorize("web"))
        headers = {"x-forwarded-for": forwarded_for} if forwarded_for is not None else {}
        http.headers.update(headers)
        response = await browser.submit(page, username="alice", password="wrong password!")
        assert response.status_code == 401


@pytest.fixture
async def behind_proxy(tmp_path: Path, pki: Pki) -> AsyncIterator[Harness]:
    h = await _harness(
        tmp_path, pki, trusted_proxies=["127.0.0.1/32", "10.0.0.0/8"], forwarded_cert_header="nginx"
    )
    yield h
    await h.close()


async def test_without_trusted_proxies_the_header_is_ignored(harness: Harness) -> None:
    for spoofed in ("203.0.113.1", "203.0.113.2", None):
        await fail_from(harness, spoofed)
    assert await counted_addresses(harness) == {"127.0.0.1": 3}


async def test_behind_a_trusted_proxy_the_client_address_counts(behind_proxy: Harness) -> None:
    await fail_from(behind_proxy, "203.0.113.7")
    await fail_from(behind_proxy, "198.51.100.1, 203.0.113.7")  # the client's own header, then the proxy's
    await fail_from(behind_proxy, "203.0.113.7, 10.1.2.3")  # two proxies
    await fail_from(behind_proxy, "203.0.113.8")
    await fail_from(behind_proxy, None)  # a trusted peer without the header: itself
    await fail_from(behind_proxy, "not an address")  # unusable: the peer
    await fail_from(behind_proxy, "203.0.113.9", peer="192.0.2.50")  # not a trusted proxy: ignored
    assert await counted_addresses(behind_proxy) == {
        "203.0.113.7": 3,
        "203.0.113.8": 1,
        "127.0.0.1": 2,
        "192.0.2.50": 1,
    }
