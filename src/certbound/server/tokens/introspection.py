"""Token introspection (RFC 7662) and its signed JWT response (RFC 9701), without the web framework.

Who may learn what (RFC 7662 section 4 leaves it to the server):

- the client the token was issued to may always introspect it;
- a client registered as a resource server, with the metadata ``resource_server_audiences`` (a list
  of the audience values it serves, e.g. ``["https://api.example.com"]``), may introspect tokens
  whose ``aud`` is, or contains, one of them;
- anyone else gets ``{"active": false}``, exactly what an unknown token gives, so a caller cannot
  tell another client's token from garbage.

Expired, revoked, unknown and malformed tokens are ``{"active": false}`` (200). The caller has been
authenticated before this is called; a failed authentication never reaches here.

The RFC 9701 response is a JWT (``typ`` ``token-introspection+jwt``) signed with the server's active
key, with ``iss``, ``aud`` (the caller's client_id), ``iat`` and ``token_introspection`` (the JSON
response); relying parties verify it with the server's JWKS.
"""

from __future__ import annotations

from typing import Any

from certbound.server.clients.model import ClientModel
from certbound.server.tokens.access_token import Clock, CurrentKeys
from certbound.server.tokens.verifier import AccessTokenVerifier, ActiveToken

__all__ = ["INTROSPECTION_JWT_MEDIA_TYPE", "INTROSPECTION_JWT_TYP", "Introspector", "may_introspect"]

INTROSPECTION_JWT_TYP = "token-introspection+jwt"
INTROSPECTION_JWT_MEDIA_TYPE = "application/token-introspection+jwt"
_INACTIVE: dict[str, Any] = {"active": False}


def may_introspect(caller: ClientModel, token: ActiveToken) -> bool:
    """The token's own client, or a resource server the token is meant for."""
    if caller.client_id == token.client_id:
        return True
    return not token.audiences.isdisjoint(caller.resource_server_audiences)


class Introspector:
    """Builds the RFC 7662 answer for an authenticated caller."""

    def __init__(
        self, verifier: AccessTokenVerifier, *, issuer: str, keys: CurrentKeys, clock: Clock
    ) -> None:
        self._verifier = verifier
        self._issuer = issuer
        self._keys = keys
        self._clock = clock

    async def introspect(self, token: str, caller: ClientModel) -> dict[str, Any]:
        """The response body: the token's details, or ``{"active": false}``. A new dict each time."""
        found = await self._verifier.active(token)
        if found is None or not may_introspect(caller, found):
            return dict(_INACTIVE)
        return dict(found.introspection)

    async def signed(self, body: dict[str, Any], caller: ClientModel) -> str:
        """The RFC 9701 JWT carrying `body` for `caller`."""
        claims = {
            "iss": self._issuer,
            "aud": caller.client_id,
            "iat": int(self._clock()),
            "token_introspection": body,
        }
        return (await self._keys.ring()).active().sign(claims, typ=INTROSPECTION_JWT_TYP)
