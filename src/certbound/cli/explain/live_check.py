"""The live check: the server's own decision about a client_id and a certificate file.

The settings are loaded as ``certbound serve`` loads them, the store is opened without migrating or
writing anything, the authenticator is the one :func:`build_client_authenticator` gives the server
(same CAs, directory, jwks_uri fetcher, limits), and :meth:`~ClientAuthenticator.decide` runs on a
request carrying only the client_id and, on the connection, the certificate. Its
:class:`~certbound.server.clientauth.decision.Decision`, and the compiled client in it, give the facts.
Nothing is logged or counted (``decide`` records nothing), no assertion is made up (so no ``jti`` is
stored), and no key is created.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from certbound.cli.explain.explanation import METHOD_HOWTO
from certbound.cli.explain.usage import UsageError

if TYPE_CHECKING:
    from certbound.config import Settings
    from certbound.pki.chain import ChainVerifier
    from certbound.pki.san import SubjectAltNames
    from certbound.sealing import Sealer
    from certbound.server.clientauth.decision import Decision
    from certbound.server.clientauth.registry import ClientAuthenticator
    from certbound.server.clientauth.types import AuthRequest, Endpoint
    from certbound.tls.client_certificate import ClientCertificate

__all__ = ["LiveCheck", "auth_request", "load_presented", "load_settings", "run_check"]


@dataclass(frozen=True)
class LiveCheck:
    """The server's decision, and the facts that explain it."""

    decision: Decision
    facts: list[str]


def load_presented(cert_file: Path, chain_file: Path | None) -> ClientCertificate:
    """The certificate as the server would receive it: leaf first, then the chain (file, then --chain)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from certbound.pki.pem import load_certs_file
    from certbound.tls.client_certificate import ClientCertificate

    try:
        certs = load_certs_file(cert_file)
        chain = load_certs_file(chain_file) if chain_file is not None else []
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.filename}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return ClientCertificate.from_der(
        certs[0].public_bytes(Encoding.DER),
        [c.public_bytes(Encoding.DER) for c in (*certs[1:], *chain)],
        source="file",
        tls_verified=None,
        tls_error=None,
    )


def load_settings(flags: Mapping[str, Any], config: Path | None) -> Settings:
    """The settings as ``serve`` loads them; ``--dev`` trusts the dev CA if it exists, never makes one."""
    from certbound.config import SettingsError
    from certbound.config import load_settings as load

    try:
        settings = load(flags, config, serving=False)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if settings.dev and settings.client_ca is None:  # what `serve --dev` would trust, without creating it
        dev_ca = settings.dev_pki_dir / "ca.crt"
        if dev_ca.is_file():
            settings = settings.model_copy(update={"client_ca": dev_ca})
    return settings


def auth_request(
    settings: Settings, client_id: str, endpoint: Endpoint, certificate: ClientCertificate | None
) -> AuthRequest:
    """The request the check decides on: the client_id in the form, the certificate on the connection,
    and the assertion audiences the server's endpoint would accept (the same function computes them)."""
    from certbound.server.clientauth.audiences import assertion_audiences
    from certbound.server.clientauth.types import AuthRequest
    from certbound.server.paths import INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH

    path = {"token": TOKEN_PATH, "introspection": INTROSPECTION_PATH, "revocation": REVOCATION_PATH}[endpoint]
    return AuthRequest(
        endpoint=endpoint,
        form={"client_id": client_id},
        authorization=None,
        certificate=certificate,
        audiences=assertion_audiences(settings.issuer_url, settings.mtls_url, path),
    )


def _database_path(url: str) -> Path | None:
    """The SQLite file of a sqlite URL (None for other databases)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database or "")


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _sealer(settings: Settings) -> Sealer | None:
    """The KEK-based sealer if one exists; never creates a key (None: sealed secrets stay closed)."""
    from certbound.sealing import Sealer, load_kek
    from certbound.server.bootstrap import open_sealer

    if settings.kek is not None or settings.kek_file is not None:
        return open_sealer(settings)
    default = settings.data_dir / "kek"
    return Sealer(load_kek(default)) if default.is_file() else None


class _Collect(logging.Handler):
    """Keeps what the authentication code logs (client compilation problems, jwks_uri failures)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def run_check(
    settings: Settings, client_id: str, endpoint: Endpoint, certificate: ClientCertificate | None
) -> LiveCheck:
    """Decide about (client_id, certificate) as the server configured by `settings` would."""
    from certbound.server.clientauth.registry import build_client_authenticator, load_client_cas
    from certbound.store.generation import GenerationWatcher
    from certbound.store.sql import open_store

    url = settings.effective_database_url
    db_file = _database_path(url)
    if db_file is not None and not db_file.is_file():
        raise UsageError(
            f"no database at {db_file}: point --data-dir (or --database-url) at the server's data, "
            "or start `certbound serve` once there"
        )
    # read here first so that a bad file is a usage error naming the setting (the authenticator below
    # reads it again, as the server does), and for the facts: which CAs are trusted
    try:
        verifier = load_client_cas(settings.client_ca)
    except (OSError, ValueError) as exc:
        raise UsageError(f"client_ca: {exc}") from None
    store = open_store(url)
    try:
        watcher = GenerationWatcher(store)  # read once below, not started: nothing runs in the background
        authenticator = build_client_authenticator(settings, store, _sealer(settings), watcher)
        try:
            try:
                await watcher.check()
            except Exception as exc:
                raise UsageError(
                    f"cannot read the store at {_safe_url(url)}: {type(exc).__name__}: {exc}"
                ) from None
            return await _decide(settings, authenticator, client_id, endpoint, certificate, verifier)
        finally:
            await authenticator.aclose()
    finally:
        await store.close()


