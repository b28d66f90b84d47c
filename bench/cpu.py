"""CPU per call of an async callable, as the in-process benchmarks measure it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

__all__ = ["cpu_per_call"]


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
    batches.sort()
    return batches[len(batches) // 4] / batch * 1e6
