"""Tokens bound to a certificate revoked after they were issued become inactive at introspection: learned
by a background refresh (the certificate is not presented again), on the worker that learned it and on
the others, and after a restart. Real OCSP over HTTP on 127.0.0.1; the worker's `Services` as
`certbound serve` builds them (tests/server/endpoints/harness.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.store.cert_status import CertStatusStore
from certbound.tls.client_certificate import ClientCertificate
from tests.revocation_peer import RevocationPki, RevocationServer, revocation_server
from tests.server.endpoints.harness import ISSUER, Harness, Pki, build_harness, settings
from tests.store.conftest import database_url, pg_url, sqlite_url  # noqa: F401  (fixtures)

CLIENTS = {
    "bound": {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=bound,O=certbound tests",
        "tls_client_certificate_bound_access_tokens": True,
        "scope": "read",
    },
    "other": {
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": "CN=other,O=certbound tests",
        "tls_client_certificate_bound_access_tokens": True,
        "scope": "read",
    },
    # a resource server for the issuer's own audience: introspects the tokens (a revoked client cannot)
    "api": {"grant_types": [], "resource_server_audiences": [ISSUER]},
}


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with revocation_server() as running:
        yield running


@pytest.fixture
def rpki(server: RevocationServer, tmp_path: Path) -> tuple[RevocationPki, Pki]:
    revocation = RevocationPki.create(server)
    # short-lived answers: the background refresh comes round within seconds
    revocation.root.validity = revocation.intermediate.validity = timedelta(seconds=4)
    ca_file = tmp_path / "client-ca.pem"
    ca_file.write_bytes(revocation.root.cert.public_bytes(Encoding.PEM))
    certs = {}
    for name in CLIENTS:
        leaf = revocation.leaf(f"CN={name},O=certbound tests", via="ocsp")[0]
        certs[name] = ClientCertificate.from_certificates(
            [leaf, revocation.intermediate.cert], source="tls", tls_verified=True, tls_error=None
        )
    return revocation, Pki(revocation.root.cert, ca_file, certs)


Make = Callable[[], Awaitable[Harness]]


@pytest.fixture
async def make(database_url: str, rpki: tuple[RevocationPki, Pki]) -> AsyncIterator[Make]:  # noqa: F811
    made: list[Harness] = []

    async def build() -> Harness:
        cfg = settings(outbound_allow_private=True)  # the responder is on 127.0.0.1
        harness = await build_harness(database_url, pki=rpki[1], settings_=cfg, clients=CLIENTS)
        made.append(harness)
        return harness

    yield build
    for harness in made:
        await harness.close()


async def token_for(h: Harness, name: str) -> str:
    """A token for the tls_client_auth client `name`, on a connection with its certificate."""
    form = {"grant_type": "client_credentials", "client_id": name}
    response = await h.post("/token", None, form, headers={"x-test-cert": name})
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


async def active(h: Harness, token: str) -> bool:
    response = await h.introspect("api", token)
    assert response.status_code == 200, response.text
    return bool(response.json()["active"])


async def until_inactive(h: Harness, token: str, seconds: float = 30.0) -> None:
    async with asyncio.timeout(seconds):
        while await active(h, token):
            await asyncio.sleep(0.2)


async def test_a_background_refresh_makes_bound_tokens_inactive(
    make: Make, rpki: tuple[RevocationPki, Pki]
) -> None:
    revocation, pki = rpki
    h = await make()
    token = await token_for(h, "bound")
    other = await token_for(h, "other")
    assert await active(h, token)
    revocation.intermediate.revoke(pki.certs["bound"].leaf)
    await until_inactive(h, token)  # nobody presented the certificate meanwhile
    assert h.services.certificates.is_revoked(pki.certs["bound"].x5t_s256)
    assert await active(h, other)  # another certificate's tokens are untouched
    form = {"grant_type": "client_credentials", "client_id": "bound"}
    refused = await h.post("/token", None, form, headers={"x-test-cert": "bound"})
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


async def test_another_worker_denies_what_one_learned(make: Make, rpki: tuple[RevocationPki, Pki]) -> None:
    revocation, pki = rpki
    learner, bystander = await make(), await make()
    token = await token_for(learner, "bound")
    assert await active(bystander, token)  # the bystander never saw the certificate
    revocation.intermediate.revoke(pki.certs["bound"].leaf)
    await until_inactive(bystander, token)
    row = await CertStatusStore(learner.store.engine).get(pki.certs["bound"].x5t_s256)
    assert row is not None
    assert row.revocation_source == f"ocsp {revocation.server.ocsp_url('inter')}"
    assert row.client_id is None or row.client_id == "bound"


async def test_a_restarted_worker_keeps_watching_the_certificates_seen(
    make: Make, rpki: tuple[RevocationPki, Pki]
) -> None:
    revocation, pki = rpki
    first = await make()
    token = await token_for(first, "bound")
    await first.close()  # writes what it noted: the chain of "bound"
    revocation.intermediate.revoke(pki.certs["bound"].leaf)
    restarted = await make()
    await until_inactive(restarted, token)


async def test_a_worker_refuses_a_certificate_another_worker_found_revoked(
    make: Make, rpki: tuple[RevocationPki, Pki]
) -> None:
    """The bystander holds a good answer for ten minutes; once the learner finds the certificate revoked
    (the cert_status table, polled every 2 s), the bystander refuses it at its token endpoint too, not
    only its tokens at introspection: it does not wait for its own answer to expire."""
    revocation, pki = rpki
    revocation.root.validity = revocation.intermediate.validity = timedelta(minutes=10)
    bystander = await make()
    await token_for(bystander, "bound")  # a good answer, fresh for ten minutes
    revocation.root.validity = revocation.intermediate.validity = timedelta(seconds=4)
    learner = await make()
    await token_for(learner, "bound")  # a good answer the learner refreshes within seconds
    revocation.intermediate.revoke(pki.certs["bound"].leaf)
    form = {"grant_type": "client_credentials", "client_id": "bound"}
    async with asyncio.timeout(30):
        while True:
            answer = await bystander.post("/token", None, form, headers={"x-test-cert": "bound"})
            if answer.status_code == 401:
                break
            assert answer.status_code == 200, answer.text
            await asyncio.sleep(0.2)
    assert answer.json()["error"] == "invalid_client"
    assert learner.services.certificates.is_revoked(pki.certs["bound"].x5t_s256)
