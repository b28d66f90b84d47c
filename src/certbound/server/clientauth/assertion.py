"""JWT client assertions (RFC 7521, RFC 7523 sections 2.2, 3): shared by client_secret_jwt, private_key_jwt.

The JWS and claim rules are :mod:`certbound.jose`'s (the one path every JWT takes); this module holds
the server's policy and the order, which matters and is fixed here:

1. :func:`peek` parses the compact JWS without verifying anything, only so that the registry can
   find the client (``sub``, else ``iss``); nothing read here is trusted.
2. :meth:`AssertionChecker.check_header`: ``client_assertion_type`` is the JWT bearer URN, ``alg`` is
   not ``none``, belongs to the method's family (HMAC for client_secret_jwt, asymmetric for
   private_key_jwt) and equals the client's registered signing alg when it registered one.
3. The method verifies the signature (:meth:`AssertionChecker.verify_signature`, with the family's
   algorithm allow-list) with the client's keys.
4. :meth:`AssertionChecker.check_claims` (:func:`certbound.jose.claims.check_client_assertion`):
   ``iss`` = ``sub`` = client_id; ``aud`` names one of the request's audiences (issuer, endpoint URL,
   its mTLS alias); ``exp`` present, not past (leeway ``clock_skew``), at most
   ``assertion_max_lifetime`` ahead; ``nbf``/``iat`` sane; ``jti`` present.
5. Only then, :meth:`AssertionChecker.remember`: one atomic ``remember_jti`` insert shared by every
   worker and node, until ``exp + clock_skew`` (after which the assertion is refused as expired
   anyway). A conflict is a replay. An unsigned or forged assertion never reaches the store.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from joserfc.jwk import Key

from certbound.jose.algorithms import ASYMMETRIC_ALGS, HMAC_ALGS
from certbound.jose.claims import check_client_assertion
from certbound.jose.errors import JwtError
from certbound.jose.jws import DEFAULT_MAX_LENGTH, CompactJws, JwsLimits, parse_compact
from certbound.jose.jws import verify_signature as verify_jws_signature
from certbound.server.clientauth.failure import AuthFailure
from certbound.store.interface import Store

__all__ = [
    "ASYMMETRIC_ALGS",
    "HMAC_ALGS",
    "JWT_BEARER",
    "AssertionChecker",
    "UnverifiedAssertion",
    "peek",
]

JWT_BEARER: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_LENGTH: Final = DEFAULT_MAX_LENGTH
_LIMITS: Final = JwsLimits(max_length=MAX_ASSERTION_LENGTH)
_FAMILIES: Final = {"hmac": frozenset(HMAC_ALGS), "asymmetric": ASYMMETRIC_ALGS}


# jose's envelope codes as the server names them; the claim profile raises ``assertion.*`` itself
_REASONS: Final = {"jws.malformed": "assertion.malformed"}


def _failure(error: JwtError) -> AuthFailure:
    """The client-auth failure for a jose refusal: its ``assertion.*`` code, or malformed for any
    envelope code the server does not name (AuthFailure takes client-auth codes only)."""
    reason = _REASONS.get(error.reason, error.reason)
    return AuthFailure(reason if reason.startswith("assertion.") else "assertion.malformed", error.detail)


@dataclass(frozen=True, slots=True)
class UnverifiedAssertion:
    """A parsed, NOT verified, assertion."""

    jws: CompactJws
    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def alg(self) -> str:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else ""

    @property
    def kid(self) -> str | None:
        return self.jws.kid

    def claimed_client_id(self) -> str | None:
        """Who the assertion says it is from (``sub``, else ``iss``): only to find the client."""
        for name in ("sub", "iss"):
            value = self.claims.get(name)
            if isinstance(value, str) and value:
                return value
        return None


def peek(value: str) -> UnverifiedAssertion:
    """Parse a compact JWS and its JSON claims without verifying; AuthFailure(assertion.malformed)."""
    try:
        jws = parse_compact(value, _LIMITS)
        claims = jws.claims()
    except JwtError as exc:
        raise _failure(exc) from None
    return UnverifiedAssertion(jws, jws.header, claims)


class AssertionChecker:
    """The checks of steps 2, 4 and 5, with the server's policy (see the module docstring)."""

    def __init__(self, store: Store, *, max_lifetime: int, clock_skew: int) -> None:
        self._store = store
        self._max_lifetime = max_lifetime
        self._skew = timedelta(seconds=clock_skew)

    @staticmethod
    def check_header(
        assertion: UnverifiedAssertion, assertion_type: str | None, family: str, registered_alg: str | None
    ) -> None:
        if assertion_type != JWT_BEARER:
            raise AuthFailure(
                "assertion.bad_type", "client_assertion_type is missing or not the JWT bearer URN"
            )
        alg = assertion.alg
        allowed = _FAMILIES[family]
        if alg.lower() == "none":
            raise AuthFailure("assertion.alg_not_allowed", "alg none is never accepted")
        if alg not in allowed:
            raise AuthFailure("assertion.alg_not_allowed", f"alg {alg[:20]!r} is not allowed for this method")
        if registered_alg is not None and alg != registered_alg:
            raise AuthFailure(
                "assertion.alg_not_allowed", f"alg {alg} is not the registered {registered_alg}"
            )

    @staticmethod
    def verify_signature(assertion: UnverifiedAssertion, family: str, keys: Iterable[Key]) -> bool:
        """True when one of `keys` verifies the signature with the header's alg (allow-listed)."""
        return verify_jws_signature(assertion.jws, keys, _FAMILIES[family])

    def check_claims(
        self, assertion: UnverifiedAssertion, client_id: str, audiences: Collection[str], now: datetime
    ) -> tuple[str, datetime]:
        """The claims of a verified assertion; returns (jti, exp)."""
        try:
            return check_client_assertion(
                assertion.claims,
                client_id=client_id,
                audiences=audiences,
                now=now.timestamp(),
                leeway=self._skew.total_seconds(),
                max_lifetime=self._max_lifetime,
            )
        except JwtError as exc:
            raise _failure(exc) from None

    async def remember(self, client_id: str, jti: str, exp: datetime) -> None:
        """The one atomic replay-cache insert; AuthFailure(assertion.replayed) on a conflict."""
        if not await self._store.remember_jti(client_id, jti, expires_at=exp + self._skew):
            raise AuthFailure("assertion.replayed")

    async def finish(
        self, assertion: UnverifiedAssertion, client_id: str, audiences: Collection[str], now: datetime
    ) -> None:
        """Steps 4 and 5, for a verified assertion."""
        jti, exp = self.check_claims(assertion, client_id, audiences, now)
        await self.remember(client_id, jti, exp)
