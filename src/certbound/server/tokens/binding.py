"""Certificate-bound access tokens (RFC 8705 section 3): which certificate a new token is bound to.

A client registered with ``tls_client_certificate_bound_access_tokens: true`` gets tokens bound to
the certificate presented on the token request, whatever method authenticated it (a
``private_key_jwt`` client may present a certificate only to bind its tokens). The TLS handshake
proved possession of that certificate's key, which is all the binding needs.

Such a client that presents no certificate gets ``invalid_grant`` (400), never an unbound token:
RFC 8705 names no error for this case; node-oidc-provider answers ``invalid_grant`` ("mutual TLS
client certificate not provided") and clients written against it expect that. A client that is not
registered for binding gets unbound tokens even when it presents a certificate.
"""

from __future__ import annotations

from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel
from certbound.tls.client_certificate import ClientCertificate

__all__ = ["bound_thumbprint", "requires_binding"]


def requires_binding(client: ClientModel) -> bool:
    """Whether the client's access tokens must be bound to its certificate."""
    return client.certificate_bound


def bound_thumbprint(client: ClientModel, certificate: ClientCertificate | None) -> str | None:
    """The ``x5t#S256`` to put in ``cnf``, None for an unbound token; OAuthError when binding is
    required and no certificate was presented."""
    if not requires_binding(client):
        return None
    if certificate is None:
        raise OAuthError(
            "invalid_grant",
            "this client's access tokens are bound to its certificate "
            "(tls_client_certificate_bound_access_tokens); present a client certificate over mutual TLS, "
            "at the mtls_endpoint_aliases token endpoint",
            reason="cert.missing_for_binding",
        )
    return certificate.x5t_s256
