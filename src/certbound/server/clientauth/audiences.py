"""Which ``aud`` values a client assertion may name at an endpoint (RFC 7523 section 3).

One function, used by the endpoints that authenticate clients and by ``certbound explain``, so that
both accept the same audiences.
"""

from __future__ import annotations

import functools

from certbound.server.paths import TOKEN_PATH

__all__ = ["assertion_audiences"]


@functools.lru_cache(maxsize=64)
def assertion_audiences(issuer: str, mtls: str, path: str) -> frozenset[str]:
    """The issuer or the token endpoint URL (and its mTLS alias) at every endpoint that authenticates
    clients, plus this endpoint's own URLs (`path`, on both listeners)."""
    return frozenset((issuer, issuer + TOKEN_PATH, mtls + TOKEN_PATH, issuer + path, mtls + path))
