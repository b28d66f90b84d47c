"""`certbound pki`: a development CA, certificate issuance, revocation (CRLs) and inspection.

Every error a user can meet (missing file, bad DN, bad IP, existing output) ends in one line on
stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypedDict, TypeVar, cast

import typer
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.cli.option_groups import with_option_groups
from certbound.pki.describe import describe_cert
from certbound.pki.devpki import DEFAULT_HOSTS, ensure_dev_pki
from certbound.pki.issue import issue_client_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.keys import KEY_KINDS, KeyKind, PrivateKey, new_private_key
from certbound.pki.pem import (
    cert_to_pem,
    key_to_pem,
    load_cert_file,
    load_certs_file,
    load_key_file,
    write_private,
    write_public,
)
from certbound.pki.revocation.build import build_crl
from certbound.pki.revocation.ledger import REASONS, RevocationLedger, ledger_path

app = typer.Typer(
    help="Development PKI: a local CA, server and client certificates, revocation (CRLs) and inspection.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

DnsOpt = Annotated[list[str] | None, typer.Option("--dns", help="DNS SAN (repeatable).")]
UriOpt = Annotated[list[str] | None, typer.Option("--uri", help="URI SAN (repeatable).")]
IpOpt = Annotated[list[str] | None, typer.Option("--ip", help="IP address SAN (repeatable).")]
EmailOpt = Annotated[list[str] | None, typer.Option("--email", help="rfc822Name (email) SAN (repeatable).")]
DaysOpt = Annotated[int, typer.Option("--days", min=1, help="Validity in days.")]
KeyTypeOpt = Annotated[str, typer.Option("--key-type", help=f"Key type: {', '.join(KEY_KINDS)}.")]
SubjectOpt = Annotated[
    str, typer.Option("--subject", help="Subject DN, RFC 4514 (e.g. 'CN=my-client,O=Org').")
]
OutOpt = Annotated[Path, typer.Option("--out", help="Output prefix: writes PREFIX.crt and PREFIX.key.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing output files.")]

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2."""
    typer.echo(f"certbound pki: {message}", err=True)
    raise typer.Exit(2)


class _Profile(TypedDict):
    """The keyword arguments `issue_client_cert` and `self_signed_client_cert` share."""

    dns: list[str]
    uris: list[str]
    ips: list[str]
    emails: list[str]
    key: PrivateKey
    days: int


@dataclass(frozen=True)
class _NewCert:
    """The options of every command that makes a client certificate."""

    dns: DnsOpt = None
    uri: UriOpt = None
    ip: IpOpt = None
    email: EmailOpt = None
    days: DaysOpt = 365
    key_type: KeyTypeOpt = "ec-p256"
    force: ForceOpt = False

    def key_kind(self) -> KeyKind:
        if self.key_type not in KEY_KINDS:
            _fail(f"unknown key type {self.key_type!r}; choose one of {', '.join(KEY_KINDS)}")
        return cast(KeyKind, self.key_type)

    def outputs(self, prefix: Path, suffixes: tuple[str, ...]) -> list[Path]:
        """PREFIX + each suffix; refused when one exists, unless --force."""
        paths = [prefix.with_name(prefix.name + suffix) for suffix in suffixes]
        if not self.force:
            existing = [str(p) for p in paths if p.exists()]
            if existing:
                verb = "exists" if len(existing) == 1 else "exist"
                _fail(f"{', '.join(existing)} already {verb} (use --force to overwrite)")
        return paths

    def profile(self, kind: KeyKind) -> _Profile:
        """The SANs, a new key of `kind` and the validity, as the issuing functions take them."""
        return _Profile(
            dns=self.dns or [],
            uris=self.uri or [],
            ips=self.ip or [],
            emails=self.email or [],
            key=new_private_key(kind),
            days=self.days,
        )


def _read(path: Path, load: Callable[[Path], T]) -> T:
    """`load(path)`, with any error as one line naming the file."""
    try:
        return load(path)
    except FileNotFoundError:
        _fail(f"{path}: no such file")
    except (OSError, ValueError) as exc:
        _fail(str(exc) if str(path) in str(exc) else f"{path}: {exc}")


