"""The gateway's ASGI application: ``/healthz``, the ``auth_request`` decision endpoint, and the proxy.

A plain ASGI callable, not a Starlette app: every request is a route look-up, one pass over its
headers, the admission (:meth:`certbound.gateway.routes.Route.admit`) and the forwarding, so the
framework's request objects, router and middleware stack would be all overhead (docs/gateway.md
has the measurement). The trusted-proxy certificate reader (:mod:`certbound.tls.forwarded`) wraps it,
exactly as it wraps the server.

Every request that is not a health check ends in one event (:mod:`certbound.gateway.events`), and
every refusal or failure is rendered by :func:`certbound.gateway.answers.render`.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final
from urllib.parse import quote, unquote

from starlette.types import ASGIApp, Receive, Scope, Send

from certbound.gateway.answers import (
    GatewayError,
    bad_request,
    forbidden,
    internal_error,
    not_found,
    render,
)
from certbound.gateway.body import BufferedBody
from certbound.gateway.config import HEALTH_PATH, AuthRequestSettings
from certbound.gateway.events import Record
from certbound.gateway.headers import forwarding_headers, read_incoming
from certbound.gateway.relying import Admission
from certbound.gateway.replies import Reply, strip_cookies
from certbound.gateway.routes import Route, RouteTable, check_path
from certbound.gateway.upstream import ClientGone
from certbound.tls.client_certificate import client_certificate_from_scope
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware
from certbound.tls.whole_response import respond

__all__ = ["GatewayApp", "create_app"]

log = logging.getLogger("certbound.gateway")

DEFAULT_REALM: Final = "certbound"
_HEALTHY: Final = b'{"status":"ok"}'
_JSON: Final = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]


async def _send_answer(send: Send, record: Record, error: GatewayError, route: Route | None) -> None:
    """Answer `error` (rendered with the route's realm) and note it for the request's event."""
    record.answered(error)
    answer = render(error, route.realm if route is not None else DEFAULT_REALM)
    await respond(send, answer.status, answer.headers, answer.body, keep=True)  # rendered here


async def _send_reply(send: Send, record: Record, reply: Reply) -> None:
    """Send an answer the gateway gives itself (a login redirect, a logout) and note it."""
    record.status, record.reason = reply.status, reply.reason
    if reply.detail:
        record.detail = reply.detail
    await send({"type": "http.response.start", "status": reply.status, "headers": reply.all_headers()})
    await send({"type": "http.response.body", "body": reply.body})


def _unexpected(exc: Exception, where: str) -> GatewayError:
    log.exception("gateway: unexpected error on %s", where[:200])
    return internal_error(f"{type(exc).__name__}: {exc}")


async def _lifespan(receive: Receive, send: Send) -> None:
    """Nothing to start: the services are opened around the app (`certbound.gateway.run.open_app`)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def _target(scope: Scope, route: Route, prefix: str) -> bytes:
    """The path and query sent upstream: as received, less the prefix with ``strip_path``."""
    raw: bytes = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
    if route.strip_path and prefix != "/":
        encoded = prefix.encode("utf-8")
        if raw.startswith(encoded):
            raw = raw[len(encoded) :]
        else:  # the caller percent-encoded part of the prefix: rebuild from the decoded path
            raw = quote(scope["path"][len(prefix) :]).encode("ascii")
        if not raw.startswith(b"/"):  # what followed the prefix was ";params" or nothing
            raw = b"/" + raw
    query: bytes = scope.get("query_string", b"")
    return raw + b"?" + query if query else raw


class GatewayApp:
    """The gateway over its compiled routes (see the module docstring)."""

    def __init__(
        self, routes: RouteTable, forwarded: ForwardedCertConfig, auth_request: AuthRequestSettings | None
    ) -> None:
        self._routes = routes
        self._forwarded = forwarded
        self._auth_request = auth_request
        self._auth_path = auth_request.path if auth_request is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path == HEALTH_PATH:
                await self._health(scope, send)
            elif path == self._auth_path:
                await self._decide(scope, send)
            else:
                await self._proxy(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        else:  # websocket: not proxied
            await send({"type": "websocket.close", "code": 1008})

    @staticmethod
    async def _health(scope: Scope, send: Send) -> None:
        status = 200 if scope["method"] in ("GET", "HEAD") else 405
        await send({"type": "http.response.start", "status": status, "headers": _JSON})
        await send({"type": "http.response.body", "body": _HEALTHY if status == 200 else b""})

    async def _proxy(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        peer = client[0] if client else None
        method: str = scope["method"]
        path: str = scope["path"]
        record = Record("proxy", method, path, peer)
        route: Route | None = None
        try:
            check_path(path)
            route, prefix = self._route(path, record)
            upstream = route.upstream
            if upstream is None:  # a route for auth_request only
                raise not_found("route.unmatched", "no route serves this path")
            cert = record.cert = client_certificate_from_scope(scope)
            incoming = read_incoming(
                scope["headers"], route.identity.stripped, trusted_peer=self._forwarded.trusts(peer)
            )
            decided = None
            body = BufferedBody(receive)
            receive = body.receive
            relying = route.relying
            if relying is not None:
                decided = await relying.decide(scope, incoming.authorization, body, record)
                incoming.kept = strip_cookies(incoming.kept, relying.cookie_names)  # the gateway's own
                private = relying.private_headers
                incoming.kept = [h for h in incoming.kept if h[0] not in private]
            if isinstance(decided, Reply):
                await _send_reply(send, record, decided)
                return
            if isinstance(decided, Admission):
                route.check_claims(decided.info)
                headers = [h for h in incoming.kept if h[0] != decided.token_header[0]]
                headers.append(decided.token_header)
                if body.replaced:  # the form went on without the caller's credentials
                    headers = [h for h in headers if h[0] != b"content-length"]
                    headers.append((b"content-length", str(body.length()).encode("ascii")))
            else:
                await route.admit(incoming.authorization, cert, record)
                headers = incoming.kept
                if not route.hide_credentials:
                    headers.append((b"authorization", incoming.authorization[0]))
            assert record.info is not None
            headers += forwarding_headers(incoming, peer)
            headers += route.identity.values(record.info, record.bound)
            extra = {"answer_headers": decided.answer_headers} if isinstance(decided, Admission) else {}
            status, broke = await upstream.forward(
                method, _target(scope, route, prefix), headers, incoming.has_body, receive, send, **extra
            )
            record.status = record.upstream = status
            record.upstream_error = broke
        except GatewayError as error:
            await _send_answer(send, record, error, route)
        except ClientGone:
            record.status, record.reason = 499, "request.cancelled"
        except Exception as exc:
            with contextlib.suppress(Exception):  # the answer had begun: the connection is cut instead
                await _send_answer(send, record, _unexpected(exc, f"{method} {path}"), None)
        finally:
            record.emit()

    def _route(self, path: str, record: Record) -> tuple[Route, str]:
        """The route of `path` and the prefix it matched by (noted on `record`); 404 without one."""
        match = self._routes.match(path)
        if match is None:
            raise not_found("route.unmatched", "no route serves this path")
        record.route = match[0].name
        return match

    async def _decide(self, scope: Scope, send: Send) -> None:
        """nginx ``auth_request``: the same admission, answered 200 with the identity headers (which
        ``auth_request_set`` copies upstream) or the refusal itself; the request goes nowhere."""
        settings = self._auth_request
        assert settings is not None
        client = scope.get("client")
        peer = client[0] if client else None
        uri_header = settings.original_uri_header.lower().encode("ascii")
        method_header = settings.original_method_header.lower().encode("ascii")
        authorization: list[bytes] = []
        uri = original_method = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization.append(value)
            elif name == uri_header:
                uri = value.decode("latin-1")
            elif name == method_header:
                original_method = value.decode("latin-1")
        # the path as nginx sent it ($request_uri): up to the query, never parsed as a URL (a
        # "//host/path" would lose its first segment to a netloc)
        path = unquote(uri.partition("?")[0]) if uri else ""
        record = Record("auth_request", original_method or scope["method"], path, peer)
        route: Route | None = None
        try:
            if not self._forwarded.trusts(peer):
                raise forbidden("auth_request.untrusted_peer", "decisions are for trusted proxies only")
            if not uri:
                raise bad_request("auth_request.missing_uri", "no original URI was given", challenge=False)
            check_path(path)
            route, _ = self._route(path, record)
            cert = record.cert = client_certificate_from_scope(scope)
            await route.admit(authorization, cert, record)
            assert record.info is not None
            record.status = 200
            headers = [*_JSON, *route.identity.values(record.info, record.bound)]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
        except GatewayError as error:
            await _send_answer(send, record, error, route)
        except Exception as exc:
            await _send_answer(send, record, _unexpected(exc, f"a decision for {path}"), None)
        finally:
            record.emit()


def create_app(
    routes: RouteTable, forwarded: ForwardedCertConfig, auth_request: AuthRequestSettings | None
) -> ASGIApp:
    """The gateway app, behind the trusted-proxy certificate reader (as the server's app is)."""
    return ForwardedCertificateMiddleware(GatewayApp(routes, forwarded, auth_request), forwarded)
