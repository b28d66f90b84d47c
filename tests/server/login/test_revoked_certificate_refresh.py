"""Issue 16 for refresh tokens: once certbound learns that the certificate a public client's refresh
token is bound to (RFC 8705 section 4) is revoked, the token stops working at the token endpoint and is
inactive at introspection, without waiting for it to expire."""

from __future__ import annotations

from datetime import UTC, datetime

from certbound.store.cert_status import CertificateRecord, CertStatusStore
from tests.server.endpoints.harness import Harness
from tests.server.login.flow import Browser, token_request


async def learn_revoked(h: Harness, name: str) -> None:
    """Another node learned the revocation (the cert_status row); this worker polls it."""
    cert = h.pki.certs[name]
    now = datetime.now(UTC)
    record = CertificateRecord(
        cert.x5t_s256, None, "CN=" + name, "CN=issuer", "01", now, "", now, now,
        revoked_at=now, revocation_reason="keyCompromise", revocation_source="crl test", learned_at=now,
    )  # fmt: skip
    await CertStatusStore(h.store.engine).record([record])
    await h.services.certificates.poll()
    assert h.services.certificates.is_revoked(cert.x5t_s256)


async def test_a_refresh_token_bound_to_a_revoked_certificate_stops_working(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("native", scope="openid offline_access")
    refresh = (await browser.exchange("native", code, cert="svc")).json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    await learn_revoked(harness, "svc")
    refused = await token_request(harness, "native", form, cert="svc")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"
    client = await harness.services.checker.clients("native")
    assert client is not None
    assert await harness.services.tokens.introspector.introspect(refresh, client) == {"active": False}
