"""Sealing secrets at rest: round trip, and every way an open must fail."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certbound.sealing import (
    KEK_SIZE,
    Sealer,
    SealingError,
    kek_from_text,
    kek_id,
    load_kek,
    load_or_create_kek,
)

KEK = bytes(range(32))
OTHER_KEK = bytes(range(1, 33))


def test_round_trip_and_format() -> None:
    sealer = Sealer(KEK)
    sealed = sealer.seal(b"secret", aad=b"client-1")
    version, kid, data = sealed.split(".")
    assert version == "v1"
    assert kid == hashlib.sha256(KEK).digest()[:4].hex() == sealer.kek_id == kek_id(KEK)
    assert sealed.isascii()
    assert b"secret" not in base64.urlsafe_b64decode(data + "==")
    assert sealer.open(sealed, aad=b"client-1") == b"secret"


def test_each_seal_uses_a_fresh_nonce() -> None:
    sealer = Sealer(KEK)
    assert sealer.seal(b"same") != sealer.seal(b"same")


def test_empty_plaintext_and_default_aad() -> None:
    sealer = Sealer(KEK)
    assert sealer.open(sealer.seal(b"")) == b""


@given(plaintext=st.binary(max_size=512), aad=st.binary(max_size=64))
def test_round_trip_any_bytes(plaintext: bytes, aad: bytes) -> None:
    sealer = Sealer(KEK)
    assert sealer.open(sealer.seal(plaintext, aad=aad), aad=aad) == plaintext


def test_wrong_kek_is_named() -> None:
    sealed = Sealer(KEK).seal(b"secret")
    with pytest.raises(SealingError, match="another key-encryption key"):
        Sealer(OTHER_KEK).open(sealed)


def test_wrong_aad() -> None:
    sealer = Sealer(KEK)
    sealed = sealer.seal(b"secret", aad=b"kid-1")
    with pytest.raises(SealingError, match="failed authentication"):
        sealer.open(sealed, aad=b"kid-2")
    with pytest.raises(SealingError):
        sealer.open(sealed)


@given(position=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_tampering_is_detected(position: int, flip: int) -> None:
    sealer = Sealer(KEK)
    sealed = sealer.seal(b"a secret value", aad=b"x")
    header, data = sealed.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
    raw[position % len(raw)] ^= flip
    tampered = header + "." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(SealingError):
        sealer.open(tampered, aad=b"x")


def test_header_is_authenticated() -> None:
    """Relabelling a value with another KEK id breaks its tag (so a KEK-rotation lookup cannot be fooled)."""
    sealer = Sealer(KEK)
    sealed = sealer.seal(b"secret")
    _, _, data = sealed.split(".")
    relabelled = Sealer(KEK)
    relabelled.kek_id = "deadbeef"  # same KEK under another id: only the tag can notice
    with pytest.raises(SealingError, match="failed authentication"):
        relabelled.open(f"v1.deadbeef.{data}")


@pytest.mark.parametrize(
    "value",
    ["", "v1", "v1.abc", "v1.x.y.z", "nonsense.a.b", "v1.{kid}.!!!", "v1.{kid}.AAAA", "v1.{kid}."],
)
def test_malformed_values(value: str) -> None:
    sealer = Sealer(KEK)
    with pytest.raises(SealingError):
        sealer.open(value.format(kid=sealer.kek_id))


@pytest.mark.parametrize("kek", [b"", b"x" * 16, b"x" * 31, b"x" * 33])
def test_kek_must_be_32_bytes(kek: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(kek)


def test_repr_does_not_show_the_kek() -> None:
    assert KEK.hex() not in repr(Sealer(KEK))
    assert repr(Sealer(KEK)) == f"Sealer(kek_id={kek_id(KEK)!r})"


def test_kek_from_text_base64url_and_hex() -> None:
    kek = os.urandom(32)
    b64 = base64.urlsafe_b64encode(kek).decode()
    assert kek_from_text(b64) == kek
    assert kek_from_text(b64.rstrip("=")) == kek
    assert kek_from_text(f"  {b64.rstrip('=')}\n") == kek
    assert kek_from_text(kek.hex()) == kek
    assert kek_from_text(kek.hex().upper()) == kek


@pytest.mark.parametrize(
    "value",
    [
        "",
        "short",
        base64.urlsafe_b64encode(b"x" * 31).decode(),
        base64.urlsafe_b64encode(b"x" * 33).decode(),
        "ab" * 31,
        "ab" * 33,
        "zz" * 32,
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet ('+', '/'), not base64url
    ],
)
def test_kek_from_text_refuses(value: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        kek_from_text(value)


def test_load_or_create_kek_creates_0600_then_reuses(tmp_path: Path) -> None:
    path = tmp_path / "data" / "kek"
    kek = load_or_create_kek(path)
    assert len(kek) == KEK_SIZE
    assert path.read_bytes() == kek
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_kek(path) == kek
    assert [p.name for p in path.parent.iterdir()] == ["kek"]  # no temporary file left behind


@pytest.mark.parametrize("size", [0, 31, 33, 64])
def test_load_or_create_kek_refuses_wrong_length(tmp_path: Path, size: int) -> None:
    path = tmp_path / "kek"
    path.write_bytes(b"k" * size)
    with pytest.raises(ValueError, match=f"holds {size} bytes"):
        load_or_create_kek(path)
    assert path.read_bytes() == b"k" * size  # never overwritten


def test_load_or_create_kek_concurrent_creators_agree(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    results: list[bytes] = []
    barrier = threading.Barrier(8)

    def create() -> None:
        barrier.wait()
        results.append(load_or_create_kek(path))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    assert set(results) == {path.read_bytes()}


def test_load_kek_never_creates(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    with pytest.raises(FileNotFoundError):
        load_kek(path)
    assert not path.exists()
    path.write_bytes(KEK)
    assert load_kek(path) == KEK
    path.write_bytes(KEK[:31])
    with pytest.raises(ValueError, match="holds 31 bytes"):
        load_kek(path)
