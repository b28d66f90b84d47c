"""Client certificates whose names cryptography loads but cannot decode (a Latin-1 TeletexString, as
OpenSSL writes one): the records, listings and trust sets that name certificates write
``(undecodable)`` or leave the certificate out, and never raise (a 500 on /token, a stopped check)."""

from __future__ import annotations

from datetime import UTC, datetime

from certbound.pki.chain import ChainVerifier
from certbound.pki.describe import describe_cert, is_self_signed
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.revocation.status import CertStatus
from certbound.pki.thumbprint import x5t_s256
from certbound.sealing import Sealer
from certbound.server.clientcerts.expiry import client_certificates
from certbound.server.clientcerts.watch import CertificateWatch
from certbound.store.cert_status import CertStatusStore
from certbound.store.sql import SqlStore
from certbound.tls.chain_verdicts import VerdictCache
from certbound.tls.client_certificate import ClientCertificate
from tests.server.clientauth.conftest import make_client, presented
from tests.tls_server import latin1_issued, latin1_self_signed, undecodable_subject


async def test_the_watch_records_an_accepted_chain_whose_issuer_does_not_decode(store: SqlStore) -> None:
    """tls_client_auth accepted the chain (the CA is trusted and signed it): noting it was the 500."""
    ca, leaf, _, _ = latin1_issued()
    cert: ClientCertificate = presented(leaf)
    facts = VerdictCache(ChainVerifier([ca])).facts(cert, datetime.now(UTC))
    assert facts.ok
    watch = CertificateWatch(CertStatusStore(store.engine), None)
    watch.note("latin1", facts)
    [record] = watch._pending.values()
    assert (record.client_id, record.subject, record.issuer) == ("latin1", "CN=fine", "(undecodable)")
    assert record.x5t_s256 == x5t_s256(leaf)


async def test_the_expiry_listing_names_a_registered_certificate_it_cannot_decode(store: SqlStore) -> None:
    cert = undecodable_subject()[0]
    metadata = {
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [jwk_with_x5c(cert)]},
    }
    await store.create_client(make_client("undecodable", metadata, Sealer(bytes(32))))
    [info] = await client_certificates(store, CertStatusStore(store.engine), now=datetime.now(UTC))
    assert (info.client_id, info.subject, info.issuer) == ("undecodable", "(undecodable)", "(undecodable)")


def test_self_signed_is_judged_by_the_names_bytes_and_the_signature() -> None:
    """For the degraded-mode trust set and `describe_cert`: neither may raise over such a name."""
    signed = latin1_self_signed()
    assert is_self_signed(signed) is True
    described = describe_cert(signed)
    assert (described["subject"], described["issuer"], described["self_signed"]) == (
        "(undecodable)",
        "(undecodable)",
        True,
    )
    assert is_self_signed(undecodable_subject()[0]) is False  # the same names, a signature that fails


async def test_a_revocation_learned_under_a_ca_whose_name_does_not_decode_is_recorded(
    store: SqlStore,
) -> None:
    """The checker's listener: it raised before, and the revocation never reached the other workers."""
    ca, leaf, _, _ = latin1_issued()
    watch = CertificateWatch(CertStatusStore(store.engine), None)
    status = CertStatus("revoked", "crl", revoked_at=datetime.now(UTC), reason="keyCompromise")
    watch._learned(x5t_s256(leaf), (leaf, ca), ca, status)
    [record] = watch._pending.values()
    assert (record.issuer, record.revocation_reason) == ("(undecodable)", "CA revoked: (undecodable)")
