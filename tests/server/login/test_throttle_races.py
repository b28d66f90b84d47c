"""The lock-out holds against parallel guesses: the lock is checked before the password is, so a burst
of attempts sent at once must not all pass the check before the first failure is counted. Each
attempt claims its place in the username's count first; an attempt that finds others got in between
is refused like a locked one, so at most `login_max_failures` passwords are ever checked."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.server.endpoints.harness import Harness
from tests.server.login.flow import PASSWORD, Browser


async def test_a_burst_of_guesses_checks_no_more_passwords_than_the_limit(
    browser: Browser, harness: Harness
) -> None:
    limit = harness.services.settings.login_max_failures
    page = await browser.follow(await browser.authorize("web"))
    guesses = [f"guess number {n}" for n in range(4 * limit)] + [PASSWORD]
    answers = await asyncio.gather(*(browser.submit(page, username="alice", password=g) for g in guesses))
    statuses = Counter(a.status_code for a in answers)
    checked = statuses[401] + statuses[303]
    assert checked <= limit, statuses
    assert statuses[429] >= len(guesses) - limit, statuses
    assert statuses[303] == 0 or answers[-1].status_code == 303


async def test_one_login_at_a_time_still_works_and_a_success_counts_no_failure(
    browser: Browser, harness: Harness
) -> None:
    limit = harness.services.settings.login_max_failures
    for _ in range(3):  # far more successes than the limit: none of them counts
        page = await browser.follow(await browser.authorize("web", prompt="login"))
        done = await browser.submit(page, username="alice", password=PASSWORD)
        assert done.status_code == 303, done.text
    page = await browser.follow(await browser.authorize("web", prompt="login"))
    for _ in range(limit - 1):
        assert (await browser.submit(page, username="alice", password="wrong password")).status_code == 401
    assert (await browser.submit(page, username="alice", password=PASSWORD)).status_code == 303
