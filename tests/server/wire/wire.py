"""Talking to a running `certbound serve`: one fresh TLS connection per request, client assertions, Basic
credentials encoded as RFC 6749 Appendix B says, and the server's `client_auth` log events."""

from __future__ import annotations

import base64
import json
import ssl
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote_plus

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from certbound.cli.explain import client_auth_events
from tests.server.process.serverproc import RunningServer
from tests.server.wire.material import Cred

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def basic(client_id: str, secret: str) -> str:
    """The Authorization header value: id and secret form-urlencoded, then Base64 (RFC 6749 App. B)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def assertion(
    client_id: str,
    key: ECKey | OctKey,
    audience: str | list[str],
    *,
    alg: str = "ES256",
    kid: str | None = None,
    lifetime: int = 120,
    jti: str | None = None,
) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": jti or uuid.uuid4().hex,
    }
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    return jwt.encode(header, claims, key, algorithms=[alg])


def assertion_form(client_id: str, signed: str) -> dict[str, str]:
    return {"client_id": client_id, "client_assertion_type": JWT_BEARER, "client_assertion": signed}


class Wire:
    """Requests to one server, each on a new TLS connection (so each presents its certificate anew)."""

    def __init__(self, server: RunningServer) -> None:
        self.server = server
        self.url = server.url
        self.ca_file = server.pki / "ca.crt"
        self._contexts: dict[str | None, ssl.SSLContext] = {}

    def context(self, cert: Cred | None) -> ssl.SSLContext:
        name = None if cert is None else cert.name
        found = self._contexts.get(name)
        if found is None:
            found = (
                cert.ssl_context(self.ca_file)
                if cert is not None
                else ssl.create_default_context(cafile=str(self.ca_file))
            )
            self._contexts[name] = found
        return found

    def post(
        self,
        path: str,
        data: Mapping[str, str],
        *,
        cert: Cred | None = None,
        authorization: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if authorization is not None:
            all_headers["Authorization"] = authorization
        with httpx.Client(verify=self.context(cert), timeout=20) as client:
            return client.post(self.url + path, data=dict(data), headers=all_headers)

    def mark(self) -> int:
        """Where the server's output ends now (events after this mark belong to what follows)."""
        return len(self.server.output())

    def events(self, since: int = 0) -> list[dict[str, Any]]:
        return client_auth_events(self.server.output()[since:])

    def wait_event(self, since: int, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first client_auth event after `since` whose fields equal `match` (waits for the log)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events(since):
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            if time.monotonic() > deadline:
                seen = json.dumps(self.events(since), indent=1, default=str)[-4000:]
                raise AssertionError(f"no client_auth event with {match} in the server log; saw:\n{seen}")
            time.sleep(0.05)

    def wait_events(
        self, since: int, count: int, timeout: float = 10.0, **match: Any
    ) -> list[dict[str, Any]]:
        """The client_auth events after `since` matching `match`, once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.events(since) if all(e.get(k) == v for k, v in match.items())]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


def assert_invalid_client(resp: httpx.Response) -> None:
    """RFC 6749 section 5.2 as certbound renders any client authentication failure."""
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"
    assert resp.headers.get("www-authenticate", "").startswith("Basic realm=")
    assert_no_store(resp)


def assert_no_store(resp: httpx.Response) -> None:
    assert resp.headers.get("cache-control") == "no-store"
    assert resp.headers.get("pragma") == "no-cache"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified (see `verify_access_token` for the verified one)."""
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
