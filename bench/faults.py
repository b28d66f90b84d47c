"""Faults under load, with real processes: `python -m bench.faults` measures what docs/operations.md
("Several nodes: faults") reports, and tests/nodes/test_faults.py runs the same scenarios.

Each scenario drives mixed traffic (`bench.traffic`) at `RATE` operations per second, causes one
fault `FAULT_AT_S` seconds in, keeps the traffic going until `DURATION_S`, then asks every node
still meant to serve about every acknowledged write. The result counts the failed requests and the
error window: from the fault to the end of the last failed request.

- ``worker``: ``kill -9`` of one worker of a node running ``--workers 2`` (the parent starts another);
- ``node``: ``kill -9`` of a whole node (parent and workers) of two behind nginx: the other carries
  on; the dead node is then started again and verified too;
- ``postgres``: a restart (``pg_ctl restart -m fast``) of the database under two nodes: a private
  cluster (`tests.pg_private`), never the shared server.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.traffic import Traffic, Verdict

__all__ = ["DURATION_S", "FAULT_AT_S", "RATE", "FaultRun", "run_with_fault"]

RATE = 25.0
FAULT_AT_S = 4.0
DURATION_S = 16.0


@dataclass
class FaultRun:
    """What one scenario saw."""

    name: str
    operations: int
    failed: int
    errors: Counter[str]
    fault_at: float  # seconds since the traffic started
    window_s: float | None  # fault -> end of the last failed request (None: nothing failed)
    ok_after_fault: int  # requests answered correctly after the fault
    verdict: Verdict
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        window = "none" if self.window_s is None else f"{self.window_s:.2f} s"
        kinds = ", ".join(f"{k} x{v}" for k, v in sorted(self.errors.items())) or "-"
        return (
            f"{self.name}: {self.operations} requests, {self.failed} failed ({kinds}); "
            f"error window {window}; "
            f"verified {self.verdict.checked_tokens} tokens, {self.verdict.checked_revoked} revocations, "
            f"{self.verdict.checked_clients} registrations: {len(self.verdict.problems)} problems"
        )


async def run_with_fault(
    name: str,
    urls: Sequence[str],
    ca: Path,
    registration_token: str,
    fault: Callable[[], None],
    verify_urls: Callable[[], Sequence[str]],
    *,
    rate: float = RATE,
    fault_at: float = FAULT_AT_S,
    duration: float = DURATION_S,
) -> FaultRun:
    """Traffic on `urls`; `fault()` (blocking, run in a thread) at `fault_at`; then verification on
    `verify_urls()` (called after the traffic, so that a restarted node can be included)."""
    async with Traffic(urls, ca, registration_token) as traffic:
        await traffic.prepare(5)
        traffic.started = time.monotonic()
        traffic.samples.clear()
        load = asyncio.create_task(traffic.open_loop(duration, rate))
        await asyncio.sleep(fault_at)
        fault_time = time.monotonic() - traffic.started
        await asyncio.to_thread(fault)
        await load
        verdict = await traffic.verify(verify_urls())
    failed = [s for s in traffic.samples if not s.ok]
    last_end = max((s.at for s in failed), default=None)
    return FaultRun(
        name=name,
        operations=len(traffic.samples),
        failed=len(failed),
        errors=traffic.errors(),
        fault_at=fault_time,
        window_s=None if last_end is None else max(0.0, last_end - fault_time),
        ok_after_fault=sum(1 for s in traffic.samples if s.ok and s.at - s.latency > fault_time),
        verdict=verdict,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenarios", nargs="*", default=["worker", "node", "postgres"])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    from tests.nodes import scenarios

    for _ in range(args.rounds):
        for scenario in args.scenarios:
            run = scenarios.SCENARIOS[scenario]()
            print(run.line(), flush=True)
            for problem in run.verdict.problems[:10]:
                print("  ", problem)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
