"""One structured event and one counter increment per gateway decision.

The event (structlog logger ``certbound.gateway``, event ``gateway_request``) says which route, the
outcome (``allowed``; ``refused``: the caller's request was refused; ``error``: the gateway, its IdP
or the upstream failed), the reason code (``ok`` when allowed), the status and the answer's
``error``, who the token says the caller is (``client_id``, ``sub``), where the verdict came from
(``token_source``: ``jwt`` or ``introspection``, ``cached``), the certificate the token is bound to
(``cnf_x5t_s256``) and the one on the request (``cert_x5t_s256``, ``cert_source``), whether the
binding was verified (``bound``), and the upstream's status. It never holds the token.
``certbound explain --event`` reads these events.

The counter ``certbound_gateway_requests_total{route, outcome, reason}`` has bounded labels: the
configured route names (``unmatched`` for none), three outcomes, catalogued reason codes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

import structlog
from prometheus_client import Counter

from certbound.gateway.answers import GatewayError
from certbound.gateway.tokens import TokenInfo
from certbound.observability.logwrite import emit
from certbound.reasons import OK
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["EVENT", "LOGGER_NAME", "REQUESTS_TOTAL", "UNMATCHED", "Record"]

LOGGER_NAME: Final = "certbound.gateway"
EVENT: Final = "gateway_request"
UNMATCHED: Final = "unmatched"
_MAX_FIELD: Final = 256

REQUESTS_TOTAL = Counter(
    "certbound_gateway_requests_total",
    "Gateway decisions by route, outcome (allowed, refused, error) and reason code.",
    ["route", "outcome", "reason"],
)

_log = structlog.get_logger(LOGGER_NAME)
_children: dict[tuple[str, str, str], Any] = {}


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_FIELD else value[:_MAX_FIELD] + "…"


class Record:
    """What one request's event will say, filled in as the request goes; :meth:`emit` once at the end."""

    __slots__ = (
        "bound",
        "cached",
        "cert",
        "detail",
        "error",
        "extra",
        "info",
        "method",
        "mode",
        "path",
        "peer",
        "reason",
        "route",
        "started",
        "status",
        "upstream",
        "upstream_error",
    )

    def __init__(self, mode: str, method: str, path: str, peer: str | None) -> None:
        self.mode = mode
        self.method = method
        self.path = path
        self.peer = peer
        self.started = time.perf_counter()
        self.route = UNMATCHED
        self.status = 500
        self.reason = OK
        self.detail = ""
        self.error: str | None = None
        self.info: TokenInfo | None = None
        self.cached = False
        self.cert: ClientCertificate | None = None
        self.bound = False
        self.upstream: int | None = None
        self.upstream_error: str | None = None
        self.extra: Mapping[str, str] | None = None

    def answered(self, error: GatewayError) -> None:
        """The request ended with `error`'s answer."""
        self.status, self.reason, self.detail, self.error = (
            error.status,
            error.reason,
            error.detail,
            error.error,
        )
        self.extra = error.fields

    @property
    def outcome(self) -> str:
        if self.reason == OK:
            return "allowed"
        return "refused" if self.status < 500 else "error"

    def emit(self) -> None:
        outcome = self.outcome
        key = (self.route, outcome, self.reason)
        child = _children.get(key)
        if child is None:  # labels() costs microseconds; the label space is small and fixed
            child = _children[key] = REQUESTS_TOTAL.labels(
                route=self.route, outcome=outcome, reason=self.reason
            )
        child.inc()
        fields: dict[str, Any] = {
            "route": self.route,
            "mode": self.mode,
            "method": self.method,
            "path": _clip(self.path),
            "status": self.status,
            "outcome": outcome,
            "reason": self.reason,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 3),
            "client": self.peer,
        }
        if self.error is not None:
            fields["error"] = self.error
        if self.detail:
            fields["detail"] = _clip(self.detail)
        info = self.info
        if info is not None:
            fields["client_id"] = info.client_id
            fields["sub"] = info.subject
            fields["token_source"] = info.source
            fields["cached"] = self.cached
            if info.thumbprint is not None:
                fields["cnf_x5t_s256"] = info.thumbprint
        cert = self.cert
        if cert is not None:
            fields["cert_x5t_s256"] = cert.x5t_s256
            fields["cert_source"] = cert.source
        fields["bound"] = self.bound
        if self.upstream is not None:
            fields["upstream_status"] = self.upstream
        if self.upstream_error is not None:
            fields["upstream_error"] = _clip(self.upstream_error)
        if self.extra:  # a revocation's source, time and reason (cert.revoked)
            fields.update((name, _clip(value)) for name, value in self.extra.items() if name not in fields)
        level = "info" if outcome == "allowed" else "warning" if outcome == "refused" else "error"
        emit(_log, level, EVENT, fields)
