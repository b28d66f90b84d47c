"""The fault scenarios of `bench.faults`, with their processes: each starts what it needs in a
temporary directory, runs the traffic with its fault, stops everything and returns the `FaultRun`.
tests/nodes/test_faults.py asserts on them; ``python -m bench.faults`` prints them."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.faults import FaultRun, run_with_fault
from bench.nodes import Node, start_node

from tests.nodes.conftest import start_balanced
from tests.pg_helpers import throwaway_database
from tests.pg_private import PrivatePostgres

__all__ = ["SCENARIOS", "node_scenario", "postgres_scenario", "worker_scenario"]

#: How long a replaced worker or a restarted database may take to come back (liveness, not timing).
PATIENCE_S = 60.0


def _token(node: Node) -> str:
    return (node.data_dir / "registration-token").read_text().strip()


def worker_scenario(base: Path | None = None) -> FaultRun:
    """kill -9 of one of the two workers of a node on PostgreSQL."""
    base = base or Path(tempfile.mkdtemp(prefix="certbound-fault-worker-"))
    with throwaway_database() as url:
        node = start_node("node", base / "data", url, "https://as.example", workers=2)
        try:
            before = node.worker_pids()
            victim = before[0]

            def fault() -> None:
                os.kill(victim, signal.SIGKILL)

            run = asyncio.run(
                run_with_fault(
                    "kill -9 one worker",
                    [node.url],
                    node.pki / "ca.crt",
                    _token(node),
                    fault,
                    lambda: [node.url],
                )
            )
            deadline = time.monotonic() + PATIENCE_S
            while time.monotonic() < deadline and (
                victim in node.worker_pids() or len(node.worker_pids()) < 2
            ):
                time.sleep(0.1)
            after = node.worker_pids()
            run.notes.append(f"workers before {before}, after {after}; node alive: {node.alive()}")
            if victim in after or len(after) != 2 or not node.alive():
                run.verdict.problems.append(f"the killed worker was not replaced: {before} -> {after}")
        finally:
            node.stop()
    return run


def node_scenario(base: Path | None = None) -> FaultRun:
    """kill -9 of a whole node of two behind nginx; afterwards it is started again and verified too."""
    base = base or Path(tempfile.mkdtemp(prefix="certbound-fault-node-"))
    with throwaway_database() as url:
        balanced_iter = start_balanced(base, url)
        balanced = next(balanced_iter)
        try:
            victim, survivor = balanced.nodes

            def verify_urls() -> list[str]:
                # the dead node comes back on its port (nginx will use it again) and must agree too
                balanced.nodes[0] = start_node(
                    victim.name,
                    balanced.data_dir,
                    url,
                    _issuer(balanced.url),
                    port=victim.port,
                    trusted_proxy="127.0.0.1/32",
                )
                return [n.url for n in balanced.nodes]

            run = asyncio.run(
                run_with_fault(
                    "kill -9 one node behind nginx",
                    [balanced.url],
                    balanced.pki / "ca.crt",
                    _token(survivor),
                    victim.kill,
                    verify_urls,
                )
            )
            run.notes.append(f"survivor alive: {survivor.alive()}")
            if not survivor.alive():
                run.verdict.problems.append("the other node died too")
        finally:
            balanced_iter.close()
    return run


def _issuer(nginx_url: str) -> str:
    return "https://localhost:" + nginx_url.rsplit(":", 1)[1]


def postgres_scenario(base: Path | None = None) -> FaultRun:
    """A restart of the (private) PostgreSQL under two nodes."""
    base = base or Path(tempfile.mkdtemp(prefix="certbound-fault-pg-"))
    with PrivatePostgres() as pg:
        pg.execute("CREATE DATABASE certbound")
        url = pg.database_url("certbound")
        nodes: list[Node] = []
        try:
            for name in ("node1", "node2"):
                nodes.append(start_node(name, base / "data", url, "https://as.example"))
            urls = [n.url for n in nodes]
            run = asyncio.run(
                run_with_fault(
                    "PostgreSQL restart",
                    urls,
                    nodes[0].pki / "ca.crt",
                    _token(nodes[0]),
                    pg.restart,
                    lambda: urls,
                )
            )
            run.notes.append(f"nodes alive: {[n.alive() for n in nodes]}")
            if not all(n.alive() for n in nodes):
                run.verdict.problems.append("a node died with the database")
        finally:
            for node in nodes:
                node.stop()
    return run


SCENARIOS: dict[str, Callable[[], FaultRun]] = {
    "worker": worker_scenario,
    "node": node_scenario,
    "postgres": postgres_scenario,
}
