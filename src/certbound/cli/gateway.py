"""``certbound gateway --config FILE [--check]``: the gateway in the foreground, or its settings checked.

``--check`` prints nothing and exits 0 when the file can be served (every key known and well-formed,
files readable, certificates and keys loadable), or prints one line naming the bad key and exits 1.
Serving stops on the same errors the same way, before anything listens. Nothing here contacts an
identity provider: one that is down at start is picked up when it comes back.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from certbound.gateway.config import GatewayConfigError, GatewaySettings, load_gateway_settings
from certbound.pki.pem import load_certs_file

__all__ = ["gateway", "register"]

EXIT_CONFIG = 1


def _fail(message: str) -> NoReturn:
    typer.echo(f"certbound gateway: {message}", err=True)
    raise typer.Exit(EXIT_CONFIG)


def _check_listener(settings: GatewaySettings) -> None:
    listener = settings.listener
    try:
        load_certs_file(listener.tls_cert)
    except (OSError, ValueError) as exc:
        raise GatewayConfigError(f"listener.tls_cert: {exc}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(listener.tls_cert, listener.tls_key)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise GatewayConfigError(
            f"listener.tls_key: cannot load it with listener.tls_cert: {reason}"
        ) from None


async def _compile(settings: GatewaySettings) -> None:
    from certbound.gateway.services import build_services

    await build_services(settings).aclose()


def check(config: Path) -> GatewaySettings:
    """The settings, checked as far as can be without the network; GatewayConfigError otherwise."""
    settings = load_gateway_settings(config)
    _check_listener(settings)
    asyncio.run(_compile(settings))
    return settings


def gateway(
    config: Annotated[Path, typer.Option("--config", help="The gateway's TOML file (docs/gateway.md).")],
    check_only: Annotated[
        bool, typer.Option("--check", help="Check the file: exit 0, or 1 with one line naming the bad key.")
    ] = False,
) -> None:
    """Run the gateway: validate certificate-bound tokens in front of upstream APIs (docs/gateway.md)."""
    try:
        settings = check(config)
    except GatewayConfigError as exc:
        _fail(str(exc))
    if check_only:
        return
    from certbound.gateway.run import bind_listeners, effective_tls_mode, serve
    from certbound.tls.listener import degraded_mode_message
    from certbound.tls.serving import BindError

    try:
        listeners = bind_listeners(settings)
    except BindError as exc:
        _fail(str(exc))
    if effective_tls_mode(settings) == "degraded":
        typer.echo(f"WARNING: {degraded_mode_message()}", err=True)
    listener = settings.listener
    routes = ", ".join(f"{r.name} ({' '.join(r.paths)})" for r in settings.routes)
    typer.echo(f"certbound gateway on https://{listener.host}:{listener.port} with {settings.workers} "
               f"worker(s); routes: {routes}")  # fmt: skip
    sys.exit(serve(settings, listeners))


def register(app: typer.Typer) -> None:
    """Add `certbound gateway` to the `certbound` command."""
    app.command("gateway")(gateway)
