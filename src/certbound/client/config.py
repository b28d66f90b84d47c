"""What the outbound client is told: who it is, how it authenticates, what it trusts.

One frozen value, checked when it is built, so that a contradiction (a secret method without a secret,
``verify=False`` together with a CA bundle, an mTLS endpoint override without a certificate) is refused
before the first request rather than discovered on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from certbound.auth_methods import METHODS
from certbound.client.errors import ClientConfigError
from certbound.net import tls

__all__ = ["METHODS", "MTLS_METHODS", "SECRET_METHODS", "AssertionAudience", "ClientConfig", "TLSIdentity"]

MTLS_METHODS = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})
SECRET_METHODS = frozenset({"client_secret_basic", "client_secret_post", "client_secret_jwt"})

AssertionAudience = Literal["issuer", "endpoint"]


class TLSIdentity(tls.TLSIdentity):
    """`certbound.net.tls.TLSIdentity` (the same fields and rules), refusing what it refuses with the
    client's own `ClientConfigError`, so that a caller catching `ClientError` catches it too."""

    def __post_init__(self) -> None:
        try:
            super().__post_init__()
        except tls.TLSConfigError as exc:
            raise ClientConfigError(str(exc)) from None


@dataclass(frozen=True)
class ClientConfig:
    """Configuration of one OAuth client talking to one authorization server.

    `ca_file`: trust only these CAs for the server's certificate; None means the system store (which
    honours ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``). `verify=False` turns verification off and logs a
    warning on every new connection. `mtls_*_endpoint` override both the metadata and its
    ``mtls_endpoint_aliases``. `assertion_audience`: the ``aud`` of client assertions, the issuer
    (default) or the URL of the endpoint being called. `metadata`: use this document instead of
    discovering one.
    """

    issuer: str
    client_id: str
    auth_method: str
    client_secret: str | None = field(default=None, repr=False)
    jwk: Mapping[str, Any] | None = field(default=None, repr=False)
    identities: Sequence[TLSIdentity] = ()
    ca_file: Path | None = None
    verify: bool = True
    mtls_token_endpoint: str | None = None
    mtls_introspection_endpoint: str | None = None
    mtls_revocation_endpoint: str | None = None
    assertion_audience: AssertionAudience = "issuer"
    assertion_lifetime: int = 60
    client_secret_jwt_alg: str = "HS256"  # noqa: S105 - an algorithm name
    timeout: float = 10.0
    token_expiry_margin: float = 30.0
    rediscovery_interval: float = 30.0
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "identities", tuple(self.identities))
        problem = self._problem()
        if problem:
            raise ClientConfigError(problem)

    def _problem(self) -> str | None:
        if not self.issuer.startswith("https://") and not self.issuer.startswith("http://"):
            return f"issuer {self.issuer!r} must be an https:// URL"
        if not self.client_id:
            return "client_id is required"
        if self.auth_method not in METHODS:
            return f"unknown auth method {self.auth_method!r}; choose one of {', '.join(METHODS)}"
        if self.auth_method in SECRET_METHODS and not self.client_secret:
            return f"{self.auth_method} needs a client secret"
        if self.auth_method == "private_key_jwt" and self.jwk is None:
            return "private_key_jwt needs a private JWK"
        if self.auth_method in MTLS_METHODS and not self.identities:
            return f"{self.auth_method} needs a client certificate and key"
        if self.ca_file is not None and not self.verify:
            return "ca_file and verify=False contradict each other: give one or the other"
        overrides = {
            "mtls_token_endpoint": self.mtls_token_endpoint,
            "mtls_introspection_endpoint": self.mtls_introspection_endpoint,
            "mtls_revocation_endpoint": self.mtls_revocation_endpoint,
        }
        for name, value in overrides.items():
            if value is not None and not self.identities:
                return f"{name} is used only with a client certificate, and none is configured"
        if self.assertion_lifetime <= 0 or self.assertion_lifetime > 600:
            return "assertion_lifetime must be between 1 and 600 seconds"
        return None
