"""Is this string an access token of ours that is active right now? (For introspection and revocation.)

A JWT is checked in this order: shape (three base64url parts, at most 8 KiB), header (``typ``
``at+jwt``, ``alg`` one of our signing algorithms and equal to the key's, ``kid`` of a published
key, no ``crit``), signature, claims (``iss`` ours; ``exp``, ``iat``, ``jti``, ``client_id``,
``sub``, ``aud`` present and well-typed; not expired; ``iat``/``nbf`` not in the future beyond the
clock skew), then the deny-list. What passed up to the claims is cached by the token's SHA-256 until
its ``exp`` (`certbound.jose.verified_cache`): a second look costs a dictionary hit, the check
that the signing key is still published, and the deny-list read, but no signature check.

``exp`` gets no leeway: these are our own tokens, ``expires_in`` told the client when they end, and
an introspection answer ``active: true`` with an ``exp`` in the past would contradict itself. The skew
applies where clocks of two nodes can disagree: a token whose ``iat``/``nbf`` lies slightly ahead.

An opaque token is looked up by its SHA-256 (only strings shaped like ours are looked up).
Nothing here raises on bad input: anything that is not an active token of ours is None.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from joserfc.jwa import JWS_ALGORITHMS, JWSAlgModel

from certbound.jose.algorithms import SIGNING_ALGS
from certbound.jose.verified_cache import VerifiedCache
from certbound.server.tokens.access_token import (
    AT_JWT_TYP,
    BEARER,
    OPAQUE_TOKEN_PATTERN,
    Clock,
    CurrentKeys,
    token_digest,
)
from certbound.store.token_state import TokenState

__all__ = ["INTROSPECTION_CLAIMS", "MAX_TOKEN_LENGTH", "AccessTokenVerifier", "ActiveToken"]

log = logging.getLogger(__name__)

MAX_TOKEN_LENGTH = 8192
_JWT_SHAPE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_KID_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")  # our kids are RFC 7638 SHA-256 thumbprints
_JWS_ALGS: dict[str, JWSAlgModel] = {m.name: m for m in JWS_ALGORITHMS if m.name in SIGNING_ALGS}

#: The token's claims an introspection response repeats (RFC 7662 section 2.2), in this order.
INTROSPECTION_CLAIMS = ("scope", "client_id", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "cnf")


@dataclass(frozen=True, slots=True)
class ActiveToken:
    """An access token of ours that verified: its claims and what the access rules need.

    `introspection` is the RFC 7662 response body, built once; treat it as read-only (it is shared by
    every hit on the cache).
    """

    kind: Literal["jwt", "opaque"]
    digest: bytes
    client_id: str
    jti: str
    exp: int
    audiences: frozenset[str]
    kid: str | None
    claims: dict[str, Any]
    introspection: dict[str, Any]


def _b64url_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _audiences(aud: Any) -> frozenset[str] | None:
    if isinstance(aud, str):
        return frozenset((aud,))
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return frozenset(aud)
    return None


def _active_token(
    claims: Any, *, kind: Literal["jwt", "opaque"], digest: bytes, kid: str | None
) -> ActiveToken | None:
    """Check the claims every token of ours has; None when one is missing or mistyped."""
    if not isinstance(claims, dict):
        return None
    exp, jti, client_id = claims.get("exp"), claims.get("jti"), claims.get("client_id")
    audiences = _audiences(claims.get("aud"))
    if not isinstance(exp, int) or isinstance(exp, bool) or not _is_int(claims.get("iat")):
        return None
    if not (isinstance(jti, str) and jti and isinstance(client_id, str)):
        return None
    if audiences is None or not isinstance(claims.get("sub"), str):
        return None
    if "nbf" in claims and not _is_int(claims["nbf"]):
        return None
    if "scope" in claims and not isinstance(claims["scope"], str):
        return None
    body: dict[str, Any] = {"active": True, "token_type": BEARER}
    for name in INTROSPECTION_CLAIMS:
        if name in claims:
            body[name] = claims[name]
    return ActiveToken(kind, digest, client_id, jti, exp, audiences, kid, claims, body)


class AccessTokenVerifier:
    """Answers "is this an active access token of ours?" (one per worker: cache, key ring)."""

    def __init__(
        self,
        *,
        issuer: str,
        keys: CurrentKeys,
        state: TokenState,
        cache: VerifiedCache[ActiveToken],
        clock_skew: int,
        clock: Clock,
    ) -> None:
        self._issuer = issuer
        self._keys = keys
        self._state = state
        self._cache = cache
        self._skew = clock_skew
        self._clock = clock

    @property
    def cache(self) -> VerifiedCache[ActiveToken]:
        return self._cache

    async def active(self, token: str) -> ActiveToken | None:
        """The token's verified claims if it is ours, unexpired and not revoked; None otherwise."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        now = self._clock()
        if token.count(".") == 2:
            found = await self._jwt(token, now)
            if found is None or await self._state.is_revoked(found.jti):
                return None
            return found
        if OPAQUE_TOKEN_PATTERN.fullmatch(token):
            return await self._opaque(token, now)
        return None

    # -- JWT -----------------------------------------------------------------------------------

    async def _jwt(self, token: str, now: float) -> ActiveToken | None:
        digest = token_digest(token)
        cached = self._cache.get(digest, now)
        if cached is not None:
            # the signature cannot change, but its key may have been withdrawn (compromise, expiry)
            assert cached.kid is not None
            ring = await self._keys.ring()
            if ring.verification_key(cached.kid, now=datetime.fromtimestamp(now, UTC)) is None:
                self._cache.discard(digest)
                return None
            return cached
        found = await self._verify_jwt(token, digest, now)
        if found is not None:
            self._cache.put(digest, found, float(found.exp))
        return found

    async def _verify_jwt(self, token: str, digest: bytes, now: float) -> ActiveToken | None:
        shape = _JWT_SHAPE.fullmatch(token)
        if shape is None:
            return None
        header_b64, payload_b64, signature_b64 = shape.groups()
        try:
            header = _b64url_json(header_b64)
        except (ValueError, RecursionError):
            return None
        if not isinstance(header, dict) or header.get("typ") != AT_JWT_TYP or "crit" in header:
            return None
        alg, kid = header.get("alg"), header.get("kid")
        model = _JWS_ALGS.get(alg) if isinstance(alg, str) else None
        if model is None or not isinstance(kid, str):
            return None
        at = datetime.fromtimestamp(now, UTC)
        key = (await self._keys.ring()).verification_key(kid, now=at)
        if key is None and _KID_SHAPE.fullmatch(kid):
            # a key another worker already signs with and this one has not loaded yet: ask the store
            key = (await self._keys.reload()).verification_key(kid, now=at)
        if key is None or key.alg != alg:
            return None
        try:
            signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
            valid = model.verify(f"{header_b64}.{payload_b64}".encode("ascii"), signature, key)
        except Exception:  # joserfc/cryptography raise many types on malformed signatures
            return None
        if not valid:
            return None
        try:
            claims = _b64url_json(payload_b64)
        except (ValueError, RecursionError):
            return None
        found = _active_token(claims, kind="jwt", digest=digest, kid=kid)
        if found is None or claims.get("iss") != self._issuer or not self._current(found, now):
            return None
        return found

    def _current(self, found: ActiveToken, now: float) -> bool:
        """Not expired, and not issued (or usable) in the future beyond the allowed clock skew."""
        if now >= found.exp:
            return False
        not_before = max(int(found.claims["iat"]), int(found.claims.get("nbf", 0)))
        return not_before <= now + self._skew

    # -- opaque --------------------------------------------------------------------------------

    async def _opaque(self, token: str, now: float) -> ActiveToken | None:
        digest = token_digest(token)
        record = await self._state.opaque_token(digest.hex())
        if record is None or record.revoked:
            return None
        found = _active_token(record.claims, kind="opaque", digest=digest, kid=None)
        if found is None or found.client_id != record.client_id or not self._current(found, now):
            return None
        return found
