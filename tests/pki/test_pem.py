"""PEM/DER reading and private/public file writing."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from certbound.pki.issue import new_private_key, self_signed_client_cert
from certbound.pki.pem import (
    cert_to_pem,
    certs_to_pem,
    key_to_pem,
    load_cert_file,
    load_certs_file,
    load_certs_pem,
    load_key_file,
    write_private,
    write_public,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_cert_round_trip_pem_and_der(tmp_path: Path) -> None:
    cert, _ = self_signed_client_cert("CN=a")
    write_public(tmp_path / "a.crt", cert_to_pem(cert))
    (tmp_path / "a.der").write_bytes(cert.public_bytes(Encoding.DER))
    assert load_cert_file(tmp_path / "a.crt") == cert
    assert load_cert_file(str(tmp_path / "a.der")) == cert
    assert _mode(tmp_path / "a.crt") == 0o644


def test_bundle(tmp_path: Path) -> None:
    a, _ = self_signed_client_cert("CN=a")
    b, _ = self_signed_client_cert("CN=b")
    path = tmp_path / "bundle.pem"
    path.write_bytes(b"comment line\n" + certs_to_pem([a, b]))
    assert load_certs_file(path) == [a, b]
    assert load_cert_file(path) == a
    assert load_certs_pem(certs_to_pem((a, b))) == [a, b]


def test_key_round_trip_is_pkcs8_and_private(tmp_path: Path) -> None:
    key = new_private_key()
    pem = key_to_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    write_private(tmp_path / "k.key", pem)
    assert _mode(tmp_path / "k.key") == 0o600
    loaded = load_key_file(tmp_path / "k.key")
    assert key_to_pem(loaded) == pem


def test_write_private_tightens_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_private(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.key"]  # no temporary file left behind


def test_der_and_sec1_keys_load(tmp_path: Path) -> None:
    key = new_private_key()
    (tmp_path / "k.der").write_bytes(key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption()))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption())
    )
    assert key_to_pem(load_key_file(tmp_path / "k.der")) == key_to_pem(key)
    assert key_to_pem(load_key_file(tmp_path / "k.pem")) == key_to_pem(key)


def test_errors_are_value_errors_naming_the_file(tmp_path: Path) -> None:
    key_path = tmp_path / "k.key"
    key_path.write_bytes(key_to_pem(new_private_key()))
    with pytest.raises(ValueError, match=r"k\.key: no PEM certificate found \(it holds a private key\)"):
        load_cert_file(key_path)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="not a PEM or DER"):
        load_certs_file(junk)
    with pytest.raises(ValueError, match="not a private key"):
        load_key_file(junk)
    broken = tmp_path / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ValueError, match="malformed PEM certificate"):
        load_certs_file(broken)
    with pytest.raises(FileNotFoundError):
        load_cert_file(tmp_path / "missing.crt")


def test_encrypted_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption

    key = new_private_key()
    path = tmp_path / "enc.key"
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"pw")))
    with pytest.raises(ValueError, match="encrypted"):
        load_key_file(path)
