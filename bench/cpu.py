"""CPU per call of a callable, async or not, as the in-process benchmarks measure it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

__all__ = ["cpu_per_call", "cpu_per_sync_call"]


async def cpu_per_call(
    call: Callable[[], Awaitable[object]], calls: int, *, batch: int, warmup: int
) -> float:
    """µs of process CPU per call: the lower quartile of batches of `batch` calls, so that a busy
    machine disturbs the figure less, after `warmup` calls that are not counted."""
    for _ in range(warmup):
        await call()
    batches = []
    for _ in range(max(1, calls // batch)):
        started = time.process_time()
        for _ in range(batch):
            await call()
        batches.append(time.process_time() - started)
    return _lower_quartile(batches, batch)


def cpu_per_sync_call(call: Callable[[], object], calls: int, *, batch: int, warmup: int) -> float:
    """:func:`cpu_per_call` for a plain function (no coroutine per call in the figure)."""
    for _ in range(warmup):
        call()
    batches = []
    for _ in range(max(1, calls // batch)):
        started = time.process_time()
        for _ in range(batch):
            call()
        batches.append(time.process_time() - started)
    return _lower_quartile(batches, batch)


def _lower_quartile(batches: list[float], batch: int) -> float:
    """µs per call of the lower-quartile batch."""
    batches.sort()
    return batches[len(batches) // 4] / batch * 1e6
