"""The tokens of a user's grant: what the code exchange and every refresh issue, written in one go.

Both login grants end here: an access token (bound as `certbound.server.tokens.binding` says), a
refresh token when the grant has one, and an ID token for an OpenID request, all minted first and
then written under the grant in one transaction (`certbound.store.grants.SqlGrantStore.issue`), so a
refused write leaves nothing behind and hands nothing out. A refresh token that turns out to have been
exchanged already (two refreshes racing, or a stolen token) revokes the whole grant.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from certbound.errors import OAuthError
from certbound.server.clients.model import ClientModel
from certbound.server.tokens.minter import Granted, TokenMinter, TokenSet
from certbound.store.grants import Issue, IssueOutcome
from certbound.store.records import Grant, GrantAccessToken, RefreshToken, User

__all__ = ["GrantStore", "UserLookup", "UserTokens", "invalid_grant"]

log = logging.getLogger("certbound.grants")


class GrantStore(Protocol):
    async def issue(self, issue: Issue) -> IssueOutcome: ...

    async def revoke_grant(self, grant_id: str, *, marker: Grant | None = None) -> bool: ...


class UserLookup(Protocol):
    async def get(self, sub: str) -> User | None: ...


def invalid_grant(description: str, reason: str) -> OAuthError:
    """RFC 6749 section 5.2: the grant (code, refresh token) is invalid, expired, revoked or not this
    client's; the reason code says which, in the log only."""
    return OAuthError("invalid_grant", description, reason=reason)


class UserTokens:
    """Mints and records the tokens of users' grants (one per worker)."""

    def __init__(
        self,
        minter: TokenMinter,
        store: GrantStore,
        users: UserLookup,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._minter = minter
        self._store = store
        self._users = users
        self._clock = clock

    async def active_user(self, sub: str, reason: str) -> User:
        """The user, if they may still log in; `invalid_grant` otherwise (disabled or deleted)."""
        user = await self._users.get(sub)
        if user is None or not user.enabled:
            raise invalid_grant("the user this grant is for can no longer log in", reason)
        return user

    async def issue(
        self,
        client: ClientModel,
        grant: Grant,
        *,
        scope: tuple[str, ...],
        x5t_s256: str | None,
        refresh: bool,
        new: bool,
        rotate: str | None = None,
        nonce: str | None = None,
    ) -> TokenSet:
        """Mint the tokens of `grant` (a `new` one, or a refresh of it rotating `rotate`) and write them."""
        data: dict[str, Any] = grant.data
        access = await self._minter.access(Granted(client, grant.subject, scope, data["audience"], x5t_s256))
        refresh_token: RefreshToken | None = None
        refresh_value: str | None = None
        if refresh:
            refresh_value, digest = self._minter.refresh_token()
            refresh_token = RefreshToken(digest, grant.grant_id, self._clock(), grant.expires_at)
        id_token = None
        if "openid" in scope:
            id_token = await self._minter.id_token(
                client,
                grant.subject,
                auth_time=data["auth_time"],
                sid=data.get("sid"),
                nonce=nonce,
                access_token=access.token,
            )
        claims = access.claims
        outcome = await self._store.issue(
            Issue(
                grant.grant_id,
                GrantAccessToken(
                    claims["jti"],
                    grant.grant_id,
                    datetime.fromtimestamp(claims["exp"], UTC),
                    access.opaque.token_sha256 if access.opaque is not None else None,
                ),
                grant=grant if new else None,
                rotate=rotate,
                refresh_token=refresh_token,
                opaque=access.opaque,
            )
        )
        if outcome == "reused":
            await self._store.revoke_grant(grant.grant_id)
            log.warning(
                "refresh token reused: grant %s of client %s revoked", grant.grant_id, client.client_id
            )
            raise invalid_grant("the refresh token was used already; its grant is revoked", "refresh.reused")
        if outcome == "user_gone":
            raise invalid_grant(
                "the user this grant is for can no longer log in",
                "code.user_gone" if new else "refresh.revoked",
            )
        if outcome == "revoked":
            if new:
                raise invalid_grant("the authorization code was used already", "code.replayed")
            raise invalid_grant("the refresh token's grant was revoked or has expired", "refresh.revoked")
        return TokenSet(
            access.token,
            self._minter.lifetime,
            claims.get("scope"),
            refresh_token=refresh_value,
            id_token=id_token,
        )
