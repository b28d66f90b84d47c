"""The client_credentials grant (RFC 6749 section 4.4): a client gets a token for itself.

The token's ``sub`` is the client_id. Scope, audience and certificate binding follow the shared rules
of `certbound.server.grants.scope`, `certbound.server.grants.resource` and
`certbound.server.tokens.binding`; the checks run before anything is minted or stored, so a refused
request leaves no trace.
"""

from __future__ import annotations

from certbound.config import Settings
from certbound.server.grants.resource import audience_for
from certbound.server.grants.scope import granted_scope
from certbound.server.grants.types import GrantRequest
from certbound.server.tokens.access_token import AccessTokenIssuer, IssuedToken
from certbound.server.tokens.binding import bound_thumbprint

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant:
    grant_type = "client_credentials"

    def __init__(self, issuer: AccessTokenIssuer, settings: Settings) -> None:
        self._issuer = issuer
        self._catalogue = None if settings.allowed_scopes is None else frozenset(settings.allowed_scopes)
        self._default_audience = settings.default_audience or settings.issuer_url

    async def handle(self, request: GrantRequest) -> IssuedToken:
        client = request.client
        scope = granted_scope(client, request.params.get("scope"), self._catalogue)
        audience = audience_for(client, request.resources, self._default_audience)
        x5t = bound_thumbprint(client, request.certificate)
        return await self._issuer.issue(client, scope=scope, audience=audience, x5t_s256=x5t)
