"""A decision in plain words: a ``client_auth`` event (from the log, or made from a live
:class:`~certbound.server.clientauth.decision.Decision`) or a gateway's ``gateway_request`` event ->
:class:`Explanation`, with the meaning and the advice of its reason code from :mod:`certbound.reasons`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from certbound.reasons import lookup
from certbound.server.clientauth.types import METHODS

if TYPE_CHECKING:
    from certbound.server.clientauth.decision import Decision

__all__ = [
    "CERT_METHODS",
    "METHOD_HOWTO",
    "Explanation",
    "explain_decision",
    "explain_event",
    "explain_gateway_event",
    "source_words",
]

CERT_METHODS = ("tls_client_auth", "self_signed_tls_client_auth")

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

UNKNOWN_CODE = "a reason code this version of certbound does not know"


@dataclass
class Explanation:
    """One decision in plain words (rendered for humans, or as JSON: :mod:`.render`).

    `kind` is the event's: ``client_auth`` (the server authenticating a client) or ``gateway_request``
    (the gateway letting a request through, or not: `route`, `request`, `status`, `error`)."""

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
    revocation: dict[str, Any] | None = None
    advice: list[str] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)
    kind: str = "client_auth"
    route: str | None = None
    request: str | None = None
    status: int | None = None
    error: str | None = None


#: The event fields of a revocation verdict (``cert.revoked``, ``cert.revocation_unknown``), by the
#: name `explain` gives them.
REVOCATION_FIELDS = {
    "certificate": "revocation_subject",
    "source": "revocation_source",
    "revoked_at": "revoked_at",
    "reason": "revocation_reason",
}


#: The gateway's binding refusals, by their names and by the shared ``cnf.*`` names of older logs.
_MISMATCH = frozenset({"binding.mismatch", "cnf.mismatch"})
_BINDING_REFUSALS = _MISMATCH | {"cert.missing_for_binding", "cnf.missing_certificate"}


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def _meaning(reason: str) -> str:
    entry = lookup(reason)
    return entry.meaning if entry is not None else UNKNOWN_CODE


def explain_event(event: Mapping[str, Any], *, from_log: bool = True) -> Explanation:
    """Plain words for one decision event: ``client_auth`` (from the log, or made from a live
    decision) or ``gateway_request``."""
    if event.get("event") == "gateway_request":
        return explain_gateway_event(event)
    outcome = str(event.get("outcome") or "unknown")
    reason = str(event.get("reason") or "unknown")
    accepted = outcome == "success"
    method = _str_or_none(event.get("method"))
    presented = _str_or_none(event.get("presented"))
    meaning = "the client authenticated" if accepted else _meaning(reason)
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
    revocation = {name: event.get(key) for name, key in REVOCATION_FIELDS.items() if event.get(key)}
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
        revocation=revocation or None,
    )
    if not accepted:
        explanation.advice = _advice(reason, method, presented, certificate, from_log=from_log)
    return explanation


def source_words(source: Any) -> str:
    """Where a certificate came from, in words (an event's ``cert_source``)."""
    text = str(source or "")
    if text == "tls":
        return "the TLS handshake"
    if text.startswith("header:"):
        return f"a trusted proxy's {text.removeprefix('header:')} header"
    if text == "file":
        return "a file given to certbound explain"
    return text or "an unknown source"


#: How the gateway came by the token of a ``gateway_request`` event (its ``token_source``).
_TOKEN_SOURCES = {
    "jwt": "verified as a JWT",
    "introspection": "introspected at the identity provider",
    "session": "held by the gateway in the browser's session (a login through the gateway)",
    "client_credentials": "obtained by the gateway with the caller's client credentials",
    "password": "obtained by the gateway with the caller's username and password",
    "userinfo": "checked at the identity provider's userinfo endpoint",
    "refresh_token": "obtained by the gateway with the caller's refresh token",
}


def explain_gateway_event(event: Mapping[str, Any]) -> Explanation:
    """Plain words for one ``gateway_request`` event of ``certbound gateway``."""
    outcome = str(event.get("outcome") or "unknown")
    reason = str(event.get("reason") or "unknown")
    accepted = outcome == "allowed"
    status = event.get("status")
    cert = event.get("cert_x5t_s256")
    bound_to = event.get("cnf_x5t_s256")
    facts: list[str] = []
    source = event.get("token_source")
    if source:
        how = _TOKEN_SOURCES.get(str(source), "introspected at the identity provider")
        cached = " (a cached verdict)" if event.get("cached") else ""
        who = f"client {event.get('client_id')!r}, subject {event.get('sub')!r}"
        facts.append(f"the token: {who}, {how}{cached}")
    if bound_to:
        facts.append(f"the token is bound to the certificate {bound_to}")
    if cert:
        facts.append(
            f"the request came with the certificate {cert}, from {source_words(event.get('cert_source'))}"
        )
    elif event.get("route") and reason != "route.unmatched":
        facts.append("the request came with no client certificate")
    if event.get("upstream_status") is not None:
        facts.append(f"the upstream answered {event['upstream_status']}")
    advice: list[str] = []
    if not accepted:
        entry = lookup(reason)
        if entry is not None:
            advice.append(entry.advice)
        if reason in _MISMATCH and bound_to and cert:
            advice.append(f"present the certificate {bound_to} with this token, not {cert}")
        if reason in _BINDING_REFUSALS and str(event.get("cert_source", "")).startswith("header:"):
            advice.append(
                "the certificate came from a proxy's header: check that the proxy forwards the client's own"
            )
    return Explanation(
        accepted=accepted,
        outcome=outcome,
        reason=reason,
        meaning="the request was let through" if accepted else _meaning(reason),
        client_id=_str_or_none(event.get("client_id")),
        endpoint=None,
        method=None,
        presented=None,
        detail=_str_or_none(event.get("detail")),
        certificate={"x5t_s256": cert, "source": event.get("cert_source")} if cert else None,
        revocation={n: event.get(k) for n, k in REVOCATION_FIELDS.items() if event.get(k)} or None,
        advice=advice,
        facts=facts,
        kind="gateway_request",
        route=_str_or_none(event.get("route")),
        request=" ".join(str(event[k]) for k in ("method", "path") if event.get(k)) or None,
        status=status if isinstance(status, int) else None,
        error=_str_or_none(event.get("error")),
    )


def explain_decision(decision: Decision, facts: list[str]) -> Explanation:
    """Plain words for a decision of the live check: the event the server would log for it, the facts
    behind it, and for a client that a certificate can never authenticate, the credential it needs."""
    from certbound.server.clientauth.events import event_fields

    explanation = explain_event(event_fields(decision), from_log=False)
    explanation.facts = facts
    if explanation.certificate is not None:
        explanation.certificate["source"] = None  # a file, not a connection: nothing to say
    method = decision.method
    if method is not None and method not in CERT_METHODS and method in METHODS and method != "none":
        explanation.advice = [
            f"a certificate alone never authenticates this client: it uses {method}, so it must "
            f"{METHOD_HOWTO[method]} (a certificate may still be presented to bind its tokens)"
        ]
    return explanation


def _advice(
    reason: str,
    method: str | None,
    presented: str | None,
    cert: Mapping[str, Any] | None,
    *,
    from_log: bool,
) -> list[str]:
    out: list[str] = []
    entry = lookup(reason)
    if entry is not None:
        out.append(entry.advice)
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
