"""``certbound doctor``: check an mTLS client set-up end to end and say which step breaks, and why.

Steps: the metadata, the mTLS aliases, the server's certificate chain and whether it verifies, whether
the server asks for a client certificate (and which CA names it advertises), the certificate this
client would send, and a ``client_credentials`` request with it. Each step ends ``ok``, ``warn``,
``fail`` or ``skip``; every ``fail`` carries one line that names the problem.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509

from certbound.client.client import AsyncOAuthClient
from certbound.client.config import ClientConfig, TLSIdentity
from certbound.client.errors import ClientConfigError, ClientError, OAuthServerError, TLSError
from certbound.client.handshake import HandshakeFacts, probe_handshake, verify_server
from certbound.client.tls import LoadedIdentity, Trust, build_ssl_context, load_identity, trust_from_config
from certbound.pki.describe import describe_cert
from certbound.pki.dn import dn_to_rfc4514

__all__ = ["DoctorOptions", "DoctorReport", "Step", "run_doctor"]

Status = Literal["ok", "warn", "fail", "skip"]


@dataclass
class Step:
    """One check: a one-line summary, optional detail lines, and the problem when it failed."""

    name: str
    status: Status
    summary: str
    details: list[str] = field(default_factory=list)
    problem: str | None = None


@dataclass
class DoctorReport:
    issuer: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.status != "fail" for step in self.steps)

    @property
    def problems(self) -> list[str]:
        return [step.problem for step in self.steps if step.status == "fail" and step.problem]


@dataclass(frozen=True)
class DoctorOptions:
    issuer: str
    cert_file: Path | None = None
    key_file: Path | None = None
    client_id: str | None = None
    ca_file: Path | None = None
    verify: bool = True
    timeout: float = 10.0


def _when(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sans(description: Mapping[str, Any]) -> str:
    san = description["san"]
    parts = [f"{kind.upper()}:{value}" for kind in ("dns", "uri", "ip", "email") for value in san[kind]]
    return ", ".join(parts) if parts else "none"


def _cert_line(cert: x509.Certificate) -> str:
    return (
        f"{dn_to_rfc4514(cert.subject) or '(empty subject)'} (issuer {dn_to_rfc4514(cert.issuer)}; "
        f"{_when(cert.not_valid_before_utc)} to {_when(cert.not_valid_after_utc)})"
    )


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or 443


class _Doctor:
    def __init__(self, options: DoctorOptions) -> None:
        self.options = options
        self.report = DoctorReport(options.issuer)
        self.identity: LoadedIdentity | None = None
        self.metadata: Mapping[str, Any] | None = None
        self.facts: HandshakeFacts | None = None
        self.untrusted_server = False  # the metadata step already named a server certificate problem

    def add(self, step: Step) -> Step:
        self.report.steps.append(step)
        return step

    def config(self) -> ClientConfig:
        o = self.options
        identities = (
            [TLSIdentity(o.cert_file, o.key_file)] if self.identity and o.cert_file and o.key_file else []
        )
        return ClientConfig(
            issuer=o.issuer,
            client_id=o.client_id or "certbound-doctor",
            auth_method="tls_client_auth" if identities else "none",
            identities=identities,
            ca_file=o.ca_file,
            verify=o.verify,
            timeout=o.timeout,
        )

    # -- steps ------------------------------------------------------------------------------------

    def client_certificate(self) -> None:
        o = self.options
        name = "client certificate"
        if o.cert_file is None or o.key_file is None:
            self.add(
                Step(
                    name,
                    "fail",
                    "none given",
                    problem="no client certificate given (--cert and --key): an mTLS server cannot "
                    "authenticate this client or bind its tokens",
                )
            )
            return
        try:
            loaded = load_identity(TLSIdentity(o.cert_file, o.key_file))
            build_ssl_context(Trust("insecure"), loaded)  # loads the key: catches a key that does not match
        except ClientConfigError as exc:
            self.add(Step(name, "fail", "unusable", problem=f"the client certificate cannot be used: {exc}"))
            return
        self.identity = loaded
        d = describe_cert(loaded.certificate)
        details = [
            f"subject:  {d['subject'] or '(empty)'}",
            f"issuer:   {d['issuer']}{'  (self-signed)' if d['self_signed'] else ''}",
            f"SANs:     {_sans(d)}",
            f"x5t#S256: {d['x5t#S256']}",
            f"validity: {d['not_before']} to {d['not_after']}",
        ]
        now = datetime.now(UTC)
        cert = loaded.certificate
        if cert.not_valid_after_utc < now:
            problem = f"the client certificate expired on {_when(cert.not_valid_after_utc)}"
            self.add(Step(name, "fail", "expired", details, problem))
        elif cert.not_valid_before_utc > now:
            problem = f"the client certificate is not valid before {_when(cert.not_valid_before_utc)}"
            self.add(Step(name, "fail", "not yet valid", details, problem))
        else:
            self.add(Step(name, "ok", d["subject"] or d["x5t#S256"], details))

    async def discover(self, client: AsyncOAuthClient) -> None:
        name = "metadata"
        try:
            self.metadata = await client.metadata()
        except TLSError as exc:
            hint = (
                " (wrong CA? pass --ca with the CA that issued the server's certificate)"
                if exc.side == "client"
                else ""
            )
            self.untrusted_server = exc.side == "client"
            self.add(Step(name, "fail", "TLS failure", problem=f"fetching the metadata: {exc}{hint}"))
            return
        except ClientError as exc:
            self.add(Step(name, "fail", "not found", problem=f"fetching the metadata: {exc}"))
            return
        self.add(Step(name, "ok", f"{client.metadata_source} (issuer {self.metadata.get('issuer')})"))

    def aliases(self) -> None:
        if self.metadata is None:
            self.add(Step("mtls aliases", "skip", "no metadata"))
            return
        aliases = self.metadata.get("mtls_endpoint_aliases")
        if not isinstance(aliases, Mapping) or not aliases:
            self.add(
                Step(
                    "mtls aliases", "ok", "none published: the plain endpoints are used with the certificate"
                )
            )
            return
        details = [f"{key} -> {value}" for key, value in sorted(aliases.items())]
        self.add(Step("mtls aliases", "ok", f"{len(aliases)} published", details))

    def token_url(self) -> str:
        if self.metadata is None:
            return self.options.issuer
        aliases = self.metadata.get("mtls_endpoint_aliases")
        if isinstance(aliases, Mapping) and aliases.get("token_endpoint"):
            return str(aliases["token_endpoint"])
        return str(self.metadata.get("token_endpoint") or self.options.issuer)

    async def server_certificate(self, url: str, trust: Trust) -> None:
        host, port = _host_port(url)
        self.facts = facts = await asyncio.to_thread(
            probe_handshake, host, port, timeout=self.options.timeout
        )
        name = "server certificate"
        if facts.error and not facts.chain:
            self.add(
                Step(
                    name,
                    "fail",
                    f"no handshake with {host}:{port}",
                    problem=f"cannot complete a TLS handshake with {host}:{port}: {facts.error}",
                )
            )
            return
        details = [f"{i}: {_cert_line(cert)}" for i, cert in enumerate(facts.chain)]
        details.append(f"seen with {facts.source}" + (f", {facts.protocol}" if facts.protocol else ""))
        if trust.mode == "insecure":
            self.add(Step(name, "warn", f"{host}:{port} not verified (--insecure)", details))
            return
        failure = await asyncio.to_thread(verify_server, host, port, trust, timeout=self.options.timeout)
        if failure is None:
            self.add(Step(name, "ok", f"{host}:{port} {trust.describe()}", details))
            return
        issuer = dn_to_rfc4514(facts.chain[0].issuer) if facts.chain else "an unknown CA"
        where = f"--ca {trust.ca_file}" if trust.mode == "ca" else "the system trust store"
        problem: str | None = (
            f"the server's certificate (issued by {issuer}) does not verify against {where}: {failure}"
        )
        if self.untrusted_server:
            problem = None  # said once, by the metadata step
        self.add(Step(name, "fail", f"{host}:{port} NOT verified: {failure}", details, problem))

    def certificate_request(self, url: str) -> None:
        name = "certificate request"
        facts = self.facts
        host, port = _host_port(url)
        if self.metadata is None:
            self.add(Step(name, "skip", "unknown without the metadata (which host is the mTLS endpoint?)"))
            return
        if facts is None or facts.cert_requested is None:
            why = facts.error if facts and facts.error else "openssl not installed"
            self.add(Step(name, "skip", f"unknown ({why})"))
            return
        if not facts.cert_requested:
            problem = (
                f"the server at {host}:{port} does not ask for a client certificate, so it never sees one "
                "(is this the mTLS listener? see mtls_endpoint_aliases)"
            )
            self.add(
                Step(name, "fail", f"{host}:{port} does not ask for a client certificate", problem=problem)
            )
            return
        names = facts.ca_names
        details = [f"CA name: {n}" for n in names] or ["no CA names advertised (any certificate may be sent)"]
        if self.identity is not None and names:
            issuer = self.identity.certificate.issuer.rfc4514_string()
            if not any(_same_name(issuer, n) for n in names):
                details.append(
                    f"your certificate's issuer {dn_to_rfc4514(self.identity.certificate.issuer)} "
                    "is not among them"
                )
                self.add(
                    Step(name, "warn", f"{host}:{port} asks for one; your issuer is not advertised", details)
                )
                return
        self.add(Step(name, "ok", f"{host}:{port} asks for a client certificate", details))

    async def token_request(self, client: AsyncOAuthClient) -> None:
        name = "token request"
        if self.options.client_id is None:
            self.add(Step(name, "skip", "pass --client-id to try a client_credentials request"))
            return
        if self.identity is None or self.metadata is None:
            self.add(Step(name, "skip", "needs the metadata and a usable client certificate"))
            return
        url, origin = await client.endpoint("token")
        cid = self.options.client_id
        try:
            token = await client.client_credentials(use_cache=False)
        except OAuthServerError as exc:
            self.add(
                Step(
                    name,
                    "fail",
                    f"{url}: {exc.error} (HTTP {exc.status})",
                    [f"error_description: {exc.description}"] if exc.description else [],
                    self._explain(exc),
                )
            )
            return
        except TLSError as exc:
            problem = f"the token request to {url} failed in TLS: {exc}"
            if exc.side == "server":
                problem = (
                    f"the server rejected the client certificate during the handshake ({exc.reason}): "
                    "it does not trust the CA that issued it"
                )
            self.add(Step(name, "fail", f"{url}: TLS failure", problem=problem))
            return
        except ClientError as exc:
            self.add(
                Step(name, "fail", f"{url}: {type(exc).__name__}", problem=f"the token request failed: {exc}")
            )
            return
        summary = f"HTTP 200 from {url} ({origin}): {token.token_type or 'a'} token for {cid}"
        bound = token.cnf_x5t_s256
        if bound is None:
            bound = await self._introspected_binding(client, token.access_token)
        thumb = self.identity.thumbprint
        if bound == thumb:
            self.add(Step(name, "ok", summary, ["bound to this certificate (cnf.x5t#S256 matches)"]))
        elif bound is None:
            self.add(
                Step(
                    name, "warn", summary, ["the token does not show a certificate binding (no cnf.x5t#S256)"]
                )
            )
        else:
            problem = f"the token is bound to another certificate (cnf.x5t#S256 {bound}, this one is {thumb})"
            self.add(Step(name, "fail", summary, problem=problem))

    async def _introspected_binding(self, client: AsyncOAuthClient, token: str) -> str | None:
        try:
            return (await client.introspect(token)).cnf_x5t_s256
        except ClientError:
            return None

    def _explain(self, exc: OAuthServerError) -> str:
        cid = self.options.client_id
        if exc.error != "invalid_client":
            return f"the server refused the token request: {exc}"
        assert self.identity is not None
        advertised = self.facts.ca_names if self.facts else []
        issuer = self.identity.certificate.issuer.rfc4514_string()
        if advertised and not any(_same_name(issuer, n) for n in advertised):
            issuer_dn = dn_to_rfc4514(self.identity.certificate.issuer)
            return (
                f"the server refused client {cid!r}: its certificate is issued by {issuer_dn}, "
                "a CA the server does not advertise as trusted (wrong CA?)"
            )
        said = f"{exc.error}: {exc.description}" if exc.description else exc.error
        return (
            f"the server refused client {cid!r} with this certificate ({said}): "
            f"the certificate (x5t#S256 {self.identity.thumbprint}) is not registered for this client, "
            "or the client does not use tls_client_auth / self_signed_tls_client_auth"
        )


def _same_name(rfc4514: str, openssl_text: str) -> bool:
    """Compare a DN with OpenSSL's one-line print of it ("CN = x, O = y"), ignoring spacing and order."""

    def parts(text: str) -> set[str]:
        return {p.replace(" ", "").upper() for p in re.split(r"[,/]", text) if "=" in p}

    return parts(rfc4514) == parts(openssl_text)


async def run_doctor(options: DoctorOptions) -> DoctorReport:
    """Run every step; steps after a failure still run where they can, to show the whole picture."""
    doctor = _Doctor(options)
    doctor.client_certificate()
    try:
        config = doctor.config()
        trust = trust_from_config(config)
    except ClientConfigError as exc:
        doctor.add(Step("configuration", "fail", "unusable", problem=str(exc)))
        return doctor.report
    async with AsyncOAuthClient(config) as client:
        await doctor.discover(client)
        doctor.aliases()
        url = doctor.token_url()
        await doctor.server_certificate(url, trust)
        doctor.certificate_request(url)
        await doctor.token_request(client)
    order = ["metadata", "mtls aliases", "server certificate", "certificate request", "client certificate"]
    doctor.report.steps.sort(key=lambda s: order.index(s.name) if s.name in order else len(order))
    return doctor.report
