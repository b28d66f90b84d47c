"""Real nginx for the tests: the shipped template rendered into a temporary prefix, run in the foreground.

nginx is a child process (``daemon off``) with its pid file, error log and temp directories inside a
temporary directory, on a free port, so the tests need neither root nor the system's nginx setup.
Without nginx the tests skip, except under CI (``CI`` set), where they fail: there nginx must exist
(``.ci/run`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "deploy" / "nginx" / "certbound.conf.template"
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)\}")


def find_nginx() -> str:
    """The nginx binary; skips the test when absent (outside CI), fails it under CI."""
    found = shutil.which("nginx") or next(
        (
            p
            for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx")
            if os.access(p, os.X_OK)
        ),
        None,
    )
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail(
            "nginx is not installed, and CI is set: .ci/run must install it (apt-get install nginx-light)"
        )
    pytest.skip("nginx not found (apt-get install nginx-light); these tests run it for real")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def render_template(values: Mapping[str, str], template: Path = TEMPLATE) -> str:
    """The template with its ``${NAME}`` placeholders filled (as envsubst would); all must be given."""
    text = template.read_text()
    missing = sorted(set(_PLACEHOLDER.findall(text)) - set(values))
    if missing:
        raise KeyError(f"template placeholders without a value: {missing}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


def main_config(prefix: Path, server_conf: Path) -> str:
    """A minimal nginx.conf around one server file, everything writable inside `prefix`."""
    temp = "\n".join(
        f"    {name}_temp_path {prefix / name};"
        for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} info;
events {{ worker_connections 256; }}
http {{
    access_log {prefix / "access.log"};
{temp}
    include {server_conf};
}}
"""


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    prefix: Path
    port: int

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def error_log(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text() if path.exists() else ""


@contextmanager
def run_nginx(prefix: Path, server_conf_text: str, port: int) -> Iterator[Nginx]:
    """Start nginx with `server_conf_text` (listening on `port`) and stop it afterwards."""
    binary = find_nginx()
    prefix.mkdir(parents=True, exist_ok=True)
    server_conf = prefix / "certbound.conf"
    server_conf.write_text(server_conf_text)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, server_conf))
    out = (prefix / "stderr.log").open("wb")
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    nginx = Nginx(proc, prefix, port)
    try:
        _wait_listening(nginx)
        yield nginx
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        out.close()


def _wait_listening(nginx: Nginx) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if nginx.proc.poll() is not None:
            output = (nginx.prefix / "stderr.log").read_text()
            raise AssertionError(f"nginx exited with {nginx.proc.returncode}:\n{output}\n{nginx.error_log()}")
        try:
            with socket.create_connection(("127.0.0.1", nginx.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx did not listen on {nginx.port}:\n{nginx.error_log()}")


def client_context(ca_file: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    """A TLS client context that verifies the server against `ca_file` and presents `cert`."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key) if key else None)
    return ctx
