"""Read and write certificates and keys (PEM, with DER accepted on input), private files mode 0600.

Private keys are written unencrypted PKCS#8: file permissions are what protects a development key.
Writes go to a temporary file in the same directory and are renamed into place, so a reader never sees
half a key and a private file is never, even briefly, readable by others.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.pki.keys import PrivateKey, is_supported_private_key

__all__ = [
    "cert_to_pem",
    "certs_to_pem",
    "key_to_pem",
    "load_cert_file",
    "load_certs",
    "load_certs_file",
    "load_certs_pem",
    "load_key_file",
    "load_private_key",
    "write_private",
    "write_public",
]

StrPath = str | os.PathLike[str]
_PEM_MARK = b"-----BEGIN"
_CERT_MARK = b"-----BEGIN CERTIFICATE-----"


def cert_to_pem(cert: x509.Certificate) -> bytes:
    """The PEM encoding of one certificate."""
    return cert.public_bytes(Encoding.PEM)


def certs_to_pem(certs: list[x509.Certificate] | tuple[x509.Certificate, ...]) -> bytes:
    """A PEM bundle of several certificates, in the given order."""
    return b"".join(cert_to_pem(c) for c in certs)


def key_to_pem(key: PrivateKey) -> bytes:
    """The unencrypted PKCS#8 PEM encoding of a private key."""
    return key.private_bytes(Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def load_certs_pem(data: bytes) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (ValueError when there is none or one is malformed)."""
    if _CERT_MARK not in data:
        what = " (it holds a private key)" if b"PRIVATE KEY-----" in data else ""
        raise ValueError(f"no PEM certificate found{what}")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ValueError("malformed PEM certificate") from None


def load_certs(data: bytes) -> list[x509.Certificate]:
    """Certificates from PEM (a bundle) or DER (a single certificate) bytes."""
    if _PEM_MARK in data:
        return load_certs_pem(data)
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise ValueError("not a PEM or DER X.509 certificate") from None


def load_certs_file(path: StrPath) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle file, or the one certificate of a DER file."""
    data = Path(path).read_bytes()
    try:
        return load_certs(data)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None


def load_cert_file(path: StrPath) -> x509.Certificate:
    """The first certificate of a PEM or DER file."""
    return load_certs_file(path)[0]


def load_private_key(data: bytes) -> PrivateKey:
    """An unencrypted private key from PEM (PKCS#8, PKCS#1, SEC1) or DER bytes."""
    try:
        if _PEM_MARK in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError:
        raise ValueError("the private key is encrypted; decrypt it first") from None
    except ValueError:
        raise ValueError("not a private key (PEM or DER, unencrypted)") from None
    if not is_supported_private_key(key):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key  # type: ignore[return-value]


def load_key_file(path: StrPath) -> PrivateKey:
    """An unencrypted private key from a PEM or DER file."""
    data = Path(path).read_bytes()
    try:
        return load_private_key(data)
    except ValueError as exc:
        raise ValueError(f"{os.fspath(path)}: {exc}") from None


def _atomic_write(path: StrPath, data: bytes, mode: int) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_private(path: StrPath, data: bytes) -> None:
    """Write a secret (a private key, a private JWK) readable by the owner only (mode 0600)."""
    _atomic_write(path, data, 0o600)


def write_public(path: StrPath, data: bytes) -> None:
    """Write a public file (certificate, public JWK), mode 0644."""
    _atomic_write(path, data, 0o644)
