"""Claim profiles: what a verified JWT's claims must say, by kind of token.

A profile is a small value with one method, ``check(claims, now, leeway, header)``: `now` in epoch
seconds, `leeway` the allowed clock skew in seconds, `header` the verified JOSE header (only ID tokens
read it, for ``at_hash``/``c_hash``). It returns when the claims are acceptable and raises
:class:`certbound.jose.errors.JwtError` with a reason code otherwise. Profiles never see a signature:
they run on claims whose signature has already been verified (or on an opaque token's stored claims).

* :class:`AccessTokenProfile`: RFC 9068 JWT access tokens.
* :class:`ClientAssertionProfile` / :func:`check_client_assertion`: RFC 7523 client assertions, with
  the server's ``assertion.*`` reason codes.
* :class:`IdTokenProfile`: OpenID Connect Core 1.0 section 3.1.3.7 ID tokens, and
  :func:`left_hash` for ``at_hash``/``c_hash`` (sections 3.1.3.6, 3.3.2.11).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeGuard

from certbound.jose.errors import JwtError

__all__ = [
    "MAX_JTI_LENGTH",
    "AccessTokenProfile",
    "ClaimsProfile",
    "ClientAssertionProfile",
    "IdTokenProfile",
    "check_client_assertion",
    "finite_number",
    "left_hash",
]

#: The longest ``jti`` a client assertion may carry (it is stored in the replay cache).
MAX_JTI_LENGTH: Final = 512


class ClaimsProfile(Protocol):
    """Checks the claims of one kind of token (see the module docstring)."""

    def check(
        self, claims: Mapping[str, Any], now: float, leeway: float, header: Mapping[str, Any] | None = None
    ) -> None: ...


def finite_number(value: Any) -> TypeGuard[int | float]:
    """A JSON number a float can hold: not a bool, not NaN or infinite, and no integer beyond the
    float range (JSON integers have no bound; past ~1.8e308 any arithmetic with a float, and
    ``math.isfinite`` itself, raise OverflowError)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and finite_number(value)


def _audiences(aud: Any) -> list[str] | None:
    """``aud`` as a list: a string, or a non-empty array of strings; None for anything else."""
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and aud and all(isinstance(a, str) for a in aud):
        return aud
    return None


def _require(claims: Mapping[str, Any], name: str, ok: bool, what: str) -> None:
    if not ok:
        if name not in claims:
            raise JwtError("jwt.missing_claim", f"{name} is missing")
        raise JwtError("jwt.bad_claim", f"{name} is not {what}")


# --- RFC 9068 access tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccessTokenProfile:
    """An RFC 9068 access token (section 2.2 claims, section 4 validation).

    Required and well-typed: ``exp`` and ``iat`` (integers), ``jti`` (a non-empty string),
    ``client_id`` and ``sub`` (strings), ``aud`` (a string or a non-empty array of strings); ``nbf``
    an integer and ``scope`` a string when present. ``iss`` must be `issuer` (None: not checked, for
    claims the caller stored itself); ``aud`` must name one of `audiences` when given. Not expired (with
    `leeway` only when `leeway_on_exp`), and neither ``iat`` nor ``nbf`` beyond now + `leeway`.
    """

    issuer: str | None
    audiences: frozenset[str] | None = None
    leeway_on_exp: bool = True

    def check(
        self, claims: Mapping[str, Any], now: float, leeway: float, header: Mapping[str, Any] | None = None
    ) -> None:
        exp: Any = claims.get("exp")
        iat: Any = claims.get("iat")
        nbf: Any = claims.get("nbf")
        _require(claims, "exp", _is_int(exp), "an integer")
        _require(claims, "iat", _is_int(iat), "an integer")
        jti = claims.get("jti")
        _require(claims, "jti", isinstance(jti, str) and bool(jti), "a non-empty string")
        _require(claims, "client_id", isinstance(claims.get("client_id"), str), "a string")
        _require(claims, "sub", isinstance(claims.get("sub"), str), "a string")
        audiences = _audiences(claims.get("aud"))
        _require(claims, "aud", audiences is not None, "a string or a non-empty array of strings")
        if "nbf" in claims and not _is_int(nbf):
            raise JwtError("jwt.bad_claim", "nbf is not an integer")
        if "scope" in claims and not isinstance(claims["scope"], str):
            raise JwtError("jwt.bad_claim", "scope is not a string")
        if self.issuer is not None and claims.get("iss") != self.issuer:
            raise JwtError("jwt.bad_issuer", "iss is not the expected issuer")
        if self.audiences is not None and not self.audiences.intersection(audiences or ()):
            raise JwtError("jwt.bad_audience", "aud names none of the expected audiences")
        if now >= exp + (leeway if self.leeway_on_exp else 0):
            raise JwtError("jwt.expired")
        if nbf is not None and nbf > now + leeway:
            raise JwtError("jwt.not_yet_valid")
        if iat > now + leeway:
            raise JwtError("jwt.bad_iat", "iat is in the future")


