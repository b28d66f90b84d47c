"""RFC 8414 authorization server metadata, also served as OpenID Connect discovery: one document.

The endpoint URLs and ``mtls_endpoint_aliases`` come from the endpoint table
(`certbound.server.paths`), the grant types and client authentication methods from the
registries that implement them, the ID token algorithms from the key ring's configuration: the
document cannot promise what the server does not do. Both paths serve the same document, so both
carry every field a relying party needs (OpenID Connect Discovery section 3, RFC 9126 section 5,
RFC 9207 section 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import Receive, Scope, Send

from certbound.config import Settings
from certbound.jose.algorithms import ASSERTION_SIGNING_ALGS
from certbound.server.endpoints.responses import json_response
from certbound.server.grants.scope import OPENID_SCOPES, scope_catalogue
from certbound.server.paths import ENDPOINTS

__all__ = ["ASSERTION_SIGNING_ALGS", "CLAIMS_SUPPORTED", "MetadataEndpoint", "build_metadata"]

#: The claims of our ID tokens and userinfo answers (`certbound.server.endpoints.userinfo`).
CLAIMS_SUPPORTED = (
    "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid",
    "name", "given_name", "family_name", "preferred_username", "email", "email_verified",
)  # fmt: skip


def build_metadata(
    settings: Settings, *, grant_types: Sequence[str], auth_methods: Sequence[str]
) -> dict[str, Any]:
    """The metadata document; `mtls_endpoint_aliases` is always present (RFC 8705 section 5).

    `grant_types`: `GrantRegistry.grant_types`; `auth_methods`: `ClientAuthenticator.methods` (the
    same authenticator serves the token, introspection and revocation endpoints).
    """
    issuer = settings.issuer_url
    mtls = settings.mtls_url
    catalogue = scope_catalogue(settings) or frozenset()
    scopes = [*OPENID_SCOPES, *sorted(catalogue.difference(OPENID_SCOPES))]
    doc: dict[str, Any] = {"issuer": issuer}
    doc |= {e.metadata_name: issuer + e.path for e in ENDPOINTS if e.metadata_name is not None}
    doc |= {
        "grant_types_supported": list(grant_types),
        "response_types_supported": ["code"] if "authorization_code" in grant_types else [],
        "response_modes_supported": ["query"],
        "scopes_supported": scopes,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(settings.id_token_signing_algs),
        "userinfo_signing_alg_values_supported": list(settings.id_token_signing_algs),
        "claims_supported": list(CLAIMS_SUPPORTED),
        "prompt_values_supported": ["none", "login", "consent"],
        "authorization_response_iss_parameter_supported": True,
        "require_pushed_authorization_requests": settings.require_pushed_authorization_requests,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "token_endpoint_auth_methods_supported": list(auth_methods),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "introspection_endpoint_auth_methods_supported": list(auth_methods),
        "introspection_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "revocation_endpoint_auth_methods_supported": list(auth_methods),
        "revocation_endpoint_auth_signing_alg_values_supported": list(ASSERTION_SIGNING_ALGS),
        "introspection_signing_alg_values_supported": [settings.signing_alg],  # RFC 9701 responses
        "tls_client_certificate_bound_access_tokens": True,
        "mtls_endpoint_aliases": {
            e.metadata_name: mtls + e.path for e in ENDPOINTS if e.mtls_alias and e.metadata_name is not None
        },
        "code_challenge_methods_supported": ["S256"],
    }
    return {k: v for k, v in doc.items() if v is not None}


class MetadataEndpoint:
    """GET /.well-known/oauth-authorization-server and /.well-known/openid-configuration."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = json_response(
            self._document, no_store=False, headers={"Cache-Control": "public, max-age=300"}
        )
        await response(scope, receive, send)
