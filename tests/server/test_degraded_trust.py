"""The degraded-mode trust set: exactly the registered self-signed certificates, robust to a bad row."""

from __future__ import annotations

from pathlib import Path

from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.pem import cert_to_pem
from certbound.server.degraded_trust import registered_self_signed_pems
from certbound.store.records import Client, Credential
from certbound.store.sql import open_store


def cert_credential(client_id: str, n: int, pem: str) -> Credential:
    return Credential(id=f"{client_id}-{n}", client_id=client_id, kind="certificate", value=pem)


async def test_only_self_signed_certificates_and_bad_rows_skipped(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    await store.migrate()
    try:
        own, _ = self_signed_client_cert("CN=self")
        ca, ca_key = create_ca("CN=ca")
        issued, _ = issue_client_cert(ca, ca_key, "CN=issued")
        own_pem, issued_pem = cert_to_pem(own).decode(), cert_to_pem(issued).decode()
        creds = (
            cert_credential("a", 1, own_pem),
            cert_credential("a", 2, issued_pem),
            cert_credential("a", 3, "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n"),
        )
        await store.create_client(Client(client_id="a", metadata={}, credentials=creds))
        assert await registered_self_signed_pems(store) == [own_pem]
    finally:
        await store.close()
