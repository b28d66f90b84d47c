"""JWT client assertions (RFC 7521, RFC 7523 sections 2.2, 3): shared by client_secret_jwt, private_key_jwt.

The order matters and is fixed here:

1. :func:`peek` parses the compact JWS without verifying anything, only so that the registry can
   find the client (``sub``, else ``iss``); nothing read here is trusted.
2. :meth:`AssertionChecker.check_header`: ``client_assertion_type`` is the JWT bearer URN, ``alg`` is
   not ``none``, belongs to the method's family (HMAC for client_secret_jwt, asymmetric for
   private_key_jwt) and equals the client's registered signing alg when it registered one.
3. The method verifies the signature (:meth:`AssertionChecker.verify_signature`, joserfc with an
   explicit algorithm allow-list) with the client's keys.
4. :meth:`AssertionChecker.check_claims`: ``iss`` = ``sub`` = client_id; ``aud`` names one of the
   request's audiences (issuer, endpoint URL, its mTLS alias); ``exp`` present, not past (leeway
   ``clock_skew``), at most ``assertion_max_lifetime`` ahead; ``nbf``/``iat`` sane; ``jti`` present.
5. Only then, :meth:`AssertionChecker.remember`: one atomic ``remember_jti`` insert shared by every
   worker and node, until ``exp + clock_skew`` (after which the assertion is refused as expired
   anyway). A conflict is a replay. An unsigned or forged assertion never reaches the store.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import Key

from certbound.server.clientauth.failure import AuthFailure
from certbound.server.clients.metadata import ASYMMETRIC_SIGNING_ALGS, HMAC_SIGNING_ALGS
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
HMAC_ALGS: Final = frozenset(HMAC_SIGNING_ALGS)
# "Ed25519" is the RFC 9864 name of what registration calls "EdDSA".
ASYMMETRIC_ALGS: Final = frozenset(ASYMMETRIC_SIGNING_ALGS | {"Ed25519"})
MAX_ASSERTION_LENGTH: Final = 16 * 1024
MAX_JTI_LENGTH: Final = 512


def _registry(algorithms: Collection[str]) -> jws.JWSRegistry:
    # extension header members (not in joserfc's table) are tolerated; `crit` is still enforced
    registry = jws.JWSRegistry(algorithms=list(algorithms), strict_check_header=False)
    registry.max_header_length = 4096
    registry.max_payload_length = MAX_ASSERTION_LENGTH
    return registry


_REGISTRIES: Final = {"hmac": _registry(HMAC_ALGS), "asymmetric": _registry(ASYMMETRIC_ALGS)}


@dataclass(frozen=True, slots=True)
class UnverifiedAssertion:
    """A parsed, NOT verified, assertion."""

    obj: jws.CompactSignature
    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @property
    def alg(self) -> str:
        alg = self.header.get("alg")
        return alg if isinstance(alg, str) else ""

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) and kid else None

    def claimed_client_id(self) -> str | None:
        """Who the assertion says it is from (``sub``, else ``iss``): only to find the client."""
        for name in ("sub", "iss"):
            value = self.claims.get(name)
            if isinstance(value, str) and value:
                return value
        return None


def peek(value: str) -> UnverifiedAssertion:
    """Parse a compact JWS and its JSON claims without verifying; AuthFailure(assertion.malformed)."""
    if len(value) > MAX_ASSERTION_LENGTH:
        raise AuthFailure("assertion.malformed", f"longer than {MAX_ASSERTION_LENGTH} characters")
    try:
        obj = jws.extract_compact(value.encode("ascii"), registry=_REGISTRIES["asymmetric"])
        header = obj.headers()
        _REGISTRIES["asymmetric"].check_header(header)  # crit members we do not understand, bad types
        if header.get("b64") is not None or not obj.segments.get("payload"):
            raise ValueError("unencoded or detached payloads are not accepted")
        claims = json.loads(obj.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise AuthFailure(
            "assertion.malformed", f"not a compact JWS with a JSON payload ({type(exc).__name__})"
        ) from None
    if not isinstance(claims, dict):
        raise AuthFailure("assertion.malformed", "the claims are not a JSON object")
    return UnverifiedAssertion(obj, header, claims)


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(name)
    return float(value)


def _timestamp(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC) if value > 0 else datetime.min.replace(tzinfo=UTC)


class AssertionChecker:
    """The checks of steps 2, 4 and 5, with the server's policy (see the module docstring)."""

    def __init__(self, store: Store, *, max_lifetime: int, clock_skew: int) -> None:
        self._store = store
        self._max_lifetime = timedelta(seconds=max_lifetime)
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
        allowed = HMAC_ALGS if family == "hmac" else ASYMMETRIC_ALGS
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
        registry = _REGISTRIES[family]
        with warnings.catch_warnings():
            # joserfc warns that the name "EdDSA" is deprecated (RFC 9864); registration still offers it
            warnings.simplefilter("ignore", SecurityWarning)
            for key in keys:
                try:
                    if jws.validate_compact(assertion.obj, key, registry=registry):
                        return True
                except (JoseError, ValueError, TypeError):
                    continue  # wrong key type or curve for this alg, unusable key: try the next one
        return False

    def check_claims(
        self, assertion: UnverifiedAssertion, client_id: str, audiences: Collection[str], now: datetime
    ) -> tuple[str, datetime]:
        """The claims of a verified assertion; returns (jti, exp)."""
        claims = assertion.claims
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            raise AuthFailure("assertion.bad_issuer", "iss and sub must both equal the client_id")
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a in audiences for a in named):
            raise AuthFailure("assertion.bad_audience", "aud names neither the issuer nor this endpoint")
        try:
            exp_value = _numeric(claims, "exp")
        except ValueError:
            raise AuthFailure("assertion.missing_exp", "exp is not a number") from None
        if exp_value is None:
            raise AuthFailure("assertion.missing_exp")
        exp = _timestamp(exp_value)
        if exp <= now - self._skew:
            raise AuthFailure("assertion.expired")
        if exp > now + self._max_lifetime + self._skew:
            raise AuthFailure("assertion.too_long", f"exp is more than {self._max_lifetime.seconds}s ahead")
        try:
            nbf, iat = _numeric(claims, "nbf"), _numeric(claims, "iat")
        except ValueError as exc:
            reason = "assertion.not_yet_valid" if str(exc) == "nbf" else "assertion.bad_iat"
            raise AuthFailure(reason, f"{exc} is not a number") from None
        if nbf is not None and _timestamp(nbf) > now + self._skew:
            raise AuthFailure("assertion.not_yet_valid")
        if iat is not None and _timestamp(iat) > now + self._skew:
            raise AuthFailure("assertion.bad_iat", "iat is in the future")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthFailure("assertion.missing_jti")
        if len(jti) > MAX_JTI_LENGTH:
            raise AuthFailure("assertion.malformed", f"jti longer than {MAX_JTI_LENGTH} characters")
        return jti, exp

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
