"""The URL paths of the server's endpoints, in one place so metadata and routing agree."""

TOKEN_PATH = "/token"  # noqa: S105 - a path, not a password
INTROSPECTION_PATH = "/introspect"
REVOCATION_PATH = "/revoke"
JWKS_PATH = "/jwks"
REGISTRATION_PATH = "/register"
HEALTH_PATH = "/healthz"
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")
