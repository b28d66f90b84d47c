"""PKCE (RFC 7636) with S256 only: ``plain`` would put the verifier itself on the front channel."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

__all__ = ["CHALLENGE", "VERIFIER", "s256", "verifier_matches"]

#: An S256 challenge: the unpadded base64url of 32 bytes.
CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
#: RFC 7636 section 4.1: 43-128 unreserved characters.
VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def s256(verifier: str) -> str:
    """The S256 code_challenge of `verifier`."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str) -> bool:
    """Whether `verifier` is well-formed and hashes to `challenge` (compared in constant time)."""
    if not VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(s256(verifier).encode("ascii"), challenge.encode("ascii"))
