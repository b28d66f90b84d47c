"""Verify a JWT: the one entry point for a signed token from anyone, with any key source and profile.

``await verify_jwt(token, keys, algorithms=..., profile=...)`` runs, in this order, and stops at the
first failure with a :class:`certbound.jose.errors.JwtError`:

1. parse the compact JWS (:func:`certbound.jose.jws.parse_compact`: size, shape, header members,
   ``crit``);
2. the header's ``typ``, when the caller expects one (``at+jwt`` for RFC 9068 access tokens);
3. ``alg`` in `algorithms`, never ``none``;
4. the keys the source has for the header's ``kid`` and ``alg`` (a remote JWKS refetches, rate-limited,
   when it knows none; a source that cannot be read refuses: ``jws.keys_unavailable``);
5. the signature, with a key whose type fits the algorithm;
6. the claims, a JSON object, through the `profile`.

The server verifies its own access tokens here (against its key ring), and the gateway tokens of its
identity provider (against the provider's JWKS). Client assertions take the same steps, split up
(:mod:`certbound.server.clientauth.assertion`), because the client must be found from the unverified
claims before its keys are known.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from certbound.jose.claims import ClaimsProfile
from certbound.jose.errors import JwtError
from certbound.jose.jws import DEFAULT_LIMITS, JwsLimits, check_algorithm, parse_compact, verify_signature
from certbound.jose.key_source import KeySource, KeysUnavailable

__all__ = ["AT_JWT_TYPES", "VerifiedJwt", "verify_jwt"]

#: The ``typ`` of an RFC 9068 access token (section 2.1), in both spellings RFC 7515 allows.
AT_JWT_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True, slots=True)
class VerifiedJwt:
    """A JWT whose signature verified and whose claims passed the profile."""

    header: Mapping[str, Any]
    claims: dict[str, Any]


async def verify_jwt(
    token: str,
    keys: KeySource,
    *,
    algorithms: Collection[str],
    profile: ClaimsProfile,
    now: float | None = None,
    leeway: float = 0,
    typ: Collection[str] | None = None,
    limits: JwsLimits = DEFAULT_LIMITS,
) -> VerifiedJwt:
    """The verified header and claims of `token` (see the module docstring); raises JwtError.

    `now` is epoch seconds (default: the current time); `leeway` the clock skew allowed by the
    profile's time checks; `typ` the accepted header ``typ`` values (None: not checked).
    """
    jws = parse_compact(token, limits)
    header = jws.header
    if typ is not None and header.get("typ") not in typ:
        raise JwtError("jws.bad_type", "typ is not one this token may have")
    alg = check_algorithm(jws, algorithms)
    at = time.time() if now is None else now
    try:
        candidates = await keys.keys_for(jws.kid, alg, at)
    except KeysUnavailable as exc:
        raise JwtError("jws.keys_unavailable", str(exc)) from None
    if not candidates:
        raise JwtError("jws.unknown_key", "no key matches the kid and alg")
    if not verify_signature(jws, candidates, algorithms):
        raise JwtError("jws.bad_signature")
    claims = jws.claims()
    profile.check(claims, at, leeway, header)
    return VerifiedJwt(header, claims)