@app.command()
def init(
    directory: Annotated[Path, typer.Option("--dir", help="Where to keep the dev PKI.")] = Path("data/pki"),
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Server certificate host or IP (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Recreate everything, the CA included.")] = False,
) -> None:
    """Create (only what is missing) a dev CA, a server certificate and a demo client certificate."""
    hosts = tuple(host) if host else DEFAULT_HOSTS
    try:
        pki = ensure_dev_pki(directory, hosts=hosts, force=force)
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    made = ", ".join(pki.created) if pki.created else "nothing (all files were present and valid)"
    typer.echo(f"created: {made}")
    typer.echo(f"CA certificate:      {pki.ca_cert}")
    typer.echo(f"CA key:              {pki.ca_key}")
    typer.echo(f"server certificate:  {pki.server_cert}  (hosts: {', '.join(hosts)})")
    typer.echo(f"server key:          {pki.server_key}")
    typer.echo(f"client certificate:  {pki.client_cert}")
    typer.echo(f"client key:          {pki.client_key}")
    typer.echo(f"client JWK (x5c):    {pki.client_jwk}")


def _http_urls(urls: list[str] | None, option: str) -> list[str]:
    for url in urls or []:
        if not url.lower().startswith(("http://", "https://")):
            _fail(f"{option} {url!r}: give an http:// or https:// URL (RFC 5280 and RFC 6960 use http)")
    return list(urls or [])


@app.command()
@with_option_groups
def issue(
    ca_cert: Annotated[Path, typer.Option("--ca-cert", help="Issuing CA certificate (PEM or DER).")],
    ca_key: Annotated[Path, typer.Option("--ca-key", help="Issuing CA private key.")],
    subject: SubjectOpt,
    out: OutOpt,
    new: _NewCert,
    crl_url: Annotated[
        list[str] | None,
        typer.Option("--crl-url", help="CRL distribution point to put in the certificate (repeatable)."),
    ] = None,
    ocsp_url: Annotated[
        list[str] | None,
        typer.Option(
            "--ocsp-url", help="OCSP responder to put in its Authority Information Access (repeatable)."
        ),
    ] = None,
) -> None:
    """Issue a client certificate (EKU clientAuth) signed by a CA: writes PREFIX.crt and PREFIX.key."""
    kind = new.key_kind()
    crl_urls, ocsp_urls = _http_urls(crl_url, "--crl-url"), _http_urls(ocsp_url, "--ocsp-url")
    crt_path, key_path = new.outputs(out, (".crt", ".key"))
    ca = _read(ca_cert, load_cert_file)
    signing_key = _read(ca_key, load_key_file)
    try:
        cert, key = issue_client_cert(
            ca, signing_key, subject, **new.profile(kind), crl_urls=crl_urls, ocsp_urls=ocsp_urls
        )
        write_private(key_path, key_to_pem(key))
        write_public(crt_path, cert_to_pem(cert))
    except (OSError, ValueError, TypeError) as exc:
        _fail(str(exc))
    typer.echo(f"certificate: {crt_path}")
    typer.echo(f"private key: {key_path}")


@app.command("self-signed")
@with_option_groups
def self_signed(
    subject: SubjectOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Output prefix: PREFIX.crt, PREFIX.key, PREFIX.jwk.json, PREFIX.private.jwk.json."
        ),
    ],
    new: _NewCert,
) -> None:
    """A self-signed client certificate (self_signed_tls_client_auth) with its public and private JWK."""
    kind = new.key_kind()
    crt_path, key_path, jwk_path, private_jwk_path = new.outputs(
        out, (".crt", ".key", ".jwk.json", ".private.jwk.json")
    )
    try:
        cert, key = self_signed_client_cert(subject, **new.profile(kind))
        public_jwk = jwk_with_x5c(cert)
        private_jwk = jwk_with_x5c(cert, private_key=key)
        write_private(key_path, key_to_pem(key))
        write_private(private_jwk_path, json.dumps(private_jwk, indent=2).encode() + b"\n")
        write_public(crt_path, cert_to_pem(cert))
        write_public(jwk_path, json.dumps(public_jwk, indent=2).encode() + b"\n")
    except (OSError, ValueError, TypeError) as exc:
        _fail(str(exc))
    typer.echo(f"certificate: {crt_path}")
    typer.echo(f"private key: {key_path}")
    typer.echo(f"public JWK:  {jwk_path}  (register it in the client's jwks)")
    typer.echo(f"private JWK: {private_jwk_path}")
    typer.echo(f"x5t#S256:    {public_jwk['x5t#S256']}")


CaCertOpt = Annotated[
    Path | None, typer.Option("--ca-cert", help="The CA certificate (default: the dev CA of --dir).")
]
DirOpt = Annotated[Path, typer.Option("--dir", help="The dev PKI directory.")]


def _ca_files(directory: Path, ca_cert: Path | None, ca_key: Path | None = None) -> tuple[Path, Path]:
    return (
        ca_cert or directory / "ca.crt",
        ca_key or (ca_cert.with_suffix(".key") if ca_cert else directory / "ca.key"),
    )


