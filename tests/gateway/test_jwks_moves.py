"""An IdP that moves its ``jwks_uri`` (a key rotation onto a new URL, the old one gone): the gateway
follows it once its rate limit allows (a rediscovery at most every 30 s), instead of answering 503
until it is restarted.

The IdP here is a small real HTTPS server (the tests' PKI) serving RFC 8414 metadata and two key sets,
with JWTs signed in the test: neither certbound's server nor oidc-provider can move their jwks_uri.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from certbound.client import ClientConfig
from certbound.gateway.idp import JWKS_REFETCH_INTERVAL
from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.test_matrix import echoed

pytestmark = pytest.mark.slow

#: How long the gateway waits before it asks its IdP again: metadata and JWKS alike.
REDISCOVERY_INTERVAL = max(
    ClientConfig.__dataclass_fields__["rediscovery_interval"].default, JWKS_REFETCH_INTERVAL
)


@dataclass
class MovingIdp:
    """Metadata naming ``jwks_uri``; ``/jwks/<name>`` serving `sets[name]` (404 when absent)."""

    port: int = 0
    jwks_uri_path: str = "/jwks/a"
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def issuer(self) -> str:
        return f"https://localhost:{self.port}"


def _handler(idp: MovingIdp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/.well-known/oauth-authorization-server":
                body: dict[str, Any] | None = {
                    "issuer": idp.issuer,
                    "jwks_uri": idp.issuer + idp.jwks_uri_path,
                }
            else:
                body = (
                    idp.sets.get(self.path.removeprefix("/jwks/")) if self.path.startswith("/jwks/") else None
                )
            data = json.dumps(body).encode() if body is not None else b"{}"
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def moving_idp(material: Material) -> Iterator[MovingIdp]:
    idp = MovingIdp()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(idp))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(material.server.cert_file), str(material.server.key_file))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    idp.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield idp
    server.shutdown()
    server.server_close()


def _key(kid: str) -> ECKey:
    key = ECKey.generate_key("P-256", private=True)
    key.ensure_kid()
    return ECKey.import_key(key.as_dict(private=True) | {"kid": kid, "alg": "ES256", "use": "sig"})


def _token(idp: MovingIdp, key: ECKey) -> str:
    now = int(time.time())
    claims = {"iss": idp.issuer, "sub": "svc", "client_id": "svc", "aud": "https://api.example/",
              "jti": secrets.token_hex(8), "iat": now, "exp": now + 300, "scope": "api:read"}  # fmt: skip
    return jwt.encode({"alg": "ES256", "typ": "at+jwt", "kid": key.kid}, claims, key)


def test_the_gateway_follows_a_moved_jwks_uri(
    moving_idp: MovingIdp, material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    old, new = _key("old-key"), _key("new-key")
    moving_idp.sets = {"a": {"keys": [old.as_dict(private=False)]}}
    moving_idp.jwks_uri_path = "/jwks/a"
    config = {
        "listener": {"tls_cert": str(material.server.cert_file), "tls_key": str(material.server.key_file)},
        "idp": {"issuer": moving_idp.issuer, "ca_bundle": str(material.ca_file)},
        "routes": [{"name": "api", "paths": ["/api"], "upstream": echo.url, "auth_methods": ["bearer"]}],
    }
    gateway: RunningGateway = start_gateway(
        config, tmp_path_factory.mktemp("moving"), ca_file=material.ca_file
    )
    started = time.monotonic()
    try:
        with gateway.client(material.tls_client) as client:

            def get(token: str) -> int:
                return client.get(
                    f"{gateway.url}/api/x", headers={"Authorization": f"Bearer {token}"}
                ).status_code

            assert get(_token(moving_idp, old)) == 200
            # the rotation: new keys at a new URL, the old URL gone
            moving_idp.sets = {"b": {"keys": [new.as_dict(private=False)]}}
            moving_idp.jwks_uri_path = "/jwks/b"
            time.sleep(max(0.0, REDISCOVERY_INTERVAL + 1 - (time.monotonic() - started)))
            echoed(
                client.get(
                    f"{gateway.url}/api/y", headers={"Authorization": f"Bearer {_token(moving_idp, new)}"}
                )
            )
            assert get(_token(moving_idp, old)) == 401  # the old key is gone with its set
    finally:
        gateway.stop()
    event = gateway.events(lambda e: e.get("path") == "/api/y")[-1]
    assert (event["outcome"], event["token_source"]) == ("allowed", "jwt")
