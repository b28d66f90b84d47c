"""Secrets and registration access tokens: 256 bits, stored as SHA-256, compared in constant time."""

from __future__ import annotations

import base64
import hashlib

from certbound.server.clients.secrets import (
    generate_registration_access_token,
    generate_secret,
    secret_digest,
    secret_matches,
)


def test_secret_is_256_bits_base64url_without_padding() -> None:
    secret = generate_secret()
    assert len(secret) == 43
    assert "=" not in secret
    assert set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


def test_secrets_differ() -> None:
    assert len({generate_secret() for _ in range(100)}) == 100
    assert generate_registration_access_token() != generate_registration_access_token()


def test_digest_is_hex_sha256() -> None:
    assert secret_digest("abc") == hashlib.sha256(b"abc").hexdigest()


def test_matches() -> None:
    secret = generate_secret()
    digest = secret_digest(secret)
    assert secret_matches(secret, digest)
    assert not secret_matches(secret + "x", digest)
    assert not secret_matches("", digest)


def test_malformed_digest_never_matches() -> None:
    assert not secret_matches("abc", "not hex")
    assert not secret_matches("abc", "")
    assert not secret_matches("abc", secret_digest("abc")[:-2])


def test_lone_surrogate_does_not_crash() -> None:
    assert not secret_matches("\ud800", secret_digest("x"))
