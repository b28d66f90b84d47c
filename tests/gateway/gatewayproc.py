"""Start `certbound gateway --config FILE` as a real process and talk to it over real TLS."""

from __future__ import annotations

import signal
import ssl
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tomli_w

from tests.server.process.serverproc import CERTBOUND, free_port, log_events, stop_process

Event = dict[str, Any]


@dataclass
class RunningGateway:
    proc: subprocess.Popen[str]
    url: str
    ca_file: Path
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text()

    def client(self, cert: Any = None, **transport: Any) -> httpx.Client:
        """An HTTPS client trusting the gateway, presenting `cert` (CertFiles) when given."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if cert is not None:
            ctx.load_cert_chain(str(cert.cert_file), str(cert.key_file))
        return httpx.Client(transport=httpx.HTTPTransport(verify=ctx, **transport), timeout=30)

    def events(self, where: Callable[[Event], bool] = bool, *, event: str = "gateway_request") -> list[Event]:
        """The gateway's log events named `event` that satisfy `where`, waiting a little for one."""
        return log_events(self.output, event, where)

    def event_for(self, marker: str) -> Event:
        """The last gateway_request event of a request whose path contains `marker`."""
        found = self.events(lambda e: marker in str(e.get("path")))
        assert found, f"no gateway_request event for {marker!r}:\n{self.output()[-3000:]}"
        return found[-1]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, sig)


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(config))
    return path


def start_gateway(
    config: dict[str, Any], workdir: Path, *, ca_file: Path, command: Sequence[str] = CERTBOUND
) -> RunningGateway:
    """Write `config` (its [listener] port chosen here unless given) and start the gateway; returns
    once /healthz answers. `ca_file` is the CA of the listener's certificate; `command` what stands
    for ``certbound``."""
    workdir.mkdir(parents=True, exist_ok=True)
    listener = config.setdefault("listener", {})
    listener.setdefault("port", free_port())
    config_file = write_config(workdir / "gateway.toml", config)
    log_path = workdir / f"gateway-{listener['port']}.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [*command, "gateway", "--config", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    gateway = RunningGateway(proc, f"https://127.0.0.1:{listener['port']}", ca_file, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gateway exited with {proc.returncode}:\n{gateway.output()}")
        try:
            with gateway.client() as c:
                if c.get(gateway.url + "/healthz").status_code == 200:
                    return gateway
        except (httpx.HTTPError, ssl.SSLError, OSError):
            pass
        time.sleep(0.1)
    gateway.stop(signal.SIGKILL)
    raise AssertionError(f"gateway did not become healthy in 60 s:\n{gateway.output()}")
