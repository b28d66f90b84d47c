"""certbound.client: the outbound OAuth 2.0 client, over mutual TLS (RFC 8705) or not.

Obtains, introspects and revokes tokens at any authorization server with any of the seven client
authentication methods, follows ``mtls_endpoint_aliases``, verifies the server's certificate unless
told not to, and turns every failure into a typed :class:`ClientError`. Used by the CLI (``certbound
token / introspect / revoke / doctor``) and the gateway. See docs/client.md.
"""

from certbound.client.client import AsyncOAuthClient
from certbound.client.config import METHODS, ClientConfig, TLSIdentity
from certbound.client.errors import (
    ClientConfigError,
    ClientError,
    ClientTimeout,
    DiscoveryError,
    NetworkError,
    OAuthServerError,
    TLSError,
    UnexpectedResponse,
)
from certbound.client.responses import IntrospectionResponse, RevocationResponse, TokenResponse
from certbound.client.sync import OAuthClient

__all__ = [
    "METHODS",
    "AsyncOAuthClient",
    "ClientConfig",
    "ClientConfigError",
    "ClientError",
    "ClientTimeout",
    "DiscoveryError",
    "IntrospectionResponse",
    "NetworkError",
    "OAuthClient",
    "OAuthServerError",
    "RevocationResponse",
    "TLSError",
    "TLSIdentity",
    "TokenResponse",
    "UnexpectedResponse",
]
