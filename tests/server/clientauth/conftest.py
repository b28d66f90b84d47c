"""Fixtures for client authentication: certificates from certbound.pki (EC keys), a real store, clients
written the way registration writes them, an authenticator with a controllable clock, and a JWKS served
over real HTTPS on 127.0.0.1 by the test itself."""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import ssl
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from cryptography import x509
from joserfc import jws, jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import Key, OctKey

from certbound.errors import OAuthError
from certbound.pki.chain import ChainVerifier
from certbound.pki.issue import PrivateKey, create_ca, issue_client_cert, issue_server_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.sealing import Sealer
from certbound.server.clientauth.assertion import JWT_BEARER
from certbound.server.clientauth.directory import ClientDirectory
from certbound.server.clientauth.jwks_fetcher import JwksFetcher
from certbound.server.clientauth.registry import ClientAuthenticator
from certbound.server.clientauth.types import Authenticated, AuthRequest, Endpoint
from certbound.server.clients.credential_records import key_credentials, secret_credentials
from certbound.server.clients.metadata import validate_client_metadata
from certbound.store.generation import GenerationWatcher
from certbound.store.records import Client
from certbound.store.sql import SqlStore, open_store
from certbound.tls.client_certificate import ClientCertificate
from tests.store.conftest import database_url, pg_url, sqlite_url  # noqa: F401  (fixtures)

ISSUER = "https://as.example.com"
TOKEN_URL = f"{ISSUER}/token"
MTLS_TOKEN_URL = "https://mtls.as.example.com/token"
AUDIENCES = frozenset({ISSUER, TOKEN_URL, MTLS_TOKEN_URL})
CertAndKey = tuple[x509.Certificate, PrivateKey]


@dataclass(frozen=True)
class Pki:
    ca: CertAndKey  # the trusted client CA
    intermediate: CertAndKey  # issued by `ca`, path length 0
    other_ca: CertAndKey  # not trusted


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca = create_ca("CN=Client CA,O=certbound tests")
    return Pki(
        ca=ca,
        intermediate=create_ca("CN=Client Intermediate,O=certbound tests", issuer=ca, path_length=0),
        other_ca=create_ca("CN=Client CA,O=certbound tests"),  # same name as the trusted one, other key
    )


@pytest.fixture(scope="session")
def sealer() -> Sealer:
    return Sealer(bytes(range(32)))


def presented(cert: x509.Certificate, *chain: x509.Certificate, source: str = "tls") -> ClientCertificate:
    """What the TLS layer would hand over for this certificate (and chain)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    return ClientCertificate.from_der(
        cert.public_bytes(Encoding.DER),
        [c.public_bytes(Encoding.DER) for c in chain],
        source=source,
        tls_verified=None,
        tls_error=None,
    )


def basic(client_id: str, secret: str) -> str:
    """An RFC 6749 Appendix B Basic header: form-urlencode each part, then Base64."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def make_client(
    client_id: str, metadata: Mapping[str, Any], sealer: Sealer, *, secret: str | None = None, **extra: Any
) -> Client:
    """A client record as registration stores it (validated metadata, the same credential records)."""
    validated = validate_client_metadata(metadata)
    credentials = key_credentials(client_id, validated.keys)
    if secret is not None:
        credentials = secret_credentials(client_id, validated, secret, sealer) + credentials
    return Client(client_id=client_id, metadata=validated.metadata, credentials=tuple(credentials), **extra)


class Clock:
    """A settable clock (aware UTC)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def assertion(
    key: Key,
    client_id: str,
    *,
    alg: str = "ES256",
    aud: Any = ISSUER,
    now: datetime | None = None,
    lifetime: int = 60,
    jti: str | None = None,
    header: Mapping[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A signed client assertion with sensible claims; `claims` override, `drop` removes."""
    now = now or datetime.now(UTC)
    iat = int(now.timestamp())
    body: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": iat,
        "exp": iat + lifetime,
        "jti": jti if jti is not None else secrets.token_urlsafe(12),
    }
    body.update(claims)
    for name in drop:
        body.pop(name, None)
    protected = {"alg": alg, **(header or {})}
    if key.kid and "kid" not in protected and not isinstance(key, OctKey):
        protected["kid"] = key.kid
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)  # "EdDSA" is deprecated by RFC 9864; still tested
        registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
        return jwt.encode(protected, body, key, registry=registry)


