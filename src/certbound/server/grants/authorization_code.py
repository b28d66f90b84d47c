"""The authorization_code grant (RFC 6749 section 4.1.3, RFC 7636 section 4.6, OpenID Connect Core
section 3.1.3): a code from /authorize becomes the user's tokens.

The code is redeemed first, by one atomic statement, whatever happens next: a code is used once, even
by a request that then fails (a wrong verifier burns it). A second redemption is a replay (RFC 6749
section 4.1.2: the code may have leaked) and revokes everything the first one issued. Then the code
must be this client's, the ``redirect_uri`` the one of the authorization request, and the
``code_verifier`` hash to the request's ``code_challenge``; a ``code_verifier`` for a code issued
without a challenge is refused too (RFC 9700 section 2.1.1).

Binding (RFC 8705): the access token as for every grant (`certbound.server.tokens.binding`); the
refresh token of a public client that presented a certificate is bound to that certificate (section
4), since the client has no other credential to tie it to. A refresh token is issued when the client
has the refresh_token grant, and for an OpenID request only when ``offline_access`` was granted
(OpenID Connect Core section 11).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from certbound.errors import OAuthError
from certbound.server.authorization.codes import code_digest
from certbound.server.authorization.pkce import verifier_matches
from certbound.server.grants.types import GrantRequest
from certbound.server.grants.user_tokens import UserTokens, invalid_grant
from certbound.server.tokens.binding import bound_thumbprint
from certbound.server.tokens.minter import TokenSet
from certbound.store.grants import Redemption
from certbound.store.records import Grant

__all__ = ["AuthorizationCodeGrant", "refresh_allowed"]

log = logging.getLogger("certbound.grants")


class CodeRedeemer(Protocol):
    async def redeem_code(self, code_sha256: str) -> Redemption: ...

    async def revoke_grant(self, grant_id: str, *, marker: Grant | None = None) -> bool: ...


def refresh_allowed(grant_types: frozenset[str], scope: tuple[str, ...]) -> bool:
    """Whether a grant of this scope gets a refresh token."""
    return "refresh_token" in grant_types and ("openid" not in scope or "offline_access" in scope)


class AuthorizationCodeGrant:
    grant_type = "authorization_code"

    def __init__(
        self,
        codes: CodeRedeemer,
        tokens: UserTokens,
        *,
        grant_lifetime: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._codes = codes
        self._tokens = tokens
        self._lifetime = timedelta(seconds=grant_lifetime)
        self._clock = clock

    async def handle(self, request: GrantRequest) -> TokenSet:
        client, params = request.client, request.params
        code, redirect_uri = params.get("code"), params.get("redirect_uri")
        if code is None or redirect_uri is None:
            raise OAuthError("invalid_request", "code and redirect_uri are required", reason="code.missing")
        redeemed = await self._codes.redeem_code(code_digest(code))
        if redeemed.code is None:
            raise invalid_grant("the authorization code is not valid", "code.unknown")
        stored = redeemed.code
        data: dict[str, Any] = stored.data
        now = self._clock()
        if redeemed.status == "used":
            marker = Grant(stored.grant_id, stored.client_id, data["sub"], {}, now, now)
            await self._codes.revoke_grant(stored.grant_id, marker=marker)
            log.warning("authorization code replayed: grant %s of client %s revoked", stored.grant_id,
                        stored.client_id)  # fmt: skip
            raise invalid_grant("the authorization code was used already", "code.replayed")
        if redeemed.status == "expired":
            raise invalid_grant("the authorization code has expired", "code.expired")
        if stored.client_id != client.client_id:
            raise invalid_grant("the authorization code was issued to another client", "code.client_mismatch")
        if data["redirect_uri"] != redirect_uri:
            raise invalid_grant(
                "redirect_uri is not the one of the authorization request", "code.redirect_uri_mismatch"
            )
        _check_pkce(data.get("code_challenge"), params.get("code_verifier"))
        await self._tokens.active_user(data["sub"], "code.user_gone")
        certificate = request.certificate
        access_x5t = bound_thumbprint(client, certificate)
        refresh_x5t = certificate.x5t_s256 if client.is_public and certificate is not None else None
        scope = tuple(data["scope"])
        grant = Grant(
            grant_id=stored.grant_id,
            client_id=client.client_id,
            subject=data["sub"],
            data={
                "scope": list(scope),
                "audience": data["audience"],
                "auth_time": data["auth_time"],
                "sid": data.get("sid"),
                "x5t#S256": refresh_x5t,
            },
            created_at=now,
            expires_at=now + self._lifetime,
        )
        return await self._tokens.issue(
            client,
            grant,
            scope=scope,
            x5t_s256=access_x5t,
            refresh=refresh_allowed(client.grant_types, scope),
            new=True,
            nonce=data.get("nonce"),
        )


def _check_pkce(challenge: str | None, verifier: str | None) -> None:
    if challenge is None:
        if verifier is not None:
            raise invalid_grant(
                "code_verifier sent, but the request had no code_challenge", "pkce.unexpected_verifier"
            )
        return
    if verifier is None:
        raise invalid_grant("code_verifier is required (PKCE)", "pkce.missing_verifier")
    if not verifier_matches(verifier, challenge):
        raise invalid_grant("code_verifier does not match the code_challenge", "pkce.mismatch")
