"""Server-generated client secrets and registration access tokens, and how they are kept.

Both are 256-bit random values made here, never chosen by a client, so a plain SHA-256 digest is the
right thing to store (a slow password hash would only cost throughput, see DESIGN.md). Checks compare
digests with `hmac.compare_digest`, so the time taken says nothing about the stored value.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

__all__ = [
    "SECRET_BYTES",
    "generate_registration_access_token",
    "generate_secret",
    "is_sha256_hex",
    "registration_access_token_digest",
    "registration_access_token_matches",
    "secret_digest",
    "secret_matches",
]

SECRET_BYTES = 32  # 256 bits
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def generate_secret() -> str:
    """A new 256-bit secret, base64url without padding (43 characters)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def secret_digest(secret: str) -> str:
    """The hex SHA-256 of a secret's UTF-8 bytes: what the store keeps instead of the secret."""
    return hashlib.sha256(_utf8(secret)).hexdigest()


def secret_matches(secret: str, digest_hex: str) -> bool:
    """True when `secret` hashes to `digest_hex`; compares fixed-size digests in constant time."""
    try:
        stored = bytes.fromhex(digest_hex)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(hashlib.sha256(_utf8(secret)).digest(), stored)


def _utf8(text: str) -> bytes:
    # a lone surrogate (possible in JSON input) must not turn a failed check into a crash
    return text.encode("utf-8", "surrogatepass")


def is_sha256_hex(value: str) -> bool:
    """True for 64 lower-case hex characters (the form `secret_digest` returns)."""
    return bool(_SHA256_HEX.fullmatch(value))


# Registration access tokens (RFC 7592) are bearer secrets of the same kind; the names keep call sites clear.
generate_registration_access_token = generate_secret
registration_access_token_digest = secret_digest
registration_access_token_matches = secret_matches
