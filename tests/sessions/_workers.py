"""Entry points for the multi-process session tests (spawned: each child is a fresh interpreter, like a
worker). Kept apart from the test modules so a child imports only this and certbound, not pytest."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from certbound.sealing import Sealer
from certbound.sessions import SqlSessionStore
from certbound.store.sql import open_store


def expected_data(writer: str, n: int) -> dict[str, Any]:
    """What `writer` stores on its `n`-th update: large enough to span several database pages."""
    return {"writer": writer, "n": n, "blob": writer * 2000}


def update_many(
    url: str, barrier: Barrier, results: Queue[Any], kek: bytes, session_id: str, purpose: str, count: int
) -> None:
    """Update one session `count` times with this worker's data, reading it back after each
    write: every read must be one writer's whole record. Reports this worker's name."""

    async def run() -> str:
        store = open_store(url)
        try:
            sessions = SqlSessionStore(store.engine, Sealer(kek))
            session = await sessions.get(session_id, purpose=purpose)
            if session is None:
                raise RuntimeError("the session is not there")
            name = f"worker-{os.getpid()}"
            barrier.wait(timeout=60)
            for n in range(count):
                changed = dataclasses.replace(session, data=expected_data(name, n))
                if await sessions.update(changed) is None:
                    raise RuntimeError("an update lost the session")
                seen = await sessions.get(session_id, purpose=purpose)
                if seen is None:
                    raise RuntimeError("a read lost the session")
                if seen.data != expected_data(str(seen.data["writer"]), int(seen.data["n"])):
                    raise RuntimeError(
                        f"half-written session read back: {seen.data['writer']} / {seen.data['n']}"
                    )
            return name
        finally:
            await store.close()

    try:
        results.put(("ok", asyncio.run(run())))
    except Exception as exc:
        results.put(("error", repr(exc)))
