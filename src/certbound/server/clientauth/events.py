"""One log event and one counter increment per authentication decision (issue 4, "explainable failures").

The event is made from the :class:`~certbound.server.clientauth.decision.Decision`; ``certbound
explain`` reads a decision through the same fields (:func:`event_fields`), so both say the same.

The event (structlog logger ``certbound.auth``, event ``client_auth``) says who, at which endpoint,
with which method (registered and presented), the outcome and the reason code, and which certificate
was on the connection: its ``x5t#S256``, subject and issuer (RFC 4514), where it came from (``tls`` or a
proxy header) and what the TLS layer concluded. It never holds a secret, an assertion or a token.

The counter ``certbound_client_auth_total{method, outcome, reason}`` has bounded labels: the registered
method (or ``unknown``), ``success``/``failure``/``error``, and a reason code. No client_id label.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final

import structlog
from prometheus_client import Counter

from certbound.observability.logwrite import emit
from certbound.pki.dn import cert_name_text
from certbound.reasons import OK
from certbound.server.clientauth.decision import Decision
from certbound.server.clientauth.failure import REASONS
from certbound.server.clientauth.types import METHODS
from certbound.tls.client_certificate import ClientCertificate, keep_names

__all__ = ["AUTH_TOTAL", "EVENT", "LOGGER_NAME", "event_fields", "record", "record_decision"]

LOGGER_NAME: Final = "certbound.auth"
EVENT: Final = "client_auth"

AUTH_TOTAL = Counter(
    "certbound_client_auth_total",
    "Client authentication decisions by registered method, outcome and reason code.",
    ["method", "outcome", "reason"],
)

_log = structlog.get_logger(LOGGER_NAME)
_children: dict[tuple[str, str, str], Any] = {}
_names: OrderedDict[str, tuple[str, str]] = OrderedDict()  # x5t#S256 -> (subject, issuer)
_MAX_NAMES = 1024
_MAX_ID = 255  # the longest valid client_id
_REASON_LABELS = frozenset({OK, *REASONS})  # any other code counts as "other": the labels stay bounded


def _subject_issuer(cert: ClientCertificate) -> tuple[str, str]:
    found = _names.get(cert.x5t_s256)
    if found is None:
        found = (cert_name_text(cert.leaf, "subject"), cert_name_text(cert.leaf, "issuer"))
        keep_names(_names, cert.x5t_s256, found, max(map(len, found)), _MAX_NAMES)
    return found


def record(
    *,
    endpoint: str,
    client_id: str | None,
    registered_method: str | None,
    presented: str,
    outcome: str,
    reason: str,
    certificate: ClientCertificate | None,
    detail: str = "",
    fields: Mapping[str, str] | None = None,
) -> None:
    """Log the decision and count it. `presented` names the mechanisms the request carried."""
    _record(endpoint, client_id, registered_method, presented, outcome, reason, certificate, detail, fields)


def record_decision(decision: Decision) -> None:
    """:func:`record` for a decision: what ``ClientAuthenticator.authenticate`` logs and counts."""
    _record(*_values(decision))


def _values(decision: Decision) -> tuple[Any, ...]:
    """The decision's parts in the order `_record` and `_fields` take them."""
    return (
        decision.endpoint,
        decision.client_id,
        decision.method,
        decision.presented,
        decision.outcome,
        decision.reason,
        decision.certificate,
        decision.detail,
        decision.fields,
    )


def _record(
    endpoint: str,
    client_id: str | None,
    registered_method: str | None,
    presented: str,
    outcome: str,
    reason: str,
    certificate: ClientCertificate | None,
    detail: str,
    extra: Mapping[str, str] | None,
) -> None:
    method_label = registered_method if registered_method in METHODS else "unknown"
    reason_label = reason if reason in _REASON_LABELS else "other"
    key = (method_label, outcome, reason_label)
    child = _children.get(key)
    if child is None:  # labels() costs microseconds; the label space is small and fixed
        child = _children[key] = AUTH_TOTAL.labels(method=method_label, outcome=outcome, reason=reason_label)
    child.inc()
    fields = _fields(
        endpoint, client_id, registered_method, presented, outcome, reason, certificate, detail, extra
    )
    # a client's decisions repeat field for field, request after request: the line is kept
    emit(_log, "info" if outcome == "success" else "warning", EVENT, fields, repeats=True)


def event_fields(decision: Decision) -> dict[str, Any]:
    """The fields the event for `decision` carries (``certbound explain`` reads a decision this way)."""
    return _fields(*_values(decision))


def _fields(
    endpoint: str,
    client_id: str | None,
    registered_method: str | None,
    presented: str,
    outcome: str,
    reason: str,
    certificate: ClientCertificate | None,
    detail: str,
    extra: Mapping[str, str] | None,
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "client_id": client_id[:_MAX_ID] if client_id is not None else None,  # as claimed: maybe junk
        "endpoint": endpoint,
        "method": registered_method,
        "presented": presented,
        "outcome": outcome,
        "reason": reason,
    }
    if detail:
        fields["detail"] = detail
    if certificate is not None:
        subject, issuer = _subject_issuer(certificate)
        fields.update(
            cert_x5t_s256=certificate.x5t_s256,
            cert_subject=subject,
            cert_issuer=issuer,
            cert_source=certificate.source,
            tls_verified=certificate.tls_verified,
            tls_error=certificate.tls_error,
        )
    if extra:
        fields.update(extra)
    return fields
