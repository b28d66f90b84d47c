"""The development PKI: created once, repaired when needed, keys private."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certbound.pki.chain import ChainVerifier
from certbound.pki.devpki import DEMO_CLIENT_DN, DevPki, ensure_dev_pki
from certbound.pki.dn import dn_matches
from certbound.pki.issue import create_ca, issue_server_cert
from certbound.pki.jwk import jwk_matches_cert
from certbound.pki.pem import cert_to_pem, key_to_pem, load_cert_file, write_private, write_public
from certbound.pki.san import SubjectAltNames


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _contents(pki: DevPki) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in pki.directory.iterdir()}


def test_creates_everything(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path / "pki")
    assert pki.created == ("ca", "server", "client")
    assert _mode(pki.directory) == 0o700
    for key in (pki.ca_key, pki.server_key, pki.client_key):
        assert _mode(key) == 0o600
    for public in (pki.ca_cert, pki.server_cert, pki.client_cert, pki.client_jwk):
        assert _mode(public) == 0o644
    ca = load_cert_file(pki.ca_cert)
    server = load_cert_file(pki.server_cert)
    client = load_cert_file(pki.client_cert)
    sans = SubjectAltNames.from_cert(server)
    assert sans.has_dns("localhost")
    assert sans.has_ip("127.0.0.1")
    assert sans.has_ip("::1")
    assert dn_matches(client.subject, DEMO_CLIENT_DN)
    assert ChainVerifier([ca]).verify(client).ok
    jwk = json.loads(pki.client_jwk.read_text())
    assert jwk_matches_cert(jwk, client)


def test_is_idempotent(tmp_path: Path) -> None:
    first = ensure_dev_pki(tmp_path)
    before = _contents(first)
    again = ensure_dev_pki(tmp_path)
    assert again.created == ()
    assert _contents(again) == before


def test_recreates_only_what_is_missing(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    ca_before = pki.ca_cert.read_bytes()
    pki.client_key.unlink()
    again = ensure_dev_pki(tmp_path)
    assert again.created == ("client",)
    assert pki.ca_cert.read_bytes() == ca_before


def test_server_cert_from_another_ca_is_reissued(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    stranger = create_ca("CN=certbound development CA")  # same name, different key
    cert, key = issue_server_cert(*stranger)
    write_private(pki.server_key, key_to_pem(key))
    write_public(pki.server_cert, cert_to_pem(cert))
    again = ensure_dev_pki(tmp_path)
    assert again.created == ("server",)
    load_cert_file(pki.server_cert).verify_directly_issued_by(load_cert_file(pki.ca_cert))


def test_server_cert_expiring_soon_is_reissued(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    ca = load_cert_file(pki.ca_cert)
    from certbound.pki.pem import load_key_file

    now = datetime.now(UTC)
    cert, key = issue_server_cert(
        ca, load_key_file(pki.ca_key), not_before=now, not_after=now + timedelta(days=10)
    )
    write_private(pki.server_key, key_to_pem(key))
    write_public(pki.server_cert, cert_to_pem(cert))
    assert ensure_dev_pki(tmp_path).created == ("server",)
    assert load_cert_file(pki.server_cert).not_valid_after_utc > now + timedelta(days=300)


def test_mismatched_key_file_is_repaired(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    pki.server_key.write_bytes(pki.client_key.read_bytes())
    assert ensure_dev_pki(tmp_path).created == ("server",)


def test_new_ca_reissues_leaves(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    pki.ca_key.unlink()
    assert ensure_dev_pki(tmp_path).created == ("ca", "server", "client")


def test_new_hosts_reissue_the_server_cert(tmp_path: Path) -> None:
    ensure_dev_pki(tmp_path)
    again = ensure_dev_pki(tmp_path, hosts=("localhost", "api.test", "10.0.0.7"))
    assert again.created == ("server",)
    sans = SubjectAltNames.from_cert(load_cert_file(again.server_cert))
    assert sans.has_dns("api.test")
    assert sans.has_ip("10.0.0.7")


def test_force_recreates_everything(tmp_path: Path) -> None:
    pki = ensure_dev_pki(tmp_path)
    before = pki.ca_cert.read_bytes()
    assert ensure_dev_pki(tmp_path, force=True).created == ("ca", "server", "client")
    assert pki.ca_cert.read_bytes() != before
