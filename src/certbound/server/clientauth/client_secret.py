"""The secret check shared by ``client_secret_basic`` and ``client_secret_post``.

Secrets are server-generated, 256-bit values stored as SHA-256 digests (DESIGN.md): the presented
secret is hashed once and compared with every stored digest in constant time, so neither the result of
a comparison nor which digest matched shows in the timing. Several digests may be valid at once
(rotation); each has its own validity window, and the client's ``client_secret_expires_at`` applies to
all of them.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from certbound.server.clientauth.directory import CompiledClient
from certbound.server.clientauth.failure import AuthFailure

__all__ = ["check_secret"]

_NO_DIGEST = bytes(32)


def check_secret(client: CompiledClient, presented: str, now: datetime) -> None:
    """Return when `presented` is one of the client's current secrets; raise AuthFailure otherwise."""
    presented_digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
    matched = None
    for candidate in client.secret_digests or ():
        if hmac.compare_digest(presented_digest, candidate.digest) and matched is None:
            matched = candidate
    if not client.secret_digests:
        hmac.compare_digest(presented_digest, _NO_DIGEST)  # same work as a client with one secret
        raise AuthFailure("client.misconfigured", "the client has no stored secret digest")
    if matched is None:
        raise AuthFailure("secret.mismatch")
    expires = client.secret_expires_at
    if (expires is not None and now >= expires) or (
        matched.not_after is not None and now >= matched.not_after
    ):
        raise AuthFailure("secret.expired")
    if matched.not_before is not None and now < matched.not_before:
        raise AuthFailure("secret.mismatch", "this secret is not valid yet")
