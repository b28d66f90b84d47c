"""RFC 8414 authorization server metadata (also served as OpenID Connect discovery)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from certbound.auth_methods import METHODS
from certbound.config import Settings
from certbound.jose.algorithms import ASSERTION_SIGNING_ALGS
from certbound.server.endpoints.paths import (
    INTROSPECTION_PATH,
    JWKS_PATH,
    REGISTRATION_PATH,
    REVOCATION_PATH,
    TOKEN_PATH,
)
from certbound.server.endpoints.responses import json_response


def build_metadata(settings: Settings) -> dict[str, Any]:
    """The metadata document; `mtls_endpoint_aliases` is always present (RFC 8705 section 5)."""
    issuer = settings.issuer_url
    mtls = settings.mtls_url
    doc: dict[str, Any] = {
        "issuer": issuer,
        "token_endpoint": issuer + TOKEN_PATH,
        "introspection_endpoint": issuer + INTROSPECTION_PATH,
        "revocation_endpoint": issuer + REVOCATION_PATH,
        "jwks_uri": issuer + JWKS_PATH,
        "registration_endpoint": issuer + REGISTRATION_PATH,
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "scopes_supported": sorted(settings.allowed_scopes) if settings.allowed_scopes else None,
        "token_endpoint_auth_methods_supported": list(METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "introspection_endpoint_auth_methods_supported": list(METHODS),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": list(METHODS),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "introspection_signing_alg_values_supported": [settings.signing_alg],  # RFC 9701 responses
        "tls_client_certificate_bound_access_tokens": True,
        "mtls_endpoint_aliases": {
            "token_endpoint": mtls + TOKEN_PATH,
            "introspection_endpoint": mtls + INTROSPECTION_PATH,
            "revocation_endpoint": mtls + REVOCATION_PATH,
        },
        "code_challenge_methods_supported": ["S256"],
    }
    return {k: v for k, v in doc.items() if v is not None}


async def metadata(request: Request) -> Response:
    """GET /.well-known/oauth-authorization-server and /.well-known/openid-configuration."""
    body: dict[str, Any] = request.app.state.metadata
    return json_response(body, no_store=False, headers={"Cache-Control": "public, max-age=300"})
