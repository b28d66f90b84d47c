"""`certbound serve --workers 2` keeps serving when workers die: one killed right after its start
(young), its replacement killed young again, and again: each time the parent starts a new one (the
third death in a row says that the worker keeps crashing), the other worker serves meanwhile, and the
service never stops. Issue 15: a worker dying within 10 s of its start used to stop the server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.nodes import Node, free_port, worker_pids

from tests.server.process.serverproc import start_server

pytestmark = pytest.mark.slow
PATIENCE_S = 60.0  # for a replacement to appear (liveness, not timing)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    server = start_server(["--workers", "2"], tmp_path / "data", port=free_port())
    node = Node("n", server.proc, int(server.url.rsplit(":", 1)[1]), server.data_dir,
                server.log_path, 2)  # fmt: skip
    yield node
    node.stop()


def _two_workers(node: Node, not_in: set[int]) -> list[int]:
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        assert node.alive(), node.output()[-3000:]
        pids = worker_pids(node.proc.pid)
        if len(pids) == 2 and not set(pids) & not_in:
            return pids
        time.sleep(0.05)
    raise AssertionError(f"no replacement worker: {worker_pids(node.proc.pid)}\n{node.output()[-3000:]}")


def test_workers_killed_young_three_times_in_a_row_are_replaced(node: Node) -> None:
    pids = _two_workers(node, set())
    survivor, victim = pids
    killed: set[int] = set()
    # the first victim started with the server: on a loaded machine it may be older than 10 s by now
    # (then it does not count as young). Four kills: the last three are young whatever the first was.
    for _ in range(4):
        os.kill(victim, signal.SIGKILL)  # a young worker: started less than 10 s ago
        killed.add(victim)
        new = [p for p in _two_workers(node, killed) if p != survivor]
        assert len(new) == 1
        victim = new[0]
        with node.client(cert=False) as c:  # the service answers throughout
            assert c.get("/jwks").status_code == 200
    output = node.output()
    assert node.alive()
    assert output.count("exited (code -9)") == 4, output[-3000:]
    assert "keeps crashing (3 times in a row" in output
    # the last replacement serves too: every new connection is answered, whichever worker takes it
    for _ in range(10):
        with node.client(cert=False) as c:
            assert c.get("/jwks").status_code == 200
    assert node.stop() == 0
