"""CPU per replay-cache insert on SQLite, one writer at a time and many at once (group commit).

``python -m bench.hot_write_cost`` opens a store on a temporary SQLite file (migrated, as the server
does) and calls `Store.remember_jti` in a loop from `--writers` tasks at once, each yielding to the
loop between its writes as a request would; it prints µs of process CPU (every thread: the
checkpoints run on the store's own) and of wall time per insert, for one writer and for `--writers`.
With several writers the inserts of one loop iteration share one transaction
(`certbound.store.sqlite_hot`); docs/performance.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvloop

from certbound.store.sql import open_store

__all__ = ["main"]


async def run(inserts: int, writers: int) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    store = open_store(f"sqlite:///{Path(tempfile.mkdtemp(prefix='certbound-hot-write-')) / 'store.db'}")
    await store.migrate()

    async def writer(count: int) -> None:
        for _ in range(count):
            if not await store.remember_jti("bench", secrets.token_urlsafe(16), later):
                raise SystemExit("a fresh jti was refused")
            await asyncio.sleep(0)

    try:
        for concurrency in (1, writers):
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(writer(inserts // concurrency) for _ in range(concurrency)))
            done = inserts // concurrency * concurrency
            print(
                f"{concurrency:3} writer(s): {(time.process_time() - cpu) / done * 1e6:6.1f} µs CPU, "
                f"{(time.perf_counter() - wall) / done * 1e6:6.1f} µs wall per insert"
            )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.hot_write_cost", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--inserts", type=int, default=4000, help="inserts per measurement (default 4000)")
    parser.add_argument("--writers", type=int, default=16, help="writers at once (default 16)")
    args = parser.parse_args()
    uvloop.run(run(args.inserts, args.writers))


if __name__ == "__main__":
    main()
