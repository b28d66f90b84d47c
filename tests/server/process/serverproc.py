"""Start `certbound serve` as a real process and talk to it over real TLS."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CERTBOUND = [sys.executable, "-m", "certbound"]


def stop_process(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Send `sig` and wait (20 s, then SIGKILL); the exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def log_events(
    read: Callable[[], str], event: str, where: Callable[[dict[str, Any]], bool] = bool, *, wait: float = 5
) -> list[dict[str, Any]]:
    """The JSON log events named `event` that satisfy `where` in what `read` returns, waiting up to
    `wait` seconds for a first one (a request's event is written once its response has gone out)."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for line in read().splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # the last line, still being written by the process
                    continue
                if record.get("event") == event and where(record):
                    found.append(record)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text()

    @property
    def pki(self) -> Path:
        return self.data_dir / "pki"

    def client(self, *, cert: bool = True) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if cert:
            ctx.load_cert_chain(str(self.pki / "demo-client.crt"), str(self.pki / "demo-client.key"))
        return httpx.Client(verify=ctx, timeout=10)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, sig)


def start_server(
    args: list[str], data_dir: Path, *, env: dict[str, str] | None = None, port: int | None = None
) -> RunningServer:
    """Start `certbound serve --dev` (on `port`, default a free one) and wait until /healthz answers."""
    port = port or free_port()
    cmd = [*CERTBOUND, "serve", "--dev", "--port", str(port), "--data-dir", str(data_dir), *args]
    log_path = data_dir.parent / f"server-{port}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})}
        )
    server = RunningServer(proc, f"https://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{server.output()}")
        if (data_dir / "pki" / "ca.crt").exists():
            try:
                with server.client(cert=False) as c:
                    if c.get(server.url + "/healthz").status_code == 200:
                        return server
            except (httpx.HTTPError, ssl.SSLError, OSError):
                pass
        time.sleep(0.2)
    server.stop(signal.SIGKILL)
    raise AssertionError("server did not become healthy in 60 s")
