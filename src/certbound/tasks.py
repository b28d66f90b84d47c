"""Background tasks of a worker: the one way they are stopped (cancelled, then awaited).

A leaf module: every part that runs a loop beside the request path (revocation refreshes, the
certificate watch, the expiry monitor) stops it here, so none forgets to wait for the cancellation to
land before closing what the loop uses.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["stop_task"]


async def stop_task(task: asyncio.Task[None] | None) -> None:
    """Cancel `task` (None: nothing to do) and wait until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
