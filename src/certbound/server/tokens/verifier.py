"""Is this string an access token of ours that is active right now? (For introspection and revocation.)

A JWT is checked on the one path every JWT takes (:class:`certbound.jose.verify.JwtVerifier`), against
the worker's key ring (:class:`certbound.jose.keyring.KeyRingSource`), in this order: shape (three
base64url parts, at most 8 KiB), header (``typ`` ``at+jwt``, ``alg`` one of our signing algorithms
and equal to the key's, ``kid`` of a published key, no ``crit``), signature, claims (the RFC 9068
profile, :class:`certbound.jose.claims.AccessTokenProfile`: ``iss`` ours; ``exp``, ``iat``, ``jti``,
``client_id``, ``sub``, ``aud`` present and well-typed; not expired; ``iat``/``nbf`` not in the future
beyond the clock skew), then the deny-list. What passed up to the claims is cached by the token's
SHA-256 until its ``exp`` (`certbound.jose.verified_cache`): a second look costs a dictionary hit, the
check that the signing key is still published, and the deny-list read, but no signature check.

``exp`` gets no leeway: these are our own tokens, ``expires_in`` told the client when they end, and
an introspection answer ``active: true`` with an ``exp`` in the past would contradict itself. The skew
applies where clocks of two nodes can disagree: a token whose ``iat``/``nbf`` lies slightly ahead.

An opaque token is looked up by its SHA-256 (only strings shaped like ours are looked up); its stored
claims go through the same profile, without the ``iss`` check.
Nothing here raises on bad input: anything that is not an active token of ours is None.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from certbound.jose.algorithms import SIGNING_ALGS
from certbound.jose.claims import AccessTokenProfile
from certbound.jose.errors import JwtError
from certbound.jose.jws import JwsLimits
from certbound.jose.keyring import KeyRingSource
from certbound.jose.verified_cache import VerifiedCache
from certbound.jose.verify import JwtVerifier
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

# the name its events have always carried (the module moved; the `logger` field did not)
log = logging.getLogger("certbound.tokens.verifier")

MAX_TOKEN_LENGTH = 8192
_LIMITS: Final = JwsLimits(max_length=MAX_TOKEN_LENGTH, refuse_crit=True)

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
    cnf_x5t: str | None = None  # the x5t#S256 of the certificate the token is bound to


def _audiences(aud: Any) -> frozenset[str]:
    return frozenset((aud,)) if isinstance(aud, str) else frozenset(aud)


def _active_token(
    claims: dict[str, Any], *, kind: Literal["jwt", "opaque"], digest: bytes, kid: str | None
) -> ActiveToken:
    """The verified token, from claims that passed the profile; the introspection body built once."""
    body: dict[str, Any] = {"active": True, "token_type": BEARER}
    for name in INTROSPECTION_CLAIMS:
        if name in claims:
            body[name] = claims[name]
    cnf = claims.get("cnf")
    thumbprint = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
    return ActiveToken(
        kind,
        digest,
        claims["client_id"],
        claims["jti"],
        claims["exp"],
        _audiences(claims["aud"]),
        kid,
        claims,
        body,
        thumbprint if isinstance(thumbprint, str) else None,
    )


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
        revoked_certificates: Callable[[str], bool] | None = None,
    ) -> None:
        self._keys = keys
        self._revoked_certificates = revoked_certificates
        self._jwt_verifier = JwtVerifier(
            KeyRingSource(keys),
            algorithms=SIGNING_ALGS,
            profile=AccessTokenProfile(issuer=issuer, leeway_on_exp=False),
            typ=(AT_JWT_TYP,),
            leeway=clock_skew,
            limits=_LIMITS,
        )
        self._opaque_profile = AccessTokenProfile(issuer=None, leeway_on_exp=False)
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
        elif OPAQUE_TOKEN_PATTERN.fullmatch(token):
            found = await self._opaque(token, now)
            if found is None:
                return None
        else:
            return None
        revoked = self._revoked_certificates
        if found.cnf_x5t is not None and revoked is not None and revoked(found.cnf_x5t):
            return None  # bound to a certificate revoked since: inactive, whatever its exp
        return found

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
        try:
            verified = await self._jwt_verifier.verify(token, now)
        except JwtError:
            return None
        return _active_token(verified.claims, kind="jwt", digest=digest, kid=verified.header["kid"])

    # -- opaque --------------------------------------------------------------------------------

    async def _opaque(self, token: str, now: float) -> ActiveToken | None:
        digest = token_digest(token)
        record = await self._state.opaque_token(digest.hex())
        if record is None or record.revoked:
            return None
        claims = record.claims
        if not isinstance(claims, dict) or claims.get("client_id") != record.client_id:
            return None
        try:
            self._opaque_profile.check(claims, now, self._skew)
        except JwtError:
            return None
        return _active_token(claims, kind="opaque", digest=digest, kid=None)
