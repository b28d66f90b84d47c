"""`certbound token`, `introspect`, `revoke` and `doctor`: the outbound client as commands.

Standard output carries the result only: with ``--json`` exactly the server's JSON body, otherwise
``name: value`` lines. Logs, warnings and errors go to standard error. A failure is one or two lines
on stderr and a non-zero exit, never a traceback (which could show a secret):

  0 success (an introspection answering ``active: false`` included)
  1 the server refused (an OAuth error), or a doctor check failed
  2 bad usage or configuration (missing secret, unreadable key, contradictory options)
  3 TLS failure (the server's certificate did not verify, or the server rejected ours)
  4 network failure, timeout, no usable metadata, or an answer that is not OAuth
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from certbound.cli.doctor import DoctorOptions, DoctorReport, run_doctor
from certbound.cli.option_groups import with_option_groups
from certbound.client.config import METHODS, ClientConfig, TLSIdentity
from certbound.client.errors import (
    ClientConfigError,
    ClientError,
    OAuthServerError,
    TLSError,
)
from certbound.client.responses import IntrospectionResponse, TokenResponse
from certbound.client.sync import OAuthClient

__all__ = ["register"]

SECRET_ENV = "CERTBOUND_CLIENT_SECRET"  # noqa: S105 - the name of a variable, not a secret

EXIT_OAUTH = 1
EXIT_USAGE = 2
EXIT_TLS = 3
EXIT_NETWORK = 4

IssuerOpt = Annotated[str, typer.Option("--issuer", help="Issuer URL of the authorization server.")]
ClientIdOpt = Annotated[str, typer.Option("--client-id", help="The client_id.")]
AuthOpt = Annotated[str, typer.Option("--auth", help=f"Authentication method: {', '.join(METHODS)}.")]
CertOpt = Annotated[
    Path | None, typer.Option("--cert", help="Client certificate (PEM); works with any method.")
]
KeyOpt = Annotated[Path | None, typer.Option("--key", help="Private key of --cert (PEM).")]
SecretOpt = Annotated[
    str | None, typer.Option("--secret", help=f"Client secret (also {SECRET_ENV}).", show_default=False)
]
SecretFileOpt = Annotated[Path | None, typer.Option("--secret-file", help="File holding the client secret.")]
JwkOpt = Annotated[Path | None, typer.Option("--jwk", help="Private JWK (JSON file) for private_key_jwt.")]
CaOpt = Annotated[Path | None, typer.Option("--ca", help="Trust only these CAs for the server (PEM).")]
InsecureOpt = Annotated[
    bool, typer.Option("--insecure", help="Do not verify the server's certificate (logs a warning).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly the server's JSON response.")]
AudOpt = Annotated[str, typer.Option("--assertion-aud", help="aud of client assertions: issuer or endpoint.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the server.")]
MtlsTokenOpt = Annotated[
    str | None, typer.Option("--mtls-token-endpoint", help="Override the token endpoint.")
]
MtlsIntroOpt = Annotated[
    str | None, typer.Option("--mtls-introspection-endpoint", help="Override the introspection endpoint.")
]
MtlsRevokeOpt = Annotated[
    str | None, typer.Option("--mtls-revocation-endpoint", help="Override the revocation endpoint.")
]
TokenArg = Annotated[str, typer.Argument(metavar="TOKEN", help="The token, or - to read it from stdin.")]
HintOpt = Annotated[str | None, typer.Option("--token-type-hint", help="access_token or refresh_token.")]


@dataclass(frozen=True)
class _Common:
    """The options of `token`, `introspect` and `revoke`: the client, its credentials, the server's trust."""

    issuer: IssuerOpt
    client_id: ClientIdOpt
    auth: AuthOpt
    cert: CertOpt = None
    key: KeyOpt = None
    secret: SecretOpt = None
    secret_file: SecretFileOpt = None
    jwk: JwkOpt = None
    ca: CaOpt = None
    insecure: InsecureOpt = False
    json_out: JsonOpt = False
    assertion_aud: AudOpt = "issuer"
    timeout: TimeoutOpt = 10.0


@dataclass(frozen=True)
class _Overrides:
    """The one ``--mtls-*-endpoint`` a command takes (each command calls one endpoint)."""

    token: str | None = None
    introspection: str | None = None
    revocation: str | None = None


class _Failure(Exception):
    """A failure the command reports as lines on stderr and an exit status."""

    def __init__(self, code: int, *lines: str) -> None:
        super().__init__(lines[0] if lines else "")
        self.code = code
        self.lines = lines


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(f"certbound: {record.levelname.lower()}: {record.getMessage()}", err=True)


@contextlib.contextmanager
def _logs_to_stderr() -> Iterator[None]:
    """Warnings of the client (e.g. insecure connections) on stderr, for this command only."""
    logger = logging.getLogger("certbound.client")
    handler = _StderrHandler(logging.WARNING)
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.propagate = old_propagate


