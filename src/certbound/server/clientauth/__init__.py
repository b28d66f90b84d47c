"""certbound.server.clientauth: client authentication at the token, introspection and revocation endpoints.

One module per method (``none``, ``client_secret_basic``, ``client_secret_post``,
``client_secret_jwt``, ``private_key_jwt``, ``tls_client_auth``, ``self_signed_tls_client_auth``), one
registry that runs exactly the method a client registered (:class:`ClientAuthenticator`), and the
in-process caches that keep the database off the hot path. See docs/client-authentication.md.
"""

from certbound.server.clientauth.directory import ClientDirectory, CompiledClient
from certbound.server.clientauth.failure import REASONS, AuthFailure
from certbound.server.clientauth.jwks_fetcher import JwksFetcher, JwksFetchError
from certbound.server.clientauth.registry import (
    ClientAuthenticator,
    build_client_authenticator,
    load_client_cas,
)
from certbound.server.clientauth.types import METHODS, Authenticated, AuthRequest, Endpoint
from certbound.tls.chain_verdicts import VerdictCache

__all__ = [
    "METHODS",
    "REASONS",
    "AuthFailure",
    "AuthRequest",
    "Authenticated",
    "ClientAuthenticator",
    "ClientDirectory",
    "CompiledClient",
    "Endpoint",
    "JwksFetchError",
    "JwksFetcher",
    "VerdictCache",
    "build_client_authenticator",
    "load_client_cas",
]
