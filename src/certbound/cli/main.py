"""The `certbound` command. Errors a user can meet end in one clear line on stderr and a non-zero exit.

The server's modules are imported by the commands that use them: ``certbound gateway`` serves from this
process and must not load the store (SQLAlchemy, alembic, asyncpg) that it has no use for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlencode

import typer

from certbound.cli.client_commands import register as register_client_commands
from certbound.cli.clients import app as clients_app
from certbound.cli.explain import register as register_explain
from certbound.cli.gateway import register as register_gateway
from certbound.cli.keys import app as keys_app
from certbound.cli.pki import app as pki_app
from certbound.cli.users import app as users_app
from certbound.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from certbound.server.bootstrap import DevSetup

app = typer.Typer(
    name="certbound",
    help="OAuth 2.0 authorization server, client and gateway for mutual-TLS client authentication.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
app.add_typer(pki_app, name="pki")
register_client_commands(app)
register_explain(app)
register_gateway(app)
app.add_typer(keys_app, name="keys")
app.add_typer(clients_app, name="clients")
app.add_typer(users_app, name="users")


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line to stderr and return the Exit to raise."""
    typer.echo(f"certbound: {message}", err=True)
    return typer.Exit(code)


@app.command()
def serve(
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file.")] = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTPS port (default 8443).")] = None,
    issuer: Annotated[str | None, typer.Option(help="Issuer URL (default https://HOST:PORT).")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="Server certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="Server private key (PEM).")] = None,
    client_ca: Annotated[Path | None, typer.Option(help="CAs trusted for tls_client_auth (PEM).")] = None,
    client_cert_revocation: Annotated[
        str | None, typer.Option(help="Revocation checking: ocsp,crl (default), crl, ocsp or off.")
    ] = None,
    client_cert_revocation_soft_fail: Annotated[
        bool | None,
        typer.Option(
            "--client-cert-revocation-soft-fail",
            help="Accept, with a warning, certificates whose revocation status cannot be had.",
        ),
    ] = None,
    client_ca_crl: Annotated[
        list[str] | None,
        typer.Option(help="CRL of a client CA, a file or an http(s) URL (repeatable; client_ca_crls)."),
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory (default ./data).")] = None,
    database_url: Annotated[str | None, typer.Option(help="sqlite:///... or postgresql://...")] = None,
    wait_for_database: Annotated[
        float | None,
        typer.Option(metavar="SECONDS", help="Wait this long for an unreachable database at start."),
    ] = None,
    registration_token: Annotated[
        str | None, typer.Option(help="Initial access token; registration is closed without one.")
    ] = None,
    registration_token_file: Annotated[Path | None, typer.Option(help="File with the token.")] = None,
    clients_file: Annotated[Path | None, typer.Option(help="TOML file of declared clients.")] = None,
    mtls_port: Annotated[int | None, typer.Option(help="Second listener for mTLS endpoint aliases.")] = None,
    mtls_base_url: Annotated[
        str | None, typer.Option(help="URL of the mTLS listener as clients see it.")
    ] = None,
    kek_file: Annotated[
        Path | None, typer.Option(help="Key-encryption key file (default DATA_DIR/kek).")
    ] = None,
    signing_alg: Annotated[str | None, typer.Option(help="Signing key algorithm (default ES256).")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error (default info).")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default 1).")] = None,
    log_format: Annotated[str | None, typer.Option(help="json or console (default json).")] = None,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(help="CIDR of a proxy whose forwarded certificate header is trusted (repeatable)."),
    ] = None,
    forwarded_cert_header: Annotated[
        str | None, typer.Option(help="Header format of the trusted proxies: rfc9440, nginx or envoy-xfcc.")
    ] = None,
    forwarded_cert_intermediates: Annotated[
        Path | None, typer.Option(help="PEM bundle of intermediates added to forwarded certificates.")
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option(help="Metrics listener address (default 127.0.0.1).")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Metrics listener port (default: no listener).")
    ] = None,
    dev: Annotated[
        bool | None, typer.Option("--dev", help="Create and use a development PKI, demo client and token.")
    ] = None,
) -> None:
    """Run the authorization server in the foreground."""
    flags = {
        "host": host,
        "port": port,
        "issuer": issuer,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "client_ca": client_ca,
        "client_cert_revocation": client_cert_revocation,
        "client_cert_revocation_soft_fail": client_cert_revocation_soft_fail,
        "client_ca_crls": client_ca_crl or None,
        "data_dir": data_dir,
        "database_url": database_url,
        "wait_for_database": wait_for_database,
        "registration_token": registration_token,
        "registration_token_file": registration_token_file,
        "clients_file": clients_file,
        "mtls_port": mtls_port,
        "mtls_base_url": mtls_base_url,
        "kek_file": kek_file,
        "signing_alg": signing_alg,
        "log_level": log_level,
        "workers": workers,
        "dev": dev,
        "log_format": log_format,
        "trusted_proxies": trusted_proxy or None,
        "forwarded_cert_header": forwarded_cert_header,
        "forwarded_cert_intermediates": forwarded_cert_intermediates,
        "metrics_host": metrics_host,
        "metrics_port": metrics_port,
    }
    from certbound.observability.logs import configure_logging
    from certbound.server.bootstrap import (
        DatabaseUnavailable,
        apply_dev_defaults,
        ensure_demo_user,
        initialize,
    )
    from certbound.server.run import BindError, bind_listeners, effective_tls_mode
    from certbound.server.run import serve as run_server
    from certbound.tls.forwarded import ForwardedCertConfig
    from certbound.tls.listener import degraded_mode_message
    from certbound.tls.openssl_verify import SelfCheckResult

    try:
        settings = load_settings(flags, config)
        # before anything at start-up logs
        configure_logging(settings.log_level, settings.log_format, fast_paths=settings.fast_paths)
        dev_setup = None
        if settings.dev:
            settings, dev_setup = apply_dev_defaults(settings)
        ForwardedCertConfig.from_settings(settings)  # a bad intermediates bundle fails here, in one line
        listeners = bind_listeners(settings)
        asyncio.run(initialize(settings))
        if dev_setup is not None:
            asyncio.run(ensure_demo_user(settings, dev_setup))
    except (SettingsError, BindError, DatabaseUnavailable) as exc:
        raise fail(str(exc)) from None
    except (ValueError, OSError) as exc:  # a clients file, PKI or database problem found at start-up
        raise fail(f"start-up: {exc}") from None
    if effective_tls_mode(settings) == "degraded":
        forced = SelfCheckResult(ok=False, detail="tls_mode = degraded in the settings")
        why = None if settings.tls_mode == "auto" else forced
        typer.echo(f"WARNING: {degraded_mode_message(why)}", err=True)
    typer.echo(banner(settings, dev_setup))
    sys.exit(run_server(settings, listeners))