def _read_secret(opts: _Common) -> str | None:
    if opts.secret is not None and opts.secret_file is not None:
        raise _Failure(EXIT_USAGE, "give --secret or --secret-file, not both")
    if opts.secret is not None:
        return opts.secret
    if opts.secret_file is not None:
        try:
            return opts.secret_file.read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise _Failure(EXIT_USAGE, f"--secret-file {opts.secret_file}: {exc.strerror or exc}") from None
    return os.environ.get(SECRET_ENV) or None


def _read_jwk(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _Failure(EXIT_USAGE, f"--jwk {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise _Failure(EXIT_USAGE, f"--jwk {path}: not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
        data = data["keys"][0]  # a JWKS holding one key is accepted too
    if not isinstance(data, dict):
        raise _Failure(EXIT_USAGE, f"--jwk {path}: not a JWK object")
    return data


def _check_pairs(cert: Path | None, key: Path | None, ca: Path | None, insecure: bool) -> None:
    """The option pairs every command refuses: half a certificate, and a CA with --insecure."""
    if (cert is None) != (key is None):
        raise _Failure(EXIT_USAGE, "--cert and --key go together")
    if ca is not None and insecure:
        raise _Failure(EXIT_USAGE, "give --ca or --insecure, not both")


def _config(opts: _Common, overrides: _Overrides) -> ClientConfig:
    _check_pairs(opts.cert, opts.key, opts.ca, opts.insecure)
    if opts.assertion_aud not in ("issuer", "endpoint"):
        raise _Failure(EXIT_USAGE, "--assertion-aud must be issuer or endpoint")
    secret = _read_secret(opts)
    jwk = _read_jwk(opts.jwk) if opts.jwk is not None else None
    if opts.auth == "client_secret_jwt" and jwk is not None and secret is None:
        raise _Failure(EXIT_USAGE, "client_secret_jwt signs with the client secret, not --jwk")
    identities = [TLSIdentity(opts.cert, opts.key)] if opts.cert and opts.key else []
    try:
        return ClientConfig(
            issuer=opts.issuer,
            client_id=opts.client_id,
            auth_method=opts.auth,
            client_secret=secret
            if opts.auth in ("client_secret_basic", "client_secret_post", "client_secret_jwt")
            else None,
            jwk=jwk,
            identities=identities,
            ca_file=opts.ca,
            verify=not opts.insecure,
            assertion_audience="endpoint" if opts.assertion_aud == "endpoint" else "issuer",
            timeout=opts.timeout,
            mtls_token_endpoint=overrides.token,
            mtls_introspection_endpoint=overrides.introspection,
            mtls_revocation_endpoint=overrides.revocation,
        )
    except ClientConfigError as exc:
        raise _Failure(EXIT_USAGE, str(exc)) from None


def _describe_failure(exc: ClientError, config: ClientConfig | None) -> _Failure:
    if isinstance(exc, ClientConfigError):
        return _Failure(EXIT_USAGE, str(exc))
    if isinstance(exc, OAuthServerError):
        lines = [f"{exc.error}: {exc.description}" if exc.description else exc.error]
        lines[0] += f" (HTTP {exc.status} from {exc.url})"
        if exc.error == "invalid_client" and config is not None and config.identities:
            lines.append(
                "hint: is this certificate registered for the client? `certbound doctor` checks each step"
            )
        return _Failure(EXIT_OAUTH, *lines)
    if isinstance(exc, TLSError):
        lines = [f"TLS: {exc} ({exc.url})"]
        if exc.side == "client":
            lines.append("hint: pass --ca with the CA that issued the server's certificate (or --insecure)")
        elif exc.side == "server" and config is not None and config.identities:
            lines.append("hint: the server does not accept this certificate; is it issued by a CA it trusts?")
        return _Failure(EXIT_TLS, *lines)
    url = getattr(exc, "url", None)
    return _Failure(EXIT_NETWORK, f"{exc}" + (f" ({url})" if url else ""))


def _fail(command: str, failure: _Failure) -> NoReturn:
    for line in failure.lines:
        typer.echo(f"certbound {command}: {line}", err=True)
    raise typer.Exit(failure.code)


def _run(
    command: str, opts: _Common, overrides: _Overrides, call: Callable[[OAuthClient], str | None]
) -> None:
    """Build the client, run `call`, print what it returns; every failure becomes lines on stderr."""
    config: ClientConfig | None = None
    with _logs_to_stderr():
        try:
            config = _config(opts, overrides)
            with OAuthClient(config) as client:
                out = call(client)
        except _Failure as failure:
            _fail(command, failure)
        except ClientError as exc:
            _fail(command, _describe_failure(exc, config))
    if out:
        typer.echo(out)


def _token_argument(value: str) -> str:
    """TOKEN as given, or read from standard input when it is ``-`` (so it stays out of `ps`)."""
    if value != "-":
        return value
    text = sys.stdin.readline().strip()
    if not text:
        raise _Failure(EXIT_USAGE, "TOKEN is '-' but standard input is empty")
    return text


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _lines(data: dict[str, Any] | Any) -> list[str]:
    return [f"{name}: {_value(value)}" for name, value in dict(data).items()]


def _binding_line(bound: str | None, client: OAuthClient) -> str | None:
    identity = client.current_identity()
    if bound is None:
        return None
    if identity is None:
        return f"bound to certificate: {bound}"
    verdict = "the certificate presented" if bound == identity.thumbprint else "ANOTHER certificate"
    return f"bound to certificate: {bound} ({verdict})"


def _token_text(token: TokenResponse, client: OAuthClient) -> str:
    lines = _lines(token.data)
    binding = _binding_line(token.cnf_x5t_s256, client)
    if binding:
        lines.append(binding)
    elif client.current_identity() is not None and token.claims() is None:
        lines.append("certificate presented; the token is opaque: `certbound introspect` shows its cnf")
    return "\n".join(lines)


def _introspection_text(result: IntrospectionResponse, client: OAuthClient) -> str:
    lines = _lines(result.data)
    binding = _binding_line(result.cnf_x5t_s256, client)
    if binding:
        lines.append(binding)
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add `token`, `introspect`, `revoke` and `doctor` to the `certbound` app."""

    @app.command()
    @with_option_groups
    def token(
        opts: _Common,
        scope: Annotated[str | None, typer.Option("--scope", help="Requested scope.")] = None,
        resource: Annotated[
            list[str] | None, typer.Option("--resource", help="Resource indicator, RFC 8707 (repeatable).")
        ] = None,
        mtls_token_endpoint: MtlsTokenOpt = None,
    ) -> None:
        """Obtain an access token with the client_credentials grant."""

        def call(client: OAuthClient) -> str:
            result = client.client_credentials(scope=scope, resource=resource or None, use_cache=False)
            return result.raw if opts.json_out else _token_text(result, client)

        _run("token", opts, _Overrides(token=mtls_token_endpoint), call)

    @app.command()
    @with_option_groups
    def introspect(
        token_value: TokenArg,
        opts: _Common,
        token_type_hint: HintOpt = None,
        mtls_introspection_endpoint: MtlsIntroOpt = None,
    ) -> None:
        """Ask the server whether a token is active (RFC 7662); active: false is a success."""

        def call(client: OAuthClient) -> str:
            result = client.introspect(_token_argument(token_value), token_type_hint=token_type_hint)
            return result.raw if opts.json_out else _introspection_text(result, client)

        _run("introspect", opts, _Overrides(introspection=mtls_introspection_endpoint), call)

    @app.command()
    @with_option_groups
    def revoke(
        token_value: TokenArg,
        opts: _Common,
        token_type_hint: HintOpt = None,
        mtls_revocation_endpoint: MtlsRevokeOpt = None,
    ) -> None:
        """Revoke a token (RFC 7009). The server answers the same for a token it did not know."""

        def call(client: OAuthClient) -> str | None:
            result = client.revoke(_token_argument(token_value), token_type_hint=token_type_hint)
            if opts.json_out:
                return result.raw.strip() or None  # RFC 7009 bodies are usually empty: print nothing
            return f"revoked (HTTP {result.status}; RFC 7009 servers answer the same for unknown tokens)"

        _run("revoke", opts, _Overrides(revocation=mtls_revocation_endpoint), call)

    @app.command()
    def doctor(
        issuer: IssuerOpt,
        cert: CertOpt = None,
        key: KeyOpt = None,
        client_id: Annotated[
            str | None, typer.Option("--client-id", help="Try a client_credentials request as this client.")
        ] = None,
        ca: CaOpt = None,
        insecure: InsecureOpt = False,
        timeout: TimeoutOpt = 10.0,
    ) -> None:
        """Check an mTLS set-up end to end and name the step that fails."""
        try:
            _check_pairs(cert, key, ca, insecure)
        except _Failure as failure:
            _fail("doctor", failure)
        options = DoctorOptions(issuer, cert, key, client_id, ca, not insecure, timeout)
        with _logs_to_stderr():
            try:
                report = asyncio.run(run_doctor(options))
            except ClientError as exc:
                _fail("doctor", _describe_failure(exc, None))
        typer.echo(_doctor_text(report))
        for problem in report.problems:
            typer.echo(f"certbound doctor: {problem}", err=True)
        if not report.ok:
            raise typer.Exit(EXIT_OAUTH)


_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def _doctor_text(report: DoctorReport) -> str:
    lines = [f"certbound doctor: {report.issuer}"]
    for step in report.steps:
        lines.append(f"  {_MARKS[step.status]}  {step.name + ':':<21} {step.summary}")
        lines += [f"{'':<30}{detail}" for detail in step.details]
    failed = sum(step.status == "fail" for step in report.steps)
    lines.append("all checks passed" if failed == 0 else f"{failed} check(s) failed")
    return "\n".join(lines)
