"""`certbound explain`: why a client was (or would be) refused, in plain words.

Two ways in:

* ``--event FILE|-``: the server's ``client_auth`` log events (issue 4, "explainable failures"), as JSON
  lines or as structlog's console rendering (``key=value``); a whole log file works, every
  ``client_auth`` event in it is explained in order.
* ``--client-id ID [--cert FILE [--chain FILE]] [--endpoint token]``: loads the settings the way
  ``certbound serve`` does (``--config``, ``--data-dir``, ``--database-url``, ``--client-ca``,
  ``--dev``, ``CERTBOUND_*``), opens the store without migrating or creating anything, builds the
  real :class:`~certbound.server.clientauth.ClientAuthenticator` for that configuration and runs it on a
  request that carries only the client_id and, on the connection, that certificate. The outcome is
  the server's own decision (chain validation, subject comparison, registered and ``jwks_uri``
  certificates: a client's ``jwks_uri`` is fetched as the server would), plus the facts that explain
  it. Nothing is written: the certificate methods only read, and no assertion is made up (so no
  ``jti`` is stored). For the other methods it says which credential the client needs.

Exit status: 0 when the client is (would be) accepted, 1 when refused, 2 on usage errors (bad
options, unreadable files, no event found, no database). Never a traceback.
"""

from __future__ import annotations

import ast
import asyncio
import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from certbound.server.clientauth.failure import REASONS
from certbound.server.clientauth.types import METHODS, Endpoint

if TYPE_CHECKING:  # imported lazily at run time: `certbound --help` stays fast
    from certbound.config import Settings
    from certbound.pki.chain import ChainVerifier
    from certbound.pki.san import SubjectAltNames
    from certbound.sealing import Sealer
    from certbound.server.clientauth.directory import CompiledClient
    from certbound.server.clientauth.registry import ClientAuthenticator
    from certbound.tls.client_certificate import ClientCertificate

__all__ = [
    "ADVICE",
    "METHOD_HOWTO",
    "Explanation",
    "client_auth_events",
    "explain_event",
    "parse_log_line",
    "register",
]

CERT_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")
ENDPOINTS: tuple[Endpoint, ...] = ("token", "introspection", "revocation")

#: What a client registered with each method must send.
METHOD_HOWTO: dict[str, str] = {
    "none": "a public client: send client_id in the form and no credential at all",
    "client_secret_basic": (
        "send 'Authorization: Basic ' + base64(urlencode(client_id) + ':' + urlencode(client_secret)) "
        "(RFC 6749 Appendix B), and no other credential"
    ),
    "client_secret_post": "send client_id and client_secret in the form body, and no Authorization header",
    "client_secret_jwt": (
        "send client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and "
        "client_assertion: a JWT signed with HS256/384/512 and the client secret, iss = sub = client_id, "
        "aud = the issuer or the endpoint URL, exp, and a jti never used before"
    ),
    "private_key_jwt": (
        "send client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer and "
        "client_assertion: a JWT signed with a private key whose public key is in the client's jwks or "
        "jwks_uri, iss = sub = client_id, aud = the issuer or the endpoint URL, exp, and a jti never "
        "used before"
    ),
    "tls_client_auth": (
        "present, in the TLS handshake, a certificate issued by a trusted client CA (client_ca) that "
        "carries the registered subject value, and send client_id in the form"
    ),
    "self_signed_tls_client_auth": (
        "present, in the TLS handshake, the self-signed certificate registered in the client's jwks "
        "(x5c) or published at its jwks_uri, and send client_id in the form"
    ),
}

