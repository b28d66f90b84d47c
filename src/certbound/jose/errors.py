"""Why a JWT was refused: one exception type for every check in `certbound.jose`, with a reason code.

Callers branch on :attr:`JwtError.reason`, never on the message. The codes of the JWS layer
(:data:`JWS_REASONS`) say what was wrong with the signature's envelope; the claim profiles add their
own (:data:`CLAIM_REASONS`; the client-assertion profile raises the server's ``assertion.*`` codes).
`detail` says more, for a log: it never holds the token, a key or a secret.
"""

from __future__ import annotations

from typing import Final

__all__ = ["BINDING_REASONS", "CLAIM_REASONS", "JWS_REASONS", "JwtError"]

#: The JWS envelope (RFC 7515): shape, header, algorithm, key and signature.
JWS_REASONS: Final[dict[str, str]] = {
    "jws.malformed": "not a compact JWS with a JSON object as payload, or a header member is wrong",
    "jws.bad_type": "the header's typ is not the one this kind of token has",
    "jws.alg_not_allowed": "alg is none or not one of the algorithms allowed here",
    "jws.unknown_key": "no key of the key source matches the header's kid and alg",
    "jws.keys_unavailable": "the key source could not be read (a JWKS fetch failed): refused, fail closed",
    "jws.bad_signature": "the signature does not verify with the matching keys",
}

#: The claim profiles: at+jwt (RFC 9068) and ID tokens (OpenID Connect Core 3.1.3.7).
CLAIM_REASONS: Final[dict[str, str]] = {
    "jwt.missing_claim": "a required claim is missing",
    "jwt.bad_claim": "a claim has the wrong type",
    "jwt.bad_issuer": "iss is not the expected issuer",
    "jwt.bad_audience": "aud does not name the expected audience, or names one that is not trusted",
    "jwt.expired": "exp has passed",
    "jwt.not_yet_valid": "nbf lies in the future",
    "jwt.bad_iat": "iat lies in the future",
    "id_token.bad_azp": "azp is missing (several audiences) or is not the client_id",
    "id_token.bad_nonce": "nonce is missing or not the one sent in the authentication request",
    "id_token.auth_time_missing": "max_age was requested but auth_time is missing",
    "id_token.auth_too_old": "the end-user authenticated longer ago than max_age",
    "id_token.bad_at_hash": "at_hash does not match the access token",
    "id_token.bad_c_hash": "c_hash is missing or does not match the authorization code",
}

#: Certificate-bound tokens (RFC 8705 section 3).
BINDING_REASONS: Final[dict[str, str]] = {
    "cnf.malformed": "the cnf claim or its x5t#S256 member is not well-typed",
    "cnf.unbound": "the token is not bound to a certificate, and binding is required",
    "cnf.missing_certificate": "the token is bound to a certificate but none was presented",
    "cnf.mismatch": "the presented certificate is not the one the token is bound to",
}


class JwtError(Exception):
    """A refused JWT: `reason` is a code (see the module docstring), `detail` says more (logs only)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
