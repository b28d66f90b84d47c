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

from certbound.auth_methods import ENDPOINTS, METHODS, Endpoint
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
    discovering one. `endpoint_auth_methods`: another method than `auth_method` for some endpoints
    (``introspection``, ``revocation``; a client registered with ``introspection_endpoint_auth_method``).
    `trust_env`: honour ``HTTPS_PROXY`` and ``.netrc`` (a library behind a corporate proxy does; the
    gateway does not). `discovery_retry_after`: after a failed discovery, calls within this many seconds
    fail at once with the same error instead of asking a server that is down again.
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
    endpoint_auth_methods: Mapping[Endpoint, str] = field(default_factory=dict)
    trust_env: bool = True
    discovery_retry_after: float = 2.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "identities", tuple(self.identities))
        object.__setattr__(self, "endpoint_auth_methods", dict(self.endpoint_auth_methods))
        problem = self._problem()
        if problem:
            raise ClientConfigError(problem)

    def method_for(self, endpoint: Endpoint) -> str:
        """The authentication method used at `endpoint`."""
        return self.endpoint_auth_methods.get(endpoint, self.auth_method)

    @property
    def methods(self) -> frozenset[str]:
        """Every method this client authenticates with, at one endpoint or another."""
        return frozenset(self.method_for(endpoint) for endpoint in ENDPOINTS)

    def _problem(self) -> str | None:
        if not self.issuer.startswith("https://") and not self.issuer.startswith("http://"):
            return f"issuer {self.issuer!r} must be an https:// URL"
        if not self.client_id:
            return "client_id is required"
        for endpoint in self.endpoint_auth_methods:
            if endpoint not in ENDPOINTS:
                return f"endpoint_auth_methods: {endpoint!r} is not one of {', '.join(ENDPOINTS)}"
        for method in (self.auth_method, *self.endpoint_auth_methods.values()):
            problem = self._method_problem(method)
            if problem:
                return problem
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

    def _method_problem(self, method: str) -> str | None:
        if method not in METHODS:
            return f"unknown auth method {method!r}; choose one of {', '.join(METHODS)}"
        if method in SECRET_METHODS and not self.client_secret:
            return f"{method} needs a client secret"
        if method == "private_key_jwt" and self.jwk is None:
            return "private_key_jwt needs a private JWK"
        if method in MTLS_METHODS and not self.identities:
            return f"{method} needs a client certificate and key"
        return None
