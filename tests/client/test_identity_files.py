"""The outbound client presents a renewed certificate once its files change (only when the key matches),
and holds the next certificate beside the current one until it starts."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certbound.client import AsyncOAuthClient, TLSIdentity
from certbound.pki.issue import create_ca, issue_client_cert
from certbound.pki.pem import cert_to_pem, key_to_pem
from certbound.pki.thumbprint import x5t_s256
from tests.client.conftest import config_for
from tests.client.material import CertFiles, Material
from tests.client.stub_server import StubServer


class Ticks:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


def copy_pair(pair: CertFiles, directory: Path, name: str) -> TLSIdentity:
    cert_file, key_file = directory / f"{name}.crt", directory / f"{name}.key"
    shutil.copy(pair.cert_file, cert_file)
    shutil.copy(pair.key_file, key_file)
    return TLSIdentity(cert_file, key_file)


async def test_a_certificate_renewed_in_place_is_presented(
    server: StubServer, material: Material, tmp_path: Path
) -> None:
    identity = copy_pair(material.tls_client, tmp_path, "live")
    ticks = Ticks()
    config = config_for(server, material, identities=[identity])
    async with AsyncOAuthClient(config, monotonic=ticks) as client:
        await client.client_credentials(use_cache=False)
        # the renewal writes the certificate first: with the old key it cannot be used yet
        identity.cert_file.write_bytes(material.second_tls_client.cert_file.read_bytes())
        ticks.value += 2
        await client.client_credentials(use_cache=False)
        identity.key_file.write_bytes(material.second_tls_client.key_file.read_bytes())
        ticks.value += 2
        await client.client_credentials(use_cache=False)
    presented = [p.client_cert for p in server.posts("/token")]
    old, new = material.tls_client.thumbprint, material.second_tls_client.thumbprint
    assert presented == [old, old, new]


async def test_the_next_certificate_is_held_until_it_starts(
    server: StubServer, material: Material, tmp_path: Path
) -> None:
    start = datetime.now(UTC) + timedelta(days=1)
    nxt, key = issue_client_cert(
        *create_ca("CN=next CA"), "CN=interop-tls,O=certbound interop", not_before=start
    )
    (tmp_path / "next.crt").write_bytes(cert_to_pem(nxt))
    (tmp_path / "next.key").write_bytes(key_to_pem(key))
    identities = [material.tls_client.identity(), TLSIdentity(tmp_path / "next.crt", tmp_path / "next.key")]
    now = [datetime.now(UTC)]
    config = config_for(server, material, identities=identities)
    async with AsyncOAuthClient(config, now=lambda: now[0]) as client:
        assert client.current_identity().thumbprint == material.tls_client.thumbprint  # type: ignore[union-attr]
        now[0] = start + timedelta(seconds=1)
        assert client.current_identity().thumbprint == x5t_s256(nxt)  # type: ignore[union-attr]
        # an expired current certificate is passed over for a valid one, whatever the order
        now[0] = material.tls_client.cert.not_valid_after_utc + timedelta(days=1)
        assert client.current_identity().thumbprint == x5t_s256(nxt)  # type: ignore[union-attr]
