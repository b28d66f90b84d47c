"""A real certbound server for tests: SQLite/PostgreSQL store, the worker's `Services` built by
`build_services` (as `certbound serve` builds them, with a clock the test moves and a fast generation
poll), and the app of `create_app`, driven through httpx.ASGITransport.

The client certificate of a request is put in the ASGI ``tls`` extension, where the native listener
puts it, by a test-only middleware that reads the ``x-test-cert`` header (a name from `Harness.certs`).
The client CA of `Pki` is trusted for tls_client_auth.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.types import ASGIApp, Receive, Scope, Send

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.pki.issue import create_ca, issue_client_cert
from certbound.sealing import Sealer
from certbound.server.app import create_app
from certbound.server.clients.credential_records import secret_credentials
from certbound.server.clients.metadata import validate_client_metadata
from certbound.server.endpoints.hot_routes import CertboundApp
from certbound.server.services import Services, build_services
from certbound.server.tokens.service import TokenService
from certbound.store.generation import GenerationWatcher
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate

ISSUER = "https://as.example"
MTLS = "https://mtls.as.example"
API = "https://api.example"
OTHER_API = "https://other-api.example"
SEALER = Sealer(b"k" * 32)
SECRET = "s3cret-with-:+/%-characters"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "mtls_port": 8444,
        "mtls_base_url": MTLS,
        "allowed_scopes": None,
        "access_token_lifetime": 600,
    }
    values.update(overrides)
    return Settings(**values)


class FakeClock:
    """Epoch seconds that a test can move forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: x509.Certificate
    ca_file: Path
    certs: dict[str, ClientCertificate]


def make_pki(directory: Path) -> Pki:
    ca_cert, ca_key = create_ca("CN=Token Test CA,O=certbound tests")
    ca_file = directory / "client-ca.pem"
    ca_file.write_bytes(ca_cert.public_bytes(Encoding.PEM))
    certs = {}
    for name in ("bound", "svc", "other"):
        cert, _ = issue_client_cert(ca_cert, ca_key, f"CN={name},O=certbound tests")
        certs[name] = ClientCertificate.from_der(
            cert.public_bytes(Encoding.DER), source="tls", tls_verified=True, tls_error=None
        )
    return Pki(ca_cert, ca_file, certs)


def client_record(client_id: str, metadata: Mapping[str, Any], *, secret: str | None = SECRET) -> Client:
    """A client as registration would store it (metadata validated, secret as its digest)."""
    validated = validate_client_metadata(metadata)
    creds = (
        secret_credentials(client_id, validated, secret, SEALER) if secret and validated.needs_secret else []
    )
    return Client(client_id, validated.metadata, credentials=tuple(creds))


STANDARD_CLIENTS: dict[str, dict[str, Any]] = {
    # client_secret_basic, two scopes, two registered resources
    "svc": {"scope": "read write", "resources": [API, OTHER_API]},
    # tls_client_auth, tokens bound to its certificate
    "bound": {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=bound,O=certbound tests",
        "tls_client_certificate_bound_access_tokens": True,
        "scope": "read",
    },
    # authenticated by a secret, but its tokens are bound to whatever certificate it presents
    "bound-secret": {"tls_client_certificate_bound_access_tokens": True, "scope": "read"},
    "opaque": {"scope": "read", "access_token_format": "opaque"},
    "noscope": {},
    # a resource server: may introspect tokens meant for API; gets no tokens itself
    "rs": {"grant_types": [], "resource_server_audiences": [API]},
    "nogrant": {"grant_types": [], "scope": "read"},
}


class CertificateFromHeader:
    """Test-only middleware: the certificate named by ``x-test-cert`` goes where the listener puts it."""

    def __init__(self, app: ASGIApp, certs: Mapping[str, ClientCertificate]) -> None:
        self.app = app
        self.certs = certs

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            name = dict(scope["headers"]).get(b"x-test-cert")
            if name is not None:
                extensions = dict(scope.get("extensions") or {})
                extensions["tls"] = {SCOPE_KEY: self.certs[name.decode()]}
                scope = {**scope, "extensions": extensions}
        await self.app(scope, receive, send)