#: What to do about each reason code (the meaning itself is REASONS').
ADVICE: dict[str, str] = {
    "request.multiple_mechanisms": (
        "send exactly one credential, the one of the registered method (a client certificate is not "
        "counted: it may always be presented to bind tokens)"
    ),
    "request.client_id_missing": (
        "add client_id to the form body: tls_client_auth, self_signed_tls_client_auth and none have no "
        "other way to name the client"
    ),
    "request.client_id_mismatch": (
        "send one client_id: the form's must be the one in the Basic header or the assertion's sub"
    ),
    "request.malformed_basic": (
        "build the header as 'Basic ' + base64(urlencode(client_id) + ':' + urlencode(secret)), "
        "UTF-8, as RFC 6749 Appendix B says"
    ),
    "client.unknown": (
        "check the client_id and that you are talking to the right server: no client with this id is "
        "registered (or declared in the clients file) there"
    ),
    "client.method_mismatch": "use the method the client registered for this endpoint",
    "client.misconfigured": (
        "the stored client cannot be used as registered (the server logs a warning naming the problem "
        "when it loads the client); fix the registration or the clients file"
    ),
    "secret.mismatch": (
        "use the client_secret the server returned at registration (it is stored only as a digest and "
        "cannot be read back; rotate it through the registration management API if it is lost)"
    ),
    "secret.expired": "the secret is past client_secret_expires_at: obtain a new one",
    "cert.missing": (
        "present the client certificate in the TLS handshake (curl --cert/--key), at the mTLS endpoint "
        "(mtls_endpoint_aliases) if the server has one; behind a proxy, the proxy must forward it in the "
        "configured header from a trusted_proxies address"
    ),
    "cert.untrusted": (
        "use a certificate issued by one of the CAs in the server's client_ca, and send any "
        "intermediate CA certificates along with it"
    ),
    "cert.expired": "renew the certificate (and check the validity dates of every CA on its chain)",
    "cert.not_yet_valid": (
        "the certificate's notBefore is in the future: wait, or check the clocks of the issuing CA "
        "and of the server"
    ),
    "cert.invalid": (
        "issue a client certificate the policy accepts: extendedKeyUsage clientAuth (or none), "
        "digitalSignature key usage, CA certificates with CA:TRUE and keyCertSign; the detail says "
        "which rule failed"
    ),
    "cert.subject_mismatch": (
        "the certificate must carry exactly the registered tls_client_auth_* value: compare it with "
        "the certificate's subject and subject alternative names"
    ),
    "cert.unregistered": (
        "register this certificate: put it (as x5c of its JWK) in the client's jwks, or publish it at "
        "the client's jwks_uri"
    ),
    "assertion.malformed": "send a compact JWS (header.payload.signature) whose payload is a JSON object",
    "assertion.bad_type": (
        "set client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    ),
    "assertion.alg_not_allowed": (
        "sign with an allowed algorithm: HS256/384/512 for client_secret_jwt, an asymmetric one "
        "(ES256, PS256, EdDSA, ...) for private_key_jwt, and the registered *_auth_signing_alg if any"
    ),
    "assertion.unknown_key": (
        "sign with a key registered in the client's jwks or jwks_uri, and put its kid in the header"
    ),
    "assertion.bad_signature": "sign with the registered key (or the current client secret)",
    "assertion.bad_issuer": "set both iss and sub to the client_id",
    "assertion.bad_audience": "set aud to the issuer, or to the URL of the endpoint being called",
    "assertion.missing_exp": "add a numeric exp claim",
    "assertion.expired": "make a fresh assertion for each request (check the client's clock)",
    "assertion.too_long": "give the assertion a short lifetime (exp a few minutes ahead at most)",
    "assertion.not_yet_valid": "do not set nbf in the future (check the client's clock)",
    "assertion.bad_iat": "set iat to the current time as a number (check the client's clock)",
    "assertion.missing_jti": "add a unique jti to every assertion",
    "assertion.replayed": "make a new assertion with a new jti for every request; never resend one",
    "jwks_uri.fetch_failed": (
        "make the client's jwks_uri reachable over HTTPS with a certificate the server trusts (system "
        "store or outbound_ca_bundle), answering 200 with a JWK Set; private and loopback addresses "
        "are refused unless outbound_allow_private is set or the issuer is on such an address"
    ),
    "internal.error": (
        "this is not a refusal by rule: the server failed while deciding (the detail names the error); "
        "look at the server log around this event"
    ),
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CONSOLE = re.compile(r"^(?:\S+ \S+ )?\[\s*(?P<level>\w+)\s*\]\s+(?P<event>\S+)\s*(?P<rest>.*)$")
_PAIR = re.compile(r"""(?P<key>[A-Za-z_][\w.#-]*)=(?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S*)""")


def _console_value(text: str) -> Any:
    if text[:1] in ("'", '"'):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text[1:-1]
    return {"None": None, "True": True, "False": False}.get(text, text)


def parse_log_line(line: str) -> dict[str, Any] | None:
    """One log line as a dict: a JSON object, or structlog's console rendering; None for anything else."""
    text = _ANSI.sub("", line).strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    match = _CONSOLE.match(text)
    if match is None:
        return None
    out: dict[str, Any] = {"event": match["event"], "level": match["level"]}
    for pair in _PAIR.finditer(match["rest"]):
        out[pair["key"]] = _console_value(pair["value"])
    return out


def _is_client_auth(record: Mapping[str, Any]) -> bool:
    event = record.get("event")
    if event is None:  # a bare event object pasted by hand
        return bool("reason" in record and "outcome" in record)
    return bool(event == "client_auth")


def client_auth_events(text: str) -> list[dict[str, Any]]:
    """Every ``client_auth`` event in a log text, in order."""
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        record = parse_log_line(line)
        if record is not None and _is_client_auth(record):
            events.append(record)
    return events


@dataclass
class Explanation:
    """One decision in plain words (rendered for humans, or as JSON)."""

    accepted: bool
    outcome: str
    reason: str
    meaning: str
    client_id: str | None
    endpoint: str | None
    method: str | None
    presented: str | None
    detail: str | None = None
    certificate: dict[str, Any] | None = None
    advice: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "outcome": self.outcome,
            "reason": self.reason,
            "meaning": self.meaning,
            "client_id": self.client_id,
            "endpoint": self.endpoint,
            "method": self.method,
            "presented": self.presented,
            "detail": self.detail,
            "certificate": self.certificate,
            "advice": self.advice,
            "facts": self.facts,
        }

    def render(self) -> str:
        who = f"client {self.client_id!r}" if self.client_id else "a client that named no client_id"
        where = f"at the {self.endpoint} endpoint" if self.endpoint else ""
        how = f"with {self.method}" if self.method else ""
        if self.accepted:
            head = f"ACCEPTED: {who} authenticated {where} {how}".rstrip()
        elif self.outcome == "error":
            head = f"ERROR: the server could not decide about {who} {where} (it answered 500)".rstrip()
        else:
            head = f"REFUSED: {who} {where}".rstrip() + " (invalid_client, 401)"
        lines = [" ".join(head.split())]
        if not self.accepted:
            lines.append(f"  reason:    {self.reason}: {self.meaning}")
            if self.detail:
                lines.append(f"  detail:    {self.detail}")
        if self.method:
            lines.append(f"  method:    {self.method} (registered for this endpoint)")
        if self.presented:
            lines.append(f"  presented: {_presented_words(self.presented)}")
        cert = self.certificate
        if cert:
            lines.append(f"  certificate: {cert.get('subject') or '(no subject)'}")
            lines.append(f"    issuer:    {cert.get('issuer')}")
            lines.append(f"    x5t#S256:  {cert.get('x5t_s256')}")
            if cert.get("source"):
                lines.append(f"    from:      {_source_words(str(cert['source']))}")
            if cert.get("tls_verified") is False and cert.get("tls_error"):
                lines.append(f"    TLS layer: {cert['tls_error']} (only logged: the application decides)")
        for fact in self.facts:
            lines.append(f"  - {fact}")
        for item in self.advice:
            lines.append(f"  what to do: {item}")
        return "\n".join(lines)


def _presented_words(presented: str) -> str:
    names = {
        "basic": "an Authorization: Basic header",
        "client_secret": "a client_secret in the form",
        "client_assertion": "a client_assertion",
        "certificate": "a client certificate",
        "client_id_only": "only a client_id (no credential, no certificate)",
    }
    return ", ".join(names.get(part, part) for part in presented.split("+"))


def _source_words(source: str) -> str:
    if source == "tls":
        return "the TLS handshake"
    if source.startswith("header:"):
        return f"a trusted proxy's {source.removeprefix('header:')} header"
    if source == "file":
        return "a file given to certbound explain"
    return source


def explain_event(event: Mapping[str, Any], *, from_log: bool = True) -> Explanation:
    """Plain words for one ``client_auth`` event (from the log, or made by the certificate check)."""
    outcome = str(event.get("outcome") or "unknown")
    reason = str(event.get("reason") or "unknown")
    accepted = outcome == "success"
    method = _str_or_none(event.get("method"))
    presented = _str_or_none(event.get("presented"))
    if accepted:
        meaning = "the client authenticated"
    else:
        meaning = REASONS.get(reason, "a reason code this version of certbound does not know")
    certificate = None
    if event.get("cert_x5t_s256") is not None:
        certificate = {
            "x5t_s256": event.get("cert_x5t_s256"),
            "subject": event.get("cert_subject"),
            "issuer": event.get("cert_issuer"),
            "source": event.get("cert_source"),
            "tls_verified": event.get("tls_verified"),
            "tls_error": event.get("tls_error"),
        }
    explanation = Explanation(
        accepted=accepted,
        outcome=outcome,
        reason=reason,
        meaning=meaning,
        client_id=_str_or_none(event.get("client_id")),
        endpoint=_str_or_none(event.get("endpoint")),
        method=method,
        presented=presented,
        detail=_str_or_none(event.get("detail")),
        certificate=certificate,
    )
    if not accepted:
        explanation.advice = _advice(reason, method, presented, certificate, from_log=from_log)
    return explanation


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _advice(
    reason: str,
    method: str | None,
    presented: str | None,
    cert: Mapping[str, Any] | None,
    *,
    from_log: bool,
) -> list[str]:
    out: list[str] = []
    general = ADVICE.get(reason)
    if general:
        out.append(general)
    howto = METHOD_HOWTO.get(method or "")
    if howto and reason in ("client.method_mismatch", "request.multiple_mechanisms", "cert.missing"):
        out.append(f"{method}: {howto}")
    self_signed = cert is not None and cert.get("subject") and cert.get("subject") == cert.get("issuer")
    if reason == "cert.untrusted" and self_signed:
        out.append(
            "this certificate is self-signed (its issuer is its subject): tls_client_auth needs a "
            "CA-issued certificate; a self-signed one authenticates only a client registered with "
            "self_signed_tls_client_auth that lists exactly this certificate"
        )
    if reason == "cert.untrusted" and method == "self_signed_tls_client_auth":
        out.append("note: self_signed_tls_client_auth never builds a chain; this code is unexpected there")
    if reason == "cert.subject_mismatch" and cert is not None and from_log:
        out.append(
            f"the certificate's subject is {cert.get('subject')!r}; SANs are not in the log event, "
            "run `certbound explain --client-id ID --cert FILE` to compare them"
        )
    no_cert = bool(presented) and "certificate" not in (presented or "")
    if reason in ("cert.missing", "client.method_mismatch") and no_cert and method in CERT_METHODS:
        out.append(
            "no certificate reached the server: check that the client sends one and that nothing "
            "between them terminates TLS without forwarding it"
        )
    return out


# -- the certificate check --------------------------------------------------------------------------


class UsageError(Exception):
    """Bad options or unusable input: one line, exit status 2."""


def _load_presented(cert_file: Path, chain_file: Path | None) -> ClientCertificate:
    from certbound.pki.pem import load_certs_file
    from certbound.tls.client_certificate import ClientCertificate

    try:
        certs = load_certs_file(cert_file)
        chain = load_certs_file(chain_file) if chain_file is not None else []
    except FileNotFoundError as exc:
        raise UsageError(f"{exc.filename}: no such file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    from cryptography.hazmat.primitives.serialization import Encoding

    return ClientCertificate.from_der(
        certs[0].public_bytes(Encoding.DER),
        [c.public_bytes(Encoding.DER) for c in (*certs[1:], *chain)],
        source="file",
        tls_verified=None,
        tls_error=None,
    )


def _settings(flags: Mapping[str, Any], config: Path | None) -> Settings:
    from certbound.config import SettingsError, load_settings

    try:
        settings = load_settings(flags, config, serving=False)
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    if settings.dev and settings.client_ca is None:  # what `serve --dev` would trust, without creating it
        dev_ca = settings.dev_pki_dir / "ca.crt"
        if dev_ca.is_file():
            settings = settings.model_copy(update={"client_ca": dev_ca})
    return settings


def _database_path(url: str) -> Path | None:
    """The SQLite file of a sqlite URL (None for other databases)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    return Path(parsed.database or "")


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


async def _check(
    settings: Settings, client_id: str, endpoint: Endpoint, certificate: ClientCertificate | None
) -> tuple[dict[str, Any], CompiledClient | None, list[str]]:
    """Run the server's authenticator on (client_id, certificate); the event it logged, the compiled
    client (or None) and the facts."""
    from certbound.errors import OAuthError
    from certbound.server.clientauth.directory import ClientDirectory
    from certbound.server.clientauth.jwks_fetcher import JwksFetcher
    from certbound.server.clientauth.registry import ClientAuthenticator, load_client_cas
    from certbound.server.clientauth.types import AuthRequest
    from certbound.server.endpoints.paths import INTROSPECTION_PATH, REVOCATION_PATH, TOKEN_PATH
    from certbound.store.generation import GenerationWatcher
    from certbound.store.sql import open_store

    url = settings.effective_database_url
    db_file = _database_path(url)
    if db_file is not None and not db_file.is_file():
        raise UsageError(
            f"no database at {db_file}: point --data-dir (or --database-url) at the server's data, "
            "or start `certbound serve` once there"
        )
    try:
        verifier = load_client_cas(settings.client_ca)
    except (OSError, ValueError) as exc:
        raise UsageError(f"client_ca: {exc}") from None
    path = {"token": TOKEN_PATH, "introspection": INTROSPECTION_PATH, "revocation": REVOCATION_PATH}[endpoint]
    audiences = frozenset({settings.issuer_url, settings.issuer_url + path, settings.mtls_url + path})
    store = open_store(url)
    fetcher = JwksFetcher.from_settings(settings)
    collect = _Collect()
    auth_log = logging.getLogger("certbound.clientauth")
    auth_log.addHandler(collect)
    try:
        watcher = GenerationWatcher(store)
        try:
            await watcher.check()
        except Exception as exc:
            raise UsageError(
                f"cannot read the store at {_safe_url(url)}: {type(exc).__name__}: {exc}"
            ) from None
        directory = ClientDirectory(store, watcher, _sealer(settings))
        authenticator = ClientAuthenticator(
            store,
            directory,
            verifier,
            fetcher,
            assertion_max_lifetime=settings.assertion_max_lifetime,
            clock_skew=settings.clock_skew,
        )
        request = AuthRequest(
            endpoint=endpoint,
            form={"client_id": client_id},
            authorization=None,
            certificate=certificate,
            audiences=audiences,
        )
        # The decision is the event the authenticator logs: captured here (not printed, and no logging
        # configuration needed). Should structlog have been configured to cache its loggers, nothing is
        # captured and the event is rebuilt from the outcome (without the detail).
        outcome, reason, detail = "success", "ok", ""
        with capture_logs() as captured:
            try:
                await authenticator.authenticate(request)
            except OAuthError as exc:
                outcome, reason = "failure", exc.reason or "unknown"
            except Exception as exc:  # what the server would answer with a 500
                outcome, reason, detail = "error", "internal.error", type(exc).__name__
        logged = [e for e in captured if e.get("event") == "client_auth"]
        event = (
            dict(logged[-1]) if logged else _event(client_id, endpoint, certificate, outcome, reason, detail)
        )
        compiled = await directory.get(client_id) if event.get("reason") != "client.unknown" else None
        reason = str(event.get("reason"))
        facts = _facts(settings, compiled, endpoint, certificate, authenticator, verifier, reason)
        facts += [f"the server would log: {m}" for m in collect.messages]
        if compiled is not None and event.get("method") is None:
            event["method"] = compiled.method_for(endpoint)
        return event, compiled, facts
    finally:
        auth_log.removeHandler(collect)
        await fetcher.aclose()
        await store.close()


def _event(
    client_id: str,
    endpoint: str,
    certificate: ClientCertificate | None,
    outcome: str,
    reason: str,
    detail: str,
) -> dict[str, Any]:
    """A client_auth event as the server logs it, for when the real one could not be captured."""
    event: dict[str, Any] = {
        "event": "client_auth",
        "client_id": client_id,
        "endpoint": endpoint,
        "method": None,
        "presented": "certificate" if certificate else "client_id_only",
        "outcome": outcome,
        "reason": reason,
    }
    if detail:
        event["detail"] = detail
    if certificate is not None:
        from certbound.pki.dn import dn_to_rfc4514

        event |= {
            "cert_x5t_s256": certificate.x5t_s256,
            "cert_subject": dn_to_rfc4514(certificate.leaf.subject),
            "cert_issuer": dn_to_rfc4514(certificate.leaf.issuer),
            "cert_source": certificate.source,
        }
    return event


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _facts(
    settings: Settings,
    compiled: CompiledClient | None,
    endpoint: Endpoint,
    certificate: ClientCertificate | None,
    authenticator: ClientAuthenticator,
    verifier: ChainVerifier | None,
    reason: str,
) -> list[str]:
    from certbound.pki.dn import dn_to_rfc4514
    from certbound.pki.san import SubjectAltNames

    facts = [f"clients read from {_safe_url(settings.effective_database_url)}"]
    if certificate is not None:
        sans = _describe_sans(SubjectAltNames.from_cert(certificate.leaf))
        leaf = certificate.leaf
        facts.append(
            f"certificate valid {leaf.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to "
            f"{leaf.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC; SANs: {sans or 'none'}; "
            f"{len(certificate.chain)} more certificate(s) sent with it"
        )
    if compiled is None:
        return facts
    method = compiled.method_for(endpoint)
    facts.append(f"registered method for the {endpoint} endpoint: {method} ({METHOD_HOWTO.get(method, '?')})")
    if method == "tls_client_auth":
        if verifier is None:
            facts.append("no client CA is configured (client_ca): tls_client_auth cannot succeed")
        else:
            names = ", ".join(dn_to_rfc4514(c.subject) for c in verifier.trust_anchors)
            facts.append(f"trusted client CAs ({settings.client_ca}): {names}")
        rule = compiled.subject
        if rule is not None:
            facts.append(f"registered subject ({_KIND_FIELD[rule.kind]}): {rule.value!r}")
        if certificate is not None:
            verdict = authenticator.verdicts.facts(certificate, datetime.now(UTC))
            if verdict.ok:
                facts.append("the chain validates against the trusted client CAs")
            elif verdict.reason != reason:  # else the reason and detail above already say it
                facts.append(f"the chain does not validate: {verdict.reason}: {verdict.detail}")
    if method == "self_signed_tls_client_auth":
        facts.append(f"{len(compiled.certificates)} certificate(s) registered in jwks")
        if compiled.jwks_uri:
            facts.append(f"jwks_uri: {compiled.jwks_uri} (its x5c certificates count too)")
        if certificate is not None:
            facts.append(f"presented x5t#S256: {certificate.x5t_s256}")
    for problem in compiled.problems:
        facts.append(f"problem with the stored client: {problem}")
    bound = compiled.model.certificate_bound
    if bound:
        if certificate is not None:
            facts.append(
                "its access tokens are certificate-bound: a token issued on a connection with this "
                f"certificate carries cnf.x5t#S256 = {certificate.x5t_s256}"
            )
        else:
            facts.append("its access tokens are certificate-bound: without a certificate it gets no token")
    return facts


_KIND_FIELD = {
    "dn": "tls_client_auth_subject_dn",
    "dns": "tls_client_auth_san_dns",
    "uri": "tls_client_auth_san_uri",
    "ip": "tls_client_auth_san_ip",
    "email": "tls_client_auth_san_email",
}


def _describe_sans(sans: SubjectAltNames) -> str:
    parts = [f"DNS:{d}" for d in sans.dns] + [f"URI:{u}" for u in sans.uris]
    parts += [f"IP:{ip}" for ip in sans.ips] + [f"email:{e}" for e in sans.emails]
    return ", ".join(parts)


# -- the command ------------------------------------------------------------------------------------


def _fail(message: str) -> NoReturn:
    typer.echo(f"certbound explain: {message}", err=True)
    raise typer.Exit(2)


def _read_events(source: str) -> list[dict[str, Any]]:
    if source == "-":
        text = sys.stdin.read()
        where = "standard input"
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            raise UsageError(f"{source}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{source}: {exc.strerror or exc}") from None
        where = source
    events = client_auth_events(text)
    if not events:
        raise UsageError(
            f"no client_auth event in {where} (give a JSON log line of event client_auth, "
            "or the server's console log line)"
        )
    return events


def _emit(explanations: list[Explanation], as_json: bool) -> Iterator[str]:
    for index, explanation in enumerate(explanations):
        if as_json:
            yield json.dumps(explanation.as_json(), sort_keys=False)
        else:
            if index:
                yield ""
            yield explanation.render()


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
            explanations = [explain_event(e) for e in _read_events(event)]
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
    for line in _emit(explanations, as_json):
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
    if endpoint not in ENDPOINTS:
        raise UsageError(f"--endpoint: {endpoint!r} is not one of {', '.join(ENDPOINTS)}")
    which: Endpoint = ENDPOINTS[ENDPOINTS.index(endpoint)]
    if chain is not None and cert is None:
        raise UsageError("--chain needs --cert")
    certificate = _load_presented(cert, chain) if cert is not None else None
    flags = {"data_dir": data_dir, "database_url": database_url, "client_ca": client_ca, "dev": dev or None}
    settings = _settings(flags, config)
    event, compiled, facts = asyncio.run(_check(settings, client_id, which, certificate))
    explanation = explain_event(event, from_log=False)
    explanation.facts = facts
    if explanation.certificate is not None:
        explanation.certificate["source"] = None  # a file, not a connection: nothing to say
    method = compiled.method_for(which) if compiled is not None else None
    if method is not None and method not in CERT_METHODS and method in METHODS and method != "none":
        explanation.advice = [
            f"a certificate alone never authenticates this client: it uses {method}, so it must "
            f"{METHOD_HOWTO[method]} (a certificate may still be presented to bind its tokens)"
        ]
    return explanation


def register(app: typer.Typer) -> None:
    """Add `certbound explain` to the `certbound` command."""
    app.command("explain")(explain)


if __name__ == "__main__":  # pragma: no cover - for trying it without the CLI wiring
    standalone = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)
    register(standalone)
    standalone(sys.argv[1:])
