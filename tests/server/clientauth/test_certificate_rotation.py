"""An RFC 7592 update that replaces a registered self-signed certificate keeps the old one for the
overlap, then it stops working and is dropped; the overlap is never extended and never outlives the
certificate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from cryptography import x509

from certbound.pki.issue import self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.thumbprint import x5t_s256
from certbound.server.clients.registrar import Registrar
from tests.server.clientauth.conftest import Harness, presented

INITIAL = "initial-access-token-0123456789"
METHOD = {"token_endpoint_auth_method": "self_signed_tls_client_auth"}


def jwks(*certs: x509.Certificate) -> dict[str, Any]:
    return {"keys": [jwk_with_x5c(c, kid=f"k{i}") for i, c in enumerate(certs)]}


def registrar(h: Harness, overlap: timedelta) -> Registrar:
    return Registrar(
        h.store,
        h.sealer,
        registration_base_url="https://as.example.com/register",
        initial_access_token=INITIAL,
        clock=h.clock,
        certificate_overlap=overlap,
    )


async def certificates(h: Harness, client_id: str) -> dict[str, Any]:
    stored = await h.store.get_client(client_id)
    assert stored is not None
    return {c.thumbprint: c.not_after for c in stored.credentials if c.kind == "certificate"}


async def test_the_old_certificate_overlaps_then_goes(harness: Harness) -> None:
    h = harness
    reg = registrar(h, timedelta(hours=1))
    old, _ = self_signed_client_cert("CN=rotating")
    new, _ = self_signed_client_cert("CN=rotating")
    created = await reg.register({**METHOD, "jwks": jwks(old)}, INITIAL)
    cid, token = created["client_id"], created["registration_access_token"]
    await reg.update(cid, token, {**METHOD, "client_id": cid, "jwks": jwks(new)})
    await h.watcher.check()
    for cert in (old, new):  # two valid certificates for a while
        await h.authenticate({"client_id": cid}, certificate=presented(cert))
    h.clock.advance(hours=2)
    await h.refused("cert.expired", {"client_id": cid}, certificate=presented(old))
    await h.authenticate({"client_id": cid}, certificate=presented(new))
    await reg.update(cid, token, {**METHOD, "client_id": cid, "jwks": jwks(new)})  # past the overlap...
    assert list(await certificates(h, cid)) == [x5t_s256(new)]  # ...the old one is dropped


async def test_the_overlap_is_never_extended_nor_longer_than_the_certificate(harness: Harness) -> None:
    h = harness
    reg = registrar(h, timedelta(days=30))
    short, _ = self_signed_client_cert("CN=short", days=2)
    new, _ = self_signed_client_cert("CN=short")
    created = await reg.register({**METHOD, "jwks": jwks(short)}, INITIAL)
    cid, token = created["client_id"], created["registration_access_token"]
    await reg.update(cid, token, {**METHOD, "client_id": cid, "jwks": jwks(new)})
    assert (await certificates(h, cid))[x5t_s256(short)] == short.not_valid_after_utc  # its own end first
    h.clock.advance(hours=1)
    await reg.update(cid, token, {**METHOD, "client_id": cid, "jwks": jwks(new), "client_name": "again"})
    assert (await certificates(h, cid))[x5t_s256(short)] == short.not_valid_after_utc


async def test_no_overlap_drops_at_once(harness: Harness) -> None:
    h = harness
    reg = registrar(h, timedelta(0))
    old, _ = self_signed_client_cert("CN=at-once")
    new, _ = self_signed_client_cert("CN=at-once")
    created = await reg.register({**METHOD, "jwks": jwks(old)}, INITIAL)
    cid, token = created["client_id"], created["registration_access_token"]
    await reg.update(cid, token, {**METHOD, "client_id": cid, "jwks": jwks(new)})
    assert list(await certificates(h, cid)) == [x5t_s256(new)]
