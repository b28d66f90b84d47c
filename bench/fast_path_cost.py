"""In-process cost of each store call a request makes, on the fast paths and on the general path.

``python -m bench.fast_path_cost`` opens a migrated store twice, with ``fast_paths=True`` and with
``fast_paths=False`` (the ``fast_paths`` setting), and times the calls that are on the request path:
the deny-list question of introspection (``token_state().is_revoked``) when nothing was committed
since the same question was answered (SQLite's commit marker) and when it must query, the opaque-token
read, the replay-cache and deny-list inserts, and the generation poll. It prints µs of this process's
CPU per call (all its threads: aiosqlite's included), the lower quartile of batches, for each path.

SQLite by default, in a temporary directory; ``--database postgresql://...`` for PostgreSQL (an
empty database: the tables are created and left there). docs/performance.md ("Fast paths") has the
figures and what each fast path saves.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.cpu import cpu_per_call
from certbound.store.interface import OpaqueToken
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store

__all__ = ["main", "measure"]

BATCH = 200
LATER = datetime.now(UTC) + timedelta(hours=1)

Call = Callable[[], Awaitable[object]]


async def measure(call: Call, calls: int) -> float:
    """µs of process CPU per call (`bench.cpu.cpu_per_call`, batches of `BATCH`)."""
    return await cpu_per_call(call, calls, batch=BATCH, warmup=50)


async def costs(store: SqlStore, calls: int, tag: str) -> dict[str, float]:
    """Each request-path call of `store`, timed; `tag` keeps the keys of two runs apart."""
    await store.create_client(Client(f"bench-{tag}", {}))
    client = f"bench-{tag}"
    await store.add_opaque_token(OpaqueToken(f"{tag}-opaque", client, {"scope": "api:read"}, LATER))
    await store.revoke_token(f"{tag}-revoked", LATER)
    reader = store.token_state()
    numbers = itertools.count()
    try:
        queries: dict[str, Call] = {
            "deny-list read, nothing committed since": lambda: reader.is_revoked(f"{tag}-same"),
            "deny-list read, a query": lambda: reader.is_revoked(f"{tag}-q{next(numbers)}"),
            "deny-list read, revoked": lambda: reader.is_revoked(f"{tag}-revoked"),
            "opaque-token read": lambda: reader.opaque_token(f"{tag}-opaque"),
            "replay-cache insert": lambda: store.remember_jti(client, f"{tag}-j{next(numbers)}", LATER),
            "deny-list insert": lambda: store.revoke_token(f"{tag}-r{next(numbers)}", LATER),
            "generation poll": store.generation,
        }
        return {name: await measure(call, calls) for name, call in queries.items()}
    finally:
        await reader.close()


async def run(database: str | None, calls: int) -> dict[bool, dict[str, float]]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="certbound-fastpaths-") as directory:
        for fast_paths in (True, False):
            url = database or f"sqlite:///{Path(directory) / f'fast-{fast_paths}.db'}"
            store = open_store(url, fast_paths=fast_paths)
            try:
                await store.migrate()
                tag = f"{'fast' if fast_paths else 'general'}-{time.time_ns()}"
                results[fast_paths] = await costs(store, calls, tag)
            finally:
                await store.close()
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--database", help="a PostgreSQL URL (default: SQLite in a temporary directory)")
    parser.add_argument("-n", "--calls", type=int, default=4000, help="calls per measurement")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.database, args.calls))
    print(f"{'µs of CPU per call':<42} {'fast':>9} {'general':>9}")
    for name, fast in results[True].items():
        print(f"{name:<42} {fast:9.1f} {results[False][name]:9.1f}")


if __name__ == "__main__":
    main()
