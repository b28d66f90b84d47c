"""``fast_paths`` on and off: the hot endpoints give the same answers and log the same events.

Two apps over the same services (so one token serves both): the one `create_app` builds by default,
whose token, introspection and revocation requests `HotRoutes` serves ahead of Starlette's
middleware stack and router, and one built with ``fast_paths = false``, where they go the
general way. Every request is sent to both, one after the other; what may differ between two
answers to the same request (a fresh token, a signature) is masked before the comparison.
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.types import Message

from certbound.observability.logs import flush_logs
from certbound.server.app import create_app
from certbound.server.endpoints.form import MAX_FORM_BYTES
from certbound.server.endpoints.hot_routes import CertboundApp, HotRoutes
from certbound.server.grants import GrantRegistry
from tests.observability.conftest import logging_to
from tests.server.endpoints.harness import API, ISSUER, SECRET, CertificateFromHeader, Harness

FORM = "application/x-www-form-urlencoded"
#: What the comparison looks at: the status, these headers, and the body.
HEADERS = (
    "content-type",
    "content-length",
    "cache-control",
    "pragma",
    "www-authenticate",
    "allow",
    "location",
)
#: Log fields that differ between two runs of the same request.
VOLATILE = {"timestamp", "duration_ms", "jti"}


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    form: list[tuple[str, str]] | None = None
    content: bytes | None = None
    headers: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def body(self) -> bytes:
        if self.content is not None:
            return self.content
        return urlencode(self.form or []).encode()


def basic(client_id: str, secret: str = SECRET) -> tuple[str, str]:
    return ("authorization", Harness.basic(client_id, secret)["Authorization"])


SVC = [("content-type", FORM), basic("svc")]
BOUND = [("content-type", FORM), ("x-test-cert", "bound")]
CC = [("grant_type", "client_credentials")]


def token_cases() -> list[Case]:
    return [
        Case("basic", "POST", "/token", CC, headers=SVC),
        Case("scope", "POST", "/token", [*CC, ("scope", "read")], headers=SVC),
        Case("resource", "POST", "/token", [*CC, ("resource", API)], headers=SVC),
        Case("tls bound", "POST", "/token", [*CC, ("client_id", "bound")], headers=BOUND),
        Case("opaque", "POST", "/token", CC, headers=[("content-type", FORM), basic("opaque")]),
        Case("charset", "POST", "/token", CC, headers=[("content-type", f"{FORM}; charset=UTF-8"), SVC[1]]),
        Case("GET", "GET", "/token", headers=SVC),
        Case("PUT", "PUT", "/token", CC, headers=SVC),
        Case("HEAD", "HEAD", "/token", headers=SVC),
        Case("json", "POST", "/token", content=b'{"grant_type": "client_credentials"}',
             headers=[("content-type", "application/json"), basic("svc")]),
        Case("no content type", "POST", "/token", CC, headers=[basic("svc")]),
        Case("too large", "POST", "/token", content=b"a=" + b"b" * MAX_FORM_BYTES, headers=SVC),
        Case("not utf-8", "POST", "/token", content=b"grant_type=\xff", headers=SVC),
        Case("too many fields", "POST", "/token", content=b"&".join([b"p=1"] * 65), headers=SVC),
        Case("duplicate", "POST", "/token", [*CC, *CC], headers=SVC),
        Case("nul", "POST", "/token", content=b"grant_type=client_credentials&scope=%00", headers=SVC),
        Case("two authorizations", "POST", "/token", CC, headers=[*SVC, basic("svc")]),
        Case("no grant_type", "POST", "/token", [("scope", "read")], headers=SVC),
        Case("unsupported grant", "POST", "/token", [("grant_type", "password")], headers=SVC),
        Case("grant not registered", "POST", "/token", CC, headers=[SVC[0], basic("nogrant")]),
        Case("scope not registered", "POST", "/token", [*CC, ("scope", "admin")], headers=SVC),
        Case("resource not registered", "POST", "/token", [*CC, ("resource", "https://elsewhere.example")],
             headers=SVC),
        Case("unknown client", "POST", "/token", CC, headers=[("content-type", FORM), basic("nobody")]),
        Case("wrong secret", "POST", "/token", CC, headers=[("content-type", FORM), basic("svc", "wrong")]),
        Case("two mechanisms", "POST", "/token", [*CC, ("client_secret", SECRET)], headers=SVC),
        Case("no credentials", "POST", "/token", CC, headers=[("content-type", FORM)]),
        Case("certificate missing", "POST", "/token", [*CC, ("client_id", "bound")],
             headers=[("content-type", FORM)]),
        Case("trailing slash", "POST", "/token/", CC, headers=SVC),
    ]  # fmt: skip


def token_request_cases(path: str, token: str) -> list[Case]:
    """What introspection and revocation share: a token to ask about, and every way to get it wrong."""
    return [
        Case("ok", "POST", path, [("token", token)], headers=SVC),
        Case("tls", "POST", path, [("token", token), ("client_id", "bound")], headers=BOUND),
        Case("unknown token", "POST", path, [("token", "not-a-token")], headers=SVC),
        Case("hint", "POST", path, [("token", token), ("token_type_hint", "refresh_token")], headers=SVC),
        Case("missing token", "POST", path, [], headers=SVC),
        Case("no credentials", "POST", path, [("token", token)], headers=[("content-type", FORM)]),
        Case("wrong secret", "POST", path, [("token", token)],
             headers=[("content-type", FORM), basic("svc", "wrong")]),
        Case("GET", "GET", path, headers=SVC),
        Case("DELETE", "DELETE", path, headers=SVC),
        Case("json", "POST", path, content=b"{}", headers=[("content-type", "application/json"), SVC[1]]),
        Case("duplicate", "POST", path, [("token", token), ("token", token)], headers=SVC),
        Case("trailing slash", "POST", path + "/", [("token", token)], headers=SVC),
    ]  # fmt: skip


@dataclasses.dataclass
class Paths:
    fast: httpx.AsyncClient
    general: httpx.AsyncClient
    fast_app: CertboundApp
    general_app: CertboundApp
    log: io.StringIO


@pytest.fixture
async def paths(harness: Harness) -> AsyncIterator[Paths]:
    assert harness.services.settings.fast_paths  # the default
    slow = dataclasses.replace(
        harness.services, settings=harness.services.settings.model_copy(update={"fast_paths": False})
    )
    fast_app, general_app = harness.app, create_app(slow)
    clients = [
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=CertificateFromHeader(app, harness.pki.certs)),
            base_url=ISSUER,
            follow_redirects=False,
        )
        for app in (fast_app, general_app)
    ]
    stream = io.StringIO()
    with logging_to(stream):
        yield Paths(clients[0], clients[1], fast_app, general_app, stream)
    for client in clients:
        await client.aclose()


def test_only_the_fast_app_dispatches_directly(harness: Harness, paths: Paths) -> None:
    """Else the comparisons below would compare one path with itself."""
    assert paths.fast_app.hot_routes is not None
    assert paths.general_app.hot_routes is None


async def test_the_fast_app_serves_hot_requests_ahead_of_its_stack(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    served: list[str] = []
    serve = HotRoutes.serve

    async def spy(self: HotRoutes, *args: Any) -> None:
        served.append(args[2]["path"])  # (route, endpoint, scope, receive, send)
        await serve(self, *args)

    monkeypatch.setattr(HotRoutes, "serve", spy)
    for client in (paths.fast, paths.general):
        for path in ("/token", "/introspect", "/revoke", "/jwks"):
            await client.post(path, data={"token": "x"})
    assert served == ["/token", "/introspect", "/revoke"]


def _body(response: httpx.Response) -> Any:
    if not response.content:  # a 204, or the answer to HEAD
        return b""
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        body = response.json()
        if isinstance(body, dict) and "access_token" in body:
            body["access_token"] = "<fresh token>"
        return body
    if content_type.startswith("application/token-introspection+jwt"):
        header, payload, _signature = response.text.split(".")  # ES256 signatures differ every time
        return [_segment(header), _segment(payload)]
    return response.content


def _segment(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _answer(response: httpx.Response) -> dict[str, Any]:
    headers = {name: response.headers.get(name) for name in HEADERS}
    return {"status": response.status_code, "headers": headers, "body": _body(response)}


def _events(log: io.StringIO, start: int) -> list[dict[str, Any]]:
    flush_logs()
    lines = log.getvalue()[start:].splitlines()
    return [{k: _masked(v) for k, v in json.loads(line).items() if k not in VOLATILE} for line in lines]


def _masked(value: Any) -> Any:
    return re.sub(r"jti=\S+", "jti=<jti>", value) if isinstance(value, str) else value


async def _both(paths: Paths, case: Case, general_case: Case | None = None) -> None:
    """`case` through both apps (`general_case` for the general one, when the request changes state)."""
    seen = []
    for client, sent in ((paths.fast, case), (paths.general, general_case or case)):
        flush_logs()
        start = len(paths.log.getvalue())
        response = await client.request(sent.method, sent.path, content=sent.body(), headers=sent.headers)
        seen.append((_answer(response), _events(paths.log, start)))
    (fast, fast_events), (general, general_events) = seen
    assert fast == general, case.name
    assert fast_events == general_events, case.name
    assert any(e.get("event") == "request" for e in fast_events), case.name


async def test_token_endpoint(harness: Harness, paths: Paths) -> None:
    for case in token_cases():
        await _both(paths, case)


async def test_introspection_endpoint(harness: Harness, paths: Paths) -> None:
    token = await harness.get_token("svc")
    opaque = await harness.get_token("opaque")
    for_api = await harness.get_token("svc", resource=API)
    cases = [
        *token_request_cases("/introspect", token),
        Case("opaque", "POST", "/introspect", [("token", opaque)], headers=SVC),
        Case("jwt answer", "POST", "/introspect", [("token", token)],
             headers=[*SVC, ("accept", "application/token-introspection+jwt")]),
        Case("resource server", "POST", "/introspect", [("token", for_api)], headers=[SVC[0], basic("rs")]),
    ]  # fmt: skip
    for case in cases:
        await _both(paths, case)


async def test_revocation_endpoint(harness: Harness, paths: Paths) -> None:
    """Each app revokes a token of its own: a second revocation of the same token would log less."""
    pairs = []
    for _ in range(2):
        token = await harness.get_token("svc")
        pairs.append(
            [
                *token_request_cases("/revoke", token),
                Case("revoked, then introspected", "POST", "/introspect", [("token", token)], headers=SVC),
            ]
        )
    for fast, general in zip(*pairs, strict=True):
        await _both(paths, fast, general)


async def test_an_unexpected_error_is_the_same_500(
    harness: Harness, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: GrantRegistry, request: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(GrantRegistry, "dispatch", broken)
    await _both(paths, Case("bug", "POST", "/token", CC, headers=SVC))


def sent_to(messages: list[Message]) -> Any:
    async def send(message: Message) -> None:
        messages.append(message)

    return send


@pytest.mark.parametrize("path", ["/token", "/introspect", "/revoke"])
async def test_a_client_gone_mid_body_gets_the_same_answer(harness: Harness, paths: Paths, path: str) -> None:
    async def receive() -> Message:
        return {"type": "http.disconnect"}

    answers: list[list[Message]] = []
    for app in (paths.fast_app, paths.general_app):
        sent: list[Message] = []

        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "https", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "client": ("127.0.0.1", 50000), "server": ("as.example", 443),
            "headers": [(b"host", b"as.example"), (b"content-type", FORM.encode())],
            "extensions": {}, "state": {},
        }  # fmt: skip
        await app(scope, receive, sent_to(sent))
        answers.append(sent)
    assert answers[0] == answers[1]
    assert answers[0][0]["status"] == 400
    assert json.loads(answers[0][1]["body"]) == {"error": "invalid_request"}
