"""Fixtures for the registration tests: real certificates and JWKs from certbound.pki, a real store
(SQLite in tmp_path, and a throwaway PostgreSQL database), and the server's app over the worker's
services (`build_services`, `create_app`) driven through httpx.ASGITransport."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import warnings
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey
from sqlalchemy import delete, select

from certbound.config import Settings
from certbound.jose.keyring import KeyManager
from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.keys import PrivateKey
from certbound.sealing import Sealer
from certbound.server.app import create_app
from certbound.server.clients.registrar import Registrar
from certbound.server.services import build_services
from certbound.store.schema import client_credentials, clients
from certbound.store.sql import SqlStore, open_store
from tests import pg_helpers

INITIAL_TOKEN = "initial-access-token-for-tests-0123456789"
BASE = "https://as.example"
REGISTRATION_BASE_URL = f"{BASE}/register"


@dataclasses.dataclass(frozen=True)
class Pki:
    """Certificates and keys made once per session by certbound.pki (EC keys; one RSA key)."""

    ca_cert: x509.Certificate
    ca_key: PrivateKey
    client_cert: x509.Certificate  # CA-issued, DN + every SAN type
    self_signed_cert: x509.Certificate
    self_signed_key: PrivateKey
    self_signed_jwk: dict[str, Any]  # public JWK with x5c + x5t#S256
    other_self_signed_cert: x509.Certificate
    ec_jwk: dict[str, Any]  # plain public P-256 JWK, kid set
    rsa_jwk: dict[str, Any]  # plain public RSA-2048 JWK
    rsa_1024_jwk: dict[str, Any]
    ed25519_jwk: dict[str, Any]


@pytest.fixture(scope="session")
def pki() -> Pki:
    ca_cert, ca_key = create_ca("CN=Registration Test CA,O=certbound tests")
    client_cert, _ = issue_client_cert(
        ca_cert,
        ca_key,
        "CN=client-one,O=certbound tests",
        dns=["client.example.com"],
        uris=["spiffe://example.org/client-one"],
        ips=["192.0.2.7"],
        emails=["client-one@example.com"],
    )
    ss_cert, ss_key = self_signed_client_cert("CN=self-signed-client")
    other_cert, _ = self_signed_client_cert("CN=someone-else")
    ec = ECKey.generate_key("P-256", private=True)
    rsa_key = RSAKey.generate_key(2048, private=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc warns about the small key we want refused
        small = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505
    okp = OKPKey.generate_key("Ed25519", private=True)
    return Pki(
        ca_cert=ca_cert,
        ca_key=ca_key,
        client_cert=client_cert,
        self_signed_cert=ss_cert,
        self_signed_key=ss_key,
        self_signed_jwk=jwk_with_x5c(ss_cert, kid="ss-1"),
        other_self_signed_cert=other_cert,
        ec_jwk={**ec.as_dict(private=False), "kid": "ec-1", "use": "sig"},
        rsa_jwk={**rsa_key.as_dict(private=False), "kid": "rsa-1"},
        rsa_1024_jwk=dict(small.as_dict(private=False)),
        ed25519_jwk={**okp.as_dict(private=False), "kid": "ed-1"},
    )


@pytest.fixture(scope="session")
def sealer() -> Sealer:
    return Sealer(bytes(range(32)))


# --- stores --------------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'certbound.db'}")
    await opened.migrate()
    yield opened
    await opened.close()


@pytest.fixture(scope="session")
def _pg_url() -> Iterator[str]:
    """One throwaway PostgreSQL database for the session, migrated once (creating one per test is slow)."""
    with pg_helpers.throwaway_database(prefix="certbound_test_clients") as url:
        _in_thread(_migrate(url))
        yield url


async def _migrate(url: str) -> None:
    opened = open_store(url)
    await opened.migrate()
    await opened.close()


def _in_thread(coro: Coroutine[Any, Any, None]) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coro).result()


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    """A migrated store without clients, on each backend in turn."""
    if request.param == "sqlite":
        opened = open_store(f"sqlite:///{tmp_path / 'certbound.db'}")
        await opened.migrate()
    else:
        opened = open_store(request.getfixturevalue("_pg_url"))
        async with opened.engine.begin() as conn:
            await conn.execute(delete(clients))  # credentials go by ON DELETE CASCADE
    yield opened
    await opened.close()


async def stored_rows(store: SqlStore) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The raw rows of the clients and client_credentials tables, as the database holds them."""
    async with store.engine.connect() as conn:
        client_rows = [dict(r._mapping) for r in (await conn.execute(select(clients))).all()]
        cred_rows = [dict(r._mapping) for r in (await conn.execute(select(client_credentials))).all()]
    return client_rows, cred_rows


# --- the app -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Server:
    """The app over the worker's services, and an httpx client talking to it in-process (app errors
    are raised, not 500s)."""

    registrar: Registrar
    http: httpx.AsyncClient


@contextlib.asynccontextmanager
async def serving(
    store: SqlStore,
    sealer: Sealer,
    *,
    initial_access_token: str | None = INITIAL_TOKEN,
    allowed_scopes: list[str] | None = None,
) -> AsyncIterator[Server]:
    """The server over `store`, configured with this initial access token and scope catalogue."""
    settings = Settings(issuer=BASE, registration_token=initial_access_token, allowed_scopes=allowed_scopes)
    await KeyManager(store, sealer).ensure_keys(datetime.now(UTC))  # as `certbound serve` does at start
    async with build_services(settings, store, sealer) as services:
        transport = httpx.ASGITransport(app=create_app(services))
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
            yield Server(services.registrar, http)


@pytest.fixture
async def server(store: SqlStore, sealer: Sealer) -> AsyncIterator[Server]:
    async with serving(store, sealer) as running:
        yield running


@pytest.fixture
def registrar(server: Server) -> Registrar:
    return server.registrar


@pytest.fixture
def http(server: Server) -> httpx.AsyncClient:
    return server.http


@pytest.fixture
async def sqlite_http(sqlite_store: SqlStore, sealer: Sealer) -> AsyncIterator[httpx.AsyncClient]:
    """For tests of request parsing, where the backend does not matter."""
    async with serving(sqlite_store, sealer) as running:
        yield running.http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(
    http: httpx.AsyncClient, body: dict[str, Any], token: str | None = INITIAL_TOKEN
) -> httpx.Response:
    return await http.post("/register", json=body, headers=bearer(token) if token else {})
