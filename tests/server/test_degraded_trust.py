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


class RecordingHolder:
    """Stands in for `TrustHolder`: records every trust set it is given."""

    def __init__(self) -> None:
        self.sets: list[list[str]] = []

    def replace(self, pems: list[str]) -> None:
        self.sets.append(list(pems))


async def test_the_app_keeps_its_holders_current_while_it_runs(tmp_path: Path) -> None:
    """The worker's app (its lifespan) refreshes the degraded-mode trust set when clients change."""
    import asyncio

    from certbound.server.app import create_app
    from tests.server.endpoints.harness import build_harness, make_pki

    h = await build_harness(f"sqlite:///{tmp_path / 'db.sqlite'}", pki=make_pki(tmp_path), clients={})
    holder = RecordingHolder()
    app = create_app(h.services, [holder])  # type: ignore[list-item]
    try:
        own, _ = self_signed_client_cert("CN=self")
        pem = cert_to_pem(own).decode()
        async with app.router.lifespan_context(app):
            assert holder.sets == [[]]  # at start, before any connection
            await h.store.create_client(Client("a", {}, credentials=(cert_credential("a", 1, pem),)))
            for _ in range(100):
                if holder.sets[-1] == [pem]:
                    break
                await asyncio.sleep(0.05)
            assert holder.sets[-1] == [pem]
        count = len(holder.sets)
        await h.store.create_client(Client("b", {}, credentials=(cert_credential("b", 1, pem),)))
        await asyncio.sleep(1.0)  # longer than a poll: nothing refreshes once the app has stopped
        assert len(holder.sets) == count
    finally:
        await h.close()