@app.command()
def revoke(
    cert: Annotated[Path, typer.Argument(help="The certificate to revoke (PEM or DER).")],
    directory: DirOpt = Path("data/pki"),
    ca_cert: CaCertOpt = None,
    reason: Annotated[
        str | None, typer.Option("--reason", help=f"RFC 5280 reason: {', '.join(REASONS)}.")
    ] = None,
) -> None:
    """Record CERT as revoked by its CA (CA.revoked.json beside the CA certificate); then publish a CRL
    with `certbound pki crl`."""
    ca_path, _ = _ca_files(directory, ca_cert)
    ca = _read(ca_path, load_cert_file)
    target = _read(cert, load_cert_file)
    if reason is not None and reason not in REASONS:
        _fail(f"unknown reason {reason!r}; choose one of {', '.join(REASONS)}")
    try:
        target.verify_directly_issued_by(ca)
    except Exception:
        _fail(f"{cert} was not issued by the CA {ca_path} ({ca.subject.rfc4514_string()})")
    ledger = _read(ledger_path(ca_path), RevocationLedger.load)
    when = datetime.now(UTC).replace(microsecond=0)
    if not ledger.revoke(target, when, REASONS[reason] if reason else None):
        typer.echo(f"already revoked: serial {target.serial_number:x} ({target.subject.rfc4514_string()})")
        return
    try:
        ledger.save()
    except OSError as exc:
        _fail(f"{ledger.path}: {exc.strerror or exc}")
    typer.echo(
        f"revoked: serial {target.serial_number:x} ({target.subject.rfc4514_string()}) at {when.isoformat()}"
    )
    typer.echo(f"recorded in {ledger.path}; publish it: certbound pki crl --dir {directory} --out CRL-FILE")


@app.command()
def crl(
    directory: DirOpt = Path("data/pki"),
    ca_cert: CaCertOpt = None,
    ca_key: Annotated[
        Path | None, typer.Option("--ca-key", help="The CA's private key (default: beside --ca-cert).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the CRL here (default: stdout).")] = None,
    days: Annotated[int, typer.Option("--days", min=1, max=366, help="Until nextUpdate, in days.")] = 7,
    der: Annotated[bool, typer.Option("--der", help="DER instead of PEM.")] = False,
) -> None:
    """A CRL of the CA, signed now, listing what `certbound pki revoke` recorded (PEM on stdout)."""
    ca_path, key_path = _ca_files(directory, ca_cert, ca_key)
    ca = _read(ca_path, load_cert_file)
    signing_key = _read(key_path, load_key_file)
    ledger = _read(ledger_path(ca_path), RevocationLedger.load)
    now = datetime.now(UTC).replace(microsecond=0)
    try:
        window = {"this_update": now, "next_update": now + timedelta(days=days)}
        signed = build_crl(ca, signing_key, ledger.revoked, **window, number=ledger.next_crl_number())
        if not signed.is_signature_valid(ca.public_key()):  # type: ignore[arg-type]
            _fail(f"{key_path} is not the key of the CA {ca_path}")
        data = signed.public_bytes(Encoding.DER if der else Encoding.PEM)
        ledger.save()
        if out is None:
            if der:
                sys.stdout.buffer.write(data)
            else:
                typer.echo(data.decode("ascii"), nl=False)
            return
        write_public(out, data)
    except (OSError, ValueError, TypeError) as exc:
        _fail(str(exc))
    count, until = len(ledger.revoked), window["next_update"].isoformat()
    typer.echo(
        f"CRL number {ledger.crl_number} with {count} revoked certificate(s), next update {until}: {out}"
    )


def _render(info: dict[str, Any], index: int, total: int) -> list[str]:
    lines = [f"certificate {index} of {total}"] if total > 1 else []
    rows: list[tuple[str, str]] = [
        ("subject", info["subject"] or "(empty)"),
        ("issuer", info["issuer"] or "(empty)"),
        ("serial", info["serial"]),
        ("not before", info["not_before"]),
        ("not after", info["not_after"]),
        ("key type", info["key_type"]),
    ]
    for kind, label in (("dns", "SAN DNS"), ("uri", "SAN URI"), ("ip", "SAN IP"), ("email", "SAN email")):
        if info["san"][kind]:
            rows.append((label, ", ".join(info["san"][kind])))
    rows += [
        ("self-signed", "yes" if info["self_signed"] else "no"),
        ("CA", "yes" if info["is_ca"] else "no"),
        ("x5t#S256", info["x5t#S256"]),
    ]
    lines += [f"  {label + ':':<13}{value}" for label, value in rows]
    return lines


@app.command()
def inspect(
    file: Annotated[Path, typer.Argument(help="Certificate file: PEM (bundles too) or DER.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of certificates.")] = False,
) -> None:
    """Show subject, SANs, issuer, validity, key type and x5t#S256 of every certificate in FILE."""
    try:
        certs = load_certs_file(file)
    except FileNotFoundError:
        _fail(f"{file}: no such file")
    except IsADirectoryError:
        _fail(f"{file}: is a directory")
    except (OSError, ValueError) as exc:
        _fail(str(exc))
    infos = [describe_cert(c) for c in certs]
    if as_json:
        typer.echo(json.dumps(infos, indent=2))
        return
    lines: list[str] = []
    for i, info in enumerate(infos, 1):
        if i > 1:
            lines.append("")
        lines += _render(info, i, len(infos))
    typer.echo("\n".join(lines))
