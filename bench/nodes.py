"""Several `certbound serve` nodes on one PostgreSQL database, as real processes: the soak bench and
the multi-node tests (tests/nodes/) start them here.

Every node runs ``serve --dev`` on the same data directory and the same database: the first node
makes the development PKI, the KEK and the registration token, the others find them (start them one
after the other). All nodes get the same `issuer`, the URL clients use (a load balancer's), so a
token issued by one node is valid on every other. With `trusted_proxy`, nodes believe the nginx
forwarded-certificate headers from that address (deploy/nginx/certbound-nodes.conf.template).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = ["Node", "descendants", "free_port", "rss_bytes", "start_node", "worker_pids"]

_PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def descendants(root: int) -> list[int]:
    """`root` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def worker_pids(parent: int) -> list[int]:
    """The worker processes of a ``serve --workers N`` parent (not multiprocessing's resource tracker)."""
    out = []
    for pid in descendants(parent)[1:]:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"resource_tracker" not in cmdline and state != "Z":
            out.append(pid)
    return sorted(out)


def rss_bytes(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except OSError:
        return None


@dataclass
class Node:
    """One running ``certbound serve`` process (with its workers), its URL and log."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    data_dir: Path
    log: Path
    workers: int
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def ssl_context(self, *, cert: bool = True) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if cert:
            ctx.load_cert_chain(str(self.pki / "demo-client.crt"), str(self.pki / "demo-client.key"))
        return ctx

    def client(self, *, cert: bool = True, timeout: float = 10) -> httpx.Client:
        """An HTTP client of this node, with the demo client's certificate unless `cert` is False."""
        client = httpx.Client(base_url=self.url, verify=self.ssl_context(cert=cert), timeout=timeout)
        self.clients.append(client)
        return client

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def events(self, event: str) -> list[dict[str, Any]]:
        out = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    out.append(record)
        return out

    def worker_pids(self) -> list[int]:
        return worker_pids(self.proc.pid) if self.workers > 1 else [self.proc.pid]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the node and every one of its processes (a machine that vanished)."""
        for pid in reversed(descendants(self.proc.pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()


def start_node(
    name: str,
    data_dir: Path,
    database_url: str,
    issuer: str,
    *,
    workers: int = 1,
    port: int | None = None,
    trusted_proxy: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 90,
) -> Node:
    """Start a node and wait until every worker answers /jwks over TLS."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    proxy = ["--trusted-proxy", trusted_proxy, "--forwarded-cert-header", "nginx"] if trusted_proxy else []
    cmd = [
        sys.executable, "-m", "certbound", "serve", "--dev", "--port", str(port),
        "--data-dir", str(data_dir), "--database-url", database_url, "--issuer", issuer,
        "--workers", str(workers), *proxy, *extra_args,
    ]  # fmt: skip
    log = data_dir.parent / f"{name}-{port}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    node = Node(name, proc, port, data_dir, log, workers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node {name} exited with {proc.returncode}:\n{node.output()[-4000:]}")
        ready = node.output().count("Application startup complete")
        if (node.pki / "ca.crt").exists() and ready >= workers:
            try:
                with httpx.Client(verify=node.ssl_context(cert=False), timeout=5) as c:
                    if c.get(node.url + "/jwks").status_code == 200:
                        return node
            except (httpx.HTTPError, ssl.SSLError, OSError):
                pass
        time.sleep(0.2)
    node.stop(signal.SIGKILL)
    raise RuntimeError(f"node {name} did not serve within {timeout:.0f} s:\n{node.output()[-4000:]}")
