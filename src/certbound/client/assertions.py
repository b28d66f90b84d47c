"""JWT client assertions (RFC 7523 section 2.2) for ``client_secret_jwt`` and ``private_key_jwt``.

Each assertion is new: a random ``jti`` (servers keep a replay cache), ``iat`` now and ``exp`` a minute
later by default, so one that leaks is useless almost at once. ``aud`` is the issuer unless the caller
asks for the endpoint URL (some servers accept only one of the two).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey

from certbound.client.errors import ClientConfigError
from certbound.jose.algorithms import EC_CURVE_ALGS, HMAC_ALGS

__all__ = ["SigningKey", "client_assertion", "secret_signing_key", "signing_key_from_jwk"]


JoseKey = OctKey | RSAKey | ECKey | OKPKey


@dataclass(frozen=True)
class SigningKey:
    """A key ready to sign assertions: the joserfc key, its algorithm and (optionally) its ``kid``."""

    key: JoseKey
    alg: str
    kid: str | None


def _default_alg(jwk: Mapping[str, Any]) -> str:
    kty = jwk.get("kty")
    if kty == "RSA":
        return "RS256"
    if kty == "EC":
        crv = str(jwk.get("crv"))
        if crv not in EC_CURVE_ALGS:
            raise ClientConfigError(f"unsupported EC curve {crv!r} in the JWK")
        return EC_CURVE_ALGS[crv]
    if kty == "OKP":
        return "EdDSA"
    raise ClientConfigError(f"a private_key_jwt key must be RSA, EC or OKP, not {kty!r}")


def signing_key_from_jwk(jwk: Mapping[str, Any]) -> SigningKey:
    """A private JWK as a signing key: ``kid`` from the JWK, ``alg`` from its ``alg`` or its key type."""
    if "d" not in jwk:
        raise ClientConfigError("the JWK is a public key; private_key_jwt needs the private JWK")
    alg = str(jwk["alg"]) if "alg" in jwk else _default_alg(jwk)
    if alg in HMAC_ALGS or alg == "none":
        raise ClientConfigError(f"alg {alg!r} cannot be used with private_key_jwt")
    try:
        key = JWKRegistry.import_key(dict(jwk))
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ClientConfigError(f"the JWK cannot be used: {exc}") from None
    kid = jwk.get("kid")
    return SigningKey(key, alg, str(kid) if kid is not None else None)


def secret_signing_key(secret: str, alg: str = "HS256") -> SigningKey:
    """The client secret as an HMAC key for ``client_secret_jwt``."""
    if alg not in HMAC_ALGS:
        raise ClientConfigError(
            f"client_secret_jwt needs an HMAC algorithm (HS256, HS384, HS512), not {alg!r}"
        )
    return SigningKey(OctKey.import_key(secret.encode("utf-8")), alg, None)


def client_assertion(
    client_id: str, audience: str, key: SigningKey, *, lifetime: int = 60, now: float | None = None
) -> str:
    """A signed assertion: iss = sub = client_id, `audience`, a fresh jti, iat, exp = iat + lifetime."""
    issued = int(time.time() if now is None else now)
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "jti": secrets.token_urlsafe(24),
        "iat": issued,
        "exp": issued + lifetime,
    }
    header: dict[str, Any] = {"alg": key.alg, "typ": "JWT"}
    if key.kid is not None:
        header["kid"] = key.kid
    try:
        return jwt.encode(header, claims, key.key, algorithms=[key.alg])
    except (JoseError, ValueError) as exc:
        raise ClientConfigError(f"cannot sign the client assertion with {key.alg}: {exc}") from None
