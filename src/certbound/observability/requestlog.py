"""One structured event per HTTP request, and the request metrics, from one ASGI middleware.

The event (logger ``certbound.request``, event ``request``) has the method, path, status, duration,
peer address, endpoint (the route's path template, so ``/register/{client_id}``), and when known the
client_id, the client certificate's thumbprint and where it came from, and on every failure a
``reason`` code. The reason is, in order: one noted during the request (:func:`note`, or any log
event carrying ``reason`` such as ``client_auth``'s, via :func:`capture_event`), else the OAuth
``error`` of a JSON error body (``oauth.invalid_client``), else ``http.<status>``.

It replaces uvicorn's access log. Request and query bodies are never logged; the query string is not
logged at all (it is where careless clients put tokens).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from certbound.observability import metrics
from certbound.observability.logwrite import emit
from certbound.tls.client_certificate import client_certificate_from_scope

__all__ = [
    "EVENT",
    "LOGGER_NAME",
    "RequestLogMiddleware",
    "Serving",
    "capture_event",
    "note",
    "record_request",
]

LOGGER_NAME: Final = "certbound.request"
EVENT: Final = "request"
UNMATCHED: Final = "unmatched"
_MAX_ERROR_BODY = 4096
_MAX_FIELD = 256

_log = structlog.get_logger(LOGGER_NAME)
_facts: ContextVar[dict[str, Any] | None] = ContextVar("certbound_request_facts", default=None)


def note(**fields: Any) -> None:
    """Add facts (``reason``, ``client_id``, ...) to the current request's event; no-op outside one."""
    current = _facts.get()
    if current is not None:
        current.update({key: value for key, value in fields.items() if value is not None})


def capture_event(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """structlog processor: a ``reason`` (other than ``ok``) or ``client_id`` logged while a request
    is served is noted on that request's event."""
    current = _facts.get()
    if current is None or event_dict.get("event") == EVENT:
        return event_dict
    reason = event_dict.get("reason")
    if isinstance(reason, str) and reason and reason != "ok":
        current["reason"] = reason
    client_id = event_dict.get("client_id")
    if isinstance(client_id, str) and client_id:
        current.setdefault("client_id", client_id)
    if event_dict.get("event") == "client_auth" and isinstance(event_dict.get("method"), str):
        current.setdefault("auth_method", event_dict["method"])
    return event_dict


@dataclass
class _Response:
    """What the event needs of the answer: its status, and the body of a JSON error (for its code)."""

    status: int | None = None
    json_error: bool = False
    body: bytes = b""

    def started(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> None:
        self.status = status
        if status >= 400:
            content_type = dict(headers).get(b"content-type", b"")
            self.json_error = content_type.startswith(b"application/json")

    def sent(self, body: bytes | memoryview) -> None:
        if self.json_error and len(self.body) < _MAX_ERROR_BODY:
            self.body += body[:_MAX_ERROR_BODY]


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


def _error_code(response: _Response) -> str | None:
    if not response.json_error or not response.body:
        return None
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return f"oauth.{error}" if isinstance(error, str) and error.isascii() and len(error) < 64 else None


def _clip(value: str) -> str:
    return value if len(value) <= _MAX_FIELD else value[:_MAX_FIELD] + "…"


class RequestLogMiddleware:
    """ASGI middleware: time the request, watch the response status, log one event, count it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with Serving(scope) as response:

            async def watch(message: Message) -> None:
                if message["type"] == "http.response.start":
                    response.started(int(message["status"]), message.get("headers") or ())
                else:
                    response.sent(message.get("body", b""))
                await send(message)

            await self.app(scope, receive, watch)


class Serving:
    """The request log's part in serving one request, around the code that answers it: ``with
    Serving(scope) as response:`` notes the request's facts (:func:`note`) while the block runs, which
    fills in `response` (``started``, ``sent``); leaving it logs and counts the request, an exception
    included (a cancelled request as 499 ``request.cancelled``, any other error as 500
    ``server.unhandled_error`` unless an answer had started). The middleware uses it, and so do the hot
    routes served ahead of it (`certbound.server.endpoints.hot_routes`)."""

    __slots__ = ("_started", "_token", "facts", "response", "scope")

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.facts: dict[str, Any] = {}
        self.response = _Response()

    def __enter__(self) -> _Response:
        self._started = time.perf_counter()
        self._token = _facts.set(self.facts)
        return self.response

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        response, facts = self.response, self.facts
        if kind is not None:
            if issubclass(kind, asyncio.CancelledError):
                if response.status is None:
                    response.status = 499
                    facts.setdefault("reason", "request.cancelled")
            elif issubclass(kind, Exception):
                if response.status is None:
                    response.status = 500
                facts.setdefault("reason", "server.unhandled_error")
        _facts.reset(self._token)
        record_request(self.scope, response, facts, time.perf_counter() - self._started)


def record_request(scope: Scope, response: _Response, facts: dict[str, Any], seconds: float) -> None:
    """Count the request and log its event (`facts`: what was noted while it was served)."""
    status = response.status if response.status is not None else 500
    method = str(scope.get("method", ""))
    endpoint = _endpoint(scope)
    metrics.observe_request(endpoint, method, status, seconds)
    client = scope.get("client")
    fields: dict[str, Any] = {
        "method": method,
        "path": _clip(str(scope.get("path", ""))),
        "status": status,
        "duration_ms": round(seconds * 1000, 3),
        "client": client[0] if client else None,
        "endpoint": endpoint,
        "http_version": scope.get("http_version"),
    }
    if "client_id" in facts:
        fields["client_id"] = _clip(str(facts["client_id"]))
    if "auth_method" in facts:
        fields["auth_method"] = facts["auth_method"]
    reason = facts.get("reason")
    if reason is None and status >= 400:
        reason = _error_code(response) or f"http.{status}"
    if reason is not None:
        fields["reason"] = reason
    cert = client_certificate_from_scope(scope)
    if cert is not None:
        fields["cert_x5t_s256"] = cert.x5t_s256
        fields["cert_source"] = cert.source
        fields["tls_verified"] = cert.tls_verified
    # a client's requests repeat field for field but for the duration: the line is kept with a hole
    emit(_log, "error" if status >= 500 else "info", EVENT, fields, repeats=True, varying="duration_ms")