# --- RFC 7523 client assertions -----------------------------------------------------------------------


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if not finite_number(value):
        raise ValueError(name)
    return float(value)


def _timestamp(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return datetime.max.replace(tzinfo=UTC) if value > 0 else datetime.min.replace(tzinfo=UTC)


def check_client_assertion(
    claims: Mapping[str, Any],
    *,
    client_id: str,
    audiences: Collection[str],
    now: float,
    leeway: float,
    max_lifetime: int,
) -> tuple[str, datetime]:
    """The claims of a verified client assertion (RFC 7523 section 3); returns (jti, exp).

    ``iss`` = ``sub`` = `client_id`; ``aud`` names one of `audiences`; ``exp`` present, not past
    (with `leeway`), at most `max_lifetime` (+ `leeway`) seconds ahead; ``nbf``/``iat`` numbers and
    not in the future beyond `leeway`; ``jti`` a non-empty string of at most :data:`MAX_JTI_LENGTH`.
    Raises JwtError with the server's ``assertion.*`` reason codes.
    """
    # compared as epoch seconds (floats: exact for every second a datetime can hold); only the
    # returned exp becomes a datetime
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise JwtError("assertion.bad_issuer", "iss and sub must both equal the client_id")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not any(isinstance(a, str) and a in audiences for a in named):
        raise JwtError("assertion.bad_audience", "aud names neither the issuer nor this endpoint")
    try:
        exp = _numeric(claims, "exp")
    except ValueError:
        raise JwtError("assertion.missing_exp", "exp is not a number") from None
    if exp is None:
        raise JwtError("assertion.missing_exp")
    if exp <= now - leeway:
        raise JwtError("assertion.expired")
    if exp > now + max_lifetime + leeway:
        raise JwtError("assertion.too_long", f"exp is more than {max_lifetime}s ahead")
    try:
        nbf, iat = _numeric(claims, "nbf"), _numeric(claims, "iat")
    except ValueError as exc:
        reason = "assertion.not_yet_valid" if str(exc) == "nbf" else "assertion.bad_iat"
        raise JwtError(reason, f"{exc} is not a number") from None
    if nbf is not None and nbf > now + leeway:
        raise JwtError("assertion.not_yet_valid")
    if iat is not None and iat > now + leeway:
        raise JwtError("assertion.bad_iat", "iat is in the future")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        raise JwtError("assertion.missing_jti")
    if len(jti) > MAX_JTI_LENGTH:
        raise JwtError("assertion.malformed", f"jti longer than {MAX_JTI_LENGTH} characters")
    return jti, _timestamp(exp)


@dataclass(frozen=True, slots=True)
class ClientAssertionProfile:
    """:func:`check_client_assertion` as a profile (the replay check is the caller's: it needs a store)."""

    client_id: str
    audiences: frozenset[str]
    max_lifetime: int

    def check(
        self, claims: Mapping[str, Any], now: float, leeway: float, header: Mapping[str, Any] | None = None
    ) -> None:
        check_client_assertion(
            claims,
            client_id=self.client_id,
            audiences=self.audiences,
            now=now,
            leeway=leeway,
            max_lifetime=self.max_lifetime,
        )


# --- OpenID Connect ID tokens -------------------------------------------------------------------------

_HASHES: Final = {"256": "sha256", "384": "sha384", "512": "sha512"}


def left_hash(value: str, alg: str) -> str:
    """``at_hash``/``c_hash`` of `value` for an ID token signed with `alg`: base64url of the left half
    of the hash of its ASCII octets, with the hash of `alg` (SHA-256 for ``RS256``/``ES256``/...;
    SHA-512 for ``EdDSA``, taken as Ed25519, and ``Ed25519``; SHAKE256 with 114 octets for ``Ed448``).
    ValueError for an algorithm without a hash (``none``, unknown names)."""
    data = value.encode("ascii")
    if alg in ("EdDSA", "Ed25519"):
        digest = hashlib.sha512(data).digest()
    elif alg == "Ed448":
        digest = hashlib.shake_256(data).digest(114)
    elif alg[:2] in ("HS", "RS", "PS", "ES") and alg[2:5] in _HASHES:
        digest = hashlib.new(_HASHES[alg[2:5]], data).digest()
    else:
        raise ValueError(f"no hash is defined for alg {alg!r}")
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class IdTokenProfile:
    """An ID token, validated as OpenID Connect Core 1.0 section 3.1.3.7 says.

    ``iss`` is `issuer`; ``sub`` a non-empty string; ``aud`` contains `client_id`, and any other
    audience is one of `trusted_audiences`; with several audiences ``azp`` is required, and when
    present it is `client_id`; ``exp`` not past and ``iat``/``nbf`` not ahead (with `leeway`);
    ``nonce`` equals `nonce` when one was sent; with `max_age`, ``auth_time`` is present and not older
    than `max_age` (+ `leeway`). With `access_token` / `code`, ``at_hash`` / ``c_hash`` must match when
    present, and be present when `require_at_hash` / `require_c_hash` (hybrid and implicit flows).
    """

    issuer: str
    client_id: str
    nonce: str | None = None
    max_age: int | None = None
    trusted_audiences: frozenset[str] = frozenset()
    access_token: str | None = None
    code: str | None = None
    require_at_hash: bool = False
    require_c_hash: bool = False

    def check(
        self, claims: Mapping[str, Any], now: float, leeway: float, header: Mapping[str, Any] | None = None
    ) -> None:
        if claims.get("iss") != self.issuer:
            raise JwtError("jwt.bad_issuer", "iss is not the expected issuer")
        sub = claims.get("sub")
        _require(claims, "sub", isinstance(sub, str) and bool(sub), "a non-empty string")
        audiences = _audiences(claims.get("aud"))
        _require(claims, "aud", audiences is not None, "a string or a non-empty array of strings")
        assert audiences is not None
        if self.client_id not in audiences:
            raise JwtError("jwt.bad_audience", "aud does not contain the client_id")
        if any(a != self.client_id and a not in self.trusted_audiences for a in audiences):
            raise JwtError("jwt.bad_audience", "aud names an audience this client does not trust")
        azp = claims.get("azp")
        if (azp is not None or len(audiences) > 1) and azp != self.client_id:
            raise JwtError("id_token.bad_azp", "azp is not the client_id")
        self._check_times(claims, now, leeway)
        if self.nonce is not None:
            nonce = claims.get("nonce")
            if not isinstance(nonce, str) or not _same(nonce, self.nonce):
                raise JwtError("id_token.bad_nonce", "nonce is missing or not the one sent")
        self._check_hashes(claims, header or {})

    def _check_times(self, claims: Mapping[str, Any], now: float, leeway: float) -> None:
        exp: Any = claims.get("exp")
        iat: Any = claims.get("iat")
        nbf: Any = claims.get("nbf")
        _require(claims, "exp", finite_number(exp), "a number")
        _require(claims, "iat", finite_number(iat), "a number")
        if now >= exp + leeway:
            raise JwtError("jwt.expired")
        if iat > now + leeway:
            raise JwtError("jwt.bad_iat", "iat is in the future")
        if nbf is not None:
            if not finite_number(nbf):
                raise JwtError("jwt.bad_claim", "nbf is not a number")
            if nbf > now + leeway:
                raise JwtError("jwt.not_yet_valid")
        if self.max_age is not None:
            auth_time: Any = claims.get("auth_time")
            if not finite_number(auth_time):
                raise JwtError("id_token.auth_time_missing", "max_age was requested: auth_time is required")
            if now > float(auth_time) + self.max_age + leeway:  # float first: int + int may outgrow a float
                raise JwtError("id_token.auth_too_old", "the end-user authenticated longer ago than max_age")

    def _check_hashes(self, claims: Mapping[str, Any], header: Mapping[str, Any]) -> None:
        for claim, value, required, reason in (
            ("at_hash", self.access_token, self.require_at_hash, "id_token.bad_at_hash"),
            ("c_hash", self.code, self.require_c_hash, "id_token.bad_c_hash"),
        ):
            if value is None:
                continue
            found = claims.get(claim)
            if found is None:
                if required:
                    raise JwtError(reason, f"{claim} is missing")
                continue
            alg = header.get("alg")
            try:
                expected = left_hash(value, alg) if isinstance(alg, str) else None
            except ValueError:
                expected = None
            if expected is None or not isinstance(found, str) or not _same(found, expected):
                raise JwtError(reason, f"{claim} does not match")
