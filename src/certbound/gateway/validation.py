"""Is this access token good? One route's answer, with its IdP, methods, leeway and cache rules.

``bearer``: a JWT verified with the IdP's JWKS (``certbound.jose``: signature, ``iss``, ``exp``/``nbf``
with the route's leeway, ``typ``, asymmetric algorithms of the IdP's keys only). ``introspection``:
RFC 7662 at the IdP, ``active: false`` refused. With both, a token that is not one of the IdP's JWTs
(not a JWS, another ``typ``, an algorithm or a ``kid`` the IdP does not have) goes to introspection:
that is how opaque tokens pass; a JWT of the IdP that fails a later check (signature, expiry, issuer)
is refused as it is.

Verdicts are cached per IdP by token hash, never longer than the token's ``exp`` nor the route's
``cache_ttl_max`` (each hit checks the route's own limit), an ``active: false`` only when
``cache_ttl_neg`` says so. A cached verdict costs a hash and a dictionary look-up.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import Final

from certbound.client.discovery import same_issuer
from certbound.gateway.answers import GatewayError, bad_request, idp_failure, invalid_token, missing_token
from certbound.gateway.idp import IdentityProvider
from certbound.gateway.tokens import Inactive, TokenInfo, token_digest
from certbound.jose.errors import JwtError

__all__ = ["FALLBACK_TO_INTROSPECTION", "GATEWAY_REASONS", "TokenValidator", "bearer_token", "refusal"]

#: JWT refusals that mean "not one of the IdP's JWTs" (before any key of the IdP was tried).
FALLBACK_TO_INTROSPECTION: Final = frozenset(
    {"jws.malformed", "jws.bad_type", "jws.alg_not_allowed", "jws.unknown_key"}
)
#: JWT refusals after which the IdP may have moved its jwks_uri (its keys are gone, or lack the kid).
_KEYS_MAY_HAVE_MOVED: Final = frozenset({"jws.keys_unavailable", "jws.unknown_key"})
#: The gateway's own names for shared JWT and binding codes whose meaning issue 12 names (token.expired,
#: binding.mismatch; a bound token without its certificate is the server's cert.missing_for_binding).
GATEWAY_REASONS: Final = {
    "jwt.expired": "token.expired",
    "cnf.mismatch": "binding.mismatch",
    "cnf.missing_certificate": "cert.missing_for_binding",
}
#: RFC 7662 ``token_type`` values of an access token (absent is fine too).
_ACCESS_TOKEN_TYPES: Final = frozenset({"bearer", "access_token"})
# RFC 6750 section 2.1: "Bearer" 1*SP b64token, the scheme case-insensitive
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] +([A-Za-z0-9\-._~+/]+=*)")
_SCHEME = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr](?: |$)")
#: Longest token sent on to the identity provider: an IdP's request-body limit must not turn a
#: caller's absurd token into the IdP's 400, answered 502 (oidc-provider parses at most 56 KiB).
MAX_TOKEN_LENGTH: Final = 16 * 1024

_DESCRIPTIONS: Final = {
    "jws.malformed": "the token is malformed",
    "jws.bad_type": "the token is not an access token",
    "jws.alg_not_allowed": "the token's signature algorithm is not accepted",
    "jws.unknown_key": "the token is not signed by the identity provider",
    "jws.bad_signature": "the token's signature does not verify",
    "jwt.missing_claim": "the token lacks a claim of an access token",
    "jwt.bad_claim": "a claim of the token has the wrong type",
    "jwt.bad_issuer": "the token is not issued by the identity provider",
    "token.expired": "the token has expired",
    "jwt.not_yet_valid": "the token is not valid yet",
    "jwt.bad_iat": "the token is issued in the future",
    "cnf.malformed": "the token's certificate binding is malformed",
    "cnf.unbound": "the token is not bound to a certificate",
    "cert.missing_for_binding": "the token is bound to a certificate and none was presented",
    "binding.mismatch": "the token is bound to another certificate",
}


def refusal(exc: JwtError) -> GatewayError:
    """A JWT check's refusal as the caller's answer: 401 ``invalid_token`` with the same reason (or
    the gateway's name for it, :data:`GATEWAY_REASONS`); a JWKS that cannot be read is the IdP being
    unavailable (503 ``idp.unavailable``), never the caller's fault."""
    if exc.reason == "jws.keys_unavailable":
        return idp_failure(
            "idp.unavailable", 503, "the identity provider's keys are unavailable", f"JWKS: {exc.detail}"
        )
    reason = GATEWAY_REASONS.get(exc.reason, exc.reason)
    return invalid_token(reason, _DESCRIPTIONS.get(reason, "the token is not valid"), exc.detail)


def bearer_token(values: Sequence[bytes]) -> str:
    """The access token of a request's ``Authorization`` header values (RFC 6750 section 2.1)."""
    if not values:
        raise missing_token()
    if len(values) > 1:
        raise bad_request(
            "request.duplicate_authorization", "the request has more than one Authorization header"
        )
    value = values[0].strip(b" \t")
    match = _BEARER.fullmatch(value)
    if match is None:
        if _SCHEME.match(value):
            raise bad_request("token.malformed", "the Authorization header is not a valid Bearer credential")
        raise missing_token()  # another scheme: no bearer token at all (RFC 6750 section 3.1)
    token = match.group(1)
    if len(token) > MAX_TOKEN_LENGTH:
        raise invalid_token(
            "jws.malformed", _DESCRIPTIONS["jws.malformed"], f"longer than {MAX_TOKEN_LENGTH} characters"
        )
    return token.decode("ascii")


class TokenValidator:
    """Validates the tokens of one route (see the module docstring); `clock` is epoch seconds."""

    __slots__ = ("_bearer", "_cache", "_clock", "_idp", "_introspection", "_leeway", "_ttl_max", "_ttl_neg")

    def __init__(
        self,
        idp: IdentityProvider,
        *,
        methods: Collection[str],
        leeway: float,
        cache_introspection: bool,
        cache_ttl_max: float,
        cache_ttl_neg: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._idp = idp
        self._bearer = "bearer" in methods
        self._introspection = "introspection" in methods
        self._leeway = leeway
        self._cache = cache_introspection
        self._ttl_max = cache_ttl_max
        self._ttl_neg = cache_ttl_neg
        self._clock = clock

    async def validate(self, token: str) -> tuple[TokenInfo, bool]:
        """The token's verdict and whether it came from the cache; raises GatewayError."""
        now = self._clock()
        digest = token_digest(token)
        if self._bearer:
            cached = self._idp.verified.get(digest, now)
            if cached is not None and self._usable(cached, now):
                return cached, True
            try:
                return await self._verify(token, digest, now), False
            except JwtError as exc:
                if not (self._introspection and exc.reason in FALLBACK_TO_INTROSPECTION):
                    raise refusal(exc) from None
        return await self._introspect(token, digest, now)

    def _usable(self, info: TokenInfo, now: float) -> bool:
        """A cached verdict is used while the route's cache_ttl_max allows (and a cached JWT's nbf is
        past, with this route's leeway: another route may have a longer one)."""
        if now - info.checked_at >= self._ttl_max:
            return False
        return info.not_before is None or info.not_before <= now + self._leeway

    def _expiry(self, info: TokenInfo, now: float) -> float:
        exp = info.expires_at if info.expires_at is not None else math.inf
        return min(exp, now + self._idp.cache_ttl_max)

    async def _verify(self, token: str, digest: bytes, now: float) -> TokenInfo:
        verifier = self._idp.verifier(self._leeway) or await self._idp.load_verifier(self._leeway)
        try:
            verified = await verifier.verify(token, now)
        except JwtError as exc:
            if exc.reason not in _KEYS_MAY_HAVE_MOVED:
                raise
            moved = await self._idp.follow_jwks_uri(self._leeway)
            if moved is None:
                raise
            verified = await moved.verify(token, now)
        info = TokenInfo(verified.claims, "jwt", now)
        if self._ttl_max > 0:
            self._idp.verified.put(digest, info, self._expiry(info, now))
        return info

    async def _introspect(self, token: str, digest: bytes, now: float) -> tuple[TokenInfo, bool]:
        cache = self._idp.introspected
        if self._cache:
            entry = cache.get(digest, now)
            if isinstance(entry, TokenInfo) and self._usable(entry, now):
                self._check_times(entry, now)
                return entry, True
            if isinstance(entry, Inactive) and now - entry.checked_at < self._ttl_neg:
                raise invalid_token("token.inactive", "the token is not active", "cached answer")
        answer = await self._idp.introspect(token, digest)
        if answer.get("active") is not True:
            if self._cache and self._ttl_neg > 0:
                cache.put(digest, Inactive(now), now + self._ttl_neg)
            raise invalid_token("token.inactive", "the token is not active")
        token_type = answer.get("token_type")
        if isinstance(token_type, str) and token_type.lower() not in _ACCESS_TOKEN_TYPES:
            raise invalid_token(
                "token.inactive", "the token is not an access token", f"token_type {token_type}"
            )
        issuer = answer.get("iss")
        if issuer is not None and not (isinstance(issuer, str) and same_issuer(issuer, self._idp.issuer)):
            raise invalid_token("jwt.bad_issuer", _DESCRIPTIONS["jwt.bad_issuer"], "introspection: iss")
        try:
            info = TokenInfo(answer, "introspection", now)
        except JwtError as exc:
            raise refusal(exc) from None
        self._check_times(info, now)
        if self._cache and self._ttl_max > 0:
            cache.put(digest, info, self._expiry(info, now))
        return info, False

    def _check_times(self, info: TokenInfo, now: float) -> None:
        """An active answer whose exp has passed here (the IdP's clock, or a cached answer) is not."""
        if info.expires_at is not None and now >= info.expires_at + self._leeway:
            raise invalid_token("token.expired", _DESCRIPTIONS["token.expired"], "introspection: exp")
        if info.not_before is not None and info.not_before > now + self._leeway:
            raise invalid_token("jwt.not_yet_valid", _DESCRIPTIONS["jwt.not_yet_valid"], "introspection: nbf")