@dataclass
class Harness:
    """One worker's client authentication over a real store, with a settable clock."""

    store: SqlStore
    sealer: Sealer
    clock: Clock
    watcher: GenerationWatcher
    directory: ClientDirectory
    fetcher: JwksFetcher
    auth: ClientAuthenticator
    reads: list[str] = field(default_factory=list)

    async def add(self, client: Client) -> Client:
        await self.store.create_client(client)
        await self.watcher.check()
        return client

    async def register(
        self, client_id: str, metadata: Mapping[str, Any], *, secret: str | None = None, **extra: Any
    ) -> Client:
        return await self.add(make_client(client_id, metadata, self.sealer, secret=secret, **extra))

    async def authenticate(
        self,
        form: Mapping[str, str] | None = None,
        *,
        authorization: str | None = None,
        certificate: ClientCertificate | None = None,
        endpoint: Endpoint = "token",
        audiences: frozenset[str] = AUDIENCES,
    ) -> Authenticated:
        req = AuthRequest(endpoint, dict(form or {}), authorization, certificate, audiences)
        return await self.auth.authenticate(req)

    async def refused(self, reason: str, form: Mapping[str, str] | None = None, **kwargs: Any) -> OAuthError:
        """Authenticate, expecting invalid_client with `reason`; returns the error."""
        with pytest.raises(OAuthError) as caught:
            await self.authenticate(form, **kwargs)
        error = caught.value
        assert error.error == "invalid_client"
        assert error.status == 401
        assert error.reason == reason, error.reason
        assert error.headers == {"WWW-Authenticate": 'Basic realm="certbound"'}
        return error


class Ticker:
    """A settable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


class CountingStore:
    """Wraps a store and records every call (to prove the hot path does no database reads)."""

    def __init__(self, inner: SqlStore, calls: list[str]) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(name)
            return await attr(*args, **kwargs)

        return call


async def build_harness(
    store: SqlStore,
    sealer: Sealer,
    *,
    trust: list[x509.Certificate] | None = None,
    issuer: str = ISSUER,
    ca_bundle: Path | None = None,
    allow_private: bool = False,
    max_age: float = 60.0,
    refetch_interval: float = 10.0,
    resolver: Any = None,
    monotonic: Any = None,
    revocation: Any = None,
) -> Harness:
    reads: list[str] = []
    counted: Any = CountingStore(store, reads)
    clock = Clock()
    watcher = GenerationWatcher(counted, interval=0.05)
    await watcher.start()
    directory = ClientDirectory(counted, watcher, sealer)
    fetcher = JwksFetcher(
        issuer_url=issuer,
        max_age=max_age,
        refetch_interval=refetch_interval,
        ca_bundle=ca_bundle,
        allow_private=allow_private,
        resolver=resolver,
        monotonic=monotonic or time.monotonic,
    )
    auth = ClientAuthenticator(
        counted,
        directory,
        ChainVerifier(trust) if trust else None,
        fetcher,
        assertion_max_lifetime=300,
        clock_skew=30,
        clock=clock,
        revocation=revocation,
    )
    return Harness(store, sealer, clock, watcher, directory, fetcher, auth, reads)


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'certbound.db'}")
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture
async def harness(sqlite_db: SqlStore, sealer: Sealer, pki: Pki) -> AsyncIterator[Harness]:
    """Trusts `pki.ca` for tls_client_auth; issuer https://as.example.com."""
    h = await build_harness(sqlite_db, sealer, trust=[pki.ca[0]])
    yield h
    await h.watcher.stop()
    await h.auth.aclose()


# --- a JWKS over real HTTPS on 127.0.0.1 ------------------------------------------------------------


@dataclass
class JwksServer:
    """Serves `document` at /jwks (and other paths per `routes`) over HTTPS; counts requests."""

    port: int
    ca_file: Path
    document: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    status: int = 200
    requests: int = 0
    hosts: list[str] = field(default_factory=list)
    delay: float = 0.0

    def url(self, host: str = "127.0.0.1", path: str = "/jwks") -> str:
        return f"https://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def https_pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(CA file, server cert file, server key file) for 127.0.0.1 and jwks.test."""
    directory = tmp_path_factory.mktemp("jwks-https")
    ca_cert, ca_key = create_ca("CN=JWKS test server CA")
    cert, key = issue_server_cert(ca_cert, ca_key, hosts=("127.0.0.1", "jwks.test", "localhost"))
    files = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    files[0].write_bytes(cert_to_pem(ca_cert))
    files[1].write_bytes(cert_to_pem(cert))
    files[2].write_bytes(key_to_pem(key))
    return files


@pytest.fixture
def jwks_server(https_pki: tuple[Path, Path, Path]) -> Iterator[JwksServer]:
    ca_file, cert_file, key_file = https_pki
    state = JwksServer(port=0, ca_file=ca_file)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.requests += 1
            state.hosts.append(self.headers.get("Host", ""))
            if state.delay:
                time.sleep(state.delay)
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", state.url())
                self.end_headers()
                return
            if self.path == "/big":
                body = b'{"keys": [], "pad": "' + b"x" * (300 * 1024) + b'"}'
            elif self.path == "/notjson":
                body = b"<html>hello</html>"
            else:
                body = json.dumps(state.document).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # clients that hang up early (size cap, timeout, bad certificate) are expected here

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def client_cert(pki: Pki, subject: str = "CN=client-one,O=certbound tests", **kwargs: Any) -> CertAndKey:
    """A certificate from the trusted client CA."""
    return issue_client_cert(pki.ca[0], pki.ca[1], subject, **kwargs)


def jwt_bearer(token: str, client_id: str | None = None) -> dict[str, str]:
    form = {"client_assertion_type": JWT_BEARER, "client_assertion": token}
    if client_id is not None:
        form["client_id"] = client_id
    return form
