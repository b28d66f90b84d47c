"""The ``certbound explain`` command: options, the two modes, exit status (0 accepted, 1 refused,
2 usage error), and never a traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from certbound.cli.explain.explanation import Explanation, explain_event
from certbound.cli.explain.log_events import read_events
from certbound.cli.explain.render import lines
from certbound.cli.explain.usage import UsageError
from certbound.server.clientauth.types import Endpoint

__all__ = ["ENDPOINTS", "explain", "register"]

ENDPOINTS: tuple[Endpoint, ...] = ("token", "introspection", "revocation")


def _fail(message: str) -> NoReturn:
    typer.echo(f"certbound explain: {message}", err=True)
    raise typer.Exit(2)


def explain(
    event: Annotated[
        str | None,
        typer.Option(
            "--event", help="A file with client_auth log events (JSON or console lines); - for stdin."
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="Check this client against a certificate instead.")
    ] = None,
    cert: Annotated[
        Path | None, typer.Option("--cert", help="The client certificate (PEM, chain may follow, or DER).")
    ] = None,
    chain: Annotated[
        Path | None, typer.Option("--chain", help="Intermediate certificates sent with it (PEM).")
    ] = None,
    endpoint: Annotated[
        str, typer.Option("--endpoint", help="token, introspection or revocation.")
    ] = "token",
    config: Annotated[Path | None, typer.Option("--config", help="The server's TOML settings file.")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="The server's data directory.")] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="sqlite:///... or postgresql://...")
    ] = None,
    client_ca: Annotated[
        Path | None, typer.Option("--client-ca", help="CAs trusted for tls_client_auth (PEM).")
    ] = None,
    dev: Annotated[
        bool, typer.Option("--dev", help="Like serve --dev: trust the dev CA of the data directory.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per explained decision.")] = False,
) -> None:
    """Say in plain words why a client was (or would be) refused: from a client_auth log event, or by
    running the server's own check on a client_id and a certificate. Exit 0 accepted, 1 refused, 2 usage."""
    try:
        if (event is None) == (client_id is None):
            raise UsageError("give either --event FILE|- or --client-id ID (with --cert FILE)")
        if event is not None:
            if cert is not None or chain is not None:
                raise UsageError("--cert and --chain go with --client-id, not with --event")
            explanations = [explain_event(e) for e in read_events(event)]
        else:
            assert client_id is not None
            explanations = [
                _explain_client(
                    client_id, cert, chain, endpoint, config, data_dir, database_url, client_ca, dev
                )
            ]
    except UsageError as exc:
        _fail(str(exc))
    except typer.Exit:
        raise
    except Exception as exc:  # never a traceback
        _fail(f"unexpected error: {type(exc).__name__}: {exc}")
    for line in lines(explanations, as_json):
        typer.echo(line)
    raise typer.Exit(0 if all(e.accepted for e in explanations) else 1)


def _explain_client(
    client_id: str,
    cert: Path | None,
    chain: Path | None,
    endpoint: str,
    config: Path | None,
    data_dir: Path | None,
    database_url: str | None,
    client_ca: Path | None,
    dev: bool,
) -> Explanation:
    from certbound.cli.explain.explanation import explain_decision
    from certbound.cli.explain.live_check import load_presented, load_settings, run_check

    if endpoint not in ENDPOINTS:
        raise UsageError(f"--endpoint: {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    which: Endpoint = ENDPOINTS[ENDPOINTS.index(endpoint)]
    if chain is not None and cert is None:
        raise UsageError("--chain needs --cert")
    certificate = load_presented(cert, chain) if cert is not None else None
    flags = {"data_dir": data_dir, "database_url": database_url, "client_ca": client_ca, "dev": dev or None}
    settings = load_settings(flags, config)
    checked = asyncio.run(run_check(settings, client_id, which, certificate))
    return explain_decision(checked.decision, checked.facts)


def register(app: typer.Typer) -> None:
    """Add `certbound explain` to the `certbound` command."""
    app.command("explain")(explain)


if __name__ == "__main__":  # pragma: no cover - for trying it without the CLI wiring
    standalone = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
    register(standalone)
    standalone(sys.argv[1:])
