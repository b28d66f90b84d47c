"""The refresh_token grant (RFC 6749 section 6), with rotation and reuse detection (RFC 9700 section
4.14) and certificate-bound refresh tokens for public clients (RFC 8705 section 4).

The token must be this client's (a confidential client has authenticated as itself; another client's
token is ``invalid_grant``), its grant alive, and, when it is bound to a certificate, presented over
a connection with that certificate: another certificate or none is ``invalid_grant``, and the token
stays usable by its holder, unless certbound has learned that certificate is revoked (issue 16).
These checks come before the rotation, so a failed attempt rotates nothing. Every use rotates: the
token is exchanged for a new one in the transaction that issues it; a token already exchanged is
reuse, which revokes the whole grant. A narrower ``scope`` may be asked for (never a wider one); the
new access token is bound to the certificate presented now, as the client's registration says, and
an OpenID grant gets a new ID token (without ``nonce``, OpenID Connect Core section 12.2).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from certbound.errors import OAuthError
from certbound.jose.binding import thumbprints_match
from certbound.server.grants.types import GrantRequest
from certbound.server.grants.user_tokens import UserTokens, invalid_grant
from certbound.server.tokens.access_token import token_digest
from certbound.server.tokens.binding import bound_thumbprint
from certbound.server.tokens.minter import TokenSet
from certbound.store.records import Grant, RefreshToken

__all__ = ["RefreshTokenGrant"]


class RefreshReader(Protocol):
    async def refresh_token(self, token_sha256: str) -> tuple[RefreshToken, Grant] | None: ...

    async def revoke_grant(self, grant_id: str, *, marker: Grant | None = None) -> bool: ...


class RefreshTokenGrant:
    grant_type = "refresh_token"

    def __init__(
        self,
        store: RefreshReader,
        tokens: UserTokens,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        revoked_certificates: Callable[[str], bool] | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._clock = clock
        self._revoked_certificates = revoked_certificates

    async def handle(self, request: GrantRequest) -> TokenSet:
        client, params = request.client, request.params
        value = params.get("refresh_token")
        if value is None:
            raise OAuthError("invalid_request", "refresh_token is required", reason="refresh.missing")
        digest = token_digest(value).hex()
        found = await self._store.refresh_token(digest)
        if found is None:
            raise invalid_grant("the refresh token is not valid", "refresh.unknown")
        token, grant = found
        if grant.client_id != client.client_id:
            raise invalid_grant("the refresh token was issued to another client", "refresh.client_mismatch")
        now = self._clock()
        if grant.revoked_at is not None or grant.expires_at <= now or token.expires_at <= now:
            raise invalid_grant("the refresh token's grant was revoked or has expired", "refresh.revoked")
        if token.rotated_at is not None:
            await self._store.revoke_grant(grant.grant_id)
            raise invalid_grant("the refresh token was used already; its grant is revoked", "refresh.reused")
        bound = grant.data.get("x5t#S256")
        certificate = request.certificate
        if isinstance(bound, str):
            if certificate is None:
                raise invalid_grant(
                    "this refresh token is bound to the client certificate of the code exchange; present it "
                    "at the mtls_endpoint_aliases token endpoint",
                    "refresh.certificate_missing",
                )
            if not thumbprints_match(bound, certificate.x5t_s256):
                raise invalid_grant(
                    "this refresh token is bound to another client certificate",
                    "refresh.certificate_mismatch",
                )
            revoked = self._revoked_certificates
            if revoked is not None and revoked(bound):
                raise invalid_grant(
                    "the client certificate this refresh token is bound to is revoked",
                    "refresh.certificate_revoked",
                )
        scope = _narrowed(tuple(grant.data["scope"]), params.get("scope"))
        await self._tokens.active_user(grant.subject, "refresh.revoked")
        return await self._tokens.issue(
            client,
            grant,
            scope=scope,
            x5t_s256=bound_thumbprint(client, certificate),
            refresh=True,
            new=False,
            rotate=digest,
        )


def _narrowed(granted: tuple[str, ...], requested: str | None) -> tuple[str, ...]:
    """RFC 6749 section 6: the scope asked for may leave out granted values, never add one."""
    if requested is None:
        return granted
    values = tuple(dict.fromkeys(v for v in requested.split(" ") if v))
    wider = [v for v in values if v not in granted]
    if not values or wider:
        raise OAuthError(
            "invalid_scope",
            f"scope: not granted to this refresh token: {' '.join(wider)}" if wider else "scope: empty",
            reason="scope.not_registered",
        )
    return values
