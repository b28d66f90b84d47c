"""Concurrent use of one code or one refresh token over HTTP: at most one request succeeds, and the
others (a replay, a reuse) revoke what it issued (RFC 6749 section 4.1.2, RFC 9700 section 4.14)."""

from __future__ import annotations

import asyncio

from tests.server.endpoints.harness import Harness
from tests.server.login.flow import Browser, token_request


async def test_one_code_exchanged_at_once_many_times_issues_once_then_nothing(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    answers = await asyncio.gather(*(browser.exchange("web", code) for _ in range(4)))
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) <= 1, [a.status_code for a in answers]
    assert all(a.json()["error"] == "invalid_grant" for a in answers if a.status_code != 200)
    for won in winners:  # the replays revoked what the winner got
        assert (await harness.introspect("web", won.json()["access_token"])).json() == {"active": False}
        again = {"grant_type": "refresh_token", "refresh_token": won.json()["refresh_token"]}
        assert (await token_request(harness, "web", again)).json()["error"] == "invalid_grant"


async def test_one_refresh_token_used_at_once_many_times_rotates_at_most_once(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    refresh = (await browser.exchange("web", code)).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    answers = await asyncio.gather(*(token_request(harness, "web", form) for _ in range(4)))
    winners = [a for a in answers if a.status_code == 200]
    assert len(winners) <= 1, [a.status_code for a in answers]
    for won in winners:  # the reuse revoked the family, the winner's new tokens included
        assert (await harness.introspect("web", won.json()["access_token"])).json() == {"active": False}
        assert (await harness.introspect("web", won.json()["refresh_token"])).json() == {"active": False}
