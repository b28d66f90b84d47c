"""Client certificates about to expire: `certbound clients expiring`, the gauge
certbound_client_certificate_expiry_seconds{client_id}, and one warning per threshold for all workers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs
from typer.testing import CliRunner

from certbound.cli.main import app
from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.pem import certs_to_pem
from certbound.pki.thumbprint import x5t_s256
from certbound.sealing import Sealer
from certbound.server.clientcerts.expiry import ExpiryMonitor, client_certificates, expiring_within
from certbound.store.cert_status import CertificateRecord, CertStatusStore
from certbound.store.sql import SqlStore
from tests.server.clientauth.conftest import make_client

NOW = datetime.now(UTC).replace(microsecond=0)
DAY = timedelta(days=1)
SEALER = Sealer(bytes(32))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


async def populate(store: SqlStore) -> dict[str, Any]:
    """`ss` registered a certificate ending in 5 days; `tls` presented one ending in 20 days and, before
    that, one ending in 2 days (rotated); `fine` registered one ending in a year."""
    soon, _ = self_signed_client_cert("CN=ss", not_before=NOW - DAY, not_after=NOW + 5 * DAY)
    year, _ = self_signed_client_cert("CN=fine", not_before=NOW - DAY, not_after=NOW + 365 * DAY)
    for client_id, cert in (("ss", soon), ("fine", year)):
        metadata = {"token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "jwks": {"keys": [jwk_with_x5c(cert)]}}  # fmt: skip
        await store.create_client(make_client(client_id, metadata, SEALER))
    ca = create_ca("CN=Expiry CA")
    table = CertStatusStore(store.engine)
    seen = {}
    for name, days in (("old", 2), ("new", 20)):
        cert = issue_client_cert(*ca, "CN=tls", not_before=NOW - DAY, not_after=NOW + days * DAY)[0]
        seen[name] = cert
        await table.record([CertificateRecord(
            x5t_s256(cert), "tls", "CN=tls", "CN=Expiry CA", format(cert.serial_number, "x"),
            cert.not_valid_after_utc, certs_to_pem([cert, ca[0]]).decode(), NOW - DAY, NOW - DAY,
        )])  # fmt: skip
    return {"soon": soon, "year": year, **seen}


def gauge(client_id: str) -> float | None:
    return REGISTRY.get_sample_value("certbound_client_certificate_expiry_seconds", {"client_id": client_id})


async def test_listing_and_window(store: SqlStore) -> None:
    certs = await populate(store)
    every = await client_certificates(store, CertStatusStore(store.engine), now=NOW)
    soon = expiring_within(every, 30 * DAY, NOW)
    assert [(c.client_id, c.source) for c in soon] == [("tls", "seen"), ("ss", "registered"), ("tls", "seen")]
    assert [c.x5t_s256 for c in soon] == [x5t_s256(certs[n]) for n in ("old", "soon", "new")]
    assert expiring_within(every, 3 * DAY, NOW)[0].x5t_s256 == x5t_s256(certs["old"])
    # presented longer ago than the window: not counted
    assert all(c.source == "registered" for c in await client_certificates(
        store, CertStatusStore(store.engine), now=NOW + 10 * DAY, seen_within=DAY))  # fmt: skip


async def test_gauge_and_one_warning_per_threshold_for_all_workers(store: SqlStore) -> None:
    await populate(store)
    clock = Clock()
    table = CertStatusStore(store.engine)
    workers = [ExpiryMonitor(store, table, clock=clock), ExpiryMonitor(store, table, clock=clock)]
    with capture_logs() as logs:
        for worker in workers:
            await worker.run_once()
    assert gauge("ss") == pytest.approx(5 * 86400)
    assert gauge("tls") == pytest.approx(20 * 86400)  # rotated: its new certificate counts
    assert gauge("fine") == pytest.approx(365 * 86400)
    warnings = [e for e in logs if e["event"] == "client_certificate_expiring"]
    assert [(w["client_id"], w["threshold_days"]) for w in warnings] == [("tls", 30), ("ss", 7)]
    assert warnings[0]["log_level"] == "warning"
    clock.now = NOW + 4 * DAY + timedelta(hours=12)
    with capture_logs() as logs:
        for worker in workers:
            await worker.run_once()
    warnings = [e for e in logs if e["event"] == "client_certificate_expiring"]
    assert [(w["client_id"], w["threshold_days"]) for w in warnings] == [("ss", 1)]


@pytest.fixture
async def populated(store: SqlStore) -> dict[str, Any]:
    return await populate(store)


def test_the_cli(populated: dict[str, Any], tmp_path: Path) -> None:
    certs = populated
    runner = CliRunner()
    result = runner.invoke(
        app, ["clients", "expiring", "--within", "10d", "--json", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["client_id"], r["x5t_s256"], r["source"]) for r in rows] == [
        ("tls", x5t_s256(certs["old"]), "seen"),
        ("ss", x5t_s256(certs["soon"]), "registered"),
    ]
    assert 0 < rows[0]["expires_in_seconds"] <= 2 * 86400
    text = runner.invoke(app, ["clients", "expiring", "--within", "10d", "--data-dir", str(tmp_path)])
    assert text.exit_code == 0
    assert "ss: CN=ss expires" in text.stdout
    bad = runner.invoke(app, ["clients", "expiring", "--within", "soon", "--data-dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "--within: 'soon' is not a duration" in bad.stderr
