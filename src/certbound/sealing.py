"""Sealing secrets at rest under a key-encryption key (KEK).

Signing keys and ``client_secret_jwt`` secrets must be kept in the store, but a copy of the database
(a backup, a replica, a stolen file) must not be enough to use them. They are sealed with AES-256-GCM
under a KEK that lives outside the database (a file in the data directory, or the settings).

A sealed value is one ASCII string, ``v1.<kekid>.<base64url(nonce || ciphertext+tag)>``:

- ``v1`` names the format, so that it can change without guessing;
- ``kekid`` (the first 4 bytes of SHA-256 of the KEK, hex) names the KEK that sealed it, so that a wrong
  KEK is reported as such and KEK rotation (open with an old KEK, seal with the new one) can be added;
- the header and the caller's ``aad`` are authenticated, so a sealed value cannot be moved to another
  record (seal a signing key with ``aad=kid``, a secret with ``aad=client_id``) or relabelled.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEK_SIZE", "Sealer", "SealingError", "kek_from_text", "kek_id", "load_kek", "load_or_create_kek"]

KEK_SIZE = 32
_VERSION = "v1"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_B64URL_32 = re.compile(r"[A-Za-z0-9_-]{43}=?")
_HEX_32 = re.compile(r"[0-9a-fA-F]{64}")


class SealingError(Exception):
    """A sealed value cannot be opened: wrong KEK, wrong ``aad``, malformed, or tampered with."""


def kek_id(kek: bytes) -> str:
    """The public identifier of a KEK (first 4 bytes of its SHA-256, hex); it reveals nothing usable."""
    return hashlib.sha256(kek).digest()[:4].hex()


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealer:
    """Seals and opens byte strings with AES-256-GCM under one KEK (random 96-bit nonce per seal)."""

    __slots__ = ("_aead", "_header", "kek_id")

    def __init__(self, kek: bytes) -> None:
        if not isinstance(kek, bytes) or len(kek) != KEK_SIZE:
            raise ValueError(f"the key-encryption key must be exactly {KEK_SIZE} bytes")
        self._aead = AESGCM(kek)
        self.kek_id: str = kek_id(kek)
        self._header = f"{_VERSION}.{self.kek_id}."

    def __repr__(self) -> str:
        return f"Sealer(kek_id={self.kek_id!r})"

    def seal(self, plaintext: bytes, *, aad: bytes = b"") -> str:
        """Encrypt `plaintext`; the result opens only with this KEK and the same `aad`."""
        nonce = secrets.token_bytes(_NONCE_SIZE)
        ciphertext = self._aead.encrypt(nonce, plaintext, self._header.encode("ascii") + aad)
        return self._header + _b64url_encode(nonce + ciphertext)

    def open(self, sealed: str, *, aad: bytes = b"") -> bytes:
        """Decrypt a value made by :meth:`seal`; raises :class:`SealingError` when it cannot."""
        parts = sealed.split(".") if isinstance(sealed, str) else []
        if len(parts) != 3:
            raise SealingError("not a sealed value (expected 'v1.<kekid>.<data>')")
        version, sealed_kek_id, data = parts
        if version != _VERSION:
            raise SealingError(f"unsupported sealed-value format {version!r} (this server reads {_VERSION})")
        if sealed_kek_id != self.kek_id:
            raise SealingError(
                f"sealed under another key-encryption key (kek id {sealed_kek_id}, "
                f"this server's is {self.kek_id}); configure the KEK this data was sealed with"
            )
        try:
            raw = _b64url_decode(data)
        except (ValueError, binascii.Error) as error:
            raise SealingError("sealed value is malformed (bad base64url)") from error
        if len(raw) < _NONCE_SIZE + _TAG_SIZE:
            raise SealingError("sealed value is malformed (too short)")
        header = f"{version}.{sealed_kek_id}.".encode("ascii")
        try:
            return self._aead.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], header + aad)
        except InvalidTag:
            raise SealingError(
                "sealed value failed authentication: it was tampered with, or belongs to another record "
                "(associated data mismatch)"
            ) from None


def kek_from_text(value: str) -> bytes:
    """A 32-byte KEK from settings text: base64url (43 characters, optional '=') or hex (64 characters)."""
    text = value.strip()
    if _HEX_32.fullmatch(text):
        return bytes.fromhex(text)
    if _B64URL_32.fullmatch(text):
        kek = base64.urlsafe_b64decode(text.rstrip("=") + "=")
        if len(kek) == KEK_SIZE:
            return kek
    raise ValueError(
        f"the key-encryption key must be {KEK_SIZE} bytes written as base64url (43 characters) or hex "
        "(64 characters); make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    )


def load_or_create_kek(path: Path) -> bytes:
    """Read the KEK file (exactly 32 raw bytes), creating it with a random key, mode 0600, if missing.

    Creation is atomic (write a temporary file, then hard-link it into place), so several workers
    starting at once all end up with the same key.
    """
    with contextlib.suppress(FileNotFoundError):
        return load_kek(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(KEK_SIZE))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process created it first: use theirs
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)  # the new name must survive a crash as surely as the data sealed under it
    return load_kek(path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_kek(path: Path) -> bytes:
    """Read an existing KEK file (exactly 32 raw bytes); for a KEK the operator provides, which must
    not be silently replaced by a new one when the file is missing (FileNotFoundError then)."""
    kek = path.read_bytes()
    if len(kek) != KEK_SIZE:
        raise ValueError(
            f"key-encryption key file {path} holds {len(kek)} bytes, expected exactly {KEK_SIZE} raw bytes; "
            "restore the original file (data sealed under it cannot be opened without it); "
            "a KEK written as text belongs in the 'kek' setting"
        )
    return kek
