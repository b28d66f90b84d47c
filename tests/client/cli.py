"""Run the client commands the way `certbound` will, on a typer app built here with `register`."""

from __future__ import annotations

from collections.abc import Mapping

import typer
from click.testing import Result
from typer.testing import CliRunner

from certbound.cli.client_commands import register


def make_app() -> typer.Typer:
    app = typer.Typer(name="certbound", pretty_exceptions_show_locals=False, add_completion=False)

    @app.callback()
    def main() -> None:
        """certbound (test app)."""

    register(app)
    return app


APP = make_app()


def run_cli(args: list[str], env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
    return CliRunner().invoke(APP, args, env=dict(env or {}), input=stdin, catch_exceptions=False)
