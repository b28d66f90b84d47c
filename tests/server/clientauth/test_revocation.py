"""tls_client_auth refuses revoked chains (cert.revoked) and, unless soft fail, chains whose status
cannot be had (cert.revocation_unknown); the event and `certbound explain` say which certificate, since
when and who said so. A real OCSP responder and CRL server on 127.0.0.1 (tests/revocation_peer.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from cryptography import x509
from structlog.testing import capture_logs

from certbound.certstatus import GOOD_CHAIN, RevocationPolicy, build_checker
from certbound.cli.explain.explanation import explain_event
from certbound.cli.explain.render import as_json, as_text
from certbound.sealing import Sealer
from certbound.server.clientauth.events import event_fields
from certbound.server.clientauth.revocation import revocation_fields
from certbound.server.clientauth.types import AuthRequest
from certbound.store.sql import SqlStore
from tests.revocation_peer import RevocationPki, RevocationServer, revocation_server
from tests.server.clientauth.conftest import AUDIENCES, Harness, build_harness, presented


def tls_client(subject: str) -> dict[str, Any]:
    return {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_subject_dn": subject}


@pytest.fixture
def server() -> Iterator[RevocationServer]:
    with revocation_server() as running:
        yield running


@pytest.fixture
def rpki(server: RevocationServer) -> RevocationPki:
    return RevocationPki.create(server)


async def _harness(sqlite_db: SqlStore, sealer: Sealer, rpki: RevocationPki, **policy: Any) -> Harness:
    checker = build_checker(
        RevocationPolicy(**policy), issuer_url="https://127.0.0.1:8443", known_cas=[rpki.root.cert]
    )
    return await build_harness(sqlite_db, sealer, trust=[rpki.root.cert], revocation=checker)


@pytest.fixture
async def h(sqlite_db: SqlStore, sealer: Sealer, rpki: RevocationPki) -> AsyncIterator[Harness]:
    made = await _harness(sqlite_db, sealer, rpki)
    yield made
    await made.watcher.stop()
    await made.auth.aclose()


@pytest.fixture
async def soft(sqlite_db: SqlStore, sealer: Sealer, rpki: RevocationPki) -> AsyncIterator[Harness]:
    made = await _harness(sqlite_db, sealer, rpki, soft_fail=True)
    yield made
    await made.watcher.stop()
    await made.auth.aclose()


def chain_of(rpki: RevocationPki, leaf: x509.Certificate) -> Any:
    return presented(leaf, rpki.intermediate.cert)  # the client sends its intermediate along


async def test_a_good_certificate_is_checked_once_then_from_memory(
    h: Harness, rpki: RevocationPki, server: RevocationServer
) -> None:
    await h.register("good", tls_client("CN=good,O=t"))
    cert = chain_of(rpki, rpki.leaf("CN=good,O=t")[0])
    await h.authenticate({"client_id": "good"}, certificate=cert)
    warm = server.count()
    assert warm == 2  # leaf and intermediate, once each
    for _ in range(50):
        await h.authenticate({"client_id": "good"}, certificate=cert)
    assert server.count() == warm  # the hot path asked nobody


@pytest.mark.parametrize("what", ["leaf", "intermediate"])
@pytest.mark.parametrize("via", ["ocsp", "crl"])
async def test_revoked_leaf_and_intermediate_are_refused(
    sqlite_db: SqlStore, sealer: Sealer, rpki: RevocationPki, via: str, what: str
) -> None:
    h = await _harness(sqlite_db, sealer, rpki, mode="ocsp" if via == "ocsp" else "crl")
    try:
        await h.register("c", tls_client("CN=c,O=t"))
        leaf = rpki.leaf("CN=c,O=t")[0]
        if what == "leaf":
            when = rpki.intermediate.revoke(leaf, x509.ReasonFlags.key_compromise)
            url = rpki.server.ocsp_url("inter") if via == "ocsp" else rpki.server.crl_url("inter")
        else:
            when = rpki.root.revoke(rpki.intermediate.cert, x509.ReasonFlags.ca_compromise)
            url = rpki.server.ocsp_url("root") if via == "ocsp" else rpki.server.crl_url("root")
        with capture_logs() as logs:
            error = await h.refused("cert.revoked", {"client_id": "c"}, certificate=chain_of(rpki, leaf))
        assert error.error == "invalid_client"
        [event] = [e for e in logs if e["event"] == "client_auth"]
        assert event["revocation_source"] == f"{via} {url}"
        assert event["revoked_at"] == when.isoformat()
        assert event["revocation_reason"] == ("keyCompromise" if what == "leaf" else "cACompromise")
        assert event["revocation_subject"] == (
            "CN=c,O=t" if what == "leaf" else "CN=Revocation Intermediate,O=certbound tests"
        )
    finally:
        await h.watcher.stop()
        await h.auth.aclose()


async def test_unknown_is_refused_and_soft_fail_accepts_with_a_warning(
    h: Harness, soft: Harness, rpki: RevocationPki, server: RevocationServer
) -> None:
    server.down = True
    leaf = rpki.leaf("CN=down,O=t", via="ocsp")[0]
    await h.register("down", tls_client("CN=down,O=t"))  # one store under both
    await soft.watcher.check()
    error = await h.refused(
        "cert.revocation_unknown", {"client_id": "down"}, certificate=chain_of(rpki, leaf)
    )
    assert error.reason == "cert.revocation_unknown"
    with capture_logs() as logs:
        accepted = await soft.authenticate({"client_id": "down"}, certificate=chain_of(rpki, leaf))
        await soft.authenticate({"client_id": "down"}, certificate=chain_of(rpki, leaf))
    assert accepted.client.client_id == "down"
    warnings = [e for e in logs if e["event"] == "client_cert_soft_fail"]
    assert len(warnings) == 1  # once a minute per certificate, not once per request
    assert warnings[0]["log_level"] == "warning"
    assert "HTTP 503" in warnings[0]["detail"]


async def test_a_request_refused_anyway_asks_no_responder(
    h: Harness, rpki: RevocationPki, server: RevocationServer
) -> None:
    await h.register("strict", tls_client("CN=expected,O=t"))
    other = chain_of(rpki, rpki.leaf("CN=someone-else,O=t")[0])
    await h.refused("cert.subject_mismatch", {"client_id": "strict"}, certificate=other)
    assert server.count() == 0


async def test_explain_shows_the_source_and_the_time(h: Harness, rpki: RevocationPki) -> None:
    await h.register("ex", tls_client("CN=ex,O=t"))
    leaf = rpki.leaf("CN=ex,O=t", via="ocsp")[0]
    when = rpki.intermediate.revoke(leaf, x509.ReasonFlags.superseded)
    decision = await h.auth.decide(
        AuthRequest("token", {"client_id": "ex"}, None, chain_of(rpki, leaf), AUDIENCES)
    )
    assert decision.reason == "cert.revoked"
    explanation = explain_event(event_fields(decision))
    text = as_text(explanation)
    assert f"revoked:   CN=ex,O=t at {when.isoformat()} (superseded)" in text
    assert f"said by: ocsp {rpki.server.ocsp_url('inter')}" in text
    assert as_json(explanation)["revocation"] == {
        "certificate": "CN=ex,O=t",
        "source": f"ocsp {rpki.server.ocsp_url('inter')}",
        "revoked_at": when.isoformat(),
        "reason": "superseded",
    }


def test_revocation_fields_need_a_status() -> None:
    assert revocation_fields(GOOD_CHAIN) == {}
