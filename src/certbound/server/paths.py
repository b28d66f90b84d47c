"""The server's endpoints in one table: what routing, metadata, direct dispatch and audiences read.

Routes (`certbound.server.app`), the metadata document's endpoint URLs and its
``mtls_endpoint_aliases`` (RFC 8705 section 5), the hot routes that `HotRoutes` serves and the
assertion audiences (`certbound.server.clientauth.audiences`) are all derived from `ENDPOINTS`, so
adding an endpoint is one line here and one constructor call in the app. Plain data on purpose: the
protocol core imports it, so it must not import the web framework.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AUTHORIZATION",
    "CLIENT_CONFIGURATION",
    "CONSENT",
    "ENDPOINTS",
    "END_SESSION",
    "HEALTH",
    "HEALTH_PATH",
    "INTROSPECTION",
    "INTROSPECTION_PATH",
    "JWKS",
    "JWKS_PATH",
    "LOGIN",
    "METADATA",
    "METADATA_PATHS",
    "PUSHED_AUTHORIZATION",
    "PUSHED_AUTHORIZATION_PATH",
    "READINESS",
    "REGISTRATION",
    "REGISTRATION_PATH",
    "REVOCATION",
    "REVOCATION_PATH",
    "TOKEN",
    "TOKEN_PATH",
    "USERINFO",
    "EndpointEntry",
]


@dataclass(frozen=True, slots=True)
class EndpointEntry:
    """One endpoint of the server.

    `metadata_name` is the RFC 8414 member that publishes its URL (None: not published); `mtls_alias`
    lists it in ``mtls_endpoint_aliases`` too. `hot` endpoints are on every token's path: with
    ``fast_paths`` they are served by exact path ahead of the middleware stack and the router.
    `methods` is what the router lets through; None when the endpoint answers every method itself
    (our 405, with no-store).
    """

    name: str
    paths: tuple[str, ...]
    metadata_name: str | None = None
    mtls_alias: bool = False
    hot: bool = False
    methods: tuple[str, ...] | None = None

    @property
    def path(self) -> str:
        """The endpoint's (first) path: the one its published URL names."""
        return self.paths[0]


TOKEN = EndpointEntry("token", ("/token",), "token_endpoint", mtls_alias=True, hot=True)
INTROSPECTION = EndpointEntry(
    "introspection", ("/introspect",), "introspection_endpoint", mtls_alias=True, hot=True
)
REVOCATION = EndpointEntry("revocation", ("/revoke",), "revocation_endpoint", mtls_alias=True, hot=True)
JWKS = EndpointEntry("jwks", ("/jwks",), "jwks_uri", methods=("GET",))
REGISTRATION = EndpointEntry("registration", ("/register",), "registration_endpoint", methods=("POST",))
CLIENT_CONFIGURATION = EndpointEntry(
    "client_configuration", ("/register/{client_id}",), methods=("GET", "PUT", "DELETE")
)
HEALTH = EndpointEntry("health", ("/healthz",), methods=("GET",))
READINESS = EndpointEntry("readiness", ("/readyz",), methods=("GET",))
AUTHORIZATION = EndpointEntry(
    "authorization", ("/authorize",), "authorization_endpoint", methods=("GET", "POST")
)
PUSHED_AUTHORIZATION = EndpointEntry(
    "pushed_authorization_request", ("/par",), "pushed_authorization_request_endpoint", mtls_alias=True
)
USERINFO = EndpointEntry(
    "userinfo", ("/userinfo",), "userinfo_endpoint", mtls_alias=True, methods=("GET", "POST")
)
END_SESSION = EndpointEntry("end_session", ("/logout",), "end_session_endpoint", methods=("GET", "POST"))
LOGIN = EndpointEntry("login", ("/login",), methods=("GET", "POST"))
CONSENT = EndpointEntry("consent", ("/consent",), methods=("GET", "POST"))
METADATA = EndpointEntry(
    "metadata",
    ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"),
    methods=("GET",),
)

#: Every endpoint, in the order the metadata document lists their URLs (routing does not depend on it:
#: no two paths overlap).
ENDPOINTS: tuple[EndpointEntry, ...] = (
    AUTHORIZATION,
    TOKEN,
    INTROSPECTION,
    REVOCATION,
    JWKS,
    REGISTRATION,
    CLIENT_CONFIGURATION,
    HEALTH,
    READINESS,
    METADATA,
    PUSHED_AUTHORIZATION,
    USERINFO,
    END_SESSION,
    LOGIN,
    CONSENT,
)

# The single paths by name, for code that needs one path rather than the entry.
TOKEN_PATH = TOKEN.path
INTROSPECTION_PATH = INTROSPECTION.path
REVOCATION_PATH = REVOCATION.path
JWKS_PATH = JWKS.path
REGISTRATION_PATH = REGISTRATION.path
HEALTH_PATH = HEALTH.path
METADATA_PATHS = METADATA.paths
PUSHED_AUTHORIZATION_PATH = PUSHED_AUTHORIZATION.path
