"""The revocation endpoint: own tokens only, deny-list shared by every worker (two store instances)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import pg_helpers
from tests.server.endpoints.harness import Harness, Pki, build_harness
from tests.server.endpoints.test_token_endpoint import assert_no_store


async def test_revoke_then_introspect(harness: Harness) -> None:
    value = await harness.get_token("svc")
    assert (await harness.introspect("svc", value)).json()["active"] is True  # cached
    response = await harness.revoke("svc", value)
    assert response.status_code == 200
    assert response.content == b""
    assert_no_store(response)
    assert (await harness.introspect("svc", value)).json() == {"active": False}
    assert (await harness.revoke("svc", value)).status_code == 200  # again: nothing to do


async def test_revoke_opaque(harness: Harness) -> None:
    value = await harness.get_token("opaque")
    assert (await harness.revoke("opaque", value, token_type_hint="refresh_token")).status_code == 200
    assert (await harness.introspect("opaque", value)).json() == {"active": False}


@pytest.mark.parametrize("hint", ["access_token", "refresh_token", "something_else"])
async def test_hint_is_only_a_hint(harness: Harness, hint: str) -> None:
    value = await harness.get_token("svc")
    assert (await harness.revoke("svc", value, token_type_hint=hint)).status_code == 200
    assert (await harness.introspect("svc", value)).json() == {"active": False}


@pytest.mark.parametrize("garbage", ["unknown", "a.b.c", "A" * 43])
async def test_unknown_tokens_are_200(harness: Harness, garbage: str) -> None:
    response = await harness.revoke("svc", garbage)
    assert response.status_code == 200
    assert_no_store(response)


async def test_another_clients_token_cannot_be_revoked(harness: Harness) -> None:
    for owner in ("svc", "opaque"):
        value = await harness.get_token(owner)
        response = await harness.revoke("noscope", value)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert_no_store(response)
        assert (await harness.introspect(owner, value)).json()["active"] is True


async def test_resource_server_cannot_revoke(harness: Harness) -> None:
    from tests.server.endpoints.harness import API

    value = await harness.get_token("svc", resource=API)
    assert (await harness.revoke("rs", value)).status_code == 400
    assert (await harness.introspect("rs", value)).json()["active"] is True


async def test_unauthenticated_revocation(harness: Harness) -> None:
    value = await harness.get_token("svc")
    response = await harness.http.post("/revoke", data={"token": value})
    assert response.status_code == 401
    assert_no_store(response)
    assert (await harness.introspect("svc", value)).json()["active"] is True


async def test_missing_token(harness: Harness) -> None:
    response = await harness.post("/revoke", "svc", {"token_type_hint": "access_token"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_get_is_405(harness: Harness) -> None:
    response = await harness.http.get("/revoke")
    assert response.status_code == 405
    assert_no_store(response)


async def _across_two_workers(url: str, pki: Pki) -> None:
    """Two store instances (two pools, two caches, two token-state readers) on one database."""
    first = await build_harness(url, pki=pki)
    second = await build_harness(url, pki=pki, migrate=False)
    try:
        jwt_value = await first.get_token("svc")
        opaque_value = await first.get_token("opaque")
        for value, owner in ((jwt_value, "svc"), (opaque_value, "opaque")):
            assert (await second.introspect(owner, value)).json()["active"] is True  # cached on second
            assert (await first.revoke(owner, value)).status_code == 200
            assert (await second.introspect(owner, value)).json() == {"active": False}
            assert (await first.introspect(owner, value)).json() == {"active": False}
        # and the other way round
        value = await second.get_token("svc")
        assert (await first.introspect("svc", value)).json()["active"] is True
        assert (await second.revoke("svc", value)).status_code == 200
        assert (await first.introspect("svc", value)).json() == {"active": False}
    finally:
        await first.close()
        await second.close()


async def test_revocation_across_two_store_instances_sqlite(tmp_path: Path, pki: Pki) -> None:
    await _across_two_workers(f"sqlite:///{tmp_path / 'shared.db'}", pki)


@pytest.mark.postgres
async def test_revocation_across_two_store_instances_postgres(pki: Pki) -> None:
    with pg_helpers.throwaway_database() as url:
        await _across_two_workers(url, pki)