async def _decide(
    settings: Settings,
    authenticator: ClientAuthenticator,
    client_id: str,
    endpoint: Endpoint,
    certificate: ClientCertificate | None,
    verifier: ChainVerifier | None,
) -> LiveCheck:
    from structlog.testing import capture_logs

    collect = _Collect()
    auth_log = logging.getLogger("certbound.clientauth")
    auth_log.addHandler(collect)
    try:
        with capture_logs() as events:  # the revocation check's events, kept off stdout
            decision = await authenticator.decide(auth_request(settings, client_id, endpoint, certificate))
    finally:
        auth_log.removeHandler(collect)
    facts = _facts(settings, decision, authenticator, verifier)
    facts += [f"the server would log: {m}" for m in collect.messages]
    facts += [f"the server would log: {_event_words(e)}" for e in events if e.get("log_level") != "debug"]
    return LiveCheck(decision, facts)


_KIND_FIELD = {
    "dn": "tls_client_auth_subject_dn",
    "dns": "tls_client_auth_san_dns",
    "uri": "tls_client_auth_san_uri",
    "ip": "tls_client_auth_san_ip",
    "email": "tls_client_auth_san_email",
}


def _facts(
    settings: Settings,
    decision: Decision,
    authenticator: ClientAuthenticator,
    verifier: ChainVerifier | None,
) -> list[str]:
    from certbound.pki.dn import dn_to_rfc4514
    from certbound.pki.san import SubjectAltNames
    from certbound.server.tokens.binding import requires_binding

    certificate = decision.certificate
    facts = [f"clients read from {_safe_url(settings.effective_database_url)}"]
    if certificate is not None:
        sans = _describe_sans(SubjectAltNames.from_cert(certificate.leaf))
        leaf = certificate.leaf
        facts.append(
            f"certificate valid {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC; SANs: {sans or 'none'}; "
            f"{len(certificate.chain)} more certificate(s) sent with it"
        )
    compiled, method = decision.client, decision.method
    if compiled is None or method is None:
        return facts
    facts.append(
        f"registered method for the {decision.endpoint} endpoint: {method} ({METHOD_HOWTO.get(method, '?')})"
    )
    if method == "tls_client_auth":
        if verifier is None:
            facts.append("no client CA is configured (client_ca): tls_client_auth cannot succeed")
        else:
            names = ", ".join(dn_to_rfc4514(c.subject) for c in verifier.trust_anchors)
            facts.append(f"trusted client CAs ({settings.client_ca}): {names}")
        rule = compiled.subject
        if rule is not None:
            facts.append(f"registered subject ({_KIND_FIELD[rule.kind]}): {rule.value!r}")
        facts.append(_revocation_fact(settings))
        if certificate is not None:
            verdict = authenticator.verdicts.facts(certificate, datetime.now(UTC))
            if verdict.ok:
                facts.append("the chain validates against the trusted client CAs")
            elif verdict.reason != decision.reason:  # else the reason and detail already say it
                facts.append(f"the chain does not validate: {verdict.reason}: {verdict.detail}")
    if method == "self_signed_tls_client_auth":
        facts.append(f"{len(compiled.certificates)} certificate(s) registered in jwks")
        if compiled.jwks_uri:
            facts.append(f"jwks_uri: {compiled.jwks_uri} (its x5c certificates count too)")
        if certificate is not None:
            facts.append(f"presented x5t#S256: {certificate.x5t_s256}")
    for problem in compiled.problems:
        facts.append(f"problem with the stored client: {problem}")
    if requires_binding(compiled.model):
        if certificate is not None:
            facts.append(
                "its access tokens are certificate-bound: a token issued on a connection with this "
                f"certificate carries cnf.x5t#S256 = {certificate.x5t_s256}"
            )
        else:
            facts.append("its access tokens are certificate-bound: without a certificate it gets no token")
    return facts


def _event_words(event: Mapping[str, Any]) -> str:
    fields = " ".join(f"{k}={v}" for k, v in event.items() if k not in ("event", "log_level"))
    return f"{event.get('event')} {fields}".strip()


def _revocation_fact(settings: Settings) -> str:
    mode = settings.client_cert_revocation
    if mode == "off":
        return "revocation is not checked (client_cert_revocation = off)"
    crls = f", configured CRLs: {', '.join(settings.client_ca_crls)}" if settings.client_ca_crls else ""
    soft = "accepted with a warning" if settings.client_cert_revocation_soft_fail else "refused"
    return (
        f"revocation checked by {mode} (client_cert_revocation){crls}; a certificate whose status "
        f"cannot be had is {soft} (client_cert_revocation_soft_fail); the check asked the sources now"
    )


def _describe_sans(sans: SubjectAltNames) -> str:
    parts = [f"DNS:{d}" for d in sans.dns] + [f"URI:{u}" for u in sans.uris]
    parts += [f"IP:{ip}" for ip in sans.ips] + [f"email:{e}" for e in sans.emails]
    return ", ".join(parts)
