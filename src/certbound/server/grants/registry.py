"""Dispatching a token request to its grant type's handler, with the checks every grant shares.

RFC 6749 section 5.2, in this order (the client is already authenticated, so an anonymous caller
learns nothing about grants): no ``grant_type`` is ``invalid_request``; a grant type this server
does not implement is ``unsupported_grant_type``; one the client did not register (its
``grant_types`` metadata) is ``unauthorized_client``. A client whose metadata has no ``grant_types``
may use none: registration always fills it in, so its absence means something is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from certbound.config import Settings
from certbound.errors import OAuthError
from certbound.server.grants.authorization_code import AuthorizationCodeGrant, CodeRedeemer
from certbound.server.grants.client_credentials import ClientCredentialsGrant
from certbound.server.grants.refresh_token import RefreshReader, RefreshTokenGrant
from certbound.server.grants.types import Grant, GrantRequest
from certbound.server.grants.user_tokens import GrantStore, UserLookup, UserTokens
from certbound.server.tokens.minter import TokenMinter, TokenSet

__all__ = ["GrantRegistry", "default_grants"]


class GrantRegistry:
    """The grant types this server implements, by name."""

    def __init__(self, grants: Iterable[Grant]) -> None:
        self._grants: dict[str, Grant] = {}
        for grant in grants:
            if grant.grant_type in self._grants:
                raise ValueError(f"grant type {grant.grant_type!r} registered twice")
            self._grants[grant.grant_type] = grant

    @property
    def grant_types(self) -> tuple[str, ...]:
        return tuple(self._grants)

    async def dispatch(self, request: GrantRequest) -> TokenSet:
        grant_type = request.params.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required", reason="grant.missing")
        grant = self._grants.get(grant_type)
        if grant is None:
            raise OAuthError(
                "unsupported_grant_type",
                f"this server supports the grant types: {', '.join(self._grants)}",
                reason="grant.unsupported",
            )
        if grant_type not in request.client.grant_types:
            raise OAuthError(
                "unauthorized_client",
                f"this client is not registered for the grant type {grant_type}",
                reason="grant.not_registered",
            )
        return await grant.handle(request)


class LoginStore(GrantStore, CodeRedeemer, RefreshReader, Protocol):
    """What the login grants keep (`certbound.store.grants.SqlGrantStore`)."""


def default_grants(
    minter: TokenMinter,
    settings: Settings,
    *,
    store: LoginStore | None = None,
    users: UserLookup | None = None,
    revoked_certificates: Callable[[str], bool] | None = None,
) -> GrantRegistry:
    """Every grant type certbound implements, wired to `minter`; the login grants (authorization_code,
    refresh_token) when the `store` of their codes and grants and the `users` are given."""
    grants: list[Grant] = [ClientCredentialsGrant(minter, settings)]
    if store is not None and users is not None:
        tokens = UserTokens(minter, store, users)
        grants += [
            AuthorizationCodeGrant(store, tokens, grant_lifetime=settings.refresh_token_lifetime),
            RefreshTokenGrant(store, tokens, revoked_certificates=revoked_certificates),
        ]
    return GrantRegistry(grants)
