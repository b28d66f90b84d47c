"""Why an authentication failed: one exception inside the package, one catalogue of reason codes.

Methods raise :class:`AuthFailure` with a reason code; only the registry turns it into the wire error
(``invalid_client``, the same body and headers whatever the reason, so an unknown client and a wrong
credential look identical from outside). The reason and its detail go to the log event only.
:data:`REASONS` says each code in plain words (for docs, ``certbound explain`` and tests).
"""

from __future__ import annotations

from typing import Final

__all__ = ["REASONS", "AuthFailure"]

REASONS: Final[dict[str, str]] = {
    # the request
    "request.multiple_mechanisms": "the request carries more than one client authentication mechanism",
    "request.client_id_missing": "no client_id was sent (the mTLS methods and 'none' need it in the form)",
    "request.client_id_mismatch": "the form's client_id differs from the one in Basic or in the assertion",
    "request.malformed_basic": "the Authorization: Basic header is not base64 of form-encoded id:secret",
    # the client
    "client.unknown": "no client is registered with this client_id",
    "client.method_mismatch": "the request does not use the method the client registered for this endpoint",
    "client.misconfigured": "the client's stored credentials cannot be used (see the server log)",
    # secrets
    "secret.mismatch": "the client secret is wrong",
    "secret.expired": "the client secret has expired",
    # certificates
    "cert.missing": "no client certificate was presented",
    "cert.untrusted": "the certificate does not chain to a trusted client CA",
    "cert.expired": "a certificate (presented, on the chain, or registered) has expired",
    "cert.not_yet_valid": "a certificate (presented, on the chain, or registered) is not valid yet",
    "cert.invalid": "the chain breaks the client-certificate policy (EKU, key usage, constraints, ...)",
    "cert.subject_mismatch": "the certificate does not carry the registered subject value",
    "cert.unregistered": "the certificate is not one of the client's registered certificates",
    # JWT assertions
    "assertion.malformed": "the client_assertion is not a compact JWS with a JSON claims set",
    "assertion.bad_type": "client_assertion_type is missing or not the JWT bearer URN (RFC 7523)",
    "assertion.alg_not_allowed": "alg is none, of the wrong family for the method, or not the registered one",
    "assertion.unknown_key": "no registered key matches the assertion's kid",
    "assertion.bad_signature": "the assertion's signature does not verify with the client's keys",
    "assertion.bad_issuer": "iss and sub must both be the client_id",
    "assertion.bad_audience": "aud names neither the issuer nor this endpoint",
    "assertion.missing_exp": "the assertion has no (numeric) exp",
    "assertion.expired": "the assertion has expired",
    "assertion.too_long": "the assertion's exp is further ahead than assertion_max_lifetime",
    "assertion.not_yet_valid": "the assertion's nbf is in the future",
    "assertion.bad_iat": "the assertion's iat is not a number or lies in the future",
    "assertion.missing_jti": "the assertion has no jti",
    "assertion.replayed": "an assertion with this jti was already used by this client",
    # jwks_uri
    "jwks_uri.fetch_failed": "the client's jwks_uri could not be fetched, or was refused (see detail)",
    # not an authentication failure: the server could not decide (answered 500, fails closed)
    "internal.error": "an unexpected error happened while authenticating (the request was refused)",
}


class AuthFailure(Exception):
    """A refused authentication: `reason` is a code from :data:`REASONS`, `detail` says more (log only).

    `detail` must never hold a secret, an assertion or a token.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason code {reason!r}")
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
