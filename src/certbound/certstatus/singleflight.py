"""One look-up in flight per key, however many callers wait for it.

Several requests presenting the same new certificate, or several certificates pointing at the same
CRL, must cause one fetch, not one each. The first caller runs the look-up; the others await its
result (or its exception, cancellation included, so that nobody waits forever on a look-up that
will not finish). Nothing is remembered once it is done: caching is the caller's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K")
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __contains__(self, key: K) -> bool:
        return key in self._inflight

    async def run(self, key: K, look_up: Callable[[], Awaitable[V]]) -> V:
        """`look_up()`'s result, shared with every concurrent caller for `key`."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await look_up()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: the waiters re-raise it, this caller raises below
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(result)
        return result
