"""Explanations as text for a person, or as JSON Lines (``--json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from certbound.cli.explain.explanation import Explanation, source_words

__all__ = ["as_json", "as_text", "lines"]

_PRESENTED = {
    "basic": "an Authorization: Basic header",
    "client_secret": "a client_secret in the form",
    "client_assertion": "a client_assertion",
    "certificate": "a client certificate",
    "client_id_only": "only a client_id (no credential, no certificate)",
}


def as_json(e: Explanation) -> dict[str, Any]:
    if e.kind == "gateway_request":
        return {
            "kind": e.kind,
            "accepted": e.accepted,
            "outcome": e.outcome,
            "reason": e.reason,
            "meaning": e.meaning,
            "route": e.route,
            "request": e.request,
            "status": e.status,
            "error": e.error,
            "client_id": e.client_id,
            "detail": e.detail,
            "certificate": e.certificate,
            "revocation": e.revocation,
            "advice": e.advice,
            "facts": e.facts,
        }
    return {
        "accepted": e.accepted,
        "outcome": e.outcome,
        "reason": e.reason,
        "meaning": e.meaning,
        "client_id": e.client_id,
        "endpoint": e.endpoint,
        "method": e.method,
        "presented": e.presented,
        "detail": e.detail,
        "certificate": e.certificate,
        "revocation": e.revocation,
        "advice": e.advice,
        "facts": e.facts,
    }


def _revocation_lines(revocation: dict[str, Any] | None) -> list[str]:
    """A revoked (or unknown-status) certificate: which, when, why, and the OCSP responder or CRL."""
    if not revocation:
        return []
    out = []
    if revocation.get("revoked_at"):
        why = f" ({revocation['reason']})" if revocation.get("reason") else ""
        out.append(f"  revoked:   {revocation.get('certificate')} at {revocation['revoked_at']}{why}")
    elif revocation.get("certificate"):
        out.append(f"  status unknown for: {revocation['certificate']}")
    out.append(f"    said by: {revocation.get('source')}")
    return out


def _gateway_text(e: Explanation) -> str:
    where = f"{e.request or 'a request'} on route {e.route!r}" if e.route else (e.request or "a request")
    answer = " ".join(str(v) for v in (e.status, e.error) if v is not None)
    if e.accepted:
        head = f"ALLOWED: {where}"
    elif e.outcome == "error":
        head = f"ERROR: {where} ({answer}): the gateway could not decide or forward; not the caller's fault"
    else:
        head = f"REFUSED: {where} ({answer})"
    out = [head]
    if not e.accepted:
        out.append(f"  reason:    {e.reason}: {e.meaning}")
        if e.detail:
            out.append(f"  detail:    {e.detail}")
    out += _revocation_lines(e.revocation)
    out += [f"  - {fact}" for fact in e.facts]
    out += [f"  what to do: {item}" for item in e.advice]
    return "\n".join(out)


def as_text(e: Explanation) -> str:
    if e.kind == "gateway_request":
        return _gateway_text(e)
    who = f"client {e.client_id!r}" if e.client_id else "a client that named no client_id"
    where = f"at the {e.endpoint} endpoint" if e.endpoint else ""
    how = f"with {e.method}" if e.method else ""
    if e.accepted:
        head = f"ACCEPTED: {who} authenticated {where} {how}".rstrip()
    elif e.outcome == "error":
        head = f"ERROR: the server could not decide about {who} {where} (it answered 500)".rstrip()
    else:
        head = f"REFUSED: {who} {where}".rstrip() + " (invalid_client, 401)"
    out = [" ".join(head.split())]
    if not e.accepted:
        out.append(f"  reason:    {e.reason}: {e.meaning}")
        if e.detail:
            out.append(f"  detail:    {e.detail}")
    if e.method:
        out.append(f"  method:    {e.method} (registered for this endpoint)")
    if e.presented:
        out.append(f"  presented: {_presented_words(e.presented)}")
    cert = e.certificate
    if cert:
        out.append(f"  certificate: {cert.get('subject') or '(no subject)'}")
        out.append(f"    issuer:    {cert.get('issuer')}")
        out.append(f"    x5t#S256:  {cert.get('x5t_s256')}")
        if cert.get("source"):
            out.append(f"    from:      {source_words(cert['source'])}")
        if cert.get("tls_verified") is False and cert.get("tls_error"):
            out.append(f"    TLS layer: {cert['tls_error']} (only logged: the application decides)")
    out += _revocation_lines(e.revocation)
    for fact in e.facts:
        out.append(f"  - {fact}")
    for item in e.advice:
        out.append(f"  what to do: {item}")
    return "\n".join(out)


def lines(explanations: Iterable[Explanation], json_lines: bool) -> Iterator[str]:
    """What the command prints: one JSON object per explanation, or text blocks separated by a blank line."""
    for index, explanation in enumerate(explanations):
        if json_lines:
            yield json.dumps(as_json(explanation), sort_keys=False)
        else:
            if index:
                yield ""
            yield as_text(explanation)


def _presented_words(presented: str) -> str:
    return ", ".join(_PRESENTED.get(part, part) for part in presented.split("+"))
