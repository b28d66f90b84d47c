"""One look-up in flight per key, however many callers wait for it.

Several requests presenting the same new certificate, or several certificates pointing at the same
CRL, must cause one fetch, not one each. The first caller starts the look-up as a task of its own and
every caller (the first included) awaits it shielded: a caller that is cancelled (a client that hung
up, a request timed out) stops waiting, but the look-up goes on for the others, who get its result or
its exception. Nothing is remembered once it is done: caching is the caller's. :meth:`SingleFlight.cancel`
stops what is still in flight (at shutdown).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._inflight

    async def run(self, key: K, look_up: Callable[[], Coroutine[Any, Any, V]]) -> V:
        """`look_up()`'s result, shared with every concurrent caller for `key`."""
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(look_up())
            self._inflight[key] = task
            task.add_done_callback(lambda done: self._done(key, done))
        return await asyncio.shield(task)

    def _done(self, key: K, task: asyncio.Task[V]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have gone, which must not log an error

    async def cancel(self) -> None:
        """Cancel every look-up in flight and wait for them to end."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
