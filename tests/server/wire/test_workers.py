"""Two worker processes: a private_key_jwt assertion is accepted once whichever worker sees it first, and
a revocation made through one worker holds on the other. Each request goes on a new TLS connection
(new connections are spread over the workers); which worker served a connection is read from /proc
(the process that holds the accepted socket)."""

from __future__ import annotations

import http.client
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.server.wire.world import World, start_world

pytestmark = pytest.mark.slow
ATTEMPTS = 40  # fresh connections tried until both workers have answered


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("e2e-auth-workers"), args=["--workers", "2"])
    yield w
    w.server.stop()
    w.jwks.stop()


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    worker: int | None


def _workers(world: World) -> set[int]:
    out: set[int] = set()
    children = Path(f"/proc/{world.server.proc.pid}/task/{world.server.proc.pid}/children")
    for pid in children.read_text().split():
        if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text():
            out.add(int(pid))
    return out


def _socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the server side of the connection 127.0.0.1:client_port -> server_port."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if local.endswith(f":{server_port:04X}") and remote.endswith(f":{client_port:04X}"):
                return inode
    return None


def _owner(pids: set[int], inode: str | None) -> int | None:
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd) == target:
                    return pid
            except OSError:
                continue
    return None


def post(world: World, path: str, form: dict[str, str], *, cert: str | None, pids: set[int]) -> Answer:
    """POST on a new connection; the answer and the worker that accepted the connection."""
    url = urlsplit(world.issuer)
    assert url.hostname is not None
    assert url.port is not None
    ctx = world.wire.context(world.m[cert] if cert else None)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=ctx, timeout=20)
    try:
        conn.request(
            "POST", path, body=urlencode(form), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        resp = conn.getresponse()
        raw = resp.read()
        assert conn.sock is not None
        worker = _owner(pids, _socket_inode(url.port, conn.sock.getsockname()[1]))  # still connected
        return Answer(resp.status, json.loads(raw) if raw else {}, worker)
    finally:
        conn.close()


def test_the_same_assertion_on_new_connections_succeeds_exactly_once(two_workers: World) -> None:
    world = two_workers
    pids = _workers(world)
    assert len(pids) == 2, world.server.output()
    client_id = world["pk-jwt"].client_id
    form, _ = world.credentials("pk-jwt")
    mark = world.wire.mark()
    answers: list[Answer] = []
    for _ in range(ATTEMPTS):
        answers.append(
            post(world, "/token", {"grant_type": "client_credentials", **form}, cert="binder", pids=pids)
        )
        if len({a.worker for a in answers}) == 2 and len(answers) >= 4:
            break
    accepted = [a for a in answers if a.status == 200]
    assert len(accepted) == 1, [(a.status, a.body) for a in answers]
    assert answers[0].status == 200
    assert all(a.status == 401 and a.body["error"] == "invalid_client" for a in answers[1:])
    workers = {a.worker for a in answers}
    assert None not in workers
    assert workers == pids, "new connections never reached the second worker"
    replay_workers = {a.worker for a in answers[1:]}
    assert replay_workers - {accepted[0].worker}, "no replay reached the worker that did not accept it"
    replays = world.wire.wait_events(mark, len(answers) - 1, client_id=client_id, reason="assertion.replayed")
    assert len(replays) == len(answers) - 1


def test_the_same_assertion_sent_at_once_on_many_connections_succeeds_once(two_workers: World) -> None:
    """A burst: the atomic insert, not a check-then-insert, decides between concurrent workers."""
    world = two_workers
    pids = _workers(world)
    form, _ = world.credentials("pk-jwt")
    start = threading.Barrier(8)
    answers: list[Answer] = []
    lock = threading.Lock()

    def send() -> None:
        start.wait()
        answer = post(world, "/token", {"grant_type": "client_credentials", **form}, cert="binder", pids=pids)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 8
    assert sorted(a.status for a in answers) == [200] + [401] * 7, [(a.status, a.body) for a in answers]


def test_revocation_through_one_worker_holds_on_the_other(two_workers: World) -> None:
    world = two_workers
    pids = _workers(world)
    form, _ = world.credentials("tls-dn")
    issued = post(world, "/token", {"grant_type": "client_credentials", **form}, cert="dn", pids=pids)
    assert issued.status == 200, issued.body
    token = str(issued.body["access_token"])
    revoked = post(world, "/revoke", {**form, "token": token}, cert="dn", pids=pids)
    assert revoked.status == 200
    seen: set[int | None] = set()
    for _ in range(ATTEMPTS):
        answer = post(world, "/introspect", {**form, "token": token}, cert="dn", pids=pids)
        assert answer.status == 200
        assert answer.body == {"active": False}, f"worker {answer.worker} still says active"
        seen.add(answer.worker)
        if seen == pids:
            break
    assert seen == pids, f"revoked through worker {revoked.worker}; introspected only on {seen}"
