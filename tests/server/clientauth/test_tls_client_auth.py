"""tls_client_auth: chain validated in the app, then exactly the registered subject value compared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.sealing import Sealer
from certbound.store.sql import SqlStore
from tests.server.clientauth.conftest import Harness, Pki, basic, build_harness, client_cert, presented

DN = "CN=client-one,O=certbound tests"


def tls_md(**subject: str) -> dict[str, Any]:
    return {"token_endpoint_auth_method": "tls_client_auth", **subject}


# --- subject types ------------------------------------------------------------------------------------

# (registered metadata, certificate that matches, certificate that does not)
SUBJECT_CASES: list[tuple[str, dict[str, str], dict[str, Any], dict[str, Any]]] = [
    (
        "dn",
        {"tls_client_auth_subject_dn": "cn=Client-One, o=Certbound Tests"},  # same DN, other spelling
        {"subject": DN},
        {"subject": "CN=client-two,O=certbound tests"},
    ),
    (
        "dn-order-matters",
        {"tls_client_auth_subject_dn": "O=certbound tests,CN=client-one"},
        {"subject": "O=Certbound Tests,CN=Client-One"},
        {"subject": DN},  # the same RDNs in the other order is another name
    ),
    (
        "dns",
        {"tls_client_auth_san_dns": "client.example.com"},
        {"subject": "CN=x", "dns": ["CLIENT.Example.COM"]},
        {"subject": "CN=x", "dns": ["*.example.com"]},
    ),
    (
        "dns-in-cn-only",
        {"tls_client_auth_san_dns": "client.example.com"},
        {"subject": "CN=x", "dns": ["other.example.com", "client.example.com"]},
        {"subject": "CN=client.example.com"},  # a DNS name in the CN is not a SAN
    ),
    (
        "uri",
        {"tls_client_auth_san_uri": "spiffe://example.org/client-one"},
        {"subject": "CN=x", "uris": ["spiffe://example.org/client-one"]},
        {"subject": "CN=x", "uris": ["spiffe://example.org/Client-One"]},
    ),
    (
        "ipv4",
        {"tls_client_auth_san_ip": "192.0.2.7"},
        {"subject": "CN=x", "ips": ["192.0.2.7"]},
        {"subject": "CN=x", "ips": ["192.0.2.8", "::ffff:192.0.2.7"]},
    ),
    (
        "ipv6-short",
        {"tls_client_auth_san_ip": "2001:db8::1"},
        {"subject": "CN=x", "ips": ["2001:0db8:0000:0000:0000:0000:0000:0001"]},
        {"subject": "CN=x", "ips": ["2001:db8::2"]},
    ),
    (
        "ipv6-long",
        {"tls_client_auth_san_ip": "2001:0DB8:0:0:0:0:0:1"},
        {"subject": "CN=x", "ips": ["2001:db8::1"]},
        {"subject": "CN=x", "ips": ["192.0.2.1"]},
    ),
    (
        "email",
        {"tls_client_auth_san_email": "client-one@Example.com"},
        {"subject": "CN=x", "emails": ["client-one@example.COM"]},
        {"subject": "CN=x,emailAddress=client-one@example.com"},  # the DN attribute is not the SAN
    ),
]


@pytest.mark.parametrize(
    ("registered", "matching", "other"), [c[1:] for c in SUBJECT_CASES], ids=[c[0] for c in SUBJECT_CASES]
)
async def test_subject_types(
    harness: Harness, pki: Pki, registered: dict[str, str], matching: dict[str, Any], other: dict[str, Any]
) -> None:
    await harness.register("tls-1", tls_md(**registered))
    good, _ = client_cert(pki, **matching)
    result = await harness.authenticate({"client_id": "tls-1"}, certificate=presented(good))
    assert result.method == "tls_client_auth"
    assert result.certificate is not None
    assert result.certificate.leaf == good
    bad, _ = client_cert(pki, **other)
    await harness.refused("cert.subject_mismatch", {"client_id": "tls-1"}, certificate=presented(bad))


async def test_email_registered_email_matches_only_the_email_san(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-email", tls_md(tls_client_auth_san_email="a@example.com"))
    cert, _ = client_cert(pki, subject="CN=x", dns=["a@example.com"])  # not an rfc822Name
    await harness.refused("cert.subject_mismatch", {"client_id": "tls-email"}, certificate=presented(cert))


# --- trust ----------------------------------------------------------------------------------------------


async def test_right_dn_from_an_untrusted_ca(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-2", tls_md(tls_client_auth_subject_dn=DN))
    forged, _ = issue_client_cert(pki.other_ca[0], pki.other_ca[1], DN)  # CA with the same name, other key
    await harness.refused("cert.untrusted", {"client_id": "tls-2"}, certificate=presented(forged))
    # sending the impostor CA along changes nothing: only configured anchors are trusted
    await harness.refused(
        "cert.untrusted", {"client_id": "tls-2"}, certificate=presented(forged, pki.other_ca[0])
    )


async def test_self_signed_copy_of_a_registered_dn(harness: Harness) -> None:
    await harness.register("tls-3", tls_md(tls_client_auth_subject_dn=DN))
    copy, _ = self_signed_client_cert(DN)
    await harness.refused("cert.untrusted", {"client_id": "tls-3"}, certificate=presented(copy))
    ca_copy, _ = self_signed_client_cert(DN, ca=True)
    await harness.refused("cert.untrusted", {"client_id": "tls-3"}, certificate=presented(ca_copy))


async def test_tls_layer_verdict_is_ignored(harness: Harness, pki: Pki) -> None:
    """tls_verified=True from the TLS layer does not make an untrusted certificate acceptable."""
    await harness.register("tls-4", tls_md(tls_client_auth_subject_dn=DN))
    forged, _ = issue_client_cert(pki.other_ca[0], pki.other_ca[1], DN)
    cert = presented(forged)
    object.__setattr__(cert, "tls_verified", True)
    await harness.refused("cert.untrusted", {"client_id": "tls-4"}, certificate=cert)


async def test_intermediate_sent_by_the_client(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-5", tls_md(tls_client_auth_subject_dn=DN))
    leaf, _ = issue_client_cert(pki.intermediate[0], pki.intermediate[1], DN)
    await harness.authenticate({"client_id": "tls-5"}, certificate=presented(leaf, pki.intermediate[0]))
    await harness.refused("cert.untrusted", {"client_id": "tls-5"}, certificate=presented(leaf))


async def test_registered_ca_true_self_signed_cert_is_not_an_anchor(harness: Harness) -> None:
    """Client A registers a CA:TRUE self-signed certificate; a leaf it issues gets nowhere."""
    ca_cert, ca_key = self_signed_client_cert("CN=client-a", ca=True)
    jwk = jwk_with_x5c(ca_cert)
    await harness.register(
        "client-a", {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": {"keys": [jwk]}}
    )
    await harness.register("client-b", tls_md(tls_client_auth_subject_dn="CN=client-b"))
    minted, _ = issue_client_cert(ca_cert, ca_key, "CN=client-b")
    await harness.refused("cert.untrusted", {"client_id": "client-b"}, certificate=presented(minted, ca_cert))
    await harness.refused(
        "cert.unregistered", {"client_id": "client-a"}, certificate=presented(minted, ca_cert)
    )


async def test_no_client_ca_configured(sqlite_db: SqlStore, sealer: Sealer, pki: Pki) -> None:
    h = await build_harness(sqlite_db, sealer, trust=None)
    try:
        await h.register("tls-6", tls_md(tls_client_auth_subject_dn=DN))
        good, _ = client_cert(pki, DN)
        await h.refused("cert.untrusted", {"client_id": "tls-6"}, certificate=presented(good))
    finally:
        await h.watcher.stop()
        await h.auth.aclose()


# --- time -----------------------------------------------------------------------------------------------


async def test_expired_and_not_yet_valid_certificates(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-7", tls_md(tls_client_auth_subject_dn=DN))
    now = datetime.now(UTC)
    expired, _ = client_cert(pki, DN, not_before=now - timedelta(days=10), not_after=now - timedelta(days=1))
    await harness.refused("cert.expired", {"client_id": "tls-7"}, certificate=presented(expired))
    future, _ = client_cert(pki, DN, not_before=now + timedelta(days=1), not_after=now + timedelta(days=10))
    await harness.refused("cert.not_yet_valid", {"client_id": "tls-7"}, certificate=presented(future))


async def test_cached_verdict_is_rechecked_as_time_moves(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-8", tls_md(tls_client_auth_subject_dn=DN))
    now = harness.clock.now
    cert = presented(
        client_cert(pki, DN, not_before=now - timedelta(hours=1), not_after=now + timedelta(hours=1))[0]
    )
    await harness.authenticate({"client_id": "tls-8"}, certificate=cert)
    await harness.authenticate({"client_id": "tls-8"}, certificate=cert)
    assert harness.auth.verdicts.misses == 1
    assert harness.auth.verdicts.hits == 1
    harness.clock.advance(hours=2)
    await harness.refused("cert.expired", {"client_id": "tls-8"}, certificate=cert)


async def test_expired_intermediate(harness: Harness, pki: Pki) -> None:
    now = datetime.now(UTC)
    old_ca = create_ca(
        "CN=Old Intermediate",
        issuer=pki.ca,
        path_length=0,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    leaf, _ = issue_client_cert(
        old_ca[0], old_ca[1], DN, not_before=now - timedelta(days=2), not_after=now + timedelta(days=2)
    )
    await harness.register("tls-9", tls_md(tls_client_auth_subject_dn=DN))
    await harness.refused("cert.expired", {"client_id": "tls-9"}, certificate=presented(leaf, old_ca[0]))


# --- request rules --------------------------------------------------------------------------------------


async def test_no_certificate(harness: Harness) -> None:
    await harness.register("tls-10", tls_md(tls_client_auth_subject_dn=DN))
    await harness.refused("cert.missing", {"client_id": "tls-10"})


async def test_client_id_required_in_form(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-11", tls_md(tls_client_auth_subject_dn=DN))
    good = presented(client_cert(pki, DN)[0])
    await harness.refused("request.client_id_missing", {}, certificate=good)


async def test_other_mechanism_alongside_certificate_is_a_mismatch(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-12", tls_md(tls_client_auth_subject_dn=DN))
    good = presented(client_cert(pki, DN)[0])
    await harness.refused(
        "client.method_mismatch", {"client_id": "tls-12", "client_secret": "x"}, certificate=good
    )
    await harness.refused("client.method_mismatch", authorization=basic("tls-12", "x"), certificate=good)


async def test_hot_path_reads_nothing_from_the_store(harness: Harness, pki: Pki) -> None:
    await harness.register("tls-13", tls_md(tls_client_auth_subject_dn=DN))
    good = presented(client_cert(pki, DN)[0])
    await harness.authenticate({"client_id": "tls-13"}, certificate=good)  # fills the caches
    await harness.watcher.stop()  # no polling in the background during the measurement
    harness.reads.clear()
    for _ in range(20):
        await harness.authenticate({"client_id": "tls-13"}, certificate=good)
    assert harness.reads == []