@dataclasses.dataclass
class Harness:
    services: Services
    app: CertboundApp
    http: httpx.AsyncClient
    clock: FakeClock
    pki: Pki
    stack: contextlib.AsyncExitStack

    @property
    def store(self) -> SqlStore:
        return self.services.store

    @property
    def keys(self) -> KeyManager:
        return self.services.keys

    @property
    def tokens(self) -> TokenService:
        return self.services.tokens

    @property
    def watcher(self) -> GenerationWatcher:
        return self.services.watcher

    async def close(self) -> None:
        await self.http.aclose()
        await self.stack.aclose()

    @staticmethod
    def basic(client_id: str, secret: str = SECRET) -> dict[str, str]:
        from urllib.parse import quote_plus

        raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def auth(self, client_id: str, cert: str | None = None) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, form fields) that authenticate `client_id` its registered way."""
        if STANDARD_CLIENTS.get(client_id, {}).get("token_endpoint_auth_method") == "tls_client_auth":
            return {"x-test-cert": cert or client_id}, {"client_id": client_id}
        headers = self.basic(client_id)
        if cert:
            headers["x-test-cert"] = cert
        return headers, {}

    async def post(
        self, path: str, client_id: str | None, data: Mapping[str, str] | list[tuple[str, str]], **kw: Any
    ) -> httpx.Response:
        headers: dict[str, str] = dict(kw.pop("headers", {}))
        fields: list[tuple[str, str]] = list(data.items()) if isinstance(data, Mapping) else list(data)
        if client_id is not None:
            auth_headers, auth_fields = self.auth(client_id, kw.pop("cert", None))
            headers.update(auth_headers)
            fields += list(auth_fields.items())
        headers.setdefault("content-type", "application/x-www-form-urlencoded")
        return await self.http.post(path, content=urlencode(fields), headers=headers, **kw)

    async def get_token(self, client_id: str, **form: str) -> str:
        cert = form.pop("cert", None)
        response = await self.post(
            "/token", client_id, {"grant_type": "client_credentials", **form}, cert=cert
        )
        assert response.status_code == 200, response.text
        value: str = response.json()["access_token"]
        return value

    async def introspect(self, client_id: str | None, token_value: str, **kw: Any) -> httpx.Response:
        return await self.post("/introspect", client_id, {"token": token_value}, **kw)

    async def revoke(self, client_id: str | None, token_value: str, **form: str) -> httpx.Response:
        return await self.post("/revoke", client_id, {"token": token_value, **form})


async def build_harness(
    database_url: str,
    *,
    pki: Pki,
    settings_: Settings | None = None,
    clients: Mapping[str, Mapping[str, Any]] | None = None,
    migrate: bool = True,
) -> Harness:
    cfg = (settings_ or settings()).model_copy(update={"client_ca": pki.ca_file})
    store = open_store(database_url)
    if migrate:
        await store.migrate()
    keys = KeyManager(store, SEALER, alg=cfg.signing_alg, extra_algs=cfg.id_token_signing_algs)
    await keys.ensure_keys(datetime.now(UTC))
    for client_id, metadata in (STANDARD_CLIENTS if clients is None else clients).items():
        if await store.get_client(client_id) is None:
            await store.create_client(client_record(client_id, metadata))
    clock = FakeClock()
    stack = contextlib.AsyncExitStack()
    stack.push_async_callback(store.close)
    try:
        services = await stack.enter_async_context(
            build_services(cfg, store, SEALER, clock=clock, watch_interval=0.05)
        )
    except BaseException:
        await stack.aclose()
        raise
    app = create_app(services)
    transport = httpx.ASGITransport(app=CertificateFromHeader(app, pki.certs))
    http = httpx.AsyncClient(transport=transport, base_url=ISSUER)
    return Harness(services, app, http, clock, pki, stack)
