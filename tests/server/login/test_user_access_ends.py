"""A user disabled or deleted with `certbound users` loses everything at once, on a running server: the
login sessions end (enabling the user again does not bring one back), refresh tokens stop working, and
a code exchange or refresh racing the command cannot issue past it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from certbound.cli.main import app
from certbound.store.schema import sessions
from tests.server.endpoints.harness import Harness
from tests.server.login.flow import Browser, query, token_request

runner = CliRunner()


async def users_command(h: Harness, *args: str) -> Any:
    url = str(h.store.engine.url).replace("sqlite+aiosqlite", "sqlite")
    result = await asyncio.to_thread(runner.invoke, app, ["users", *args, "--database-url", url, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def login_sessions(h: Harness, subject: str) -> int:
    async with h.store.engine.connect() as conn:
        count = await conn.execute(select(func.count()).where(sessions.c.subject == subject))
        return int(count.scalar_one())


async def test_disabling_ends_the_login_sessions_and_refresh_tokens(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    refresh = (await browser.exchange("web", code)).json()["refresh_token"]
    assert await login_sessions(harness, "sub-alice") == 1
    disabled = await users_command(harness, "disable", "alice")
    await users_command(harness, "enable", "alice")
    again = await browser.authorize("web", prompt="none")
    assert query(again.headers["location"])["error"] == "login_required"  # the old session is gone
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    assert (await token_request(harness, "web", form)).json()["error"] == "invalid_grant"
    assert await login_sessions(harness, "sub-alice") == 0
    assert (disabled["grants_revoked"], disabled["sessions_ended"]) == (1, 1)


async def test_deleting_ends_the_login_sessions(browser: Browser, harness: Harness) -> None:
    await browser.code("web")
    deleted = await users_command(harness, "delete", "alice")
    assert await login_sessions(harness, "sub-alice") == 0
    assert deleted["sessions_ended"] == 1


@pytest.mark.parametrize("command", ["disable", "delete"])
async def test_a_code_exchange_after_the_command_issues_nothing(
    browser: Browser, harness: Harness, command: str
) -> None:
    """The user check is made in the transaction that writes the grant, not only before it."""
    code, _ = await browser.code("web", scope="openid offline_access")
    grant_tokens = harness.services.grants._grants["authorization_code"]._tokens  # type: ignore[attr-defined]

    async def still_enabled(sub: str, reason: str) -> None:  # the check before the write, passed earlier
        return None

    grant_tokens.active_user = still_enabled
    await users_command(harness, command, "alice")
    response = await browser.exchange("web", code)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
