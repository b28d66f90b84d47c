"""The client_credentials grant (RFC 6749 section 4.4): a client gets a token for itself.

The token's ``sub`` is the client_id. Scope, audience and certificate binding follow the shared rules
of `certbound.server.grants.scope`, `certbound.server.grants.resource` and
`certbound.server.tokens.binding`; the checks run before anything is minted or stored, so a refused
request leaves no trace.
"""

from __future__ import annotations

from certbound.config import Settings
from certbound.server.grants.resource import audience_for
from certbound.server.grants.scope import granted_scope, scope_catalogue
from certbound.server.grants.types import GrantRequest
from certbound.server.tokens.binding import bound_thumbprint
from certbound.server.tokens.minter import Granted, TokenMinter, TokenSet

__all__ = ["ClientCredentialsGrant"]


class ClientCredentialsGrant:
    grant_type = "client_credentials"

    def __init__(self, minter: TokenMinter, settings: Settings) -> None:
        self._minter = minter
        self._catalogue = scope_catalogue(settings)
        self._default_audience = settings.default_audience or settings.issuer_url

    async def handle(self, request: GrantRequest) -> TokenSet:
        client = request.client
        scope = granted_scope(client, request.params.get("scope"), self._catalogue)
        audience = audience_for(client, request.resources, self._default_audience)
        x5t = bound_thumbprint(client, request.certificate)
        return await self._minter.mint(Granted(client, client.client_id, scope, audience, x5t))
