"""self_signed_tls_client_auth with certificates registered in jwks (x5c)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509

from certbound.pki.issue import issue_client_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.store.records import Client
from tests.server.clientauth.conftest import Harness, Pki, client_cert, make_client, presented

SS = "self_signed_tls_client_auth"


def ss_md(*certs: x509.Certificate) -> dict[str, Any]:
    return {"token_endpoint_auth_method": SS, "jwks": {"keys": [jwk_with_x5c(c) for c in certs]}}


async def test_registered_certificate_authenticates(harness: Harness) -> None:
    cert, _ = self_signed_client_cert("CN=ss-client")
    await harness.register("ss-1", ss_md(cert))
    result = await harness.authenticate({"client_id": "ss-1"}, certificate=presented(cert))
    assert result.method == SS
    assert result.certificate is not None
    assert result.certificate.x5t_s256


async def test_one_of_several_registered_certificates(harness: Harness) -> None:
    old, _ = self_signed_client_cert("CN=ss-client")
    new, _ = self_signed_client_cert("CN=ss-client")
    await harness.register("ss-2", ss_md(old, new))
    await harness.authenticate({"client_id": "ss-2"}, certificate=presented(old))
    await harness.authenticate({"client_id": "ss-2"}, certificate=presented(new))


async def test_unregistered_certificate_same_subject(harness: Harness) -> None:
    cert, _ = self_signed_client_cert("CN=ss-client")
    copy, _ = self_signed_client_cert("CN=ss-client")  # same subject, other key
    await harness.register("ss-3", ss_md(cert))
    await harness.refused("cert.unregistered", {"client_id": "ss-3"}, certificate=presented(copy))


async def test_another_clients_certificate(harness: Harness) -> None:
    a, _ = self_signed_client_cert("CN=a")
    b, _ = self_signed_client_cert("CN=b")
    await harness.register("ss-a", ss_md(a))
    await harness.register("ss-b", ss_md(b))
    await harness.refused("cert.unregistered", {"client_id": "ss-a"}, certificate=presented(b))


async def test_ca_issued_certificate_is_not_registered(harness: Harness, pki: Pki) -> None:
    cert, _ = self_signed_client_cert("CN=ss-client")
    await harness.register("ss-4", ss_md(cert))
    issued, _ = client_cert(pki, "CN=ss-client")
    await harness.refused("cert.unregistered", {"client_id": "ss-4"}, certificate=presented(issued))


async def test_ca_true_registered_cert_never_vouches_for_others(harness: Harness) -> None:
    ca_cert, ca_key = self_signed_client_cert("CN=client-a", ca=True)
    await harness.register("ss-ca", ss_md(ca_cert))
    await harness.authenticate({"client_id": "ss-ca"}, certificate=presented(ca_cert))  # itself: fine
    minted, _ = issue_client_cert(ca_cert, ca_key, "CN=client-a")
    await harness.refused("cert.unregistered", {"client_id": "ss-ca"}, certificate=presented(minted, ca_cert))
    other, _ = self_signed_client_cert("CN=client-b")
    await harness.register("ss-other", ss_md(other))
    minted_b, _ = issue_client_cert(ca_cert, ca_key, "CN=client-b")
    await harness.refused(
        "cert.unregistered", {"client_id": "ss-other"}, certificate=presented(minted_b, ca_cert)
    )


async def test_expired_registered_certificate(harness: Harness) -> None:
    now = datetime.now(UTC)
    expired, _ = self_signed_client_cert(
        "CN=ss-old", not_before=now - timedelta(days=10), not_after=now - timedelta(days=1)
    )
    await harness.register("ss-5", ss_md(expired))
    await harness.refused("cert.expired", {"client_id": "ss-5"}, certificate=presented(expired))


async def test_certificate_expires_while_registered(harness: Harness) -> None:
    now = harness.clock.now
    cert, _ = self_signed_client_cert(
        "CN=ss", not_before=now - timedelta(hours=1), not_after=now + timedelta(hours=1)
    )
    await harness.register("ss-6", ss_md(cert))
    await harness.authenticate({"client_id": "ss-6"}, certificate=presented(cert))
    harness.clock.advance(hours=2)
    await harness.refused("cert.expired", {"client_id": "ss-6"}, certificate=presented(cert))
    harness.clock.advance(hours=-10)
    await harness.refused("cert.not_yet_valid", {"client_id": "ss-6"}, certificate=presented(cert))


async def test_no_certificate(harness: Harness) -> None:
    cert, _ = self_signed_client_cert("CN=ss")
    await harness.register("ss-7", ss_md(cert))
    await harness.refused("cert.missing", {"client_id": "ss-7"})


async def test_rotation_through_the_registration_is_seen(harness: Harness) -> None:
    """A changed registration (store generation bumps) is picked up without a restart."""
    old, _ = self_signed_client_cert("CN=ss")
    new, _ = self_signed_client_cert("CN=ss")
    await harness.register("ss-8", ss_md(old))
    await harness.authenticate({"client_id": "ss-8"}, certificate=presented(old))
    await harness.refused("cert.unregistered", {"client_id": "ss-8"}, certificate=presented(new))
    replaced: Client = make_client("ss-8", ss_md(new), harness.sealer)
    assert await harness.store.replace_client(replaced)
    await harness.watcher.check()
    await harness.authenticate({"client_id": "ss-8"}, certificate=presented(new))
    await harness.refused("cert.unregistered", {"client_id": "ss-8"}, certificate=presented(old))


async def test_deleted_client_is_unknown_after_the_generation_changes(harness: Harness) -> None:
    cert, _ = self_signed_client_cert("CN=ss")
    await harness.register("ss-9", ss_md(cert))
    await harness.authenticate({"client_id": "ss-9"}, certificate=presented(cert))
    assert await harness.store.delete_client("ss-9")
    await harness.watcher.check()
    await harness.refused("client.unknown", {"client_id": "ss-9"}, certificate=presented(cert))
