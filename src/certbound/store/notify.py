"""PostgreSQL LISTEN/NOTIFY: a node hears at once that another node changed clients or keys.

Migration 0005 makes every committed change of the store generation send a notification on
`CHANNEL`. `GenerationListener` keeps one asyncpg connection of its own LISTENing on it and calls
its callback for each notification, so a worker re-reads the generation (and drops its caches)
a few milliseconds after the change commits anywhere, instead of at its next poll.

The poll (`certbound.store.generation.GenerationWatcher`) keeps running underneath: notifications
are lost while the connection is down, and PostgreSQL says nothing about a dead peer. So the
listener also calls back every time it (re)connects (whatever happened meanwhile is read then),
checks its connection with a query every `keepalive_s`, and reconnects by itself with back-off
(`retry_s` doubled up to `max_retry_s`) for as long as it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["CHANNEL", "GenerationListener"]

#: The channel migration 0005's trigger notifies; the payload is the new generation.
CHANNEL = "certbound_generation"

log = logging.getLogger("certbound.caching")


class GenerationListener:
    """LISTEN on `CHANNEL` over a connection of its own; `on_change()` on every notification and
    after every (re)connection. `start()` returns at once (connecting happens in the background)."""

    def __init__(
        self,
        dsn: str,
        *,
        connect_timeout_s: float = 5.0,
        keepalive_s: float = 5.0,
        retry_s: float = 0.2,
        max_retry_s: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._connect_timeout = connect_timeout_s
        self._keepalive = keepalive_s
        self._retry = retry_s
        self._max_retry = max_retry_s
        self._task: asyncio.Task[None] | None = None
        self._connected = False

    @property
    def connected(self) -> bool:
        """Whether notifications are being received now (False: the poll is all there is)."""
        return self._connected

    async def start(self, on_change: Callable[[], None]) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(on_change), name="certbound-generation-listener")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, on_change: Callable[[], None]) -> None:
        delay = self._retry
        failing = False
        while True:
            listened = [False]  # set by _listen once it LISTENs
            try:
                await self._listen(on_change, listened, failing)
                problem = "connection lost"
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                problem = f"{type(exc).__name__}: {str(exc).partition(chr(10))[0][:200]}"
            if listened[0]:  # it worked for a while: start the back-off afresh
                delay, failing = self._retry, False
            if not failing:
                log.warning("generation notifications unavailable (polling meanwhile): %s", problem)
                failing = True
            await asyncio.sleep(delay)
            delay = min(self._max_retry, delay * 2)

    async def _listen(self, on_change: Callable[[], None], listened: list[bool], failing: bool) -> None:
        """One connection's life: returns when it is lost; raises when it cannot be opened."""
        import asyncpg

        conn: Any = await asyncpg.connect(
            self._dsn, timeout=self._connect_timeout, command_timeout=self._connect_timeout
        )
        lost = asyncio.Event()

        def notified(*_: object) -> None:
            on_change()

        try:
            conn.add_termination_listener(lambda *_: lost.set())
            await conn.add_listener(CHANNEL, notified)
            self._connected = listened[0] = True
            log.info("generation notifications %s (LISTEN %s)", "back" if failing else "on", CHANNEL)
            on_change()  # whatever changed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._keepalive)
                if not lost.is_set():
                    await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
        finally:
            self._connected = False
            if not conn.is_closed():
                conn.terminate()
