"""The request log middleware in a small Starlette app: one event per request, reasons on failures."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from certbound.errors import OAuthError
from certbound.observability import metrics
from certbound.observability.requestlog import RequestLogMiddleware, note
from certbound.server.endpoints.responses import oauth_error_response
from tests.observability.conftest import Captured


async def ok(request: Request) -> PlainTextResponse:
    note(client_id=request.path_params.get("client_id"))
    return PlainTextResponse("ok")


async def auth_fails(request: Request) -> JSONResponse:
    log = structlog.get_logger("certbound.auth")
    log.warning(
        "client_auth",
        client_id="c9",
        method="client_secret_basic",
        outcome="failure",
        reason="secret.mismatch",
    )
    return JSONResponse({"error": "invalid_client"}, 401)


async def plain_error(request: Request) -> JSONResponse:
    return JSONResponse({"error": "invalid_request", "error_description": "x"}, 400)


async def grant_refused(request: Request) -> JSONResponse:
    return oauth_error_response(OAuthError("invalid_scope", "no", reason="scope.not_registered"))


async def crash(request: Request) -> PlainTextResponse:
    raise RuntimeError("bug")


def app() -> Starlette:
    return Starlette(
        routes=[
            Route("/ok/{client_id}", ok),
            Route("/auth", auth_fails, methods=["POST"]),
            Route("/bad", plain_error),
            Route("/scope", grant_refused),
            Route("/crash", crash),
        ],
        middleware=[Middleware(RequestLogMiddleware)],
    )


async def call(method: str, path: str, **kw: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app(), raise_app_exceptions=False, client=("192.0.2.7", 4444))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kw)


def requests_logged(captured: Captured) -> list[dict[str, Any]]:
    return [e for e in captured.events() if e["event"] == "request"]


async def test_one_event_per_request_with_route_template(captured: Captured) -> None:
    await call("GET", "/ok/abc?access_token=secret-in-query")
    await call("GET", "/ok/def")
    events = requests_logged(captured)
    assert len(events) == 2
    first = events[0]
    assert first["method"] == "GET"
    assert first["path"] == "/ok/abc"  # no query string
    assert first["status"] == 200
    assert first["endpoint"] == "/ok/{client_id}"
    assert first["client"] == "192.0.2.7"
    assert first["client_id"] == "abc"
    assert first["duration_ms"] >= 0
    assert "reason" not in first
    assert "secret-in-query" not in captured.text()


async def test_failure_reason_from_the_auth_event(captured: Captured) -> None:
    response = await call("POST", "/auth", data={"client_secret": "s3cr3t-value-that-must-not-leak"})
    assert response.status_code == 401
    (event,) = requests_logged(captured)
    assert event["reason"] == "secret.mismatch"
    assert event["client_id"] == "c9"
    assert event["auth_method"] == "client_secret_basic"
    assert "s3cr3t-value" not in captured.text()


@pytest.mark.parametrize(
    ("path", "status", "reason"),
    [
        ("/bad", 400, "oauth.invalid_request"),
        ("/nowhere", 404, "http.404"),
        ("/crash", 500, "server.unhandled_error"),
    ],
)
async def test_every_failure_has_a_reason(captured: Captured, path: str, status: int, reason: str) -> None:
    response = await call("GET", path)
    assert response.status_code == status
    (event,) = requests_logged(captured)
    assert event["status"] == status
    assert event["reason"] == reason


async def test_an_unmatched_path(captured: Captured) -> None:
    await call("GET", "/x")
    (event,) = requests_logged(captured)
    assert event["endpoint"] == "unmatched"


async def test_requests_are_counted(captured: Captured) -> None:
    before = metrics.REQUESTS.labels(endpoint="/bad", method="GET", status="400")._value.get()
    await call("GET", "/bad")
    after = metrics.REQUESTS.labels(endpoint="/bad", method="GET", status="400")._value.get()
    assert after == before + 1


async def test_note_outside_a_request_is_harmless() -> None:
    note(reason="nothing")


async def test_an_oauth_error_carries_its_precise_reason(captured: Captured) -> None:
    resp = await call("GET", "/scope")
    assert resp.json() == {"error": "invalid_scope", "error_description": "no"}  # never the reason
    assert requests_logged(captured)[-1]["reason"] == "scope.not_registered"