# Pulls one field out of a JSON answer without jq (which a fresh machine may lack).
JSON_FIELD = "python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])'"


def banner(settings: Settings, dev: DevSetup | None) -> str:
    """What to do next, printed at start: the issuer and, in dev mode, ready-to-paste commands."""
    from certbound.server.bootstrap import DEMO_CLIENT_ID

    lines = [
        f"certbound is serving {settings.issuer_url} with {settings.workers} worker(s)",
        f"  metadata: {settings.issuer_url}/.well-known/oauth-authorization-server",
    ]
    if settings.mtls_port:
        lines.append(f"  mTLS endpoint aliases: {settings.mtls_url}")
    if settings.trusted_proxies:
        lines.append(f"  client certificates forwarded ({settings.forwarded_cert_header}) by: "
                     + ", ".join(settings.trusted_proxies))  # fmt: skip
    if settings.metrics_port:
        lines.append(f"  metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics")
    if dev is not None:
        pki = dev.pki
        q = shlex.quote
        tls = (
            f"--cacert {q(str(pki.ca_cert))} --cert {q(str(pki.client_cert))} --key {q(str(pki.client_key))}"
        )
        mtls = settings.mtls_url
        lines += [
            "",
            "Development mode:",
            f"  dev CA:              {pki.ca_cert}",
            f"  demo client cert:    {pki.client_cert}  (key {pki.client_key})",
            f"  demo client_id:      {DEMO_CLIENT_ID}  (tls_client_auth by subject DN, bound tokens)",
            f"  registration token:  {dev.registration_token_file}",
            "",
            "Fetch the metadata with the demo client certificate:",
            f"  curl {tls} {settings.issuer_url}/.well-known/oauth-authorization-server",
            "",
            "Obtain a certificate-bound access token (cnf.x5t#S256) and keep it in $TOKEN:",
            f"  TOKEN=$(curl -s {tls} {mtls}/token -d grant_type=client_credentials "
            f"-d client_id={DEMO_CLIENT_ID} | {JSON_FIELD} access_token)",
            "",
            "Introspect it:",
            f"  curl -s {tls} {mtls}/introspect -d client_id={DEMO_CLIENT_ID} --data-urlencode token=$TOKEN",
            "",
            "Register a client:",
            f'  curl --cacert {q(str(pki.ca_cert))} -H "Authorization: Bearer $(cat '
            f"{q(str(dev.registration_token_file))})\" -H 'Content-Type: application/json' "
            '-d \'{"token_endpoint_auth_method":"client_secret_basic","grant_types":'
            f'["client_credentials"]}}\' {settings.issuer_url}/register',
            *_login_lines(settings, dev),
        ]
    return "\n".join(lines)


def _login_lines(settings: Settings, dev: DevSetup) -> list[str]:
    """How to try the login in a browser: the demo app's authorization URL (PKCE), alice's password,
    and the code exchange."""
    from certbound.server.bootstrap import DEMO_APP_ID, DEMO_APP_REDIRECT_URI, DEMO_USER

    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    query = urlencode({
        "response_type": "code", "client_id": DEMO_APP_ID, "redirect_uri": DEMO_APP_REDIRECT_URI,
        "scope": "openid profile email offline_access", "state": "demo", "code_challenge": challenge,
        "code_challenge_method": "S256",
    })  # fmt: skip
    password = dev.demo_password_file.read_text(encoding="utf-8").strip()
    q = shlex.quote
    return [
        "",
        f"Log in as {DEMO_USER} (password {password}, kept in {dev.demo_password_file}) in a browser "
        "(accept the dev CA, or its certificate warning):",
        f"  {settings.issuer_url}/authorize?{query}",
        f"After the consent page the browser goes to {DEMO_APP_REDIRECT_URI}?code=...: nothing listens "
        "there, copy the code from the address bar into $CODE and exchange it:",
        f"  curl -s --cacert {q(str(dev.pki.ca_cert))} {settings.issuer_url}/token "
        f"-d grant_type=authorization_code -d client_id={DEMO_APP_ID} "
        f"--data-urlencode redirect_uri={DEMO_APP_REDIRECT_URI} "
        f"-d code_verifier={verifier} -d code=$CODE",
    ]


def main() -> None:
    """Entry point of the `certbound` script."""
    app()
