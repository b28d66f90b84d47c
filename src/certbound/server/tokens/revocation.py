"""Token revocation (RFC 7009), without the web framework.

Semantics (where RFC 7009 leaves room, the choice and why):

- ``token_type_hint`` is only a hint: our formats are told apart by their shape and by looking them
  up, so it is not needed, and any value (also an unknown one) is accepted and ignored.
  ``unsupported_token_type`` is never answered: every token we issue can be revoked.
- A refresh token revokes its whole grant: every refresh token of its family and every access token
  issued under it, the code exchange's included (one transaction, `certbound.store.grants`).
- An unknown, malformed, expired or already revoked token: 200, nothing happens (section 2.2).
- A valid token issued to another client: 400 ``invalid_request``, nothing happens. Section 2.1 says
  the request "is refused and the client is informed of the error", and node-oidc-provider does the
  same. A silent 200 would let the caller believe a token was revoked that is still valid; the
  caller already holds the token, so the error reveals nothing it could not use anyway.
- A JWT access token goes on the deny-list (its ``jti``, until its ``exp``): one atomic insert that
  every worker and node reads before answering ``active: true``. An opaque token is marked revoked.
  In both cases the token is inactive everywhere once this returns.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol

from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel
from certbound.server.tokens.access_token import OPAQUE_TOKEN_PATTERN, token_digest
from certbound.server.tokens.verifier import AccessTokenVerifier
from certbound.store.records import Grant, RefreshToken

__all__ = ["RevocationStore", "Revoker"]

# the name its events have always carried (the module moved; the `logger` field did not)
log = logging.getLogger("certbound.tokens.revocation")


class RevocationStore(Protocol):
    async def revoke_token(self, token_key: str, expires_at: datetime) -> None: ...

    async def revoke_opaque_token(self, token_sha256: str) -> bool: ...


class RefreshRevoker(Protocol):
    async def refresh_token(self, token_sha256: str) -> tuple[RefreshToken, Grant] | None: ...

    async def revoke_grant(self, grant_id: str, *, marker: Grant | None = None) -> bool: ...


class Revoker:
    """Revokes a client's own access tokens, and its refresh tokens' grants (with `grants`)."""

    def __init__(
        self, verifier: AccessTokenVerifier, store: RevocationStore, grants: RefreshRevoker | None = None
    ) -> None:
        self._verifier = verifier
        self._store = store
        self._grants = grants

    async def revoke(self, token: str, caller: ClientModel, *, token_type_hint: str | None = None) -> bool:
        """Revoke `token` if it is an active token of `caller`; True when something was revoked.

        `token_type_hint` is accepted and ignored (see the module docstring).
        """
        found = await self._verifier.active(token)
        if found is None:
            return await self._revoke_refresh_token(token, caller)
        if found.client_id != caller.client_id:
            raise _not_owner()
        if found.kind == "jwt":
            await self._store.revoke_token(found.jti, datetime.fromtimestamp(found.exp, UTC))
            self._verifier.cache.discard(found.digest)
        else:
            await self._store.revoke_opaque_token(found.digest.hex())
        log.info("token revoked: client_id=%s jti=%s kind=%s", caller.client_id, found.jti, found.kind)
        return True

    async def _revoke_refresh_token(self, token: str, caller: ClientModel) -> bool:
        if self._grants is None or not OPAQUE_TOKEN_PATTERN.fullmatch(token):
            return False
        found = await self._grants.refresh_token(token_digest(token).hex())
        if found is None:
            return False
        _, grant = found
        if grant.client_id != caller.client_id:
            raise _not_owner()
        revoked = await self._grants.revoke_grant(grant.grant_id)
        log.info("refresh token revoked: client_id=%s grant=%s", caller.client_id, grant.grant_id)
        return revoked


def _not_owner() -> OAuthError:
    return OAuthError(
        "invalid_request",
        "the token was not issued to this client; a client can revoke only its own tokens",
        reason="revocation.not_owner",
    )
