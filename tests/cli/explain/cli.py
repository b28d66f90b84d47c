"""Running `certbound explain` in-process (CliRunner), and the clients file of the test server data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w
import typer
from typer.testing import CliRunner, Result

from certbound.cli.explain import register
from tests.server.wire.material import Material

SECRET = "s3cret:with+special/chars%"


def cli() -> typer.Typer:
    """`certbound` with only the explain command (the real CLI registers it the same way)."""
    app = typer.Typer(pretty_exceptions_show_locals=False, add_completion=False)

    @app.callback()
    def main() -> None:
        """certbound (test copy)."""

    register(app)
    return app


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli(), ["explain", *args], input=stdin)


def clients_toml(clients: Mapping[str, Mapping[str, Any]]) -> str:
    return tomli_w.dumps({"client": [{"client_id": cid, **md} for cid, md in clients.items()]})


@dataclass(frozen=True)
class Server:
    data_dir: Path
    m: Material

    def args(self, client_id: str, cert: str | None = None, *extra: str) -> list[str]:
        out = ["--client-id", client_id, "--data-dir", str(self.data_dir), "--dev"]
        if cert is not None:
            out += ["--cert", str(self.m[cert].cert_file)]
        return [*out, *extra]
