"""Entry points for the multi-process tests (spawned: each child is a fresh interpreter, like a worker).

Kept apart from the test modules so a child imports only this and certbound, not pytest plugins.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from datetime import datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from certbound.store.sql import open_store


def migrate(url: str, barrier: Barrier, results: Queue[Any]) -> None:
    """Wait until every worker is up, then all migrate at once."""

    async def run() -> None:
        store = open_store(url)
        try:
            await store.migrate()
        finally:
            await store.close()

    barrier.wait(timeout=60)
    try:
        asyncio.run(run())
    except Exception as exc:
        results.put(("error", repr(exc)))
    else:
        results.put(("ok", None))


def remember_jtis(
    url: str, barrier: Barrier, results: Queue[Any], client_id: str, jtis: list[str], expires_at: datetime
) -> None:
    """Try to remember every jti; report the ones this worker won."""

    async def run() -> list[str]:
        store = open_store(url)
        try:
            won = []
            for jti in jtis:
                if await store.remember_jti(client_id, jti, expires_at):
                    won.append(jti)
            return won
        finally:
            await store.close()

    barrier.wait(timeout=60)
    try:
        results.put(("ok", asyncio.run(run())))
    except Exception as exc:
        results.put(("error", repr(exc)))


def remember_and_revoke(
    url: str,
    barrier: Barrier,
    results: Queue[Any],
    fast_paths: bool,
    client_id: str,
    jtis: list[str],
    expires_at: datetime,
) -> None:
    """On the given path: try to remember every jti, deny-list ``revoked-<jti>`` for each one won;
    report the ones won."""

    async def run() -> list[str]:
        store = open_store(url, fast_paths=fast_paths)
        try:
            won = [jti for jti in jtis if await store.remember_jti(client_id, jti, expires_at)]
            for jti in won:
                await store.revoke_token(f"revoked-{jti}", expires_at)
            return won
        finally:
            await store.close()

    barrier.wait(timeout=60)
    try:
        results.put(("ok", asyncio.run(run())))
    except Exception as exc:
        results.put(("error", repr(exc)))


def run_together(target: Any, url: str, *extra: Any, count: int = 3, timeout: float = 60) -> list[Any]:
    """Start `count` spawned processes running `target(url, barrier, results, *extra)` in step;
    return what each reported, failing on any error or non-zero exit."""
    return run_each(target, url, [extra] * count, timeout=timeout)


def run_each(target: Any, url: str, extras: list[tuple[Any, ...]], timeout: float = 60) -> list[Any]:
    """`run_together` with arguments of their own: one process per tuple in `extras`, running
    `target(url, barrier, results, *extras[i])`; reports in the order they arrived."""
    count = len(extras)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count)
    results: Queue[Any] = ctx.Queue()
    processes = [ctx.Process(target=target, args=(url, barrier, results, *extra)) for extra in extras]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=timeout) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=timeout)
            if process.is_alive():
                process.kill()
    errors = [detail for status, detail in reports if status != "ok"]
    assert not errors, errors
    assert [p.exitcode for p in processes] == [0] * count
    return [detail for _, detail in reports]


def remember_jtis_at_once(
    url: str,
    barrier: Barrier,
    results: Queue[Any],
    client_id: str,
    rounds: list[list[str]],
    expires_at: datetime,
) -> None:
    """Each round: every jti of the round at once (one group commit, or a few); report the ones won."""

    async def run() -> list[str]:
        store = open_store(url)
        try:
            won = []
            for jtis in rounds:
                outcomes = await asyncio.gather(*(store.remember_jti(client_id, j, expires_at) for j in jtis))
                won += [jti for jti, first in zip(jtis, outcomes, strict=True) if first]
            return won
        finally:
            await store.close()

    barrier.wait(timeout=60)
    try:
        results.put(("ok", asyncio.run(run())))
    except Exception as exc:
        results.put(("error", repr(exc)))
