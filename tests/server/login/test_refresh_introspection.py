"""Refresh tokens at the introspection endpoint (RFC 7662 section 2.1): active while they can be used,
to their own client only; inactive once rotated, revoked, or when another client asks."""

from __future__ import annotations

from certbound.server.tokens.introspection import Introspector
from tests.server.endpoints.harness import ISSUER, Harness
from tests.server.login.flow import Browser, token_request


async def test_a_live_refresh_token_is_active_for_its_client_only(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("web", scope="openid offline_access read")
    first = (await browser.exchange("web", code)).json()["refresh_token"]
    answer = (await harness.introspect("web", first)).json()
    assert answer["active"] is True, answer
    assert (answer["client_id"], answer["sub"], answer["iss"]) == ("web", "sub-alice", ISSUER)
    assert answer["scope"] == "openid offline_access read"
    assert answer["exp"] > answer["iat"]
    assert "cnf" not in answer
    assert (await harness.introspect("svc", first)).json() == {"active": False}  # not svc's

    rotated = await token_request(harness, "web", {"grant_type": "refresh_token", "refresh_token": first})
    second = rotated.json()["refresh_token"]
    assert (await harness.introspect("web", first)).json() == {"active": False}  # exchanged already
    assert (await harness.introspect("web", second)).json()["active"] is True
    assert (await harness.revoke("web", second)).status_code == 200
    assert (await harness.introspect("web", second)).json() == {"active": False}


async def test_a_bound_refresh_token_says_which_certificate(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("native", scope="openid offline_access")
    refresh = (await browser.exchange("native", code, cert="svc")).json()["refresh_token"]
    service = harness.services.tokens.introspector
    client = await harness.services.checker.clients("native")
    assert client is not None
    answer = await service.introspect(refresh, client)
    assert answer["active"] is True
    assert answer["cnf"] == {"x5t#S256": harness.pki.certs["svc"].x5t_s256}
    revoked_leaf = Introspector(
        harness.tokens.verifier,
        issuer=ISSUER,
        keys=harness.tokens.keys,
        clock=harness.clock,
        refresh_tokens=harness.store.grants,
        revoked_certificates={harness.pki.certs["svc"].x5t_s256}.__contains__,
    )
    assert await revoked_leaf.introspect(refresh, client) == {"active": False}  # issue 16: deny by thumbprint
