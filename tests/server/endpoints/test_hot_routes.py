"""HotRoutes: exact hot paths are served ahead of the middleware stack, doing its work for them.

Each test builds a `CertboundApp` over a stack that says who answered; what the stack would have done
for a hot request (read forwarded certificates, log and count the request, answer a bug with 500) must
happen on the hot path too. That the real endpoints answer and log alike on both paths is
tests/server/endpoints/test_fast_paths.py's.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from certbound.errors import OAuthError
from certbound.observability.requestlog import RequestLogMiddleware, note
from certbound.server.endpoints.hot_routes import CertboundApp, HotRoutes
from certbound.server.endpoints.oauth_endpoint import OAuthEndpoint
from certbound.server.endpoints.responses import json_response
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware
from tests.observability.conftest import Captured, logging_to
from tests.tls.uvicorn_cycle import make_cycle


class _Answer(OAuthEndpoint):
    """Answers with what it saw: its name, the route in the scope, and any forwarding header left."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def handle(self, request: Request) -> Response:
        note(client_id="c1")
        route = request.scope.get("route")
        left = request.headers.get("x-ssl-client-cert", "-")
        return json_response({"by": self.name, "route": getattr(route, "path", None), "header": left})


class _Refuses(OAuthEndpoint):
    async def handle(self, request: Request) -> Response:
        raise OAuthError("invalid_client", "no", status=401, reason="client.unknown")


class _Broken(OAuthEndpoint):
    async def respond(self, request: Request) -> Response:  # escapes OAuthEndpoint's own handling
        raise RuntimeError("a bug")


class _Stack:  # an ASGI app (an instance: Route calls it as ASGI, not as a request handler)
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse(f"stack {scope['path']}")(scope, receive, send)


class _Counted:
    """A middleware counting the requests that pass the stack."""

    calls: list[str]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        _Counted.calls.append(scope["path"])
        await self.app(scope, receive, send)


def _app(*, hot: bool = True) -> CertboundApp:
    config = ForwardedCertConfig()  # no proxy trusted: forwarding headers are removed and ignored
    forwarded = ForwardedCertificateMiddleware(None, config)  # type: ignore[arg-type]
    routes = [
        Route("/token", _Answer("token")),
        Route("/refuse", _Refuses()),
        Route("/broken", _Broken()),
    ]
    app = CertboundApp(
        routes=[*routes, Route("/other", _Stack())],
        middleware=[Middleware(_Counted), Middleware(RequestLogMiddleware), Middleware(forwarded.around)],
    )
    if hot:
        app.serve_ahead(HotRoutes(routes, forwarded))
    return app


@pytest.fixture(autouse=True)
def _counted() -> None:
    _Counted.calls = []


@pytest.fixture
async def logged() -> AsyncIterator[Captured]:
    stream = io.StringIO()
    with logging_to(stream):
        yield Captured(stream)


def _client(app: CertboundApp) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("192.0.2.7", 1234))
    return httpx.AsyncClient(transport=transport, base_url="https://as.test")


async def test_exact_paths_are_served_hot_and_the_rest_by_the_stack(logged: Captured) -> None:
    app = _app()
    async with _client(app) as http:
        hot = await http.post("/token", headers={"x-ssl-client-cert": "forged"})
        assert hot.json() == {"by": "token", "route": "/token", "header": "-"}  # header removed, route set
        assert hot.headers["cache-control"] == "no-store"
        assert (await http.get("/token")).status_code == 405  # the endpoint's own 405
        assert (await http.post("/tokens")).status_code == 404  # not exact: the stack's router
        assert (await http.get("/other")).text == "stack /other"
    assert _Counted.calls == ["/tokens", "/other"]  # the hot requests never entered the stack
    requests = [e for e in logged.events() if e["event"] == "request"]
    assert [(e["path"], e["status"]) for e in requests] == [
        ("/token", 200), ("/token", 405), ("/tokens", 404), ("/other", 200)
    ]  # fmt: skip
    first = requests[0]
    assert (first["endpoint"], first["client_id"], first["client"]) == ("/token", "c1", "192.0.2.7")
    assert requests[1]["reason"] == "oauth.invalid_request"  # from the JSON error body, as the stack's
    ignored = [e for e in logged.events() if e["event"] == "forwarded_cert_ignored"]
    assert len(ignored) == 1  # the forged header, on the hot path, through the same reader


async def test_the_hot_path_logs_as_the_stack_does(logged: Captured) -> None:
    """The same requests through the stack: the same events, but for the time they took."""
    for hot in (True, False):
        async with _client(_app(hot=hot)) as http:
            await http.post("/token", headers={"x-ssl-client-cert": "forged"})
            await http.post("/refuse")
    events = [
        {k: v for k, v in e.items() if k not in ("timestamp", "duration_ms")} for e in logged.events()
    ]
    half = len(events) // 2
    assert half
    assert events[:half] == events[half:]
    assert any(e.get("reason") == "client.unknown" and e["event"] == "request" for e in events)


async def test_a_bug_is_answered_500_and_raised(logged: Captured) -> None:
    async with _client(_app()) as http:
        response = await http.post("/broken")
    assert response.status_code == 500
    assert response.json() == {"error": "server_error"}
    (event,) = [e for e in logged.events() if e["event"] == "request"]
    assert (event["status"], event["reason"]) == (500, "server.unhandled_error")
    with pytest.raises(RuntimeError, match="a bug"):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="https://x") as http:
            await http.post("/broken")


def test_only_bare_oauth_endpoints_taking_every_method_may_be_hot() -> None:
    """What a route would do around its endpoint (its middleware, its methods) the hot path skips."""
    forwarded = ForwardedCertificateMiddleware(None, ForwardedCertConfig())  # type: ignore[arg-type]
    refused = [
        Route("/other", _Stack()),
        Route("/token", _Answer("token"), methods=["POST"]),
        Route("/token", _Answer("token"), middleware=[Middleware(_Counted)]),
    ]
    for route in refused:
        with pytest.raises(TypeError, match="bare OAuthEndpoint"):
            HotRoutes([route], forwarded)


def test_nothing_may_be_added_to_the_stack_that_the_hot_routes_would_skip() -> None:
    app = _app()
    with pytest.raises(RuntimeError, match="would not see the hot routes"):
        app.add_middleware(_Counted)
    _app(hot=False).add_middleware(_Counted)  # without hot routes, as Starlette
    limited = CertboundApp(max_body_size=1024)
    forwarded = ForwardedCertificateMiddleware(None, ForwardedCertConfig())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_body_size"):
        limited.serve_ahead(HotRoutes([], forwarded))


async def test_under_uvicorn_a_hot_answer_is_one_write_of_the_stacks_bytes(logged: Captured) -> None:
    """uvicorn's own ``send`` (the cycle's): the hot path writes its answer at once
    (certbound.tls.whole_response), the stack in two writes, the same bytes."""
    seen = {}
    for hot in (True, False):
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "https", "path": "/token", "raw_path": b"/token", "root_path": "", "query_string": b"",
            "headers": [(b"host", b"as.test")], "client": ("192.0.2.7", 1234), "server": ("as.test", 443),
        }  # fmt: skip
        cycle, transport, answered = make_cycle(scope=scope)
        await _app(hot=hot)(scope, cycle.receive, cycle.send)
        seen[hot] = transport.writes
        assert answered == [1]
    assert len(seen[True]) == 1
    assert len(seen[False]) == 2
    assert seen[True] == [b"".join(seen[False])]
    assert seen[True][0].startswith(b"HTTP/1.1 200 OK\r\n")
