"""Token introspection (RFC 7662) and its signed JWT response (RFC 9701), without the web framework.

Who may learn what (RFC 7662 section 4 leaves it to the server):

- the client the token was issued to may always introspect it;
- a client registered as a resource server, with the metadata ``resource_server_audiences`` (a list
  of the audience values it serves, e.g. ``["https://api.example.com"]``), may introspect tokens
  whose ``aud`` is, or contains, one of them;
- anyone else gets ``{"active": false}``, exactly what an unknown token gives, so a caller cannot
  tell another client's token from garbage.

Refresh tokens can be introspected too (RFC 7662 section 2.1), by their own client only: a live one
(not rotated, its grant neither revoked nor expired, its certificate binding not to a certificate
known to be revoked) answers ``active: true`` with ``client_id``, ``sub``, ``scope``, ``iat``, ``exp``,
``iss`` and, when bound (RFC 8705 section 4), ``cnf``; there is no ``token_type`` (RFC 6749 section
7.1 types are for access tokens).

Expired, revoked, unknown and malformed tokens are ``{"active": false}`` (200). The caller has been
authenticated before this is called; a failed authentication never reaches here.

The RFC 9701 response is a JWT (``typ`` ``token-introspection+jwt``) signed with the server's active
key, with ``iss``, ``aud`` (the caller's client_id), ``iat`` and ``token_introspection`` (the JSON
response); relying parties verify it with the server's JWKS.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from certbound.server.clients.model import ClientModel
from certbound.server.tokens.access_token import OPAQUE_TOKEN_PATTERN, Clock, CurrentKeys, token_digest
from certbound.server.tokens.verifier import AccessTokenVerifier, ActiveToken
from certbound.store.records import Grant, RefreshToken

__all__ = ["INTROSPECTION_JWT_MEDIA_TYPE", "INTROSPECTION_JWT_TYP", "Introspector", "may_introspect"]

INTROSPECTION_JWT_TYP = "token-introspection+jwt"
INTROSPECTION_JWT_MEDIA_TYPE = "application/token-introspection+jwt"
_INACTIVE: dict[str, Any] = {"active": False}


def may_introspect(caller: ClientModel, token: ActiveToken) -> bool:
    """The token's own client, or a resource server the token is meant for."""
    if caller.client_id == token.client_id:
        return True
    return not token.audiences.isdisjoint(caller.resource_server_audiences)


class RefreshTokens(Protocol):
    async def refresh_token(self, token_sha256: str) -> tuple[RefreshToken, Grant] | None: ...


class Introspector:
    """Builds the RFC 7662 answer for an authenticated caller."""

    def __init__(
        self,
        verifier: AccessTokenVerifier,
        *,
        issuer: str,
        keys: CurrentKeys,
        clock: Clock,
        refresh_tokens: RefreshTokens | None = None,
        revoked_certificates: Callable[[str], bool] | None = None,
    ) -> None:
        self._verifier = verifier
        self._issuer = issuer
        self._keys = keys
        self._clock = clock
        self._refresh_tokens = refresh_tokens
        self._revoked_certificates = revoked_certificates

    async def introspect(self, token: str, caller: ClientModel) -> dict[str, Any]:
        """The response body: the token's details, or ``{"active": false}``. A new dict each time."""
        found = await self._verifier.active(token)
        if found is None:
            return await self._refresh_token(token, caller)
        if not may_introspect(caller, found):
            return dict(_INACTIVE)
        return dict(found.introspection)

    async def _refresh_token(self, token: str, caller: ClientModel) -> dict[str, Any]:
        """A refresh token's answer: active only for its own client, while it may still be used."""
        if self._refresh_tokens is None or not OPAQUE_TOKEN_PATTERN.fullmatch(token):
            return dict(_INACTIVE)
        found = await self._refresh_tokens.refresh_token(token_digest(token).hex())
        if found is None:
            return dict(_INACTIVE)
        refresh, grant = found
        now = datetime.fromtimestamp(self._clock(), UTC)
        expires_at = min(refresh.expires_at, grant.expires_at)
        bound = grant.data.get("x5t#S256")
        revoked = self._revoked_certificates
        if (
            grant.client_id != caller.client_id
            or refresh.rotated_at is not None
            or grant.revoked_at is not None
            or expires_at <= now
            or (isinstance(bound, str) and revoked is not None and revoked(bound))
        ):
            return dict(_INACTIVE)
        body: dict[str, Any] = {"active": True}
        scope = grant.data.get("scope")
        if scope:
            body["scope"] = " ".join(scope)
        body |= {
            "client_id": grant.client_id,
            "exp": int(expires_at.timestamp()),
            "iat": int(refresh.created_at.timestamp()),
            "sub": grant.subject,
            "iss": self._issuer,
        }
        if isinstance(bound, str):
            body["cnf"] = {"x5t#S256": bound}
        return body

    async def signed(self, body: dict[str, Any], caller: ClientModel) -> str:
        """The RFC 9701 JWT carrying `body` for `caller`."""
        claims = {
            "iss": self._issuer,
            "aud": caller.client_id,
            "iat": int(self._clock()),
            "token_introspection": body,
        }
        return (await self._keys.ring()).active().sign(claims, typ=INTROSPECTION_JWT_TYP)
