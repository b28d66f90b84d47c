"""Starting the two servers as real processes (optionally pinned with taskset) and watching them.

CPU time and resident memory come from /proc, summed over the server process and its descendants
(``certbound serve --workers N`` is a parent and N spawned workers).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.material import Material, new_signing_jwk
from bench.nodes import descendants, free_port

__all__ = ["Server", "ensure_peer_modules", "start_certbound", "start_peer"]

ROOT = Path(__file__).resolve().parents[1]
PEER_DIR = ROOT / "bench" / "peer"
_STAMP = PEER_DIR / "node_modules" / ".bench-lock-sha256"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Server:
    """A running server: its name, port, process and log file."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    pinned: str | None
    notes: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        """The server process and all its descendants."""
        return descendants(self.proc.pid)

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / _TICKS

    def rss_bytes(self) -> dict[int, int]:
        """Resident memory of each process (pid -> bytes)."""
        out: dict[int, int] = {}
        for pid in self.pids():
            try:
                out[pid] = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
            except OSError:
                continue
        return out

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _pin(cpus: str | None) -> list[str]:
    if cpus is None:
        return []
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("taskset (util-linux) is needed to pin the servers; or pass --no-pin")
    return [taskset, "-c", cpus]


#: What each certbound worker logs once it serves (uvicorn's start-up line).
_WORKER_READY = b"Application startup complete"


def _wait_ready(server: Server, ca: Path, timeout: float = 60, workers: int = 1) -> None:
    """Until a TLS handshake succeeds and, with several workers, every worker serves: the first
    one up would otherwise accept every connection the generator opens at once (measured: 2 workers,
    all 16 connections on one, 1.00 core used)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited ({server.proc.returncode}):\n{server.log.read_text()}")
        try:
            with (
                socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw,
                ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                pass
        except (OSError, ssl.SSLError):
            time.sleep(0.2)
            continue
        if workers == 1 or server.log.read_bytes().count(_WORKER_READY) >= workers:
            return
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not listen within {timeout:.0f} s:\n{server.log.read_text()}")


def start_certbound(
    material: Material,
    data_dir: Path,
    *,
    workers: int = 1,
    pin: str | None = None,
    extra_args: Sequence[str] = (),
    patch: str = "",
    source: Path | None = None,
    clients_toml: str | None = None,
    python: Path | None = None,
) -> Server:
    """``certbound serve`` with the bench PKI and clients, its own SQLite store in `data_dir`.

    `patch` names experiments of `bench.experiments` to apply in the server process (one worker).
    `source` is another checkout whose ``src`` is imported instead of this one's (an A/B baseline:
    same interpreter and dependencies, other code). `python` is another interpreter (a venv's, with
    certbound's dependencies) to run it on (an A/B of interpreters: same code). `clients_toml`
    replaces the bench's clients file.
    """
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    clients = data_dir / "clients.toml"
    clients.write_text(material.certbound_clients_toml() if clients_toml is None else clients_toml)
    port = free_port()
    module = ["bench.experiments", patch, "--"] if patch else ["certbound"]
    cmd = [
        *_pin(pin), str(python or sys.executable), "-m", *module, "serve",
        "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers),
        "--tls-cert", str(material.server_cert), "--tls-key", str(material.server_key),
        "--client-ca", str(material.ca), "--clients-file", str(clients), *extra_args,
    ]  # fmt: skip
    log = data_dir / f"certbound-{port}.log"
    env = _certbound_env(source)
    interpreter = f" on {python} ({_probe_interpreter(python, env)})" if python else ""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    name = (
        f"certbound w{workers}"
        + (f" +{patch}" if patch else "")
        + (f" from {source}" if source else "")
        + interpreter
    )
    server = Server(name, port, proc, log, pin)
    _wait_ready(server, material.ca, workers=workers)
    return server


def _certbound_env(source: Path | None) -> dict[str, str]:
    """The environment of a certbound process: the code of `source`, else this checkout's, first on
    the path, whatever the interpreter has installed."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str((source or ROOT) / "src"), str(ROOT), os.environ.get("PYTHONPATH")])
        ),
    }


def _probe_interpreter(python: Path, env: dict[str, str]) -> str:
    """`python`'s version and real path, once it has imported certbound's server (RuntimeError if it
    cannot: not a Python, or without certbound's dependencies)."""
    probe = (
        "import os, sys, certbound.server.run; "
        "print(sys.version.split()[0], os.path.realpath(sys._base_executable))"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", probe], env=env, capture_output=True, text=True, errors="replace", timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeError(f"{python}: cannot run it ({exc})") from None
    if done.returncode != 0:
        raise RuntimeError(
            f"{python}: cannot import certbound's server (exit status {done.returncode}): "
            f"{done.stderr.strip()[-500:]}"
        )
    answer = done.stdout.split(maxsplit=1)
    if len(answer) != 2:
        raise RuntimeError(f"{python}: not a Python (it printed {done.stdout[:200]!r})")
    version, path = answer
    return f"Python {version}, {path.strip()}"


def ensure_peer_modules() -> Path:
    """``npm ci`` in bench/peer from its lock file, skipped when node_modules already matches it."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise RuntimeError("node and npm are needed for the peer (oidc-provider); or pass --no-peer")
    lock = hashlib.sha256((PEER_DIR / "package-lock.json").read_bytes()).hexdigest()
    if _STAMP.exists() and _STAMP.read_text().strip() == lock:
        return PEER_DIR
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=PEER_DIR, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"npm ci in {PEER_DIR} failed: {done.stderr.strip()[-2000:]}")
    _STAMP.write_text(lock + "\n")
    return PEER_DIR


def peer_version() -> str:
    manifest = PEER_DIR / "node_modules" / "oidc-provider" / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def start_peer(material: Material, work_dir: Path, *, pin: str | None = None) -> Server:
    """oidc-provider (bench/peer/server.mjs) in one Node.js process."""
    ensure_peer_modules()
    node = shutil.which("node")
    assert node is not None
    port = free_port()
    config = work_dir / f"peer-{port}.json"
    config.write_text(json.dumps(material.peer_config(port, new_signing_jwk())))
    config.chmod(0o600)
    log = work_dir / f"peer-{port}.log"
    flags = os.environ.get("BENCH_NODE_FLAGS", "").split()  # e.g. --cpu-prof, for profiling the peer
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*_pin(pin), node, *flags, str(PEER_DIR / "server.mjs"), str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=PEER_DIR,
        )  # fmt: skip
    server = Server(f"oidc-provider {peer_version()}", port, proc, log, pin)
    _wait_ready(server, material.ca)
    return server
