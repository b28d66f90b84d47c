"""JSON that is deeply nested, or holds a lone surrogate, at a real `certbound serve` on SQLite and on
PostgreSQL: a correct OAuth error every time (401 invalid_client for an assertion, 400
invalid_client_metadata for a registration), never a 500 or a traceback, the kept-alive connection
still usable, and the store unchanged."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc.jwk import ECKey
from joserfc.jws import JWSRegistry

from tests import pg_helpers
from tests.server.process.serverproc import RunningServer, start_server
from tests.server.wire.wire import JWT_BEARER, assert_invalid_client

pytestmark = pytest.mark.slow

ES256 = JWSRegistry.algorithms["ES256"]
ENDPOINTS = ("/token", "/introspect", "/revoke")
DEPTH = 1000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def nested(kind: str, depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth if kind == "array" else '{"a":' * depth + "1" + "}" * depth


class Target:
    """A server, a registered private_key_jwt client and its key, and one kept-alive HTTP client."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.url = server.url
        self.http = server.client(cert=False)
        self.key = ECKey.generate_key("P-256")
        self.initial = (server.data_dir / "registration-token").read_text().strip()
        response = self.http.post(
            self.url + "/register",
            json={"token_endpoint_auth_method": "private_key_jwt", "grant_types": ["client_credentials"],
                  "jwks": {"keys": [self.key.as_dict(private=False)]}},
            headers={"Authorization": "Bearer " + self.initial},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        self.client: dict[str, Any] = response.json()
        self.client_id: str = self.client["client_id"]

    def sign(self, header: str, payload: str) -> str:
        signing_input = b64(header.encode()) + "." + b64(payload.encode())
        return signing_input + "." + b64(ES256.sign(signing_input.encode(), self.key))

    def claims(self, audience: str, **extra: Any) -> dict[str, Any]:
        now = int(time.time())
        return {"iss": self.client_id, "sub": self.client_id, "aud": self.url + audience, "iat": now,
                "exp": now + 60, "jti": uuid.uuid4().hex, **extra}  # fmt: skip

    def post_assertion(self, path: str, assertion: str) -> httpx.Response:
        form = {"client_assertion_type": JWT_BEARER, "client_assertion": assertion,
                "grant_type": "client_credentials", "token": "whatever"}  # fmt: skip
        return self.http.post(self.url + path, data=form)

    def output(self) -> str:
        return self.server.output()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    args: list[str] = []
    url = None
    if request.param == "postgresql":
        pg_helpers.require_postgres()
        url = pg_helpers.create_database("certbound_hostile")
        args = ["--database-url", url]
    server = start_server(args, tmp_path_factory.mktemp(f"hostile-{request.param}") / "data")
    t = Target(server)
    yield t
    t.http.close()
    server.stop()
    if url is not None:
        pg_helpers.drop_database(url)


def _no_traceback(target: Target, since: int) -> None:
    out = target.output()[since:]
    assert "Traceback" not in out
    assert '"status":500' not in out


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("where", ["header", "payload"])
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_deeply_nested_assertion_is_invalid_client(
    target: Target, kind: str, where: str, signed: bool
) -> None:
    since = len(target.output())
    for path in ENDPOINTS:
        header = '{"alg":"ES256","x":' + nested(kind) + "}" if where == "header" else '{"alg":"ES256"}'
        payload = json.dumps(target.claims(path))
        if where == "payload":
            payload = payload[:-1] + ',"x":' + nested(kind) + "}"
        assertion = target.sign(header, payload) if signed else b64(header.encode()) + "." + b64(
            payload.encode()) + ".AAAA"  # fmt: skip
        assert_invalid_client(target.post_assertion(path, assertion))
    _no_traceback(target, since)


def test_a_lone_surrogate_in_the_jti_of_a_signed_assertion_is_invalid_client(target: Target) -> None:
    since = len(target.output())
    for path in ENDPOINTS:
        payload = json.dumps(target.claims(path, jti="JTI"))
        payload = payload.replace('"JTI"', '"\\ud800"')
        assert_invalid_client(target.post_assertion(path, target.sign('{"alg":"ES256"}', payload)))
        kept = target.post_assertion(path, target.sign('{"alg":"ES256"}', json.dumps(target.claims(path))))
        assert kept.status_code != 401, kept.text  # the client still authenticates on the same connection
    _no_traceback(target, since)


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


@pytest.mark.parametrize("member", [
    '"\\ud800": 1',
    '"client_name": "\\udfff"',
    '"contacts": ["a\\ud800b"]',
], ids=["member-name", "value", "nested-value"])  # fmt: skip
def test_a_lone_surrogate_in_a_registration_is_invalid_client_metadata(target: Target, member: str) -> None:
    since = len(target.output())
    body = '{"grant_types": ["client_credentials"], ' + member + "}"
    headers = {"content-type": "application/json", "Authorization": "Bearer " + target.initial}
    first = target.http.post(target.url + "/register", content=body, headers=headers)
    assert first.status_code == 400, first.text
    assert first.json()["error"] == "invalid_client_metadata"
    assert first.headers.get("connection", "").lower() != "close"
    # the kept-alive connection answers the next request
    after = target.http.get(target.url + "/healthz")
    assert after.status_code == 200
    assert _local_port(after) == _local_port(first)

    config = target.client["registration_client_uri"]
    manage = {"content-type": "application/json",
              "Authorization": "Bearer " + target.client["registration_access_token"]}  # fmt: skip
    before = target.http.get(config, headers={"Authorization": manage["Authorization"]})
    assert before.status_code == 200
    document = {k: v for k, v in before.json().items() if k not in
                {"registration_access_token", "registration_client_uri", "client_id_issued_at"}}  # fmt: skip
    put_body = json.dumps(document)[:-1] + ", " + member + "}"
    put = target.http.put(config, content=put_body, headers=manage)
    assert put.status_code == 400, put.text
    assert put.json()["error"] == "invalid_client_metadata"
    unchanged = target.http.get(config, headers={"Authorization": manage["Authorization"]})
    assert unchanged.json() == before.json()
    assert _local_port(unchanged) == _local_port(first)
    _no_traceback(target, since)
