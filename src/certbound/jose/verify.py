"""Verify a JWT: the one entry point for a signed token from anyone, with any key source and profile.

A :class:`JwtVerifier` is configured once (key source, allowed algorithms, claim profile, expected
``typ``, leeway) and its :meth:`~JwtVerifier.verify` runs, in this order, stopping at the first
failure with a :class:`certbound.jose.errors.JwtError`:

1. parse the compact JWS (:func:`certbound.jose.jws.parse_compact`: size, shape, header members,
   ``crit``);
2. the header's ``typ``, when the caller expects one (``at+jwt`` for RFC 9068 access tokens);
3. ``alg`` in the allowed algorithms, never ``none``;
4. the keys the source has for the header's ``kid`` and ``alg`` (a remote JWKS refetches, rate-limited,
   when it knows none; a source that cannot be read refuses: ``jws.keys_unavailable``);
5. the signature, with a key whose type fits the algorithm;
6. the claims, a JSON object, through the profile.

The server verifies its own access tokens here (against its key ring), and the gateway tokens of its
identity provider (against the provider's JWKS); :func:`verify_jwt` does the same in one call. Client
assertions take the same steps, split up (:mod:`certbound.server.clientauth.assertion`), because the
client must be found from the unverified claims before its keys are known.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from typing import Any, Final, NamedTuple

from certbound.jose.claims import ClaimsProfile
from certbound.jose.errors import JwtError
from certbound.jose.jws import DEFAULT_LIMITS, JwsLimits, check_algorithm, parse_compact, verify_signature
from certbound.jose.key_source import KeySource, KeysUnavailable

__all__ = ["ACCESS_TOKEN_TYPES", "AT_JWT_TYPES", "JwtVerifier", "VerifiedJwt", "verify_jwt"]

#: The ``typ`` of an RFC 9068 access token (section 2.1), in both spellings RFC 7515 allows.
AT_JWT_TYPES: Final = frozenset({"at+jwt", "application/at+jwt"})

#: What a resource server accepts from an identity provider it does not control: RFC 9068's
#: ``at+jwt``, and the plain ``JWT`` or no ``typ`` at all that many providers still sign access tokens
#: with. Any other ``typ`` names another kind of JWT (``logout+jwt``, ``dpop+jwt``,
#: ``token-introspection+jwt``, ...) and is refused: a token of one kind never passes for another.
ACCESS_TOKEN_TYPES: Final[frozenset[str | None]] = AT_JWT_TYPES | {"JWT", None}


class VerifiedJwt(NamedTuple):
    """A JWT whose signature verified and whose claims passed the profile."""

    header: Mapping[str, Any]
    claims: dict[str, Any]


class JwtVerifier:
    """Verifies JWTs of one kind from one issuer (see the module docstring).

    `algorithms`: the allowed ``alg`` values (``none`` never is); `typ`: the accepted header ``typ``
    values, a None member accepting a header without one (`typ` None: not checked); `leeway`: the
    clock skew the profile's time checks allow, in seconds.
    """

    __slots__ = ("_algorithms", "_keys", "_leeway", "_limits", "_profile", "_typ")

    def __init__(
        self,
        keys: KeySource,
        *,
        algorithms: Collection[str],
        profile: ClaimsProfile,
        typ: Collection[str | None] | None = None,
        leeway: float = 0,
        limits: JwsLimits = DEFAULT_LIMITS,
    ) -> None:
        self._keys = keys
        self._algorithms = frozenset(algorithms)
        self._profile = profile
        self._typ = frozenset(typ) if typ is not None else None
        self._leeway = leeway
        self._limits = limits

    async def verify(self, token: str, now: float | None = None) -> VerifiedJwt:
        """The verified header and claims of `token` at `now` (epoch seconds; default: the current
        time); raises JwtError."""
        jws = parse_compact(token, self._limits)
        header = jws.header
        if self._typ is not None and header.get("typ") not in self._typ:
            raise JwtError("jws.bad_type", "typ is not one this token may have")
        alg = check_algorithm(jws, self._algorithms)
        at = time.time() if now is None else now
        try:
            candidates = await self._keys.keys_for(jws.kid, alg, at)
        except KeysUnavailable as exc:
            raise JwtError("jws.keys_unavailable", str(exc)) from None
        if not candidates:
            raise JwtError("jws.unknown_key", "no key matches the kid and alg")
        if not verify_signature(jws, candidates, self._algorithms):
            raise JwtError("jws.bad_signature")
        claims = jws.claims()
        self._profile.check(claims, at, self._leeway, header)
        return VerifiedJwt(header, claims)


async def verify_jwt(
    token: str,
    keys: KeySource,
    *,
    algorithms: Collection[str],
    profile: ClaimsProfile,
    now: float | None = None,
    leeway: float = 0,
    typ: Collection[str | None] | None = None,
    limits: JwsLimits = DEFAULT_LIMITS,
) -> VerifiedJwt:
    """:meth:`JwtVerifier.verify` in one call, for a verification that is not repeated."""
    verifier = JwtVerifier(
        keys, algorithms=algorithms, profile=profile, typ=typ, leeway=leeway, limits=limits
    )
    return await verifier.verify(token, now)
