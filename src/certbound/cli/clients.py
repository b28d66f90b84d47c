"""`certbound clients`: what the server knows about its clients' certificates.

``certbound clients expiring --within 30d [--json]`` lists the client certificates that expire within
the window (already expired ones included): the ones registered (self-signed certificates in a
client's ``jwks``) and the ones clients presented to ``tls_client_auth`` lately (``--seen-within``,
default 7d). It reads the server's store as ``certbound serve`` is configured (``--config``,
``--data-dir``, ``--database-url``, ``CERTBOUND_*``) and changes nothing. Exit status 0, or 2 with one
line on stderr when the settings or the store cannot be read.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from certbound.config import Settings, SettingsError, load_settings

__all__ = ["app", "parse_duration"]

app = typer.Typer(
    help="Clients: their certificates and when they expire.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+)([smhdw]?)")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w``, ``90m``, ``45s``; a bare number is days. ValueError otherwise."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h or 2w")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "d"])


def _fail(message: str) -> NoReturn:
    typer.echo(f"certbound clients: {message}", err=True)
    raise typer.Exit(2)


def _duration(text: str, option: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        _fail(f"{option}: {exc}")


def _settings(config: Path | None, data_dir: Path | None, database_url: str | None) -> Settings:
    try:
        return load_settings({"data_dir": data_dir, "database_url": database_url}, config, serving=False)
    except SettingsError as exc:
        _fail(str(exc))


async def _expiring(settings: Settings, within: timedelta, seen_within: timedelta) -> list[dict[str, Any]]:
    from certbound.server.clientcerts import client_certificates, expiring_within
    from certbound.store.cert_status import CertStatusStore
    from certbound.store.sql import open_store

    url = settings.effective_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise ValueError(f"no database at {url.removeprefix('sqlite:///')}: give the server's --data-dir")
    store = open_store(url)
    try:
        now = datetime.now(UTC)
        every = await client_certificates(
            store, CertStatusStore(store.engine), now=now, seen_within=seen_within
        )
        return [
            {
                "client_id": c.client_id,
                "x5t_s256": c.x5t_s256,
                "subject": c.subject,
                "issuer": c.issuer,
                "not_after": c.not_after.isoformat(),
                "expires_in_seconds": int(c.seconds_left(now)),
                "source": c.source,
                "last_seen": c.last_seen.isoformat() if c.last_seen is not None else None,
            }
            for c in expiring_within(every, within, now)
        ]
    finally:
        await store.close()


def _when(seconds: int) -> str:
    if seconds <= 0:
        return f"EXPIRED {(-seconds) // 86400}d ago"
    days, rest = divmod(seconds, 86400)
    return f"in {days}d {rest // 3600}h"


@app.command()
def expiring(
    within: Annotated[str, typer.Option("--within", help="Window, e.g. 30d, 12h, 2w.")] = "30d",
    seen_within: Annotated[
        str,
        typer.Option("--seen-within", help="Count certificates presented to tls_client_auth this recently."),
    ] = "7d",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file (as for serve).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default ./data).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="sqlite:///... or postgresql://...")
    ] = None,
) -> None:
    """List the client certificates (registered, and presented lately) that expire within the window."""
    window, seen = _duration(within, "--within"), _duration(seen_within, "--seen-within")
    settings = _settings(config, data_dir, database_url)
    try:
        rows = asyncio.run(_expiring(settings, window, seen))
    except Exception as exc:  # an unreachable or unmigrated database: one line, no traceback
        _fail(f"cannot read the clients: {type(exc).__name__}: {exc}")
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        typer.echo(f"no client certificate expires within {within}")
        return
    for row in rows:
        last = f", last seen {row['last_seen']}" if row["last_seen"] else ""
        typer.echo(
            f"{row['client_id']}: {row['subject']} expires {row['not_after']} "
            f"({_when(row['expires_in_seconds'])}; {row['source']}{last})"
        )
        typer.echo(f"    x5t#S256 {row['x5t_s256']}, issuer {row['issuer']}")
