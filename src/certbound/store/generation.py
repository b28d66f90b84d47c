"""Per-worker cache invalidation: one background task watches the store's generation counter.

Hot paths (client authentication, token validation) must not read the database per request
(DESIGN.md "Hot paths and state"), yet their caches must be dropped when clients, credentials or
signing keys change, in this worker or any other. The store keeps a counter that grows with every
such change; a :class:`GenerationWatcher` polls it a few times a second and exposes the last value as
a plain attribute, so a cache checks freshness with one integer comparison and no I/O.

A change made in another worker or node is seen at most ``interval`` seconds later (plus the poll's
own latency). A change made by this worker can be made visible at once with :meth:`check`. On
PostgreSQL a `listener` (`certbound.store.notify.GenerationListener`) makes it a few milliseconds: each
notification triggers a fresh read; the poll stays as the fallback while notifications are down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

__all__ = ["ChangeListener", "GenerationSource", "GenerationWatcher"]

log = logging.getLogger("certbound.caching")


class GenerationSource(Protocol):
    """What the watcher needs from the store (``certbound.store.interface.Store`` has it)."""

    async def generation(self) -> int: ...


class ChangeListener(Protocol):
    """Tells the watcher that the generation changed (``certbound.store.notify.GenerationListener``)."""

    async def start(self, on_change: Callable[[], None]) -> None: ...

    async def stop(self) -> None: ...


class GenerationWatcher:
    """Polls ``store.generation()`` every ``interval`` seconds; ``value`` is the last value read.

    ``start()`` reads the counter once (so ``value`` is known when it returns) and starts the task;
    ``stop()`` cancels it. A failed poll keeps the last value and is logged once per failure streak:
    caches stay as they are rather than being dropped (or rebuilt from a store that is down).
    """

    def __init__(
        self, store: GenerationSource, *, interval: float = 0.5, listener: ChangeListener | None = None
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._store = store
        self._interval = interval
        self._listener = listener
        self._value: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: asyncio.Future[int] | None = None
        self._failing = False
        self._started_reads = 0  # each read's ticket; a read started earlier never overwrites a later one
        self._applied = 0
        self._dirty = False
        self._refresher: asyncio.Task[None] | None = None

    @property
    def value(self) -> int | None:
        """The last generation read (None before the first successful read). No I/O."""
        return self._value

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Read the generation now, then keep polling in the background (idempotent)."""
        if self.running:
            return
        await self.check()
        self._task = asyncio.create_task(self._poll(), name="certbound-generation-watcher")
        if self._listener is not None:
            await self._listener.start(self._notified)

    async def stop(self) -> None:
        """Stop polling (and listening); ``value`` keeps its last value."""
        if self._listener is not None:
            await self._listener.stop()
        for task in (self._task, self._refresher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._refresher = None

    async def check(self) -> int:
        """Read the generation now (e.g. right after this worker changed a client) and return it.

        Concurrent callers share one read. Raises what the store raises.
        """
        if self._inflight is not None:
            return await asyncio.shield(self._inflight)
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._inflight = future
        try:
            value = await self._read()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: a lone caller re-raises below
            raise
        else:
            future.set_result(value)
            return value
        finally:
            self._inflight = None

    async def _read(self) -> int:
        self._started_reads += 1
        ticket = self._started_reads
        value = await self._store.generation()
        if ticket > self._applied:  # any difference invalidates (a restored database may go back)
            self._value, self._applied = value, ticket
        return value

    def _notified(self) -> None:
        """The listener heard of a change: read again, after any read already under way."""
        self._dirty = True
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh(), name="certbound-generation-refresh")

    async def _refresh(self) -> None:
        while self._dirty:
            self._dirty = False
            try:
                await self._read()  # not shared with a read in flight: that one may predate the commit
            except Exception:
                return  # the poll reads again soon, and logs a lasting failure

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._failing:
                    log.warning("cannot read the store generation (caches kept as they are): %s", exc)
                self._failing = True
            else:
                if self._failing:
                    log.info("store generation readable again")
                self._failing = False
