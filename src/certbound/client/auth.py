"""What each client authentication method adds to a request: form fields and headers.

- ``none``: ``client_id`` only.
- ``client_secret_basic``: HTTP Basic with id and secret each form-urlencoded first (RFC 6749 Appendix B
  and section 2.3.1), which many clients forget and which breaks secrets with ``:`` ``+`` ``%``.
- ``client_secret_post``: ``client_id`` and ``client_secret`` in the body.
- ``client_secret_jwt`` / ``private_key_jwt``: a fresh assertion per request (RFC 7523).
- ``tls_client_auth`` / ``self_signed_tls_client_auth``: ``client_id`` always (RFC 8705 section 2:
  the server cannot know the client otherwise), never a secret; the proof is the TLS certificate.

The certificate itself is the TLS layer's business (see pools); any method can present one.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from certbound.auth_methods import Endpoint
from certbound.client.assertions import SigningKey, client_assertion, secret_signing_key, signing_key_from_jwk
from certbound.client.config import MTLS_METHODS, ClientConfig

__all__ = ["ASSERTION_TYPE", "AuthParts", "ClientAuth", "basic_authorization"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@dataclass(frozen=True)
class AuthParts:
    """Form fields and headers that authenticate one request."""

    form: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def basic_authorization(client_id: str, secret: str) -> str:
    """The ``Authorization`` value for client_secret_basic: Base64 of urlencoded(id):urlencoded(secret)."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")


class ClientAuth:
    """Builds the authentication of each request for one configured client (each endpoint with its
    own method when the configuration gives one)."""

    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        methods = config.methods
        self._private_key: SigningKey | None = None
        self._secret_key: SigningKey | None = None
        if "private_key_jwt" in methods and config.jwk is not None:
            self._private_key = signing_key_from_jwk(config.jwk)
        if "client_secret_jwt" in methods and config.client_secret:
            self._secret_key = secret_signing_key(config.client_secret, config.client_secret_jwt_alg)

    @property
    def method(self) -> str:
        """The token endpoint's method (the one every endpoint uses unless configured otherwise)."""
        return self._config.auth_method

    def parts(
        self, *, endpoint_url: str, issuer: str, now: float | None = None, endpoint: Endpoint = "token"
    ) -> AuthParts:
        """Form fields and headers for a request to `endpoint` at `endpoint_url` of the server `issuer`."""
        config = self._config
        method = config.method_for(endpoint)
        if method == "client_secret_basic":
            assert config.client_secret is not None  # checked by ClientConfig
            return AuthParts(
                headers={"Authorization": basic_authorization(config.client_id, config.client_secret)}
            )
        if method == "client_secret_post":
            assert config.client_secret is not None
            return AuthParts(form={"client_id": config.client_id, "client_secret": config.client_secret})
        if method in ("client_secret_jwt", "private_key_jwt"):
            key = self._secret_key if method == "client_secret_jwt" else self._private_key
            assert key is not None
            audience = issuer if config.assertion_audience == "issuer" else endpoint_url
            assertion = client_assertion(
                config.client_id, audience, key, lifetime=config.assertion_lifetime, now=now
            )
            return AuthParts(
                form={
                    "client_id": config.client_id,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": assertion,
                }
            )
        if method in MTLS_METHODS or method == "none":
            return AuthParts(form={"client_id": config.client_id})
        raise AssertionError(f"unhandled method {method}")  # ClientConfig refuses unknown methods
